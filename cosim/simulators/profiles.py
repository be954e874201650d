"""Profiles simulator: the quarter-hour clock of the SimBench profile year (which interval to clear)."""

from __future__ import annotations

import mosaik_api_v3

from cosim.simulators import QUARTER_HOUR_MS

META = {"type": "time-based", "models": {"Profiles": {"public": True, "params": ["first", "count"],
                                                      "attrs": ["interval"]}}}


class ProfileSim(mosaik_api_v3.Simulator):
    def __init__(self) -> None:
        super().__init__(META)
        self.first = self.count = 0
        self.interval: int | None = None

    def create(self, num, model, first: int = 0, count: int = 1):
        self.first, self.count = first, count
        return [{"eid": "profiles", "type": model}]

    def step(self, time, inputs, max_advance):
        k = time // QUARTER_HOUR_MS
        self.interval = self.first + k if k < self.count else None
        return time + QUARTER_HOUR_MS

    def get_data(self, outputs):
        return {"profiles": {"interval": self.interval}} if self.interval is not None else {}
