"""Collector simulator: keeps what the market and the grid publish, per interval, for the results folder."""

from __future__ import annotations

import mosaik_api_v3

META = {"type": "event-based", "models": {"Collector": {"public": True, "params": ["run_id"],
                                                        "attrs": ["report", "validation"]}}}

#: run id -> interval -> what arrived (the co-simulation's runner reads it after ``world.run``)
COLLECTED: dict[str, dict[int, dict]] = {}


class CollectorSim(mosaik_api_v3.Simulator):
    def __init__(self) -> None:
        super().__init__(META)
        self.store: dict[int, dict] = {}

    def create(self, num, model, run_id: str):
        self.store = COLLECTED.setdefault(run_id, {})
        return [{"eid": "collector", "type": model}]

    def step(self, time, inputs, max_advance):
        for attr, values in inputs.get("collector", {}).items():
            for value in values.values():
                self.store.setdefault(value["interval"], {})[attr] = value
        return None

    def get_data(self, outputs):
        return {}
