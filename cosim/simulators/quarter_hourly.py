"""What the Profiles and Weather simulators share: a tick every quarter hour of the scenario, each publishing
one event for that quarter hour.

They are *hybrid* simulators: they step every quarter hour like a time-based one, but what they publish is an
event (non-persistent), not re-sent to its receivers at each message round of a clearing.
"""

from __future__ import annotations

import mosaik_api_v3

from cosim.scenario import Scenario
from cosim.simulators import QUARTER_HOUR_MS
from physical.catalog import load_feeder
from physical.feeder import Feeder


def quarter_hourly_meta(model: str, attr: str) -> dict:
    """The mosaik meta of a quarter-hourly simulator publishing ``attr`` as an event."""
    return {"type": "hybrid", "models": {model: {"public": True, "params": ["scenario", "first"],
                                                 "attrs": [attr], "non-persistent": [attr]}}}


class QuarterHourlySim(mosaik_api_v3.Simulator):
    """One entity ``eid`` publishing ``attr`` = :meth:`publish` of the quarter hour ``first + k`` at tick ``k``,
    for the scenario's ``intervals`` quarter hours."""

    eid = ""
    attr = ""

    def __init__(self, meta: dict) -> None:
        super().__init__(meta)
        self.scenario: Scenario | None = None
        self.feeder: Feeder | None = None
        self.first = 0
        self.out: dict = {}

    def create(self, num, model, scenario: dict, first: int):
        self.scenario = Scenario.model_validate(scenario)
        self.feeder = load_feeder(self.scenario.case)
        self.first = first
        return [{"eid": self.eid, "type": model}]

    def step(self, time, inputs, max_advance):
        k = time // QUARTER_HOUR_MS
        self.out = {self.attr: self.publish(self.first + k)} if k < self.scenario.intervals else {}
        return time + QUARTER_HOUR_MS

    def publish(self, interval: int) -> object:
        raise NotImplementedError

    def get_data(self, outputs):
        return {self.eid: self.out} if self.out else {}
