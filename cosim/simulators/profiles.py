"""Profiles simulator: every quarter hour, the prosumers of that interval -- SimBench load, PV and wind
profiles drawn per bus with the scenario's seed, roles and costs (:func:`cosim.interval.interval_instance`)."""

from __future__ import annotations

import mosaik_api_v3

from cosim.interval import interval_instance
from cosim.scenario import Scenario
from cosim.simulators import QUARTER_HOUR_MS
from physical.catalog import load_feeder

# hybrid: steps every quarter hour like a time-based simulator, but its instance is an event (not re-sent to the
# Market at each of its message rounds)
META = {"type": "hybrid", "models": {"Profiles": {"public": True, "params": ["scenario", "first"],
                                                  "attrs": ["instance_json"], "non-persistent": ["instance_json"]}}}


class ProfileSim(mosaik_api_v3.Simulator):
    def __init__(self) -> None:
        super().__init__(META)
        self.scenario: Scenario | None = None
        self.feeder = None
        self.first = 0
        self.out: dict = {}

    def create(self, num, model, scenario: dict, first: int):
        self.scenario = Scenario.model_validate(scenario)
        self.feeder = load_feeder(self.scenario.case)
        self.first = first
        return [{"eid": "profiles", "type": model}]

    def step(self, time, inputs, max_advance):
        k = time // QUARTER_HOUR_MS
        self.out = {}
        if k < self.scenario.intervals:
            self.out = {"instance_json": interval_instance(self.scenario, self.feeder, self.first + k).to_json()}
        return time + QUARTER_HOUR_MS

    def get_data(self, outputs):
        return {"profiles": self.out} if self.out else {}
