"""Battery storage units behind prosumers' meters: physical data, like a line's impedance.

A unit sits at one bus and exchanges power with it: it charges ``c`` (kW drawn from the bus) and discharges
``d`` (kW delivered to the bus), ``0 <= c <= charge_kw``, ``0 <= d <= discharge_kw``. Its stored energy
follows ``E(t+1) = E(t) + dt (eta_c c - d / eta_d)`` (one-way efficiencies ``eta_c``, ``eta_d``) and stays
within ``soc_min_kwh <= E <= soc_max_kwh``; ``soc0_kwh`` is the energy at the start of a run. Units convert at
unity power factor: they inject no reactive power.

:func:`assign_storage` gives a seeded share of the loaded buses a unit sized to the bus: rated power
``ratio x max(peak load, PV + wind capacity)`` (ratio drawn per unit), energy ``hours x rated power``
(2 h by default, a common residential battery: 5 kW / 10 kWh), the same charge and discharge limits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from physical.errors import FeederError


@dataclass(frozen=True)
class StorageUnit:
    """One battery: its bus, energy capacity and window (kWh), power limits (kW), efficiencies."""

    bus: int
    capacity_kwh: float
    charge_kw: float
    discharge_kw: float
    eta_c: float
    eta_d: float
    soc_min_kwh: float
    soc_max_kwh: float
    soc0_kwh: float

    def step_kwh(self, charge_kw: float, discharge_kw: float, dt_h: float) -> float:
        """The stored energy change over one interval of ``dt_h`` hours."""
        return dt_h * (self.eta_c * charge_kw - discharge_kw / self.eta_d)


def validate_storage(units: tuple[StorageUnit, ...], n_buses: int, where: str = "storage") -> None:
    """Refuse a unit whose data cannot describe a battery, naming the unit and the field."""
    seen = set()
    for k, u in enumerate(units):
        name = f"{where}[{k}]"
        values = (u.capacity_kwh, u.charge_kw, u.discharge_kw, u.eta_c, u.eta_d, u.soc_min_kwh, u.soc_max_kwh,
                  u.soc0_kwh)
        if not all(isinstance(v, int | float) and math.isfinite(v) for v in values):
            raise FeederError(f"{name}: expected finite numbers")
        if not 1 <= u.bus < n_buses or u.bus in seen:
            raise FeederError(f"{name}.bus: expected a prosumer bus 1..{n_buses - 1} with at most one unit, "
                              f"got {u.bus}")
        seen.add(u.bus)
        if u.capacity_kwh <= 0 or u.charge_kw < 0 or u.discharge_kw < 0:
            raise FeederError(f"{name}: expected capacity_kwh > 0 and non-negative power limits")
        if not (0 < u.eta_c <= 1 and 0 < u.eta_d <= 1):
            raise FeederError(f"{name}: expected efficiencies eta_c, eta_d in (0, 1], got {u.eta_c}, {u.eta_d}")
        if not 0 <= u.soc_min_kwh <= u.soc0_kwh <= u.soc_max_kwh <= u.capacity_kwh:
            raise FeederError(f"{name}: expected 0 <= soc_min_kwh <= soc0_kwh <= soc_max_kwh <= capacity_kwh")


def assign_storage(peak_mw: np.ndarray, renewable_mw: np.ndarray, rng: np.random.Generator, *, share: float,
                   power_ratio: tuple[float, float], hours: float, efficiency: float,
                   soc_range: tuple[float, float], soc0: float) -> tuple[StorageUnit, ...]:
    """Give ``share`` of the loaded buses (index = bus, bus 0 the substation) a unit sized to the bus.

    ``soc_range`` and ``soc0`` are fractions of the capacity. Every bus draws its numbers whether or not it
    gets a unit, so one bus's draw does not shift the others'.
    """
    n = len(peak_mw)
    chosen = rng.random(n) < share
    ratio = rng.uniform(*power_ratio, n)
    units = []
    for j in range(1, n):
        if not chosen[j] or peak_mw[j] <= 0:
            continue
        rated_kw = float(ratio[j] * max(peak_mw[j], renewable_mw[j]) * 1e3)
        capacity = hours * rated_kw
        units.append(StorageUnit(bus=j, capacity_kwh=capacity, charge_kw=rated_kw, discharge_kw=rated_kw,
                                 eta_c=efficiency, eta_d=efficiency, soc_min_kwh=soc_range[0] * capacity,
                                 soc_max_kwh=soc_range[1] * capacity, soc0_kwh=soc0 * capacity))
    return tuple(units)
