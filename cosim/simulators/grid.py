"""Grid simulator: pandapower's AC power flow on every dispatch the market publishes, kept for the results,
and the cross-layer check of the market's reports against that metered state (:mod:`cyber.cross_layer`).
The feeder's pandapower net is built once and takes each dispatch's injections."""

from __future__ import annotations

import mosaik_api_v3
import numpy as np

from cosim.simulators.run_store import keep
from cyber.cross_layer import check_reports
from physical.ac_power_flow import to_pandapower, validate_dispatch
from physical.catalog import load_feeder

META = {"type": "event-based", "models": {"Grid": {"public": True, "params": ["case", "run_id"],
                                                   "attrs": ["dispatch"]}}}


class GridSim(mosaik_api_v3.Simulator):
    def __init__(self) -> None:
        super().__init__(META)
        self.feeder = None
        self.net = None
        self.run_id = ""

    def create(self, num, model, case: str, run_id: str):
        self.feeder, self.run_id = load_feeder(case), run_id
        self.net = to_pandapower(self.feeder)
        return [{"eid": "grid", "type": model}]

    def step(self, time, inputs, max_advance):
        for d in inputs.get("grid", {}).get("dispatch", {}).values():
            check = validate_dispatch(self.feeder, np.asarray(d["p_mw"]), np.asarray(d["q_mvar"]),
                                      np.asarray(d["vm_socp_pu"]), d["losses_mw"], np.asarray(d["vmin_pu"]),
                                      np.asarray(d["vmax_pu"]), net=self.net)
            reports = d["reports"]
            crossed = (check_reports(self.feeder, reports, check.ac, d["meters"]).summary(self.feeder.base_mva)
                       if reports is not None else {"suspected_agents": []})
            keep(self.run_id, d["interval"], "validation", {
                "time_ms": time, "vm_ac_pu": check.ac.vm_pu.tolist(), "vm_socp_pu": d["vm_socp_pu"],
                **check.summary(), "cross_layer_checked": reports is not None, **crossed})
        return None

    def get_data(self, outputs):
        return {}
