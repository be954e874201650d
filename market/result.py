"""What a clearing returns, whichever method produced it."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np


class Status(StrEnum):
    """Few named outcomes; only OPTIMAL and INACCURATE carry a dispatch."""

    OPTIMAL = "optimal"
    INACCURATE = "inaccurate"
    INFEASIBLE = "infeasible"
    NOT_CONVERGED = "not_converged"
    ERROR = "error"

    @property
    def has_solution(self) -> bool:
        return self in (Status.OPTIMAL, Status.INACCURATE)


@dataclass(frozen=True, eq=False)
class ClearingResult:
    """A market clearing in p.u. on the feeder's base; bus arrays have entry 0 = substation.

    ``p``/``q`` hold net injections (entry 0: substation injection P0/Q0), ``v`` squared voltage magnitudes,
    ``P``/``Q``/``l`` line quantities (entry j: line ending at bus j, entry 0 unused), ``t`` bilateral trades
    in the instance's trade order, ``t0`` each agent's trade with the utility company.
    """

    method: str
    status: Status
    objective: float = float("nan")
    p: np.ndarray = field(default_factory=lambda: np.empty(0))
    q: np.ndarray = field(default_factory=lambda: np.empty(0))
    v: np.ndarray = field(default_factory=lambda: np.empty(0))
    P: np.ndarray = field(default_factory=lambda: np.empty(0))
    Q: np.ndarray = field(default_factory=lambda: np.empty(0))
    l: np.ndarray = field(default_factory=lambda: np.empty(0))
    t: np.ndarray = field(default_factory=lambda: np.empty(0))
    t0: np.ndarray = field(default_factory=lambda: np.empty(0))
    losses: float = float("nan")
    max_relaxation_gap: float = float("nan")
    wall_s: float = 0.0
    message: str = ""
    info: dict = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class StorageRun:
    """A run of quarter hours with batteries, whichever controller produced it (offline optimum or online).

    ``clearings[t]`` is interval t's clearing (bus injections include the batteries); unit arrays are
    (units, intervals): ``charge_kw``/``discharge_kw`` per interval, ``soc_kwh`` at the interval starts and
    after the last one (intervals + 1 columns). ``market_cost_ct`` sums the clearings' objectives;
    ``terminal_ct = -terminal_value x (E_end - E_start)`` summed over units charges the run for the stored
    energy it leaves behind (or credits it for energy added), so that a run that drains its batteries at the
    end does not look cheaper than one that keeps them; ``cost_ct`` is their sum.
    """

    controller: str
    status: Status
    clearings: tuple[ClearingResult, ...]
    soc_kwh: np.ndarray
    charge_kw: np.ndarray
    discharge_kw: np.ndarray
    market_cost_ct: float
    terminal_ct: float
    wall_s: float
    message: str = ""

    @property
    def cost_ct(self) -> float:
        return self.market_cost_ct + self.terminal_ct

    @property
    def slot_costs_ct(self) -> np.ndarray:
        return np.array([c.objective for c in self.clearings])
