"""Closed-form proximal steps of the agents' local (x-) updates, vectorized over agents.

Each function solves ``min_x f(x) + (W/2)(x - target)^2`` over a simple set for many independent scalars or
small vectors at once. ``tests/market/test_admm_prox.py`` checks each against a cvxpy solve of the same
problem on random data.
"""

from __future__ import annotations

import numpy as np

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
                        t_quad: float, w_t: np.ndarray, t_target: np.ndarray, iterations: int = 30
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each agent's market step: its net injection, its side of every trade and its utility trade.

    Per agent ``j`` with ``E = sign_j p_j`` (energy bought or sold)::

        min  quad E^2 + lin E + price t0 + sum_k (t_lin_k t_k + t_quad t_k^2)
             + (w_p/2)(p - p_target)^2 + sum_k (w_t/2)(t_k - t_target_k)^2
        s.t. E = sum_k t_k + t0,  t >= 0,  t0 >= 0,  0 <= E <= e_max

    over the trades ``k`` with ``owner[k] == j`` (passive agents, ``sign = 0``, keep everything at 0).
    With a multiplier ``mu >= 0`` on ``sum_k t_k <= E`` every ``t_k`` and ``E`` is a clipped affine function
    of ``mu``; ``sum_k t_k(mu) - E(mu)`` is decreasing and piecewise linear, so ``mu`` is 0 or its root:
    bisection brackets the root within one linear piece, which is then solved exactly.
    """
    n = len(sign)
    a_e = 2.0 * quad + w_p
    b_e = w_p * sign * p_target - lin - price
    a_t = 2.0 * t_quad + w_t
    b_t = w_t * t_target - t_lin + price[owner]

    def excess(mu: np.ndarray) -> np.ndarray:
        bought = np.bincount(owner, np.maximum(0.0, (b_t - mu[owner]) / a_t), minlength=n)
        return bought - np.clip((b_e + mu) / a_e, 0.0, e_max)

    mu = np.zeros(n)
    active = (excess(mu) > 0) & (sign != 0)
    if active.any():
        hi = np.zeros(n)
        np.maximum.at(hi, owner, b_t)  # beyond this no trade is positive
        lo = np.zeros(n)
        for _ in range(iterations):
            mid = 0.5 * (lo + hi)
            positive = excess(mid) > 0
            lo = np.where(positive, mid, lo)
            hi = np.where(positive, hi, mid)
        mu = np.where(active, _exact_root(0.5 * (lo + hi), lo, hi, owner, a_t, b_t, a_e, b_e, e_max), 0.0)
    t = np.where(sign[owner] != 0, np.maximum(0.0, (b_t - mu[owner]) / a_t), 0.0)
    bought = np.bincount(owner, t, minlength=n)
    energy = np.where(sign != 0, np.clip((b_e + mu) / a_e, 0.0, e_max), 0.0)
    energy = np.where(mu > 0, np.minimum(bought, e_max), energy)  # binding balance: exact, not to round-off
    t0 = np.maximum(0.0, energy - bought)
    return sign * energy, t, t0


def _exact_root(mu: np.ndarray, lo: np.ndarray, hi: np.ndarray, owner: np.ndarray, a_t: np.ndarray, b_t: np.ndarray,
                a_e: np.ndarray, b_e: np.ndarray, e_max: np.ndarray) -> np.ndarray:
    """Root of ``sum_k t_k(mu) = E(mu)`` on the linear piece that contains ``mu``; ``mu`` if it falls outside."""
    n = len(mu)
    on = b_t - mu[owner] > 0
    count = np.bincount(owner, on / a_t, minlength=n)
    total = np.bincount(owner, np.where(on, b_t / a_t, 0.0), minlength=n)
    energy = (b_e + mu) / a_e
    interior = (energy > 0) & (energy < e_max)
    with np.errstate(divide="ignore", invalid="ignore"):
        root = np.where(interior, (total - b_e / a_e) / (count + 1.0 / a_e),
                        np.where(energy >= e_max, (total - e_max) / count, mu))
    return np.where(np.isfinite(root) & (root >= lo) & (root <= hi), root, mu)
