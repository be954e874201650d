"""In-process driver of the distributed ADMM: runs the agents' steps and carries their messages.

The driver owns the iteration loop, the stopping test on the primal and dual residuals (paper eq. 19), the
per-trade residual balancing of the reciprocity pairs (:class:`~market.admm.pairs.PairBalancer`) and the
optional residual balancing of ``rho`` (Boyd et al. 2011, Sec. 3.4.1), which it broadcasts to the agents.
The agents' steps come from a *splitting*: ``sweep`` (one copy of every variable, the y-update projects the
whole feeder by a leaf-to-root and a root-to-leaf sweep; :mod:`market.admm.sweep`) or ``local`` (the paper's
one-hop pattern, per-agent groups with copies of the neighbours' values; :mod:`market.admm.consensus`).
The agents' exchanges are rounds of a generator (:func:`admm_process`), so the same steps run in-process --
:func:`drive` carries each round through a pluggable :class:`~market.messages.Transport` -- and in the
co-simulation, where rounds cross mosaik simulators in simulated time. Every agent's own values after its
local update go along with a round, for the agents' own detectors; they never travel on the network.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from market.admm.consensus import LocalSplitting
from market.admm.layout import Weights
from market.admm.pairs import PairBalancer, PairExchange
from market.admm.splittings import PROJECTIONS, Splitting
from market.admm.states import AgentStates, local_report, trades
from market.admm.stopping import KIND as STOP_KIND
from market.admm.stopping import STOPPING_RULES, DistributedStop
from market.admm.sweep import SweepSplitting
from market.admm.warm_start import carry_over
from market.formulation.distflow import tree_operators
from market.formulation.trading import welfare_cost
from market.instance import MarketInstance
from market.messages import IdealTransport, MessageBatch, Transport
from market.problem.clearing import assemble_result
from market.problem.storage import BatteryStep
from market.result import ClearingResult, Status

#: Message kinds that carry an agent's line flows to its parent and its voltage to its children (what a
#: correlated false data injection falsifies together): the local splitting's; the sweep's messages are a
#: subtree's preferences and prices.
FLOW_KINDS, VOLTAGE_KINDS = (LocalSplitting.flow_kind,), (LocalSplitting.voltage_kind,)


@dataclass(frozen=True)
class AdmmSettings:
    """Splitting, penalty, tolerances and iteration limit.

    Residuals (paper eq. 19) are 2-norms over all copies in the metric of the family weights: primal
    ``||W^1/2 (x - y)||``, dual ``rho ||W^1/2 (y_k - y_k-1)||``; each side of a trade counts with the trade
    weight, whatever its size factor or the balancing made of its penalty (so balancing cannot loosen it). Weights are
    stated for a 1 MVA base and converted to the feeder's (:meth:`Weights.on_base`); residuals are in p.u.
    of the feeder's base, which is chosen by the size of its load, so the tolerances are relative to it.
    """

    projection: str = "sweep"
    rho: float = 1.5
    tol_primal: float | None = None  # default: ``DEFAULT_TOLERANCES`` of the splitting
    tol_dual: float | None = None
    max_iter: int = 10000
    pair_balancing: bool | None = None  # default: ``DEFAULT_PAIR_BALANCING`` of the splitting
    residual_balancing: bool = False
    balance_ratio: float = 10.0
    balance_factor: float = 2.0
    relaxation: float = 1.8
    weights: Weights | None = None  # default: ``DEFAULT_WEIGHTS`` of the splitting
    stopping: str = "central"  # or ``distributed``: the agents' own test on flooded shares (:mod:`.stopping`)
    stop_trim: int = 0  # shares the distributed test disregards (missing, invalid, then the largest)

    def __post_init__(self) -> None:
        if self.projection not in PROJECTIONS:
            raise ValueError(f"ADMM settings: projection must be one of {PROJECTIONS}, got {self.projection!r}")
        tolerances = [t for t in (self.tol_primal, self.tol_dual) if t is not None]
        if not (self.rho > 0 and all(t > 0 for t in tolerances) and self.max_iter >= 1):
            raise ValueError("ADMM settings: rho and tolerances must be positive and max_iter >= 1")
        if not 0 < self.relaxation < 2:
            raise ValueError("ADMM settings: relaxation must lie in (0, 2)")
        if self.stopping not in STOPPING_RULES:
            raise ValueError(f"ADMM settings: stopping must be one of {STOPPING_RULES}, got {self.stopping!r}")
        if self.stop_trim < 0 or (self.stop_trim and self.stopping != "distributed"):
            raise ValueError("ADMM settings: stop_trim must be >= 0 and applies to the distributed stopping rule")

    def tolerances(self) -> tuple[float, float]:
        """Primal and dual tolerance: as set, or the splitting's default."""
        primal, dual = DEFAULT_TOLERANCES[self.projection]
        return (primal if self.tol_primal is None else self.tol_primal,
                dual if self.tol_dual is None else self.tol_dual)


#: Penalty weights per splitting (a grid over case15da, case33bw and case85, seeds 0-2, for each). The current
#: weight matters most; the trade weight is lower in the sweep, whose pairs balance their own weights.
DEFAULT_WEIGHTS = {"sweep": Weights(voltage=1.0, current=1e-4, market=1.0, trade=1.0),
                   "local": Weights(voltage=1.0, current=1e-4, market=1.0, trade=3.0)}
#: Residual tolerances per splitting. The sweep's are tighter: it gets there in few iterations, and on feeders
#: whose objective is a small difference of large terms (case10ba, case69 at night) its relative gap at
#: (3e-6, 1e-5) reached 1e-4 to 3e-4.
DEFAULT_TOLERANCES = {"sweep": (1e-6, 3e-6), "local": (3e-6, 1e-5)}
#: Per-trade residual balancing: in the sweep splitting it cuts the iterations several fold (the split of a
#: purchase among sellers settles); in the local one the feeder's one-line-per-iteration diffusion dominates
#: and it gains nothing, while the rescaled duals make trade messages jump, which detectors flag.
DEFAULT_PAIR_BALANCING = {"sweep": True, "local": False}


def weights_of(settings: AdmmSettings) -> Weights:
    return settings.weights or DEFAULT_WEIGHTS[settings.projection]


def build_splitting(instance: MarketInstance, settings: AdmmSettings, pairs: PairExchange | None = None,
                    battery: BatteryStep | None = None, direct: bool = False) -> Splitting:
    """The agents' step functions and static data for ``settings.projection``; ``pairs``: how the two sides of
    a trade agree (default: in the clear, :class:`~market.admm.pairs.PlainPairs`); ``battery``: the units
    behind the owners' meters in this interval (:mod:`market.admm.battery`); ``direct``: the sweep's hops as
    one sparse projection, for runs whose messages nobody can touch (:class:`SweepSplitting`)."""
    weights = weights_of(settings).on_base(instance.feeder.base_mva)
    if settings.projection == "sweep":
        return SweepSplitting(instance, weights, pairs, battery, direct)
    return LocalSplitting(instance, weights, pairs, battery)


@dataclass
class AdmmRun:
    """Everything a distributed clearing produced, including its per-iteration history."""

    result: ClearingResult
    history: pd.DataFrame
    states: AgentStates
    split: Splitting | None = None  # the splitting it ran on (what a warm start of the next clearing needs)


@dataclass(frozen=True)
class Round:
    """What the agents send at one point of an iteration, and their own values for their own detectors.

    The ADMM process yields a round and is sent back what was delivered of it; the agents then store it in
    their inboxes. In-process (:func:`drive`) the transport delivers at once; in the co-simulation the round
    crosses the Comm and Detector simulators in simulated time.
    """

    batches: list[MessageBatch]
    local: MessageBatch | None = None


Process = Generator[Round, list[MessageBatch], AdmmRun]


def solve_admm(instance: MarketInstance, settings: AdmmSettings | None = None,
               transport: Transport | None = None,
               on_iteration: Callable[[int, AgentStates], None] | None = None,
               stop: Callable[[], str | None] | None = None, warm: AdmmRun | None = None,
               pairs: PairExchange | None = None, battery: BatteryStep | None = None) -> AdmmRun:
    """Clear the market with the fully distributed ADMM, its messages carried by ``transport``.

    Returns status ``OPTIMAL`` when both residuals meet their tolerances, ``NOT_CONVERGED`` (with the last
    iterate, for inspection only) when ``max_iter`` is reached first or ``stop`` (asked after every
    iteration) returns a reason, e.g. a missed deadline. ``warm``, ``pairs``, ``battery``: see
    :func:`admm_process`. Without a ``transport`` every message arrives at once as sent, and the sweep's hops
    are computed as one sparse projection (the same numbers, :mod:`market.admm.feeder_projection`).
    """
    return drive(admm_process(instance, settings, on_iteration, stop, warm, pairs, battery,
                              direct=transport is None), transport or IdealTransport())


#: BLAS threads while the agents' steps run in-process. The steps are many small array operations; a
#: multi-threaded BLAS spends more waking its threads than it gains (``1-MVLV-rural-all-0-sw``, 5 476 buses:
#: 54 ms CPU per iteration with OpenBLAS's two threads, 27 ms with one), and its spinning threads take the
#: cores from everything else running.
BLAS_THREADS = 1


def drive(process: Process, net: Transport) -> AdmmRun:
    """Run an ADMM process in-process: every round through ``net`` at once. A transport with an
    ``observe_local`` method (the screening one) is also handed the agents' own values of every iteration."""
    observe = getattr(net, "observe_local", None)
    with threadpool_limits(limits=BLAS_THREADS, user_api="blas"):
        try:
            step = next(process)
            while True:
                if step.local is not None and observe is not None:
                    observe(step.local)
                step = process.send([net.deliver(batch) for batch in step.batches])
        except StopIteration as done:
            return done.value


def admm_process(instance: MarketInstance, settings: AdmmSettings | None = None,
                 on_iteration: Callable[[int, AgentStates], None] | None = None,
                 stop: Callable[[], str | None] | None = None, warm: AdmmRun | None = None,
                 pairs: PairExchange | None = None, battery: BatteryStep | None = None,
                 direct: bool = False) -> Process:
    """The distributed ADMM as a generator of message rounds (see :class:`Round`); returns the run. With
    ``warm`` (a clearing of the same feeder and splitting; the co-simulation passes only converged ones) the
    agents start from where it ended (:mod:`market.admm.warm_start`); ``pairs`` replaces the trade pairs'
    exchange in the clear and ``battery`` puts the interval's units in their owners' local steps
    (:func:`build_splitting`), as does ``direct`` (only where the rounds are delivered whole and unchanged)."""
    cfg = settings or AdmmSettings()
    start = time.perf_counter()
    split = build_splitting(instance, cfg, pairs, battery, direct)
    if warm is not None and warm.split is None:
        raise ValueError("warm start: the previous run does not say which splitting it ran on")
    s = (carry_over(split, cfg.rho, warm.split, warm.states, warm.result.info["rho_final"]) if warm is not None
         else split.initial_states(cfg.rho))
    inbox = split.new_inbox()
    kw = instance.feeder.base_mva * 1e3
    rho = cfg.rho
    balancing = DEFAULT_PAIR_BALANCING[cfg.projection] if cfg.pair_balancing is None else cfg.pair_balancing
    balancer = PairBalancer(split.m) if balancing else None
    tol_primal, tol_dual = cfg.tolerances()
    stopper = (DistributedStop(instance, split.copy_holder, split.copy_weight, (tol_primal, tol_dual), cfg.stop_trim)
               if cfg.stopping == "distributed" else None)
    rows = []

    def exchange(batches: list[MessageBatch], local: MessageBatch | None = None) -> Generator:
        if not batches and local is None:
            return
        for batch in (yield Round(batches, local)):
            if batch.kind == STOP_KIND:
                stopper.receive(batch)
            else:
                inbox.store(batch)

    yield from exchange(split.opening_messages(s))
    converged = False
    reason = None
    k = 0
    for k in range(1, cfg.max_iter + 1):
        split.local_update(s, inbox, rho)
        yield from exchange(split.x_phase_messages(s, k, cfg.relaxation), local_report(s.x, k))
        residual, change = yield from split.group_update(s, inbox, cfg.relaxation, k, exchange)
        primal = float(np.sqrt(split.copy_weight @ residual**2))
        dual = rho * float(np.sqrt(split.copy_weight @ change**2))
        rows.append(_metrics(k, split, s, primal, dual, rho, kw))
        if on_iteration is not None:
            on_iteration(k, s)
        if stopper is None and primal <= tol_primal and dual <= tol_dual:
            converged = True
            break
        shares = [stopper.messages(k, stopper.shares(residual, change, rho))] if stopper is not None else []
        reason = (stop() if stop is not None else None) or split.pairs.failure  # e.g. a private step lost
        if reason:
            break
        if balancer is not None:
            _balance_pairs(balancer, split, s, k, rho, residual, change)
        if cfg.residual_balancing:
            factor = (cfg.balance_factor if primal > cfg.balance_ratio * dual
                      else 1 / cfg.balance_factor if dual > cfg.balance_ratio * primal else 1.0)
            if factor != 1.0:
                rho *= factor
                s.u = s.u / factor  # scaled duals u = lambda / rho
        if k < cfg.max_iter:
            yield from exchange(split.y_phase_messages(s, k) + shares)
            if stopper is not None and stopper.all_stop(k):
                converged = True
                break
    history = pd.DataFrame(rows)
    status = Status.OPTIMAL if converged else Status.NOT_CONVERGED
    last = rows[-1]
    result = assemble_result(
        "admm", status, instance, tree_operators(instance.feeder), split.arrays, split.solution(s),
        time.perf_counter() - start, iterations=k, converged=converged, primal_residual=last["primal_residual"],
        dual_residual=last["dual_residual"], rho_final=rho, projection=split.name, stopping=cfg.stopping,
        **(_stop_info(stopper) if stopper is not None else {}))
    if not converged:
        if reason:
            message = f"ADMM stopped after {k} iterations: {reason}"
        else:
            message = f"ADMM did not converge within {cfg.max_iter} iterations"
        result = replace(result, message=message)
    return AdmmRun(result, history, s, split)


def _stop_info(stopper: DistributedStop) -> dict:
    """What the distributed test saw last: how late it decides, the snapshot's iteration and sums."""
    last = stopper.last
    return {"stop_lag": stopper.lag, "stop_snapshot": last.iteration if last else None,
            "stop_primal_share": last.primal if last else None, "stop_dual_share": last.dual if last else None,
            "stop_disregarded": last.disregarded if last else None}


def _balance_pairs(balancer: PairBalancer, split: Splitting, s: AgentStates, k: int, rho: float,
                   residual: np.ndarray, change: np.ndarray) -> None:
    step = balancer.update(k, rho, residual[split.pair_b], residual[split.pair_s], change[split.pair_b])
    if step is not None:
        split.pair_weight = (split.pair_weight[0] * step, split.pair_weight[1] * step)
        s.u[split.pair_b] /= step
        s.u[split.pair_s] /= step


def _metrics(k: int, split: Splitting, s: AgentStates, primal: float, dual: float, rho: float,
             kw: float) -> dict:
    x = s.x
    t = trades(x)
    return {
        "iteration": k,
        "primal_residual": primal,
        "dual_residual": dual,
        "rho": rho,
        "objective": welfare_cost(split.arrays, x["p"], t, x["t0"], x["l"], x.get("s")),
        "traded_kw": float(t.sum() * kw),
        "p0_kw": float(x["P"][split.root].sum() * kw),
    }
