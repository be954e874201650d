"""Online storage controllers: each interval, decide the batteries and clear the market, seeing no future profile.

Every controller turns interval t's instance and the units' stored energy into one clearing with the
batteries in it (:func:`solve_slot`): the Lyapunov controllers add the queue term and their thresholds
(:mod:`market.online.lyapunov`), the myopic one fixes the batteries by a self-consumption rule, MPC solves a
few hours ahead on a persistence forecast and keeps the first interval. :func:`run_online` drives one over a
run of intervals and returns a :class:`market.result.StorageRun`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import cvxpy as cp
import numpy as np

from market.instance import MarketInstance
from market.online.lyapunov import LyapunovParameters
from market.problem.clearing import assemble_result, build_clearing, solve_model
from market.problem.horizon import build_horizon, horizon_run
from market.problem.storage import BatteryStep, StorageArrays, battery_step, storage_arrays, storage_output
from market.result import ClearingResult, Status, StorageRun

#: A threshold counts as binding when its multiplier exceeds this (cent per kWh of the unit's power limit).
GATE_DUAL_TOL = 1e-4


@dataclass(frozen=True)
class SlotDecision:
    """One interval: the clearing (batteries in its injections and objective) and the batteries' powers (p.u.)."""

    clearing: ClearingResult
    charge: np.ndarray
    discharge: np.ndarray
    gate_binding: int = 0


class Controller(Protocol):
    name: str

    def step(self, t: int, instance: MarketInstance, soc_kwh: np.ndarray) -> SlotDecision: ...


class SlotError(RuntimeError):
    """An interval of an online run has no clearing (the run stops; the message names the interval)."""


def solve_slot(instance: MarketInstance, arr: StorageArrays, step: BatteryStep, method: str = "centralized"
               ) -> SlotDecision:
    """Clear one interval with the batteries of ``step`` centrally (cvxpy + Clarabel): welfare cost plus the
    batteries' prices, within their boxes."""
    n = arr.n_units
    c, d = cp.Variable(n, name="charge"), cp.Variable(n, name="discharge")
    model = build_clearing(instance, storage_output=storage_output(arr, c, d))
    limits = [c >= step.c_lo, d >= step.d_lo, c <= step.c_hi, d <= step.d_hi]
    objective = model.problem.objective.args[0]
    if n:
        objective = objective + step.charge_price @ c + step.discharge_price @ d
    problem = cp.Problem(cp.Minimize(objective), list(model.problem.constraints) + limits)
    status = solve_model(problem)
    if not status.has_solution:
        raise SlotError(f"interval {instance.interval}: the clearing with storage has no solution "
                        f"(Clarabel: {problem.status})")
    charge = np.clip(np.asarray(c.value, dtype=float), step.c_lo, step.c_hi)  # solver noise off the power box
    discharge = np.clip(np.asarray(d.value, dtype=float), step.d_lo, step.d_hi)
    values = {k: np.asarray(v.value, dtype=float) for k, v in model.vars.items()}
    values["s"] = arr.to_agents @ (discharge - charge)
    result = assemble_result(method, status, instance, model.ops, model.arrays, values, 0.0)
    binding = 0
    if step.gated.any():
        # net multiplier of a gated limit: with c <= 0 and c >= 0 both active the split between them is arbitrary
        duals = np.r_[limits[2].dual_value - limits[0].dual_value,
                      limits[3].dual_value - limits[1].dual_value] / arr.kappa
        binding = int(np.sum(step.gated & (duals > GATE_DUAL_TOL)))
    return SlotDecision(result, charge, discharge, binding)


#: How a per-interval controller has its interval cleared: centrally (:func:`solve_slot`) or by the distributed
#: ADMM (:class:`market.online.distributed.AdmmSlots`).
SlotSolver = Callable[[MarketInstance, StorageArrays, BatteryStep, str], SlotDecision]


@dataclass
class LyapunovController:
    """Drift-plus-penalty: queue ``Q = E - theta``, cost + ``sum_u Q_u a_u / V_u``, thresholds as power limits."""

    params: LyapunovParameters
    arr: StorageArrays
    name: str = "lyapunov"
    solve: SlotSolver = solve_slot

    def decide(self, instance: MarketInstance, soc_kwh: np.ndarray) -> BatteryStep:
        """The interval's batteries: queue prices and the thresholds as power limits."""
        p, arr = self.params, self.arr
        queue = soc_kwh - p.theta
        charge_max = np.where(queue <= p.charge_gate, arr.charge_max, 0.0)
        discharge_max = np.where(queue >= p.discharge_gate, arr.discharge_max, 0.0)
        return battery_step(arr, queue / p.weight, charge_max, discharge_max)

    def step(self, t: int, instance: MarketInstance, soc_kwh: np.ndarray) -> SlotDecision:
        return self.solve(instance, self.arr, self.decide(instance, soc_kwh), self.name)


@dataclass
class MyopicController:
    """Self-consumption: a unit charges from its own surplus and covers its own deficit, as far as its power
    and SoC window allow, then the market clears around it."""

    arr: StorageArrays
    name: str = "myopic"
    solve: SlotSolver = solve_slot

    def decide(self, instance: MarketInstance, soc_kwh: np.ndarray) -> BatteryStep:
        """The interval's batteries, fixed by the self-consumption rule."""
        arr = self.arr
        net = np.array([instance.agents[k].p_hat_kw for k in arr.agent]) * arr.dt_h / arr.kappa  # p.u.
        room = np.maximum(arr.soc_max - soc_kwh, 0.0) / (arr.kappa * arr.eta_c)
        stock = np.maximum(soc_kwh - arr.soc_min, 0.0) * arr.eta_d / arr.kappa
        charge = np.minimum.reduce([np.maximum(net, 0.0), arr.charge_max, room])
        discharge = np.minimum.reduce([np.maximum(-net, 0.0), arr.discharge_max, stock])
        return battery_step(arr, fixed=(charge, discharge))

    def step(self, t: int, instance: MarketInstance, soc_kwh: np.ndarray) -> SlotDecision:
        return self.solve(instance, self.arr, self.decide(instance, soc_kwh), self.name)


@dataclass
class MpcController:
    """Rolling horizon: solve ``horizon`` intervals (the actual one, then a persistence forecast: the same
    quarter hour one day earlier) with the offline model and apply the first interval."""

    arr: StorageArrays
    forecast: Callable[[int], MarketInstance]  # interval index -> the forecast instance of that interval
    horizon: int
    terminal_value: np.ndarray
    name: str = "mpc"

    def step(self, t: int, instance: MarketInstance, soc_kwh: np.ndarray) -> SlotDecision:
        ahead = [instance] + [self.forecast(instance.interval + k) for k in range(1, self.horizon)]
        model = build_horizon(ahead, soc_kwh, self.terminal_value)
        status = solve_model(model.problem)
        if not status.has_solution:
            raise SlotError(f"interval {instance.interval}: the MPC horizon has no solution "
                            f"(Clarabel: {model.problem.status})")
        run = horizon_run(model, ahead, status, self.name, 0.0)
        charge = np.clip(np.asarray(model.charge.value)[:, 0], 0.0, self.arr.charge_max)
        discharge = np.clip(np.asarray(model.discharge.value)[:, 0], 0.0, self.arr.discharge_max)
        return SlotDecision(run.clearings[0], charge, discharge)


def run_online(instances: Sequence[MarketInstance], controller: Controller, terminal_value: np.ndarray
               ) -> tuple[StorageRun, int]:
    """Drive ``controller`` over consecutive intervals from the units' initial energy; returns the run and the
    number of unit-intervals whose threshold bound (see :mod:`market.online.lyapunov`)."""
    start = time.perf_counter()
    arr = storage_arrays(instances[0])
    soc = arr.soc0.copy()
    socs, charges, discharges, clearings, binding = [soc], [], [], [], 0
    for t, inst in enumerate(instances):
        decision = controller.step(t, inst, soc)
        soc = soc + arr.energy_step(decision.charge, decision.discharge)
        socs.append(soc)
        charges.append(decision.charge)
        discharges.append(decision.discharge)
        clearings.append(decision.clearing)
        binding += decision.gate_binding
    soc_kwh = np.array(socs).T.reshape(arr.n_units, len(instances) + 1)
    charge = np.array(charges).T.reshape(arr.n_units, len(instances))
    discharge = np.array(discharges).T.reshape(arr.n_units, len(instances))
    market_cost = float(sum(c.objective for c in clearings))
    terminal = float(-(terminal_value @ (soc_kwh[:, -1] - soc_kwh[:, 0])))
    status = Status.OPTIMAL if all(c.status is Status.OPTIMAL for c in clearings) else Status.INACCURATE
    run = StorageRun(controller.name, status, tuple(clearings), soc_kwh, arr.kw(charge), arr.kw(discharge),
                     market_cost, terminal, time.perf_counter() - start)
    return run, binding
