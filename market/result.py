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
