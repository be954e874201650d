"""One online study: a controller over a run of quarter hours, beside the offline optimum and no storage.

``captured_value = (no_storage - online) / (no_storage - offline)``: the share of the perfect-foresight
storage value the controller realises. All three costs are the sum of the intervals' welfare costs (cent)
plus the terminal charge for stored energy (:class:`market.result.StorageRun`); a kWh left in a battery is
worth ``terminal_value = eta_d x`` the run's lowest retail price (it displaces the cheapest purchase), so
neither the optimum nor a controller gains by draining or filling the batteries in the last hour. Where the
storage value is under ``MIN_STORAGE_VALUE`` of the no-storage cost the ratio means nothing and is None.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from market.admm.driver import AdmmSettings
from market.instance import InstanceOptions, MarketInstance
from market.online.controllers import (
    LyapunovController,
    MpcController,
    MyopicController,
    SlotError,
    SlotSolver,
    run_online,
    solve_slot,
)
from market.online.distributed import AdmmSlots
from market.online.lyapunov import (
    PRICE_MARGIN,
    ControllerError,
    LyapunovParameters,
    lyapunov_parameters,
    performance_bound,
)
from market.problem.clearing import solve_clearing
from market.problem.horizon import solve_horizon
from market.problem.storage import StorageArrays, storage_arrays
from market.result import StorageRun
from market.tariff import tariff_factor

CONTROLLERS = ("lyapunov", "lyapunov-standard", "myopic", "mpc", "offline")
#: How each interval of a per-interval controller is cleared; MPC and the offline optimum solve horizons.
METHODS = ("centralized", "admm")
PER_INTERVAL = ("lyapunov", "lyapunov-standard", "myopic")
MIN_STORAGE_VALUE = 0.01
#: A unit-interval is outside its SoC window when it leaves it by more than this (kWh).
SOC_TOL_KWH = 1e-6
MPC_HORIZON = 16  # quarter hours: 4 h


@dataclass(frozen=True)
class OnlineStudy:
    """A controller's run, the offline optimum of the same intervals and their no-storage cost."""

    controller: str
    run: StorageRun
    offline: StorageRun
    no_storage_cost_ct: float
    params: LyapunovParameters | None  # Lyapunov controllers only
    queue_kwh: np.ndarray | None  # (units, intervals + 1), Lyapunov controllers only
    bound_ct: float | None  # online <= offline + bound (Lyapunov controllers only)
    gate_binding: int
    terminal_value: np.ndarray  # cent/kWh per unit
    bus: np.ndarray  # each unit's bus
    soc_min_kwh: np.ndarray
    soc_max_kwh: np.ndarray
    wall_s: float
    method: str = "centralized"
    admm_iterations: tuple[int, ...] = ()  # per interval, with method "admm"

    @property
    def soc_violations(self) -> int:
        """Unit-intervals whose stored energy leaves the window by more than ``SOC_TOL_KWH``."""
        soc = self.run.soc_kwh[:, 1:]
        return int(np.sum((soc < self.soc_min_kwh[:, None] - SOC_TOL_KWH)
                          | (soc > self.soc_max_kwh[:, None] + SOC_TOL_KWH)))

    @property
    def captured_value(self) -> float | None:
        value = self.no_storage_cost_ct - self.offline.cost_ct
        if value < MIN_STORAGE_VALUE * abs(self.no_storage_cost_ct):
            return None
        return (self.no_storage_cost_ct - self.run.cost_ct) / value


def terminal_value(instances: Sequence[MarketInstance]) -> np.ndarray:
    """cent/kWh per unit: ``eta_d x`` the run's lowest retail price."""
    arr = storage_arrays(instances[0])
    return arr.eta_d * min(inst.retail_price for inst in instances)


def price_range(instances: Sequence[MarketInstance]) -> tuple[float, float]:
    """``(p_min, p_max)`` of the Lyapunov thresholds (see :mod:`market.online.lyapunov`)."""
    return lyapunov_price_range([inst.retail_price for inst in instances])


def lyapunov_price_range(retail: Sequence[float]) -> tuple[float, float]:
    """``(p_min, p_max)`` from the retail prices of the run's intervals."""
    return 0.0, PRICE_MARGIN * max(retail)


def retail_prices(options: InstanceOptions, first: int, n: int) -> list[float]:
    """The retail price of each of ``n`` quarter hours from ``first``, without building their instances (the
    co-simulation's market sees one interval at a time)."""
    return [options.retail_price * tariff_factor(options.tariff, k, options.dt_h) for k in range(first, first + n)]


def interval_controller(arr: StorageArrays, controller: str, V: float | None, retail: Sequence[float],
                        solve: SlotSolver = solve_slot) -> LyapunovController | MyopicController:
    """A per-interval controller (:data:`PER_INTERVAL`) for a run whose intervals have ``retail`` prices."""
    if controller.startswith("lyapunov"):
        variant = "standard" if controller == "lyapunov-standard" else "modified"
        params = lyapunov_parameters(arr, V, *lyapunov_price_range(retail), variant=variant)
        return LyapunovController(params, arr, controller, solve)
    if controller == "myopic":
        return MyopicController(arr, solve=solve)
    raise ControllerError(f"controller {controller!r}: expected one of {PER_INTERVAL}")


def run_study(instances: Sequence[MarketInstance], controller: str, V: float | None = None,
              forecast: Callable[[int], MarketInstance] | None = None,
              offline: StorageRun | None = None, no_storage_cost_ct: float | None = None,
              method: str = "centralized", admm: AdmmSettings | None = None) -> OnlineStudy:
    """Run ``controller`` over ``instances``; ``offline`` and ``no_storage_cost_ct`` are computed unless given
    (a V sweep reuses them). ``forecast`` gives MPC its persistence forecast of an interval. With ``method``
    ``admm`` every interval is cleared by the distributed ADMM (``admm``: its settings); the offline optimum
    and the no-storage cost, the references, are always centralized."""
    start = time.perf_counter()
    if controller not in CONTROLLERS:
        raise ControllerError(f"--controller {controller!r}: expected one of {CONTROLLERS}")
    if method not in METHODS:
        raise ControllerError(f"--method {method!r}: expected one of {METHODS}")
    if method == "admm" and controller not in PER_INTERVAL:
        raise ControllerError(f"--method admm clears one interval at a time: the per-interval controllers "
                              f"{PER_INTERVAL} take it; {controller} solves a horizon centrally")
    if V is not None and not controller.startswith("lyapunov"):
        raise ControllerError(f"--V is the Lyapunov controllers' weight; {controller} takes none")
    arr = storage_arrays(instances[0])
    if arr.n_units == 0:
        raise ControllerError("no storage units: give a --storage-share above 0 (the seed drew none)")
    w = terminal_value(instances)
    slots = AdmmSlots(admm or AdmmSettings()) if method == "admm" else None
    retail = [inst.retail_price for inst in instances]
    online = (interval_controller(arr, controller, V, retail, slots or solve_slot) if controller in PER_INTERVAL
              else None)
    params = online.params if isinstance(online, LyapunovController) else None
    if no_storage_cost_ct is None:
        no_storage_cost_ct = no_storage_cost(instances)
    if offline is None:
        offline = solve_horizon(instances, arr.soc0, w)
        if not offline.status.has_solution:
            raise SlotError(offline.message)
    gate_binding = 0
    if controller == "offline":
        run = offline
    elif online is not None:
        run, gate_binding = run_online(instances, online, w)
    else:
        if forecast is None:
            raise ControllerError("the MPC controller needs a forecast of the coming intervals")
        run, _ = run_online(instances, MpcController(arr, forecast, MPC_HORIZON, w), w)
    queue = bound = None
    if params is not None:
        queue = run.soc_kwh - params.theta[:, None]
        offline_step = offline.soc_kwh[:, 1:] - offline.soc_kwh[:, :-1]
        bound = performance_bound(params, queue, offline_step) + run.terminal_ct - offline.terminal_ct
    return OnlineStudy(controller, run, offline, float(no_storage_cost_ct), params, queue, bound, gate_binding, w,
                       arr.bus, arr.soc_min, arr.soc_max, time.perf_counter() - start, method,
                       tuple(slots.iterations_) if slots else ())


def no_storage_cost(instances: Sequence[MarketInstance]) -> float:
    """The same intervals cleared one by one without batteries (cent)."""
    total = 0.0
    for inst in instances:
        res = solve_clearing(inst)
        if not res.status.has_solution:
            raise SlotError(f"interval {inst.interval}: the clearing without storage has no solution ({res.message})")
        total += res.objective
    return total
