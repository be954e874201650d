"""Grid simulator: pandapower's AC power flow on every dispatch the market publishes, kept for the results,
and the cross-layer check of the market's reports against that metered state (:mod:`cyber.cross_layer`).
The feeder's pandapower net is built once and takes each dispatch's injections; with weather-driven ratings
(a scenario's ``[ratings]``) the lines take the Weather simulator's ratings of the dispatch's quarter hour, and
the loading is checked against them. Other mosaik simulators see the grid as one entity per bus and per line
(:mod:`cosim.simulators.grid_entities`): the loads and generators they put on a bus enter every AC check on top
of the dispatch (metered apart from the prosumers, so the cross-layer check does not blame them on the bus's
agent), and they read the last AC power flow's voltages, flows and loadings."""

from __future__ import annotations

import mosaik_api_v3
import numpy as np

from cosim.simulators.grid_entities import ExternalInjections, entity_models, entity_outputs, entity_tree
from cosim.simulators.messages import DispatchOrder, received
from cosim.simulators.run_store import KeptCheck, keep
from cyber.cross_layer import check_reports
from physical.ac_power_flow import set_line_ratings, to_pandapower, validate_dispatch
from physical.catalog import load_feeder
from physical.feeder_ratings import LineRatings, loading_against, overloaded_lines, with_ratings

META = {"type": "event-based", "models": {"Grid": {"public": True, "params": ["case", "run_id", "mode"],
                                                   "attrs": ["dispatch", "ratings"]}, **entity_models()}}


class GridSim(mosaik_api_v3.Simulator):
    def __init__(self) -> None:
        super().__init__(META)
        self.feeder = None
        self.net = None
        self.run_id = ""
        self.mode: str | None = None  # the rating mode of the scenario's [ratings], None without
        self.ratings: dict[int, LineRatings] = {}
        self.external: ExternalInjections | None = None
        self.ac_ = None  # the AC power flow of this step's dispatch, for the bus and line entities' outputs

    def create(self, num, model, case: str, run_id: str, mode: str | None = None):
        self.feeder, self.run_id, self.mode = load_feeder(case), run_id, mode
        self.net = to_pandapower(self.feeder)
        self.external = ExternalInjections(self.feeder.n_buses)
        return [{"eid": "grid", "type": model, "children": entity_tree(self.feeder.n_buses)}]

    def step(self, time, inputs, max_advance):
        self.ac_ = None
        for eid, given in inputs.items():
            for attr, sent in given.items():
                if eid != "grid":
                    self.external.update(eid, attr, sent)
        for rating in received(inputs, "grid", "ratings", LineRatings, "Grid"):
            self.ratings[rating.interval] = rating
        for order in received(inputs, "grid", "dispatch", DispatchOrder, "Grid"):
            feeder, rating, d = self.feeder, None, order.dispatch
            if self.mode is not None:
                rating = self.ratings.pop(order.interval)
                feeder = with_ratings(self.feeder, rating.imax_pu(self.feeder, self.mode))
                set_line_ratings(self.net, feeder)
            extra_p, extra_q = self.external.injections()
            check = validate_dispatch(feeder, d.p_mw + extra_p, d.q_mvar + extra_q, d.vm_socp_pu, d.losses_mw,
                                      order.vmin_pu, order.vmax_pu, net=self.net)
            self.ac_ = check.ac
            static_loading = ({} if rating is None else {"max_static_loading_percent": float(np.nanmax(
                loading_against(check.ac, rating.amperes(self.mode), rating.static_a), initial=np.nan))})
            reports = order.reports
            crossed = (check_reports(feeder, reports, check.ac, order.meters, (extra_p, extra_q))
                       .summary(self.feeder.base_mva)
                       if reports is not None else {"suspected_agents": []})
            keep(self.run_id, order.interval, KeptCheck(time, {
                **check.summary(), "overloaded_lines": list(overloaded_lines(check.ac)), **static_loading,
                "cross_layer_checked": reports is not None, **crossed,
                **(self.external.summary() if self.external.values_ else {})},
                check.ac.vm_pu, self.feeder.nominal_vm(d.vm_socp_pu)))  # both in nominal p.u.
        return None

    def get_data(self, outputs):
        """The bus and line entities' outputs after a step that ran an AC power flow (nothing otherwise: an
        event-based simulator's output is an event)."""
        requested = {eid: attrs for eid, attrs in outputs.items() if eid != "grid"}
        return entity_outputs(self.ac_, requested) if self.ac_ is not None and requested else {}
