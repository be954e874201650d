"""Comm simulator: the communication network every ADMM message crosses, with the Byzantine agents on it.

Each round the Market sends is falsified where Byzantine agents send (:class:`cyber.attacks.ByzantineTransport`),
then dropped and delayed per channel (:class:`cyber.timing.TimedTransport`); what arrives is released to the
Detector simulator when the round ends in simulated time -- mosaik time is the clearing's start plus the
round's end, rounded up to the millisecond (the exact time travels with the round). The agents' own values
that ride along for their detectors are passed on untouched. A :class:`~cosim.simulators.messages.ClearingClose`
returns the attackers' record and the network's counts.
"""

from __future__ import annotations

import math
from dataclasses import replace

from cosim.interval import cyber_setup
from cosim.simulators.messages import ClearingClose, ClearingRound, received
from cosim.simulators.scenario_sim import ScenarioSimulator
from cyber.resilient_admm import CommLayer

META = {"type": "event-based", "models": {"Comm": {"public": True, "params": ["scenario"],
                                                   "attrs": ["round", "delivered"]}}}


class CommSim(ScenarioSimulator):
    eid = "comm"

    def __init__(self) -> None:
        super().__init__(META)
        self.layer: CommLayer | None = None
        self.start = 0
        self.out: ClearingRound | ClearingClose | None = None
        self.release = 0

    def step(self, time, inputs, max_advance):
        self.out = None
        for sent in received(inputs, "comm", "round", (ClearingRound, ClearingClose), "Comm"):
            if isinstance(sent, ClearingClose):
                self.out, self.release = replace(sent, comm=self.layer.report()), time
                continue
            if sent.instance is not None:
                self.layer, self.start = CommLayer(sent.instance, cyber_setup(self.scenario, sent.instance)), time
            delivered = tuple(self.layer.deliver(batch) for batch in sent.batches)
            clock = self.layer.now_ms
            self.out = replace(sent, batches=delivered, clock_ms=clock)
            self.release = max(time, self.start + math.ceil(clock)) if math.isfinite(clock) else time
        return None

    def get_data(self, outputs):
        if self.out is None:
            return {}
        return {"time": self.release, "comm": {"delivered": self.out}}
