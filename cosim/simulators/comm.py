"""Comm simulator: the communication network every ADMM message crosses, with the Byzantine agents on it.

Each round the Market sends is falsified where Byzantine agents send (:class:`cyber.attacks.ByzantineTransport`),
then dropped and delayed per channel (:class:`cyber.timing.TimedTransport`); what arrives is released to the
Detector simulator when the round ends in simulated time -- mosaik time is the clearing's start plus the
round's end, rounded up to the millisecond (the exact time travels with the round). The agents' own values
that ride along for their detectors are passed on untouched. A ``close`` round returns
the attackers' record and the network's counts.
"""

from __future__ import annotations

import json
import math

from cosim.interval import cyber_setup
from cosim.simulators.scenario_sim import ScenarioSimulator
from cyber.resilient_admm import CommLayer
from market.instance import instance_from_dict

META = {"type": "event-based", "models": {"Comm": {"public": True, "params": ["scenario"],
                                                   "attrs": ["round", "delivered"]}}}


class CommSim(ScenarioSimulator):
    eid = "comm"

    def __init__(self) -> None:
        super().__init__(META)
        self.layer: CommLayer | None = None
        self.start = 0
        self.out: dict | None = None
        self.release = 0

    def step(self, time, inputs, max_advance):
        self.out = None
        for sent in inputs.get("comm", {}).get("round", {}).values():
            if sent["first"] is not None:
                instance = instance_from_dict(json.loads(sent["first"]), "instance from the Market simulator")
                self.layer, self.start = CommLayer(instance, cyber_setup(self.scenario, instance)), time
            if sent["close"]:
                self.out = {**sent, "clock_ms": self.layer.now_ms, "close": self.layer.report()}
                self.release = time
                continue
            delivered = [self.layer.deliver(batch) for batch in sent["batches"]]
            clock = self.layer.now_ms
            self.out = {**sent, "batches": delivered, "clock_ms": clock, "close": None}
            self.release = max(time, self.start + math.ceil(clock)) if math.isfinite(clock) else time
        return None

    def get_data(self, outputs):
        if self.out is None:
            return {}
        return {"time": self.release, "comm": {"delivered": self.out}}
