"""Detector simulator: every receiving agent's detector screens what the Comm simulator delivers.

The agents' own values of each iteration ride along with the round they were sent with (the Comm simulator
passes them on untouched: they never cross the network), so the detectors take one mosaik step per round;
the screened rounds go back to the Market. A ``close`` round adds the detectors' report to the
Comm simulator's.
"""

from __future__ import annotations

import json

from cosim.interval import cyber_setup
from cosim.simulators.scenario_sim import ScenarioSimulator
from cyber.resilient_admm import build_screening, screening_report
from cyber.screening import ScreeningTransport
from market.instance import instance_from_dict
from market.messages import IdealTransport

META = {"type": "event-based", "models": {"Detector": {"public": True, "params": ["scenario"],
                                                       "attrs": ["delivered", "screened"]}}}


class DetectorSim(ScenarioSimulator):
    eid = "detector"

    def __init__(self) -> None:
        super().__init__(META)
        self.screening: ScreeningTransport | None = None
        self.out: dict | None = None

    def step(self, time, inputs, max_advance):
        self.out = None
        for arrived in inputs.get("detector", {}).get("delivered", {}).values():
            if arrived["first"] is not None:
                instance = instance_from_dict(json.loads(arrived["first"]), "instance from the Comm simulator")
                self.screening = build_screening(instance, self.scenario.admm_settings(),
                                                 cyber_setup(self.scenario, instance), IdealTransport())
            if arrived["close"] is not None:
                self.out = {**arrived, "close": (arrived["close"], screening_report(self.screening))}
                continue
            if arrived["local"] is not None:
                self.screening.observe_local(arrived["local"])
            self.out = {**arrived, "batches": [self.screening.deliver(batch) for batch in arrived["batches"]]}
        return None

    def get_data(self, outputs):
        return {"detector": {"screened": self.out}} if self.out is not None else {}
