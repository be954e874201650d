"""Detector simulator: every receiving agent's detector screens what the Comm simulator delivers.

The agents' own values of each iteration ride along with the round they were sent with (the Comm simulator
passes them on untouched: they never cross the network), so the detectors take one mosaik step per round;
the screened rounds go back to the Market. A :class:`~cosim.simulators.messages.ClearingClose` adds the
detectors' report to the Comm simulator's.
"""

from __future__ import annotations

from dataclasses import replace

from cosim.interval import cyber_setup
from cosim.simulators.messages import ClearingClose, ClearingRound, received
from cosim.simulators.scenario_sim import ScenarioSimulator
from cyber.resilient_admm import build_screening, screening_report
from cyber.screening import ScreeningTransport
from market.messages import IdealTransport

META = {"type": "event-based", "models": {"Detector": {"public": True, "params": ["scenario"],
                                                       "attrs": ["delivered", "screened"]}}}


class DetectorSim(ScenarioSimulator):
    eid = "detector"

    def __init__(self) -> None:
        super().__init__(META)
        self.screening: ScreeningTransport | None = None
        self.out: ClearingRound | ClearingClose | None = None

    def step(self, time, inputs, max_advance):
        self.out = None
        for arrived in received(inputs, "detector", "delivered", (ClearingRound, ClearingClose), "Detector"):
            if isinstance(arrived, ClearingClose):
                self.out = replace(arrived, screening=screening_report(self.screening))
                continue
            if arrived.instance is not None:
                self.screening = build_screening(arrived.instance, self.scenario.admm_settings(),
                                                 cyber_setup(self.scenario, arrived.instance), IdealTransport())
            if arrived.local is not None:
                self.screening.observe_local(arrived.local)
            self.out = replace(arrived, batches=tuple(self.screening.deliver(batch) for batch in arrived.batches))
        return None

    def get_data(self, outputs):
        return {"detector": {"screened": self.out}} if self.out is not None else {}
