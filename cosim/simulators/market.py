"""Market simulator: the prosumer agents' ADMM, one message round per step.

At a quarter-hour tick it starts clearing the instance the Profiles simulator sent: the ADMM's rounds
(:func:`market.admm.driver.admm_process`) go to the Comm simulator, with the agents' own values for their
detectors, and each step resumes the agents with what the Detector passed on. When the ADMM stops it asks
Comm and Detector for their reports (a :class:`~cosim.simulators.messages.ClearingClose` that takes no
simulated time) and then publishes the dispatch -- or the grid-only fallback -- and keeps its record for the
results (:mod:`run_store`). A centralized clearing takes no simulated time. A clearing still running at the
next tick (its deadline checked only between iterations, its last iteration may run past the quarter hour)
finishes first; the next quarter hour's clearing starts when it is published.
"""

from __future__ import annotations

import json

import numpy as np

from cosim.clearing_run import ClearingRun, admm_clearing
from cosim.interval import (
    IntervalClearing,
    clear_instance,
    cyber_setup,
    interval_clearing,
    private_pairs,
    rated_instance,
    warm_start_from,
    with_privacy,
)
from cosim.scenario import StoragePlan, storage_plan
from cosim.simulators.messages import (
    BatteryPowers,
    ClearingClose,
    ClearingRound,
    DispatchOrder,
    MessageError,
    StorageState,
    received,
)
from cosim.simulators.run_store import KeptClearing, keep
from cosim.simulators.scenario_sim import ScenarioSimulator
from cyber.cross_layer import market_reports, meters_of
from cyber.false_load import declared_instance
from cyber.privacy.pairs import SecurePairs
from cyber.resilient_admm import resilient_run
from market.admm.driver import Process, Round, admm_process
from market.instance import MarketInstance, instance_from_dict
from market.messages import MessageBatch
from market.online.controllers import solve_slot
from market.problem.storage import BatteryStep
from physical.feeder_ratings import LineRatings

META = {"type": "event-based", "models": {"Market": {"public": True, "params": ["scenario", "run_id"],
                                                     "attrs": ["instance_json", "ratings", "screened", "round",
                                                               "dispatch", "soc", "battery"]}}}


class MarketSim(ScenarioSimulator):
    eid = "market"

    def __init__(self) -> None:
        super().__init__(META)
        self.instance: MarketInstance | None = None
        self.process: Process | None = None
        self.run = None
        self.last: IntervalClearing | None = None  # the previous quarter hour's clearing (for a warm start)
        self.waiting: list[str] = []  # instances that arrived while a clearing was still running
        self.ratings: dict[int, LineRatings] = {}  # the Weather's line ratings of quarter hours not started yet
        self.clock_ms = 0.0  # the clearing's simulated time when the last round was delivered
        self.pairs: SecurePairs | None = None  # the running clearing's private exchange ([privacy])
        self.out: dict[str, object] = {}  # attribute -> this step's message
        self.run_id = ""
        # with [storage]: the batteries and their controller, the state the Storage simulator last sent, how many
        # intervals it had applied then and how many this market has published, and the running interval's step
        self.plan: StoragePlan | None = None
        self.soc: np.ndarray | None = None
        self.applied = self.published = 0
        self.step_: BatteryStep | None = None

    def create(self, num, model, scenario: dict, run_id: str):
        self.run_id = run_id
        created = super().create(num, model, scenario)
        if self.scenario.storage is not None:
            self.plan = storage_plan(self.scenario)
            self.soc = self.plan.arrays.soc0.copy()  # the units' data; the Storage simulator starts there too
        return created

    def step(self, time, inputs, max_advance):
        self.out = {}
        for rating in received(inputs, "market", "ratings", LineRatings, "Market"):
            self.ratings[rating.interval] = rating
        for state in received(inputs, "market", "soc", StorageState, "Market"):
            self.soc, self.applied = state.soc_kwh, state.applied
        for delivered in received(inputs, "market", "screened", (ClearingRound, ClearingClose), "Market"):
            if self.instance is None or delivered.interval != self.instance.interval:
                raise MessageError(f"Market simulator: screened: a round of interval {delivered.interval} while "
                                   f"clearing {None if self.instance is None else self.instance.interval}")
            if isinstance(delivered, ClearingClose):
                if delivered.comm is None or delivered.screening is None:
                    raise MessageError(f"Market simulator: screened: the close of interval {delivered.interval} "
                                       "lacks the Comm or the Detector report")
                self._publish(delivered)
            else:
                self.clock_ms = delivered.clock_ms
                self._resume(delivered.batches)
        self.waiting.extend(received(inputs, "market", "instance_json", str, "Market"))
        self._start_waiting()
        return None

    def _start_waiting(self) -> None:
        """Start the next quarter hour if none is clearing and the batteries' state is that after the last one."""
        current = self.plan is None or self.applied == self.published
        if self.waiting and self.instance is None and current:
            self._start(self.waiting.pop(0))

    def _start(self, text: str) -> None:
        data = json.loads(text)
        if data.get("case") != self.scenario.case:
            raise ValueError(f"market of {self.scenario.case} received an instance of {data.get('case')}")
        instance = instance_from_dict(data, "instance from the Profiles simulator")
        if self.scenario.ratings is not None:  # this quarter hour's line ratings are its line limits
            instance = rated_instance(self.scenario, instance, self.ratings.pop(instance.interval))
        self.step_ = self.plan.controller.decide(instance, self.soc) if self.plan is not None else None
        if self.scenario.method != "admm":
            if self.plan is None:
                self._emit(clear_instance(self.scenario, instance))
            else:
                decision = solve_slot(instance, self.plan.arrays, self.step_)
                self._emit(interval_clearing(ClearingRun(instance, decision.clearing, None, 0.0)),
                           (decision.charge, decision.discharge))
            self.instance = None
            return
        self.instance, self.clock_ms, self.run = instance, 0.0, None
        deadline = self.scenario.network.timing().deadline_ms
        declared = declared_instance(instance, self.scenario.attack_specs())  # a false-load agent's lie
        self.pairs = private_pairs(self.scenario, instance)
        self.process = admm_process(declared, self.scenario.admm_settings(), stop=lambda: (
            f"deadline of {deadline:g} ms passed" if self.clock_ms > deadline else None),
            warm=warm_start_from(self.scenario, self.last), pairs=self.pairs, battery=self.step_)
        self._send(next(self.process), first=instance)

    def _resume(self, batches: tuple[MessageBatch, ...]) -> None:
        try:
            self._send(self.process.send(list(batches)))
        except StopIteration as done:
            self.run, self.process = done.value, None
            self.out["round"] = ClearingClose(self.instance.interval)

    def _send(self, step: Round, first: MarketInstance | None = None) -> None:
        self.out["round"] = ClearingRound(self.instance.interval, tuple(step.batches), step.local, first)

    def _publish(self, close: ClearingClose) -> None:
        """The clearing with what Comm and Detector reported."""
        cyber = cyber_setup(self.scenario, self.instance)
        reference = (solve_slot(self.instance, self.plan.arrays, self.step_).clearing if self.plan is not None
                     else None)
        clearing = interval_clearing(with_privacy(admm_clearing(self.instance, self.run, cyber, resilient_run(
            self.run, close.comm, close.screening), reference), self.scenario, self.pairs))
        battery = None
        if self.plan is not None and not clearing.fallback:
            x, step = self.run.states.x, self.step_
            battery = (np.clip(x["c"][step.agent], step.c_lo, step.c_hi),
                       np.clip(x["d"][step.agent], step.d_lo, step.d_hi))
        self._emit(clearing, battery)
        self.instance = self.run = None
        self._start_waiting()

    def _emit(self, clearing: IntervalClearing, battery: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        """Publish a clearing; with batteries also their powers (p.u.; idle under the grid-only fallback)."""
        self.last = clearing
        if self.plan is not None:
            idle = np.zeros(self.plan.arrays.n_units)
            charge, discharge = battery if battery is not None else (idle, idle)
            self.out["battery"] = BatteryPowers(clearing.interval, charge, discharge)
            self.published += 1
        d, inst = clearing.dispatch(), clearing.instance
        history = clearing.run.history
        if history is not None and clearing.run.screening is not None:
            history = history.merge(clearing.run.screening.iteration_counts(), on="iteration")
        # what the market believed, for the Grid's cross-layer check (a distributed clearing with a dispatch;
        # the fallback and the centralized one report nothing)
        reports = None if clearing.fallback or clearing.run.admm is None else market_reports(inst, clearing.run.admm)
        self.out["dispatch"] = DispatchOrder(clearing.interval, d, inst.vmin_pu, inst.vmax_pu, reports, meters_of(inst))
        keep(self.run_id, clearing.interval, KeptClearing(clearing.record(), history, inst.to_json()))

    def get_data(self, outputs):
        return {"market": self.out} if self.out else {}
