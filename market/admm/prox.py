"""Closed-form proximal steps of the agents' local (x-) updates, vectorized over agents.

Each function solves ``min_x f(x) + (W/2)(x - target)^2`` over a simple set for many independent scalars or
small vectors at once. ``tests/market/test_admm_prox.py`` checks each against a cvxpy solve of the same
problem on random data.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from physical.cache_folders import ensure_kernel_cache

ensure_kernel_cache(__file__)  # before the kernels: numba picks their cache folder as they are defined

SQRT2 = np.sqrt(2.0)


def project_soc(t: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean projection of ``(t, u)`` (``u`` has one row per cone) onto ``{||u|| <= t}``."""
    norm = np.linalg.norm(u, axis=1)
    inside = norm <= t
    below = norm <= -t
    scale = np.where(inside | below, 0.0, (t + norm) / (2.0 * np.where(norm > 0, norm, 1.0)))
    t_new = np.where(inside, t, np.where(below, 0.0, scale * norm))
    u_new = np.where(inside[:, None], u, scale[:, None] * u)
    return t_new, u_new


def project_branch_cone(w: np.ndarray, l: np.ndarray, P: np.ndarray, Q: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Projection onto ``{P^2 + Q^2 <= w l, w >= 0, l >= 0}`` in the metric ``diag(1, 1, 2, 2)``.

    With ``a = (w + l)/sqrt2``, ``b = (w - l)/sqrt2`` and ``(sqrt2 P, sqrt2 Q)`` the set is the standard
    second-order cone ``||(b, sqrt2 P, sqrt2 Q)|| <= a`` and the map is an isometry of that metric, so the
    projection is the closed-form cone projection (the ADMM weights P and Q twice for this reason).
    """
    a = (w + l) / SQRT2
    u = np.column_stack([(w - l) / SQRT2, SQRT2 * P, SQRT2 * Q])
    a, u = project_soc(a, u)
    return (a + u[:, 0]) / SQRT2, (a - u[:, 0]) / SQRT2, u[:, 1] / SQRT2, u[:, 2] / SQRT2


def project_scaled_branch_cone(w: np.ndarray, l: np.ndarray, P: np.ndarray, Q: np.ndarray, voltage: float,
                               current: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Projection onto the branch cone in the metric ``diag(sv, sl, 2 sqrt(sv sl), 2 sqrt(sv sl))``.

    Rescaling ``w~ = sqrt(sv) w``, ``l~ = sqrt(sl) l``, ``P~ = (sv sl)^(1/4) P`` keeps ``w~ l~ >= P~^2 + Q~^2``
    and turns the metric into ``diag(1, 1, 2, 2)``, handled by :func:`project_branch_cone`.
    """
    a, b, c = np.sqrt(voltage), np.sqrt(current), (voltage * current) ** 0.25
    w2, l2, P2, Q2 = project_branch_cone(a * w, b * l, c * P, c * Q)
    return w2 / a, l2 / b, P2 / c, Q2 / c


def prox_energy_balance(sign: np.ndarray, quad: np.ndarray, lin: np.ndarray, price: np.ndarray, w_p: float,
                        p_target: np.ndarray, e_max: np.ndarray, owner: np.ndarray, t_lin: np.ndarray,
                        t_quad: float, w_t: np.ndarray, t_target: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each agent's market step: its net injection, its side of every trade and its utility trade.

    Per agent ``j`` with ``E = sign_j p_j`` (energy bought or sold)::

        min  quad E^2 + lin E + price t0 + sum_k (t_lin_k t_k + t_quad t_k^2)
             + (w_p/2)(p - p_target)^2 + sum_k (w_t_k/2)(t_k - t_target_k)^2
        s.t. E = sum_k t_k + t0,  t >= 0,  t0 >= 0,  0 <= E <= e_max

    over the trades ``k`` with ``owner[k] == j`` (passive agents, ``sign = 0``, keep everything at 0).
    With a multiplier ``mu >= 0`` on ``sum_k t_k <= E``, ``t_k(mu) = max(0, (b_k - mu) / a_k)`` and
    ``E(mu)`` is a clipped affine function, so ``D(mu) = sum_k t_k(mu) - E(mu)`` is decreasing and
    piecewise linear with kinks at the ``b_k``. ``mu`` is 0 if ``D(0) <= 0``; otherwise the trades sorted by
    ``b_k`` give ``D`` at every kink, the sign change locates the piece and its linear equation the root.
    """
    n = len(sign)
    a_e = 2.0 * quad + w_p
    b_e = w_p * sign * p_target - lin - price
    a_t = np.broadcast_to(2.0 * t_quad + w_t, t_target.shape)
    b_t = w_t * t_target - t_lin + price[owner]
    e_cap = np.where(sign != 0, e_max, 0.0)

    def energy(mu: np.ndarray) -> np.ndarray:
        return np.clip((b_e + mu) / a_e, 0.0, e_cap)

    bought0 = np.bincount(owner, np.maximum(0.0, b_t) / a_t, minlength=n)
    mu = np.zeros(n)
    active = (bought0 > energy(mu)) & (sign != 0)
    if active.any():
        mine = active[owner]  # only the active agents' trades take part in the root search
        mu = np.where(active, _balance_root(owner[mine], a_t[mine], b_t[mine], a_e, b_e, e_cap, n), 0.0)
    t = np.where(sign[owner] != 0, np.maximum(0.0, (b_t - mu[owner]) / a_t), 0.0)
    bought = np.bincount(owner, t, minlength=n)
    e = np.where(mu > 0, np.minimum(bought, e_cap), energy(mu))  # binding balance: exact, not to round-off
    return sign * e, t, np.maximum(0.0, e - bought)


#: Trades sorted by insertion before the merges (:func:`_sort_falling`)
RUN = 8


def warm_up() -> None:
    """Load (or compile) the compiled root, so that a timed run does not pay for it (a few hundred ms)."""
    one = np.ones(1)
    _balance_root(np.zeros(1, dtype=np.int64), one, one, one, one, one, 1)


@njit(cache=True)
def _balance_root(owner: np.ndarray, a_t: np.ndarray, b_t: np.ndarray, a_e: np.ndarray, b_e: np.ndarray,
                  e_cap: np.ndarray, n: int) -> np.ndarray:
    """Root of ``D(mu)`` for every agent that has trades (meaningful where ``D(0) > 0``), exactly: per agent,
    its trades by kink from the highest down; ``D`` at the kinks rises along that order, so the kinks where it
    is negative are the top ``k`` trades, the ones on at the root, which lies on the linear piece below them.
    Compiled (numba): a loop over a few trades per agent, where numpy needed a global sort every iteration.
    Plain loops only (the trades grouped by a counting pass, each group sorted by :func:`_sort_falling`):
    numba's ``bincount``, ``argsort`` and fancy indexing took most of this kernel's compile time on first use."""
    mu = np.zeros(n)
    start = np.zeros(n + 1, dtype=np.int64)
    for i in range(owner.size):
        start[owner[i] + 1] += 1
    for j in range(n):
        start[j + 1] += start[j]
    fill = start.copy()
    order = np.empty(owner.size, dtype=np.int64)  # each agent's trades by falling b_t, ties in their order
    for i in range(owner.size):
        order[fill[owner[i]]] = i
        fill[owner[i]] += 1
    scratch = np.empty(owner.size, dtype=np.int64)
    for j in range(n):
        _sort_falling(order, start[j], start[j + 1], b_t, scratch)
    for j in range(n):
        first, total = start[j], start[j + 1] - start[j]
        if total == 0:
            continue
        s_inv = s_rat = 0.0
        k = 0
        while k < total:  # D at the k-th kink with the k trades above it on
            b = b_t[order[first + k]]
            if s_rat - s_inv * b - min(max((b_e[j] + b) / a_e[j], 0.0), e_cap[j]) >= 0.0:
                break
            s_inv += 1.0 / a_t[order[first + k]]
            s_rat += b / a_t[order[first + k]]
            k += 1
        top = b_t[order[first]]
        if k == 0:  # no kink below zero excess: every trade off
            mu[j] = max(top, 0.0)
            continue
        upper = b_t[order[first + k - 1]]
        lower = b_t[order[first + k]] if k < total else 0.0
        interior = (s_rat - b_e[j] / a_e[j]) / (s_inv + 1.0 / a_e[j])
        e_int = (b_e[j] + interior) / a_e[j]
        if 0.0 < e_int < e_cap[j]:
            root = interior
        elif e_int >= e_cap[j]:
            root = (s_rat - e_cap[j]) / s_inv
        else:
            root = s_rat / s_inv
        mu[j] = max(min(max(root, lower), upper), 0.0)
    return mu


@njit(cache=True)
def _sort_falling(order: np.ndarray, lo: int, hi: int, key: np.ndarray, scratch: np.ndarray) -> None:
    """Sort ``order[lo:hi]`` by falling ``key``, ties kept in their order, in plain loops: runs of ``RUN`` by
    insertion, then merged bottom-up -- O(t log t) for an agent's ``t`` trades, which reach hundreds when every
    pair may trade (insertion alone was 3-7x numpy's sort there)."""
    for left in range(lo, hi, RUN):
        for i in range(left + 1, min(left + RUN, hi)):
            item, k = order[i], i
            while k > left and key[order[k - 1]] < key[item]:
                order[k] = order[k - 1]
                k -= 1
            order[k] = item
    width = RUN
    while width < hi - lo:
        for left in range(lo, hi, 2 * width):
            mid, end = min(left + width, hi), min(left + 2 * width, hi)
            a, b = left, mid
            for k in range(left, end):
                if a < mid and (b >= end or key[order[b]] <= key[order[a]]):
                    scratch[k] = order[a]
                    a += 1
                else:
                    scratch[k] = order[b]
                    b += 1
        for k in range(lo, hi):
            order[k] = scratch[k]
        width *= 2


#: Columns of the per-agent table of :func:`battery_balance`: the own quantity's cost ``quad e^2 + lin e``
#: (``0 <= e <= e_max``), ``off`` = utility price minus the market penalty's pull (``mu`` at which the traded
#: energy's marginal value is zero), and the battery's supply of traded energy, a step function of its price
#: ``lambda``: ``levels[0]`` below ``jumps[0]``, ``levels[1]`` between, ``levels[2]`` above ``jumps[1]``.
BATTERY_COLUMNS = ("quad", "lin", "off", "e_max", "jump_lo", "jump_hi", "level_0", "level_1", "level_2")


def battery_balance(terms: np.ndarray, w_p: float, start: np.ndarray, a_t: np.ndarray, b_t: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The market step of agents with a battery behind the meter, exactly.

    Per agent (one row of ``terms``, :data:`BATTERY_COLUMNS`; its trades ``start[j]:start[j + 1]`` of ``a_t``,
    ``b_t``, as in :func:`prox_energy_balance`) the traded energy is ``E = e + S``, own quantity plus battery
    supply ``S`` (the battery output as seen from the agent's side of the meter)::

        min  quad e^2 + lin e + g(S) + price t0 + (w_p / 2)(E - p_target)^2 + trade terms
        s.t. E = sum_k t_k + t0,  t >= 0,  t0 >= 0,  0 <= e <= e_max

    with ``g`` the battery's convex piecewise-linear cost (:mod:`market.admm.battery`). With ``lambda`` the
    marginal value of traded energy, ``e(lambda)`` is a clipped line and ``S(lambda)`` a step function, so
    the energy supplied at multiplier ``mu`` of ``sum_k t_k <= E`` is the fixed point
    ``E = e(lambda) + S(lambda)``, ``lambda = mu - off - w_p E``: continuous, non-decreasing and
    piecewise linear in ``mu`` with knots at the images of the kinks of ``e`` and ``S`` (8 at most). ``D(mu) =
    sum_k t_k(mu) - E(mu)`` is then piecewise linear and decreasing with kinks at those knots and the trades'
    ``b_k``: the root is found exactly by bisection over the kinks and a linear solve on its piece.

    Returns ``E``, ``S``, ``e`` and ``mu`` per agent.
    """
    out = _battery_balance(np.ascontiguousarray(terms, dtype=np.float64), float(w_p), start.astype(np.int64),
                           np.ascontiguousarray(a_t, dtype=np.float64), np.ascontiguousarray(b_t, dtype=np.float64))
    return out[:, 0], out[:, 1], out[:, 2], out[:, 3]


@njit(cache=True)
def _own_energy(row: np.ndarray, lam: float, right: bool) -> float:
    """``e(lambda)`` (left or right limit where ``quad = 0`` makes it jump)."""
    quad, lin, e_max = row[0], row[1], row[3]
    if quad > 0.0:
        return min(max((lam - lin) / (2.0 * quad), 0.0), e_max)
    if lam > lin or (right and lam == lin):
        return e_max
    return 0.0


@njit(cache=True)
def _battery_supply(row: np.ndarray, lam: float, right: bool) -> float:
    """``S(lambda)``, left or right limit at a jump."""
    lo, hi = row[4], row[5]
    if lam < lo or (not right and lam == lo):
        return row[6]
    if lam < hi or (not right and lam == hi):
        return row[7]
    return row[8]


@njit(cache=True)
def _excess(mu: float, a: np.ndarray, b: np.ndarray, knot_mu: np.ndarray, knot_e: np.ndarray) -> float:
    """``D(mu)``: what the trades take minus what the agent supplies."""
    total = 0.0
    for k in range(a.size):
        if b[k] > mu:
            total += (b[k] - mu) / a[k]
    return total - np.interp(mu, knot_mu, knot_e)


@njit(cache=True)
def _battery_balance(terms: np.ndarray, w_p: float, start: np.ndarray, a_t: np.ndarray, b_t: np.ndarray
                     ) -> np.ndarray:
    n = terms.shape[0]
    out = np.zeros((n, 4))
    knot_mu, knot_e, lam = np.empty(8), np.empty(8), np.empty(4)
    for j in range(n):
        row = terms[j]
        lam[0], lam[1], lam[2], lam[3] = row[1], row[1] + 2.0 * row[0] * row[3], row[4], row[5]
        lam.sort()
        for i in range(4):
            for side in range(2):
                e = _own_energy(row, lam[i], side == 1) + _battery_supply(row, lam[i], side == 1)
                knot_mu[2 * i + side] = lam[i] + w_p * e + row[2]
                knot_e[2 * i + side] = e
        a, b = a_t[start[j]:start[j + 1]], b_t[start[j]:start[j + 1]]
        mu = 0.0
        if _excess(0.0, a, b, knot_mu, knot_e) > 0.0:
            kinks = np.concatenate((b, knot_mu))
            kinks = np.sort(kinks[kinks > 0.0])
            lo, hi = 0, kinks.size - 1  # D > 0 at 0; find the first kink where D <= 0
            if _excess(kinks[hi], a, b, knot_mu, knot_e) > 0.0:
                mu = kinks[hi]  # no root (the battery boxes leave no feasible energy): the last kink
            else:
                while lo < hi:
                    mid = (lo + hi) // 2
                    if _excess(kinks[mid], a, b, knot_mu, knot_e) > 0.0:
                        lo = mid + 1
                    else:
                        hi = mid
                left = kinks[hi - 1] if hi > 0 else 0.0
                d_left = _excess(left, a, b, knot_mu, knot_e)
                d_right = _excess(kinks[hi], a, b, knot_mu, knot_e)
                mu = left + d_left * (kinks[hi] - left) / (d_left - d_right) if d_left > d_right else kinks[hi]
        energy = np.interp(mu, knot_mu, knot_e)
        if mu > 0.0:  # binding balance: the trades' sum, exactly
            bought = 0.0
            for k in range(a.size):
                if b[k] > mu:
                    bought += (b[k] - mu) / a[k]
            energy = bought
        # split E into own quantity and battery supply on mu's piece of E(mu): between the two knots of one
        # kink of S (lambda fixed at it) the supply takes what the own quantity leaves; elsewhere S is flat
        piece = np.searchsorted(knot_mu, mu, side="right") - 1
        if piece < 0:
            supply = _battery_supply(row, lam[0], False)
        elif piece >= 7:
            supply = _battery_supply(row, lam[3], True)
        elif piece % 2:
            supply = _battery_supply(row, lam[piece // 2], True)
        else:
            at = lam[piece // 2]
            supply = min(max(energy - _own_energy(row, at, False), _battery_supply(row, at, False)),
                         _battery_supply(row, at, True))
        out[j, 0] = energy
        out[j, 1] = supply
        out[j, 2] = min(max(energy - supply, 0.0), row[3])
        out[j, 3] = mu
    return out
