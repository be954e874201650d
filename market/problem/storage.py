"""Battery pieces of the clearing: per-unit arrays, power limits and the state-of-charge dynamics.

Variables are in p.u. of the feeder's base power, like every other power of the formulation; energy is in
kWh. One interval of ``c`` p.u. stores ``kappa eta_c c`` kWh (``kappa`` = kWh per p.u.-interval,
:attr:`market.instance.MarketInstance.kwh_per_pu`) and one of ``d`` p.u. takes ``kappa d / eta_d`` kWh out.
"""

from __future__ import annotations

from dataclasses import dataclass

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from market.instance import MarketInstance
from physical.storage import StorageUnit


@dataclass(frozen=True, eq=False)
class StorageArrays:
    """The units of an instance as arrays (one entry per unit, in the instance's unit order)."""

    bus: np.ndarray
    agent: np.ndarray  # agent position (bus - 1)
    charge_max: np.ndarray  # p.u.
    discharge_max: np.ndarray  # p.u.
    eta_c: np.ndarray
    eta_d: np.ndarray
    soc_min: np.ndarray  # kWh
    soc_max: np.ndarray  # kWh
    soc0: np.ndarray  # kWh
    kappa: float  # kWh per p.u.-interval
    dt_h: float
    to_agents: sp.csr_matrix  # (agents, units): 1 where the unit sits at the agent's bus

    @property
    def n_units(self) -> int:
        return len(self.bus)

    def kw(self, pu: np.ndarray) -> np.ndarray:
        """p.u. powers in kW."""
        return pu * self.kappa / self.dt_h

    def pu(self, kw: np.ndarray) -> np.ndarray:
        return kw * self.dt_h / self.kappa

    def energy_step(self, c, d):
        """Stored energy change (kWh) over one interval of charge ``c`` and discharge ``d`` (p.u.)."""
        if isinstance(c, cp.Expression) or isinstance(d, cp.Expression):
            return self.kappa * (cp.multiply(self.eta_c, c) - cp.multiply(1 / self.eta_d, d))
        return self.kappa * (self.eta_c * c - d / self.eta_d)

    def step_max(self) -> tuple[np.ndarray, np.ndarray]:
        """Largest energy a unit can store and take out in one interval (kWh)."""
        return self.kappa * self.eta_c * self.charge_max, self.kappa * self.discharge_max / self.eta_d


def storage_arrays(instance: MarketInstance, units: tuple[StorageUnit, ...] | None = None) -> StorageArrays:
    """Arrays of ``units`` (default: the instance's) on the instance's feeder base."""
    units = instance.storage if units is None else units
    kappa, dt = instance.kwh_per_pu, instance.options.dt_h
    bus = np.array([u.bus for u in units], dtype=int)
    n_agents, n_units = len(instance.agents), len(units)
    to_pu = dt / kappa

    def col(name: str) -> np.ndarray:
        return np.array([getattr(u, name) for u in units], dtype=float)

    return StorageArrays(
        bus=bus, agent=bus - 1, charge_max=col("charge_kw") * to_pu, discharge_max=col("discharge_kw") * to_pu,
        eta_c=col("eta_c"), eta_d=col("eta_d"), soc_min=col("soc_min_kwh"), soc_max=col("soc_max_kwh"),
        soc0=col("soc0_kwh"), kappa=kappa, dt_h=dt,
        to_agents=sp.csr_matrix((np.ones(n_units), (bus - 1, np.arange(n_units))), shape=(n_agents, n_units)))


def storage_output(arr: StorageArrays, c, d):
    """Each agent's battery output ``s = d - c`` (p.u.), the expression :func:`build_clearing` takes."""
    return arr.to_agents @ (d - c)


def constraint_power_limits(arr: StorageArrays, c, d, charge_max=None, discharge_max=None) -> list[cp.Constraint]:
    """``0 <= c <= charge_max``, ``0 <= d <= discharge_max`` (default: the units' ratings, p.u.)."""
    cmax = arr.charge_max if charge_max is None else charge_max
    dmax = arr.discharge_max if discharge_max is None else discharge_max
    return [c >= 0, d >= 0, c <= cmax, d <= dmax]


def constraint_soc_window(arr: StorageArrays, energy) -> list[cp.Constraint]:
    """``soc_min <= E <= soc_max`` (kWh), on a vector or on a (units, times) matrix."""
    if len(energy.shape) == 2:
        lo, hi = arr.soc_min[:, None], arr.soc_max[:, None]
        return [energy >= np.broadcast_to(lo, energy.shape), energy <= np.broadcast_to(hi, energy.shape)]
    return [energy >= arr.soc_min, energy <= arr.soc_max]


@dataclass(frozen=True, eq=False)
class BatteryStep:
    """The batteries' part of one interval's problem, whichever controller set it and whichever method solves it.

    Per unit: its agent, boxes ``c_lo <= c <= c_hi`` and ``d_lo <= d <= d_hi`` (p.u.) and linear prices
    ``charge_price . c + discharge_price . d`` (cent per p.u.) added to the clearing's welfare cost. A
    Lyapunov controller's queue term ``sum_u (Q_u / V_u) a_u`` is such a price (the energy step ``a_u`` is
    linear in ``c`` and ``d``) and its thresholds are zero upper limits; the myopic controller fixes both
    powers (``lo = hi``) at no price. The centralized solve (:func:`market.online.controllers.solve_slot`)
    and the distributed one (:mod:`market.admm.battery`) read the same object.
    """

    agent: np.ndarray
    c_lo: np.ndarray
    c_hi: np.ndarray
    d_lo: np.ndarray
    d_hi: np.ndarray
    charge_price: np.ndarray
    discharge_price: np.ndarray
    gated: np.ndarray  # (2 units): charge then discharge limits closed by a threshold (counted when they bind)

    @property
    def n_units(self) -> int:
        return len(self.agent)


def battery_step(arr: StorageArrays, queue_weight: np.ndarray | None = None, charge_max: np.ndarray | None = None,
                 discharge_max: np.ndarray | None = None,
                 fixed: tuple[np.ndarray, np.ndarray] | None = None) -> BatteryStep:
    """The batteries of one interval: the queue price ``queue_weight . a`` (``a`` the energy steps, kWh;
    ``queue_weight`` in cent/kWh), power limits ``charge_max``/``discharge_max`` (p.u.; default the ratings),
    or the powers ``fixed`` at (c, d)."""
    n = arr.n_units
    zero = np.zeros(n)
    c_hi = arr.charge_max if charge_max is None else np.asarray(charge_max, dtype=float)
    d_hi = arr.discharge_max if discharge_max is None else np.asarray(discharge_max, dtype=float)
    gated = np.r_[c_hi <= 0, d_hi <= 0] if charge_max is not None else np.zeros(2 * n, dtype=bool)
    c_lo, d_lo = zero, zero
    if fixed is not None:
        c_lo = c_hi = np.asarray(fixed[0], dtype=float)
        d_lo = d_hi = np.asarray(fixed[1], dtype=float)
    w = zero if queue_weight is None else np.asarray(queue_weight, dtype=float)
    return BatteryStep(arr.agent.copy(), c_lo, c_hi, d_lo, d_hi, w * arr.kappa * arr.eta_c,
                       -w * arr.kappa / arr.eta_d, gated)
