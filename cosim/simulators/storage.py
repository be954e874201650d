"""Storage simulator: every battery's state of charge (and Lyapunov queue) from one quarter hour to the next.

The Market decides and clears an interval with the batteries' state it was last sent; when it publishes the
interval's battery powers, this simulator moves every unit's stored energy by them
(:meth:`market.problem.storage.StorageArrays.energy_step`), keeps the state for the results and sends the new
state back -- with the count of intervals applied, so the Market starts the next quarter hour only from the
state after the last one it published. Both start from the units' initial energy (their data).
"""

from __future__ import annotations

import mosaik_api_v3
import numpy as np

from cosim.scenario import Scenario, storage_plan
from cosim.simulators.messages import BatteryPowers, StorageState, received
from cosim.simulators.run_store import KeptStorage, keep

META = {"type": "event-based", "models": {"Storage": {"public": True, "params": ["scenario", "run_id"],
                                                      "attrs": ["battery", "soc"]}}}


class StorageSim(mosaik_api_v3.Simulator):
    def __init__(self) -> None:
        super().__init__(META)
        self.arr = None
        self.theta: np.ndarray | None = None  # Lyapunov shift (queue = soc - theta); None for other controllers
        self.soc = np.zeros(0)
        self.applied = 0
        self.run_id = ""
        self.sent = True  # the initial state is the units' own (the Market starts from it without a message)

    def create(self, num, model, scenario: dict, run_id: str):
        plan = storage_plan(Scenario.model_validate(scenario))
        self.arr, self.run_id = plan.arrays, run_id
        self.theta = getattr(getattr(plan.controller, "params", None), "theta", None)
        self.soc = self.arr.soc0.copy()
        return [{"eid": "storage", "type": model}]

    def step(self, time, inputs, max_advance):
        for b in received(inputs, "storage", "battery", BatteryPowers, "Storage"):
            charge, discharge = b.charge_pu, b.discharge_pu
            self.soc = self.soc + self.arr.energy_step(charge, discharge)
            self.applied += 1
            keep(self.run_id, b.interval, KeptStorage(self.soc, self.arr.kw(charge), self.arr.kw(discharge),
                                                      self.soc - self.theta if self.theta is not None else None))
            self.sent = False
        return None

    def get_data(self, outputs):
        if self.sent:
            return {}
        self.sent = True
        return {"storage": {"soc": StorageState(self.applied, self.soc)}}
