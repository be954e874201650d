"""Centralized P2P clearing: the SOCP of model.md solved with cvxpy + Clarabel, the reference optimum.

``build_clearing`` composes the DistFlow and trading pieces; ``solve_clearing`` solves, reads the solution
back only when the solver found one, and on infeasibility re-solves an elastic copy to say which constraint
family (voltage floor, voltage ceiling, thermal limit) cannot be met.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import cvxpy as cp
import numpy as np

from market.formulation.distflow import (
    TreeOperators,
    constraint_limits,
    constraint_power_balance,
    constraint_soc,
    constraint_voltage_drop,
    relaxation_gap,
    tree_operators,
)
from market.formulation.trading import MarketArrays, constraint_energy_balance, market_arrays, welfare_cost
from market.instance import MarketInstance
from market.result import ClearingResult, Status

#: Clarabel aims at 1e-9; near that target it often stalls with "AlmostSolved" at a better point than a
#: solve to 1e-7 reaches. Such a point is accepted when a second solve to ``CERTIFY_OPTIONS`` is optimal
#: (relative gap 1e-6) with the same objective and the point violates no constraint by more than ``FEASIBILITY_TOL``.
SOLVER_OPTIONS = {"tol_gap_abs": 1e-9, "tol_gap_rel": 1e-9, "tol_feas": 1e-9, "tol_ktratio": 1e-8,
                  "max_iter": 500}
CERTIFY_OPTIONS = {"tol_gap_abs": 1e-6, "tol_gap_rel": 1e-6, "tol_feas": 1e-8, "tol_ktratio": 1e-6,
                   "max_iter": 500}
FEASIBILITY_TOL = 1e-7
_STATUS = {
    cp.OPTIMAL: Status.OPTIMAL,
    cp.OPTIMAL_INACCURATE: Status.INACCURATE,
    cp.INFEASIBLE: Status.INFEASIBLE,
    cp.INFEASIBLE_INACCURATE: Status.INFEASIBLE,
}


@dataclass(frozen=True, eq=False)
class ClearingModel:
    problem: cp.Problem
    vars: dict[str, cp.Variable]
    ops: TreeOperators
    arrays: MarketArrays
    storage_output: cp.Expression | None = None  # the agents' battery output s (p.u.), if any


def clearing_variables(n: int, m: int) -> dict[str, cp.Variable]:
    """The clearing's variables for ``n`` agents (lines) and ``m`` trades."""
    return {name: cp.Variable(size, name=name) for name, size in
            (("v", n), ("P", n), ("Q", n), ("l", n), ("p", n), ("q", n), ("t", m), ("t0", n))}


def build_clearing(instance: MarketInstance, *, elastic: bool = False,
                   storage_output: cp.Expression | None = None) -> ClearingModel:
    """The SOCP (1a)-(1o): welfare objective, trading balance, DistFlow with losses, SOC relaxation.

    ``storage_output``, an expression of the agents' battery output (discharge minus charge, p.u., one entry
    per agent), puts batteries behind the meters (see :mod:`market.formulation.trading`); the caller owns its
    variables and their limits (:mod:`market.problem.storage`).

    With ``elastic`` the voltage and thermal limits get non-negative slacks (variables ``s_vmin``,
    ``s_vmax``, ``s_imax``) and the objective becomes their sum: the feasibility problem that locates the
    cause of an infeasible clearing.
    """
    ops = tree_operators(instance.feeder)
    arr = market_arrays(instance)
    n, m = len(instance.agents), len(instance.trades)
    x = clearing_variables(n, m)
    lines = slice(1, None)
    vmin2, vmax2 = instance.vmin_pu[lines] ** 2, instance.vmax_pu[lines] ** 2
    lmax = instance.feeder.imax_pu[lines] ** 2
    cons = network_constraints(ops, arr, x, storage_output)
    if elastic:
        for name in ("s_vmin", "s_vmax", "s_imax"):
            x[name] = cp.Variable(n, nonneg=True, name=name)
        vmin2, vmax2 = vmin2 - x["s_vmin"], vmax2 + x["s_vmax"]
        lmax = np.where(np.isfinite(lmax), lmax, 0.0) + x["s_imax"]
        objective = cp.Minimize(cp.sum(x["s_vmin"] + x["s_vmax"] + x["s_imax"]))
        cons += [x["v"] >= vmin2, x["v"] <= vmax2, x["l"] >= 0]
        rated = np.flatnonzero(np.isfinite(instance.feeder.imax_pu[lines]))
        if rated.size:
            cons.append(x["l"][rated] <= lmax[rated])
    else:
        cons += constraint_limits(x["v"], x["l"], vmin2, vmax2, lmax)
        objective = cp.Minimize(welfare_cost(arr, x["p"], x["t"], x["t0"], x["l"], storage_output))
    return ClearingModel(cp.Problem(objective, cons), x, ops, arr, storage_output)


def network_constraints(ops: TreeOperators, arr: MarketArrays, x: dict[str, cp.Variable],
                        storage_output: cp.Expression | None = None) -> list[cp.Constraint]:
    """The clearing's equalities and cone, without the voltage and thermal limits: trading balance (1n)-(1o),
    power balance, voltage drop and the SOC relaxation, on the variables of :func:`build_clearing`."""
    return (constraint_energy_balance(arr, x["p"], x["q"], x["t"], x["t0"], storage_output)
            + constraint_power_balance(ops, x["p"], x["q"], x["P"], x["Q"], x["l"])
            + constraint_voltage_drop(ops, x["v"], x["P"], x["Q"], x["l"])
            + constraint_soc(ops, x["v"], x["P"], x["Q"], x["l"]))


def solve_clearing(instance: MarketInstance) -> ClearingResult:
    """Solve the centralized clearing; an infeasible instance says which constraint family failed."""
    start = time.perf_counter()
    model = build_clearing(instance)
    status = solve_model(model.problem)
    if not status.has_solution:
        message = (diagnose_infeasibility(instance) if status is Status.INFEASIBLE
                   else f"Clarabel failed (status {model.problem.status})")
        return ClearingResult("centralized", status, wall_s=time.perf_counter() - start, message=message)
    values = {k: np.asarray(var.value, dtype=float) for k, var in model.vars.items()}
    return assemble_result("centralized", status, instance, model.ops, model.arrays, values,
                           time.perf_counter() - start, solver_iterations=model.problem.solver_stats.num_iters)


def solve_model(problem: cp.Problem) -> Status:
    """Solve a built problem in place with the clearing's solver settings, an AlmostSolved point certified as
    in :data:`SOLVER_OPTIONS`; multi-period and online problems built from clearing pieces solve through here."""
    status = _solve(problem, SOLVER_OPTIONS)
    if status is Status.INACCURATE:
        status = _certify(problem)
    elif status is Status.ERROR:
        status = _solve(problem, CERTIFY_OPTIONS)
    return status


def _solve(problem: cp.Problem, options: dict) -> Status:
    """Solve in place; a solver failure is a status, not an exception."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # cvxpy warns on inaccurate solutions; we report them
            problem.solve(solver=cp.CLARABEL, **options)
    except cp.SolverError:
        return Status.ERROR
    return _STATUS.get(problem.status, Status.ERROR)


def _certify(problem: cp.Problem) -> Status:
    """Accept an AlmostSolved point if a looser solve certifies its objective (see ``SOLVER_OPTIONS``)."""
    variables = problem.variables()
    point = [v.value.copy() for v in variables]
    objective = problem.value
    violation = max(float(np.max(c.violation(), initial=0.0)) for c in problem.constraints)
    certified = _solve(problem, CERTIFY_OPTIONS)
    agrees = abs(objective - problem.value) <= 1e-6 * max(1.0, abs(problem.value))
    if certified is Status.OPTIMAL and agrees and violation <= FEASIBILITY_TOL:
        for v, value in zip(variables, point, strict=True):
            v.value = value
        return Status.OPTIMAL
    return certified


def assemble_result(method: str, status: Status, instance: MarketInstance, ops: TreeOperators,
                    arr: MarketArrays, x: dict[str, np.ndarray], wall_s: float, **info) -> ClearingResult:
    """Bus-indexed arrays, P0/Q0, losses and the relaxation gap from per-agent solution vectors."""
    v_all = np.r_[1.0, x["v"]]
    p0 = float(ops.root_sum @ x["P"])
    q0 = float(ops.root_sum @ x["Q"])
    gap = relaxation_gap(v_all[ops.parent], x["P"], x["Q"], x["l"])
    return ClearingResult(
        method=method,
        status=status,
        objective=welfare_cost(arr, x["p"], x["t"], x["t0"], x["l"], x.get("s")),
        p=np.r_[p0, x["p"]],
        q=np.r_[q0, x["q"]],
        v=v_all,
        P=np.r_[np.nan, x["P"]],
        Q=np.r_[np.nan, x["Q"]],
        l=np.r_[np.nan, x["l"]],
        t=x["t"],
        t0=x["t0"],
        losses=float(ops.r @ x["l"]),
        max_relaxation_gap=float(gap.max(initial=0.0)),
        wall_s=wall_s,
        info=info,
    )


def diagnose_infeasibility(instance: MarketInstance) -> str:
    """Re-solve with slacks on each limit family and name the families, and buses, that need them."""
    model = build_clearing(instance, elastic=True)
    try:
        model.problem.solve(solver=cp.CLARABEL)
    except cp.SolverError:
        return "infeasible; the elastic re-solve that locates the cause failed as well"
    if model.problem.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
        return "infeasible even without voltage and thermal limits (check trading bounds and data)"
    labels = instance.feeder.labels
    parts = []
    for name, key in (("voltage lower limit", "s_vmin"), ("voltage upper limit", "s_vmax"),
                      ("line thermal limit", "s_imax")):
        short = np.flatnonzero(model.vars[key].value > 1e-6)
        if short.size:
            parts.append(f"{name} at buses {[labels[j + 1] for j in short[:8]]}")
    return "infeasible: cannot meet the " + "; ".join(parts) if parts else "infeasible (numerically marginal)"
