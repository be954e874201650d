"""In-process driver of the distributed ADMM: runs the agents' steps and carries their messages.

The driver owns the iteration loop, the stopping test on the primal and dual residuals (paper eq. 19) and the
optional residual balancing of ``rho`` (Boyd et al. 2011, Sec. 3.4.1), which it broadcasts to the agents.
Messages go through a pluggable :class:`~market.messages.Transport`; the ideal one delivers everything. A
transport with an ``observe_local`` method (the screening one) is also handed every agent's own values after
its local update, for the agents' own detectors; they never travel on the network.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from market.admm.consensus import (
    AgentStates,
    group_update,
    initial_states,
    local_report,
    local_update,
    new_inbox,
    rescale_duals,
    x_phase_messages,
    y_phase_messages,
)
from market.admm.layout import AdmmLayout, Weights, build_layout
from market.formulation.distflow import tree_operators
from market.formulation.trading import welfare_cost
from market.instance import MarketInstance
from market.messages import IdealTransport, Inbox, MessageBatch, Transport
from market.problem.clearing import assemble_result
from market.result import ClearingResult, Status


@dataclass(frozen=True)
class AdmmSettings:
    """Penalty, tolerances and iteration limit.

    Residuals (paper eq. 19) are 2-norms over all copies in the metric of the penalty weights:
    primal ``||W^1/2 (x - y)||``, dual ``rho ||W^1/2 (y_k - y_k-1)||``.
    """

    rho: float = 1.5
    tol_primal: float = 3e-6
    tol_dual: float = 1e-5
    max_iter: int = 10000
    residual_balancing: bool = False
    balance_ratio: float = 10.0
    balance_factor: float = 2.0
    relaxation: float = 1.8
    weights: Weights = Weights(voltage=1.0, current=1e-4, market=1.0, trade=3.0)

    def __post_init__(self) -> None:
        if not (self.rho > 0 and self.tol_primal > 0 and self.tol_dual > 0 and self.max_iter >= 1):
            raise ValueError("ADMM settings: rho and tolerances must be positive and max_iter >= 1")
        if not 0 < self.relaxation < 2:
            raise ValueError("ADMM settings: relaxation must lie in (0, 2)")


@dataclass
class AdmmRun:
    """Everything a distributed clearing produced, including its per-iteration history."""

    result: ClearingResult
    history: pd.DataFrame
    states: AgentStates


def solve_admm(instance: MarketInstance, settings: AdmmSettings | None = None,
               transport: Transport | None = None,
               on_iteration: Callable[[int, AgentStates], None] | None = None,
               stop: Callable[[], str | None] | None = None) -> AdmmRun:
    """Clear the market with the fully distributed ADMM.

    Returns status ``OPTIMAL`` when both residuals meet their tolerances, ``NOT_CONVERGED`` (with the last
    iterate, for inspection only) when ``max_iter`` is reached first or ``stop`` (asked after every
    iteration) returns a reason, e.g. a missed deadline.
    """
    cfg = settings or AdmmSettings()
    net = transport or IdealTransport()
    start = time.perf_counter()
    lay = build_layout(instance, cfg.weights)
    s = initial_states(lay, cfg.rho)
    inbox = new_inbox(lay)
    kw = instance.feeder.base_mva * 1e3
    rho = cfg.rho
    rows = []
    _send(net, inbox, y_phase_messages(lay, s, 0))
    observe = getattr(net, "observe_local", None)  # a transport with detectors wants the agents' own values
    converged = False
    reason = None
    k = 0
    for k in range(1, cfg.max_iter + 1):
        local_update(lay, s, inbox, rho)
        if observe is not None:
            observe(local_report(lay, s, k))
        _send(net, inbox, x_phase_messages(lay, s, k, cfg.relaxation))
        residual, change = group_update(lay, s, inbox, cfg.relaxation)
        primal = float(np.sqrt(lay.copy_weight @ residual**2))
        dual = rho * float(np.sqrt(lay.copy_weight @ change**2))
        rows.append(_metrics(k, lay, s, primal, dual, rho, kw))
        if on_iteration is not None:
            on_iteration(k, s)
        if primal <= cfg.tol_primal and dual <= cfg.tol_dual:
            converged = True
            break
        reason = stop() if stop is not None else None
        if reason:
            break
        if cfg.residual_balancing:
            factor = (cfg.balance_factor if primal > cfg.balance_ratio * dual
                      else 1 / cfg.balance_factor if dual > cfg.balance_ratio * primal else 1.0)
            if factor != 1.0:
                rho *= factor
                rescale_duals(s, 1.0 / factor)
        if k < cfg.max_iter:
            _send(net, inbox, y_phase_messages(lay, s, k))
    history = pd.DataFrame(rows)
    status = Status.OPTIMAL if converged else Status.NOT_CONVERGED
    last = rows[-1]
    result = assemble_result(
        "admm", status, instance, tree_operators(instance.feeder), lay.arrays, _solution(s),
        time.perf_counter() - start, iterations=k, converged=converged, primal_residual=last["primal_residual"],
        dual_residual=last["dual_residual"], rho_final=rho)
    if not converged:
        if reason:
            message = f"ADMM stopped after {k} iterations: {reason}"
        else:
            message = f"ADMM did not converge within {cfg.max_iter} iterations"
        result = replace(result, message=message)
    return AdmmRun(result, history, s)


def _send(net: Transport, inbox: Inbox, batches: list[MessageBatch]) -> None:
    for batch in batches:
        inbox.store(net.deliver(batch))


def _trades(x: dict[str, np.ndarray]) -> np.ndarray:
    """A trade is the mean of its buyer's and its seller's side."""
    return 0.5 * (x["tb"] + x["ts"])


def _solution(s: AgentStates) -> dict[str, np.ndarray]:
    """The agents' own variables as the solution."""
    x = s.x
    return {"v": x["v"], "P": x["P"], "Q": x["Q"], "l": x["l"], "p": x["p"], "q": x["q"], "t": _trades(x),
            "t0": x["t0"]}


def _metrics(k: int, lay: AdmmLayout, s: AgentStates, primal: float, dual: float, rho: float, kw: float) -> dict:
    x = s.x
    t = _trades(x)
    return {
        "iteration": k,
        "primal_residual": primal,
        "dual_residual": dual,
        "rho": rho,
        "objective": welfare_cost(lay.arrays, x["p"], t, x["t0"], x["l"]),
        "traded_kw": float(t.sum() * kw),
        "p0_kw": float(x["P"][~lay.has_parent].sum() * kw),
    }
