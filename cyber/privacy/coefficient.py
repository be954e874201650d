"""The random encryption coefficient of the two-party exchange and its feasible range.

Template (Ruan, Gao & Wang, IEEE TAC 2019): for a trade, the buyer sends ``E_b(-x_b)``, the seller returns
``E_b(a_s (x_s - x_b))``, the buyer decrypts and multiplies by its own ``a_b``; symmetrically the seller obtains
``a_b a_s (x_b - x_s)``. Both hold the same step ``theta = a_b a_s``; neither knows it. Here ``x`` is each
side's relaxed trade iterate and the pair's y-update becomes (``beta = w_s / (w_b + w_s)``, pair weights)

    y_b = x_b + beta theta d,        u_b <- u_b - beta theta d,         d = x_s - x_b
    y_s = x_s - (1 - beta) theta d,  u_s <- u_s + (1 - beta) theta d.

With ``theta = 1`` this *is* the ADMM's projection onto ``t_b = t_s`` in the pair's metric (given
``w_b u_b + w_s u_s = 0``, which the starting prices satisfy). For every ``theta`` the update keeps
``w_b u_b + w_s u_s = 0`` -- the buyer's and the seller's prices stay opposite -- so a fixed point has
``d = 0`` and is a KKT point of the clearing: the coefficient changes the path, not the optimum.

Feasible range (derived for the pair alone, without over-relaxation): let each side's local update respond to
its target with slope ``mu`` in ``(0, 1]`` (the prox of a convex cost: ``mu = rho w / (h + rho w)``). Writing
``D`` for the difference of the two sides' targets and ``E = u_s - u_b``, one iteration is
``D' = mu (1 - 2 theta) D - E``, ``E' = E + theta mu D``: characteristic polynomial
``z^2 - (1 + mu - 2 theta mu) z + mu (1 - theta)``. By the Jury conditions both roots lie in the unit disc
iff ``theta > 0``, ``theta < 1 + 1/mu`` and ``theta < 2/3 + 2 / (3 mu)``; over ``mu`` in ``(0, 1]`` that is
``0 < theta < 4/3`` (``beta`` drops out). ``tests/cyber/test_privacy_pairs.py`` checks the bound against the
eigenvalues of the full four-state pair iteration for unequal slopes and weights too. Over-relaxation changes
the iteration and is refused with privacy (:func:`check_relaxation`).

So each side draws its coefficient every iteration from ``[low, high]`` with ``high^2 < 4/3``. The lower end
is bounded too, by the stopping test rather than by convergence: the pair's residuals (eq. 19) are ``beta
theta d``, so with a small ``theta`` the test at the plain tolerances passes ``1/theta`` times farther from
agreement (measured, case15da noon, sweep: ``theta = 0.09`` stopped at a relative gap of 1.7e-4, ``theta`` in
``[0.25, 1.21]`` within 1.5e-6). ``low^2 >= 1/4`` keeps that slack within 4x. A range outside
``1/2 <= low <= high < sqrt(4/3)`` is refused. A coefficient travels in fixed point with
``COEFFICIENT_BITS`` fraction bits, so both sides' integer products are identical and their prices stay
exactly opposite.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cyber.errors import CyberError

THETA_MAX = 4.0 / 3.0
THETA_MIN = 0.25
COEFFICIENT_BITS = 16


def check_relaxation(relaxation: float) -> None:
    """The coefficient's range is derived without over-relaxation: refuse any other."""
    if relaxation != 1.0:
        raise CyberError(f"privacy: the encryption coefficient's feasible range is derived for relaxation 1 "
                         f"(no over-relaxation), got relaxation {relaxation:g}")


@dataclass(frozen=True)
class CoefficientRange:
    """Each side's coefficient is drawn uniformly from ``[low, high]``; their product ``theta`` must lie in
    ``[1/4, 4/3)``: ``1/2 <= low <= high < sqrt(4/3) = 1.1547``."""

    low: float = 0.5
    high: float = 1.1

    def __post_init__(self) -> None:
        ok = all(isinstance(v, int | float) and math.isfinite(v) for v in (self.low, self.high))
        if not (ok and self.low**2 >= THETA_MIN and self.low <= self.high and self.high**2 < THETA_MAX):
            raise CyberError(f"privacy coefficient range [{self.low}, {self.high}]: expected "
                             f"{math.sqrt(THETA_MIN):g} <= low <= high < {math.sqrt(THETA_MAX):.6f} (the product "
                             f"of the two sides' coefficients must lie in [1/4, 4/3): below 4/3 for the ADMM to "
                             f"converge, from 1/4 for its stopping test to mean what it says)")

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Coefficients in fixed point (integers, ``COEFFICIENT_BITS`` fraction bits), within the range."""
        scale = 1 << COEFFICIENT_BITS
        lo, hi = math.ceil(self.low * scale), math.floor(self.high * scale)
        return rng.integers(lo, max(hi, lo) + 1, size=size)
