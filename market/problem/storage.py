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
