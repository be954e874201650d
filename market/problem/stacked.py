"""Many quarter hours of one feeder as a single clearing: the intervals side by side, one vector per variable.

A horizon of ``T`` intervals is the clearing of a feeder made of ``T`` disjoint copies of the real one, all
hanging from the same substation (``v_0 = 1``): copy ``t`` holds interval ``t``'s prosumers, trades, prices
and limits. Its DistFlow operators are block diagonal and its market arrays the intervals' arrays end to end,
so :func:`market.problem.clearing.network_constraints` and :func:`market.formulation.trading.welfare_cost`
build it unchanged, and its objective is the sum of the intervals' welfare costs.

Why: cvxpy compiles a problem in time proportional to the number of its constraint objects, not of their
rows. Composed from one :func:`~market.problem.clearing.build_clearing` per interval, a case33bw week is
about 14 000 constraint objects and cvxpy spent longer compiling it than Clarabel spent solving it (a day:
9.7 s compiling against 6 s solving); stacked, the week is the same 14 constraint objects as one interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from market.errors import InstanceError
from market.formulation.distflow import TreeOperators, constraint_limits, tree_operators
from market.formulation.trading import MarketArrays, market_arrays, welfare_cost
from market.instance import MarketInstance
from market.problem.clearing import clearing_variables, network_constraints


@dataclass(frozen=True, eq=False)
class StackedClearing:
    """The intervals' clearing as one problem; ``agents[t]`` and ``trades[t]`` slice interval ``t`` out of it."""

    problem: cp.Problem
    vars: dict[str, cp.Variable]
    ops: TreeOperators  # the feeder's, every interval's
    arrays: tuple[MarketArrays, ...]  # per interval
    agents: tuple[slice, ...]
    trades: tuple[slice, ...]
    market_cost: cp.Expression  # the sum of the intervals' welfare costs

    def values(self, t: int) -> dict[str, np.ndarray]:
        """Interval ``t``'s solution, per variable (after a solve)."""
        return {name: np.asarray(var.value, dtype=float)[self.trades[t] if name == "t" else self.agents[t]]
                for name, var in self.vars.items()}


def stack_operators(ops: TreeOperators, copies: int) -> TreeOperators:
    """``copies`` disjoint copies of a feeder's operators under one substation (bus 0)."""
    n = len(ops.r)
    offset = np.repeat(np.arange(copies) * n, n)
    parent = np.tile(ops.parent, copies)
    return TreeOperators(sp.block_diag([ops.child_sum] * copies, format="csr"), np.tile(ops.root_sum, copies),
                         np.where(parent > 0, parent + offset, 0), np.tile(ops.r, copies), np.tile(ops.x, copies))


def stack_arrays(arrays: Sequence[MarketArrays]) -> MarketArrays:
    """The intervals' market arrays end to end, trades pointing at their own interval's agents."""
    if len({a.trade_quad for a in arrays}) != 1:
        raise InstanceError("stacked clearing: every interval must share the trading options")
    n = len(arrays[0].sign)
    out = {}
    for f in fields(MarketArrays):
        parts = [getattr(a, f.name) for a in arrays]
        if f.name == "trade_quad":
            out[f.name] = parts[0]
        elif f.name in ("buy_matrix", "sell_matrix"):
            out[f.name] = sp.block_diag(parts, format="csr")
        elif f.name in ("trade_buyer", "trade_seller"):
            out[f.name] = np.concatenate([p + t * n for t, p in enumerate(parts)]).astype(int)
        else:
            out[f.name] = np.concatenate(parts)
    return MarketArrays(**out)


def build_stacked(instances: Sequence[MarketInstance],
                  storage_output: cp.Expression | None = None) -> StackedClearing:
    """The clearing of ``instances`` (quarter hours of one feeder) as one problem. ``storage_output``: the
    agents' battery output, interval after interval (one entry per agent and interval, p.u.)."""
    feeder = instances[0].feeder
    if any(inst.feeder.name != feeder.name for inst in instances):
        raise InstanceError("stacked clearing: every interval must be of the same feeder")
    ops = tree_operators(feeder)
    arrays = tuple(market_arrays(inst) for inst in instances)
    n, copies = len(ops.r), len(instances)
    sizes = [len(a.trade_lin) for a in arrays]
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    arr = stack_arrays(arrays)
    x = clearing_variables(n * copies, int(bounds[-1]))
    stacked_ops = stack_operators(ops, copies)
    lines = slice(1, None)
    vmin2 = np.concatenate([inst.vmin_pu[lines] ** 2 for inst in instances])
    vmax2 = np.concatenate([inst.vmax_pu[lines] ** 2 for inst in instances])
    lmax = np.concatenate([inst.feeder.imax_pu[lines] ** 2 for inst in instances])
    cons = network_constraints(stacked_ops, arr, x, storage_output) + constraint_limits(x["v"], x["l"], vmin2,
                                                                                       vmax2, lmax)
    market_cost = welfare_cost(arr, x["p"], x["t"], x["t0"], x["l"], storage_output)
    return StackedClearing(cp.Problem(cp.Minimize(market_cost), cons), x, ops, arrays,
                           tuple(slice(t * n, (t + 1) * n) for t in range(copies)),
                           tuple(slice(int(bounds[t]), int(bounds[t + 1])) for t in range(copies)), market_cost)
