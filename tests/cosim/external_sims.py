"""A user's mosaik simulator for the external-simulator tests, in a module of its own: mosaik imports it by
this name, and the test must see the same class (pytest imports test modules under names of its own)."""

from __future__ import annotations

import mosaik_api_v3


class Recorder(mosaik_api_v3.Simulator):
    """A listener an external scenario can start: keeps every voltage it is sent, by time (ms)."""

    seen: dict[int, float] = {}

    def __init__(self) -> None:
        super().__init__({"type": "event-based", "models": {"Meter": {"public": True, "params": [],
                                                                     "attrs": ["v"]}}})

    def create(self, num, model):
        return [{"eid": f"meter{k}", "type": model} for k in range(num)]

    def step(self, time, inputs, max_advance):
        for values in inputs["meter0"]["v"].values():
            Recorder.seen[time] = values
        return None

    def get_data(self, outputs):
        return {}
