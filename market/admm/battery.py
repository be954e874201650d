"""Batteries in the distributed ADMM: each unit lives in its owner's local step (6a), nowhere else.

An interval's batteries (:class:`market.problem.storage.BatteryStep`: boxes on charge ``c`` and discharge
``d``, linear prices on them -- a Lyapunov controller's queue term, or none) change only the local step of the
agent that owns the unit; no message carries a battery value, so the splittings' exchanges and the cyber
layer's screening stay as they are.

*The battery's cost as a function of its output.* Only ``s = d - c`` enters the market, so the owner needs
``g(s) = min {pc c + pd d : d - c = s, boxes}``: with ``d = s + c`` the cost is ``(pc + pd) c + pd s``, so
``c`` sits at its lowest feasible value when ``pc + pd >= 0`` (no gain from charging and discharging at once)
and at its highest otherwise. Either way ``g`` is convex and piecewise linear on ``[d_lo - c_hi, d_hi -
c_lo]`` with one kink, slopes ``(-pc, pd)`` around ``d_lo - c_lo`` or ``(pd, -pc)`` around ``d_hi - c_hi``.

*The owner's step.* Behind the meter the agent trades ``E = e + S``: its own quantity ``e`` (what its cost is
in) plus the battery's supply ``S = sign s`` (a buyer's battery lowers its purchase, a seller's adds to its
sale), with ``g`` in ``S``. :func:`market.admm.prox.battery_balance` solves that step exactly.

*The reactive model.* A buyer keeps its load's power factor on its own quantity, ``q = q_hat + tan_phi (p -
s - p_hat)`` (:mod:`market.formulation.trading`), which involves ``s``. The group projection (6b) holds the
reactive model as an equality of ``p`` and ``q`` with a fixed right-hand side, so for an agent with a unit
the equality moves into its local step instead (the splittings drop that row for it): ``q`` follows ``e``
there, and its penalty becomes part of ``e``'s cost. Agents without a unit keep the row in the group.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from market.admm.prox import battery_balance
from market.formulation.trading import MarketArrays
from market.problem.storage import BatteryStep


@dataclass(frozen=True, eq=False)
class BatteryAgents:
    """An interval's batteries on the ADMM's cost scale, with what the owners' steps need (static per clearing).

    Unit arrays follow the step's unit order; ``entries`` are the trade sides (indices into the buyers'-then-
    sellers' trade vector) whose owner has a unit and a role, grouped by unit (``start``)."""

    step: BatteryStep
    mask: np.ndarray  # (agents,): the agent owns a unit
    sign: np.ndarray  # per unit: its owner's sign (-1 buyer, +1 seller, 0 passive)
    s_lo: np.ndarray
    s_hi: np.ndarray
    charge_low: np.ndarray  # per unit: c takes its lowest feasible value (pc + pd >= 0)
    supply: np.ndarray  # (units, 5): jump_lo, jump_hi, level_0, level_1, level_2 of S(lambda)
    entries: np.ndarray
    start: np.ndarray
    scale: float
    plain_sign: np.ndarray  # (agents,): the market's signs, 0 for owners (the plain step leaves them idle)


def owner_mask(n_agents: int, step: BatteryStep) -> np.ndarray:
    """Agents that own a unit of ``step`` (they hold their reactive model locally)."""
    mask = np.zeros(n_agents, dtype=bool)
    mask[step.agent] = True
    return mask


def battery_agents(arr: MarketArrays, step: BatteryStep, scale: float) -> BatteryAgents:
    """The static part of the owners' steps for ``step`` on a market whose costs are divided by ``scale``."""
    n = len(arr.sign)
    mask = owner_mask(n, step)
    sign = arr.sign[step.agent]
    pc, pd = step.charge_price / scale, step.discharge_price / scale
    s_lo, s_hi = step.d_lo - step.c_hi, step.d_hi - step.c_lo
    low = pc + pd >= 0
    kink = np.where(low, step.d_lo - step.c_lo, step.d_hi - step.c_hi)
    g_lo, g_hi = np.where(low, -pc, pd), np.where(low, pd, -pc)
    up = sign >= 0  # S = s for sellers, -s for buyers (passive owners idle, never reach the kernel)
    supply = np.column_stack([np.where(up, g_lo, -g_hi), np.where(up, g_hi, -g_lo),
                              np.where(up, s_lo, -s_hi), np.where(up, kink, -kink), np.where(up, s_hi, -s_lo)])
    owner = np.concatenate([arr.trade_buyer, arr.trade_seller])
    unit_of = np.full(n, -1)
    unit_of[step.agent] = np.arange(step.n_units)
    trading = (unit_of[owner] >= 0) & (arr.sign[owner] != 0)
    entries = np.flatnonzero(trading)
    entries = entries[np.argsort(unit_of[owner[entries]], kind="stable")]
    start = np.r_[0, np.cumsum(np.bincount(unit_of[owner[entries]], minlength=step.n_units))]
    return BatteryAgents(step, mask, sign, s_lo, s_hi, low, supply, entries, start, scale,
                         np.where(mask, 0.0, arr.sign))


def battery_update(bat: BatteryAgents, arr: MarketArrays, x: dict[str, np.ndarray], w_m: float,
                   target: dict[str, np.ndarray], t_lin: np.ndarray, t_quad: float, w_t: np.ndarray,
                   t_target: np.ndarray) -> None:
    """The owners' market step, into ``x`` (their ``p, q, t0``, trade sides, and ``s, c, d`` per agent).

    ``t_lin``, ``t_quad``, ``w_t``, ``t_target`` are the trade sides' cost and penalty as in
    :func:`market.admm.prox.prox_energy_balance` (costs divided by the scale); ``w_m`` is the penalty of
    ``p`` and ``q``."""
    step, scale = bat.step, bat.scale
    agent = step.agent
    owner = np.concatenate([arr.trade_buyer, arr.trade_seller])
    sign = bat.sign
    slope = arr.q_slope[agent]
    # q = q_hat + slope (sign e - p_hat): its penalty (w_m/2)(q - q_target)^2 joins e's cost
    r0 = arr.q_hat[agent] - slope * arr.p_hat[agent] - target["q"][agent]
    quad = arr.quad[agent] / scale + 0.5 * w_m * slope**2
    lin = arr.lin[agent] / scale + w_m * slope * sign * r0
    price = arr.uc_price[agent] / scale
    off = price - w_m * sign * target["p"][agent]
    e_max = np.where(sign != 0, arr.e_max[agent], 0.0)
    terms = np.column_stack([quad, lin, off, e_max, bat.supply])
    k = bat.entries
    a_t = np.broadcast_to(2.0 * t_quad + w_t, t_target.shape)[k]
    b_t = (w_t * t_target)[k] - t_lin[k] + arr.uc_price[owner[k]] / scale
    active = sign != 0
    energy, supply, own, mu = battery_balance(terms, w_m, bat.start, a_t, b_t)
    unit_of_entry = np.repeat(np.arange(step.n_units), np.diff(bat.start))
    t = np.concatenate([x["tb"], x["ts"]])
    t[k] = np.maximum(0.0, (b_t - mu[unit_of_entry]) / a_t)
    bought = np.bincount(unit_of_entry, t[k], minlength=step.n_units)
    s = np.where(active, sign * supply, np.clip(0.0, bat.s_lo, bat.s_hi))  # a passive owner's battery idles
    m = len(arr.trade_buyer)
    x["tb"], x["ts"] = t[:m], t[m:]
    x["p"] = x["p"].copy()
    x["p"][agent] = np.where(active, sign * energy, 0.0)
    x["t0"] = x["t0"].copy()
    x["t0"][agent] = np.where(active, np.maximum(0.0, energy - bought), 0.0)
    x["q"] = x["q"].copy()
    x["q"][agent] = arr.q_hat[agent] + slope * (np.where(active, sign * own, 0.0) - arr.p_hat[agent])
    c = np.where(bat.charge_low, np.maximum(step.c_lo, step.d_lo - s), np.minimum(step.c_hi, step.d_hi - s))
    c = np.clip(c, step.c_lo, step.c_hi)
    n = len(arr.sign)
    x["s"], x["c"], x["d"], x["battery_price"] = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    x["s"][agent] = s
    x["c"][agent] = c
    x["d"][agent] = np.clip(s + c, step.d_lo, step.d_hi)
    # marginal value of the owner's traded energy (cent per p.u.): prices a gated limit (see gate_binding)
    x["battery_price"][agent] = np.where(active, (mu - off - w_m * energy) * scale, 0.0)


def gate_binding(bat: BatteryAgents, x: dict[str, np.ndarray], kappa: float, tol: float) -> int:
    """Gated limits (threshold-closed, :class:`BatteryStep`) whose multiplier exceeds ``tol`` cent/kWh: charging
    would pay ``-(pc + sign lambda)`` per p.u., discharging ``sign lambda - pd``."""
    step = bat.step
    lam = x["battery_price"][step.agent] * bat.sign
    duals = np.r_[-(step.charge_price + lam), lam - step.discharge_price] / kappa
    return int(np.sum(step.gated & (duals > tol)))
