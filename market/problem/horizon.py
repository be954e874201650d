"""The time-coupled clearing with batteries: the perfect-foresight optimum over a horizon of quarter hours.

Every interval is the clearing of :func:`market.problem.clearing.build_clearing` (its own prosumers, trades,
DistFlow network; all intervals built as one, :mod:`market.problem.stacked`) with the batteries' output behind
the meters; the intervals are coupled only by each unit's
state of charge ``E(t+1) = E(t) + kappa (eta_c c(t) - d(t) / eta_d)`` within its window. The objective is the
sum of the intervals' welfare costs minus ``terminal_value x (E(T) - E(0))`` (see
:class:`market.result.StorageRun`); the terminal state is free, so any online controller's trajectory is
feasible here and its cost can never be lower (a test checks it on every run).

The same builder serves the offline optimum (the whole run, actual profiles) and the MPC controller (a few
hours of forecast instances); with no units it is the sum of independent clearings.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import cvxpy as cp
import numpy as np

from market.errors import InstanceError
from market.instance import MarketInstance
from market.problem.clearing import assemble_result, solve_model
from market.problem.stacked import StackedClearing, build_stacked
from market.problem.storage import (
    StorageArrays,
    constraint_power_limits,
    constraint_soc_window,
    storage_arrays,
    storage_output,
)
from market.result import Status, StorageRun


@dataclass(frozen=True, eq=False)
class HorizonModel:
    problem: cp.Problem
    clearing: StackedClearing  # the intervals' clearings side by side
    storage: StorageArrays
    charge: cp.Variable  # (units, intervals), p.u.
    discharge: cp.Variable
    energy: cp.Variable  # (units, intervals + 1), kWh
    terminal: cp.Expression


def build_horizon(instances: Sequence[MarketInstance], soc0_kwh: np.ndarray,
                  terminal_value: float | np.ndarray) -> HorizonModel:
    """The multi-period SOCP over ``instances`` (consecutive quarter hours, the same batteries) from ``soc0_kwh``;
    ``terminal_value`` (cent/kWh, per unit or one for all) prices the energy left at the end."""
    if not instances:
        raise InstanceError("horizon: expected at least one interval")
    units = instances[0].storage
    if any(inst.storage != units for inst in instances):
        raise InstanceError("horizon: every interval must carry the same storage units")
    arr = storage_arrays(instances[0])
    n_units, n_t = arr.n_units, len(instances)
    charge = cp.Variable((n_units, n_t), name="charge")
    discharge = cp.Variable((n_units, n_t), name="discharge")
    energy = cp.Variable((n_units, n_t + 1), name="energy")
    # the agents' battery output, interval after interval (column-major: one interval's agents at a time)
    output = cp.vec(storage_output(arr, charge, discharge), order="F") if n_units else None
    clearing = build_stacked(instances, output)
    cons = list(clearing.problem.constraints)
    terminal = cp.Constant(0.0)
    if n_units:
        cmax = np.broadcast_to(arr.charge_max[:, None], (n_units, n_t))
        dmax = np.broadcast_to(arr.discharge_max[:, None], (n_units, n_t))
        step = arr.kappa * (cp.multiply(arr.eta_c[:, None] * np.ones((1, n_t)), charge)
                            - cp.multiply((1 / arr.eta_d)[:, None] * np.ones((1, n_t)), discharge))
        cons += constraint_power_limits(arr, charge, discharge, cmax, dmax)
        cons += [energy[:, 0] == soc0_kwh, energy[:, 1:] == energy[:, :-1] + step]
        cons += constraint_soc_window(arr, energy[:, 1:])
        terminal = -(np.broadcast_to(terminal_value, (n_units,)) @ (energy[:, n_t] - soc0_kwh))
    problem = cp.Problem(cp.Minimize(clearing.market_cost + terminal), cons)
    return HorizonModel(problem, clearing, arr, charge, discharge, energy, terminal)


def horizon_run(model: HorizonModel, instances: Sequence[MarketInstance], status: Status, controller: str,
                wall_s: float) -> StorageRun:
    """Read a solved horizon back as a :class:`StorageRun` (one clearing result per interval)."""
    arr, n_t = model.storage, len(instances)
    if arr.n_units:
        charge = np.maximum(np.asarray(model.charge.value), 0.0)
        discharge = np.maximum(np.asarray(model.discharge.value), 0.0)
        soc = np.asarray(model.energy.value, dtype=float)
    else:
        charge = discharge = np.zeros((0, n_t))
        soc = np.zeros((0, n_t + 1))
    clearings = []
    stacked = model.clearing
    for t, inst in enumerate(instances):
        values = stacked.values(t)
        values["s"] = arr.to_agents @ (discharge[:, t] - charge[:, t])
        clearings.append(assemble_result(controller, status, inst, stacked.ops, stacked.arrays[t], values, 0.0))
    market_cost = float(sum(c.objective for c in clearings))
    terminal = float(model.terminal.value) if arr.n_units else 0.0
    return StorageRun(controller, status, tuple(clearings), soc, arr.kw(charge), arr.kw(discharge), market_cost,
                      terminal, wall_s)


def solve_horizon(instances: Sequence[MarketInstance], soc0_kwh: np.ndarray, terminal_value: float | np.ndarray,
                  controller: str = "offline") -> StorageRun:
    """Build and solve the multi-period SOCP; a horizon without a solution is a run with that status."""
    start = time.perf_counter()
    model = build_horizon(instances, soc0_kwh, terminal_value)
    status = solve_model(model.problem)
    if not status.has_solution:
        n_t = len(instances)
        return StorageRun(controller, status, (), np.zeros((0, n_t + 1)), np.zeros((0, n_t)), np.zeros((0, n_t)),
                          float("nan"), float("nan"), time.perf_counter() - start,
                          message=f"the {n_t}-interval horizon has no solution (Clarabel: {model.problem.status})")
    return horizon_run(model, instances, status, controller, time.perf_counter() - start)
