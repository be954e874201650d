"""Per-interval thermal limits of the market: a quarter hour's line ratings become its branch-flow limits.

The clearing bounds each line's squared current, ``l_j <= imax_j^2`` (:func:`market.formulation.distflow.
constraint_limits`; the ADMM agents' boxes, :func:`market.admm.layout.own_bounds`), with ``imax`` the feeder's
current limit in p.u. An instance is one quarter hour, so the quarter hour's ratings are the instance's feeder
limits: :func:`with_line_limits` returns the instance with them, and its JSON carries them, so a saved interval
re-solves with the ratings it was cleared under. What the limits did to a clearing -- which lines bind, how much
the prosumers gave up -- is read back by :func:`binding_lines` and :func:`curtailed_kw`.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from market.errors import InstanceError
from market.instance import MarketInstance
from market.result import ClearingResult
from physical.errors import FeederError
from physical.feeder_ratings import with_ratings

#: A line binds when its squared current is within this share of its limit.
BINDING_TOL = 1e-3


def with_line_limits(instance: MarketInstance, imax_pu: np.ndarray) -> MarketInstance:
    """``instance`` with the current limits ``imax_pu`` (one per bus; entry j is line j, entry 0 unused, ``inf``
    for an unrated line)."""
    try:
        feeder = with_ratings(instance.feeder, imax_pu)
    except FeederError as exc:
        raise InstanceError(str(exc)) from exc
    return replace(instance, feeder=feeder)


def binding_lines(instance: MarketInstance, result: ClearingResult, tol: float = BINDING_TOL) -> tuple[int, ...]:
    """The rated lines whose squared current is at its limit, ``l_j >= (1 - tol) imax_j^2``."""
    if not result.status.has_solution:
        return ()
    lmax = instance.feeder.imax_pu**2
    lines = np.arange(1, instance.feeder.n_buses)
    rated = lines[np.isfinite(lmax[lines])]
    return tuple(int(j) for j in rated[result.l[rated] >= (1.0 - tol) * lmax[rated]])


def curtailed_kw(instance: MarketInstance, result: ClearingResult) -> float:
    """Power the prosumers gave up against their desired injections: demand shed by buyers (``p - p_hat``) and
    generation spilled by sellers (``p_hat - p``), kW."""
    if not result.status.has_solution:
        return math.nan
    p_hat = np.array([a.p_hat_kw for a in instance.agents])
    p = result.p[1:] * instance.feeder.base_mva * 1e3
    return float(np.abs(p - p_hat).sum())
