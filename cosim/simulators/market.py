"""Market simulator: clears each quarter hour's instance it is given (:func:`cosim.interval.clear_instance`)
and publishes the dispatch when the clearing ends in simulated time."""

from __future__ import annotations

import json
import math

import mosaik_api_v3

from cosim.interval import clear_instance
from cosim.scenario import Scenario
from market.instance import instance_from_dict

META = {"type": "event-based", "models": {"Market": {"public": True, "params": ["scenario"],
                                                     "attrs": ["instance_json", "dispatch", "report"]}}}


class MarketSim(mosaik_api_v3.Simulator):
    def __init__(self) -> None:
        super().__init__(META)
        self.scenario: Scenario | None = None
        self.pending: dict | None = None
        self.release = -1
        self.out: dict = {}

    def create(self, num, model, scenario: dict):
        self.scenario = Scenario.model_validate(scenario)
        return [{"eid": "market", "type": model}]

    def step(self, time, inputs, max_advance):
        self.out = {}
        if time == self.release and self.pending is not None:
            self.out, self.pending = self.pending, None
            return None
        received = inputs.get("market", {}).get("instance_json", {})
        if not received:
            return None
        data = json.loads(next(iter(received.values())))
        if data.get("case") != self.scenario.case:
            raise ValueError(f"market of {self.scenario.case} received an instance of {data.get('case')}")
        clearing = clear_instance(self.scenario, instance_from_dict(data, "instance from the Profiles simulator"))
        d = clearing.dispatch()
        inst = clearing.instance
        history = clearing.run.history
        if history is not None and clearing.run.screening is not None:
            history = history.merge(clearing.run.screening.iteration_counts(), on="iteration")
        self.pending = {
            "dispatch": {"interval": clearing.interval, "p_mw": d.p_mw.tolist(), "q_mvar": d.q_mvar.tolist(),
                         "vm_socp_pu": d.vm_socp_pu.tolist(), "losses_mw": d.losses_mw,
                         "vmin_pu": inst.vmin_pu.tolist(), "vmax_pu": inst.vmax_pu.tolist()},
            "report": {"interval": clearing.interval, "record": clearing.record(),
                       "iterations": history.to_dict("list") if history is not None else {},
                       "instance_json": inst.to_json()},
        }
        duration = clearing.clearing_ms if math.isfinite(clearing.clearing_ms) else 0.0
        self.release = time + max(1, math.ceil(duration))
        return self.release

    def get_data(self, outputs):
        return {"market": self.out} if self.out else {}
