r"""Drift-plus-penalty (Lyapunov) storage control: queues, admissible weights and the performance bound.

Notation (per unit u; energies in kWh, prices in cent/kWh, one interval of ``dt`` hours): stored energy ``E``,
window ``[E_lo, E_hi]``, charge ``c`` and discharge ``d`` within their ratings, energy step
``a = kappa (eta_c c - d / eta_d)`` with ``a_c = kappa eta_c c_max`` and ``a_d = kappa d_max / eta_d`` the
largest steps up and down. The market cost of interval t is ``F_t`` (the clearing's welfare cost, cent).

**Per-interval problem.** A shifted virtual queue ``Q_u = E_u - theta_u`` per unit; each interval minimise

    F_t(x, c, d) + sum_u Q_u(t) a_u / V_u

over that interval's market and network constraints and the units' power limits: no time coupling is left,
so every interval is one clearing. ``V_u`` (kWh^2/cent) weighs cost against the queue.

**SoC bounds by construction.** Let ``pi`` be the marginal cost (cent/kWh at the bus) of the energy a unit
draws. Charging ``c > 0`` is optimal only if ``pi + Q eta_c / V_u <= 0``, discharging only if
``-pi - Q / (eta_d V_u) <= 0``. With ``pi`` in ``[p_min, p_max]`` a unit therefore charges only when
``Q <= g_c = -V_u p_min / eta_c`` and discharges only when ``Q >= g_d = -V_u p_max eta_d``. These two
thresholds are imposed as constraints (a unit past its threshold gets a zero power limit), so they hold
whatever the prices are, and then

- charging only when ``E <= theta + g_c`` gives ``E(t+1) <= theta + g_c + a_c <= E_hi`` if
  ``theta <= E_hi - a_c + V_u p_min / eta_c``;
- discharging only when ``E >= theta + g_d`` gives ``E(t+1) >= E_lo`` if
  ``theta >= E_lo + a_d + V_u p_max eta_d``.

Such a shift exists iff ``V_u <= V_max,u = (E_hi - E_lo - a_c - a_d) / (eta_d p_max - p_min / eta_c)``. A V
above it (or a window narrower than one full charge plus one full discharge step) is refused. When the
prices stay in range the thresholds never bind (they are the optimality conditions above) and the
controller is plain drift-plus-penalty; a threshold that binds (its multiplier is non-zero) means a price
left the range, and the run counts it (``gate_binding``).

**The bound.** ``Q(t+1)^2 = Q(t)^2 + 2 Q(t) a(t) + a(t)^2`` and ``a^2 <= 2 B_u``, ``B_u = max(a_c, a_d)^2 / 2``.
Any action of interval t that meets that interval's constraints, in particular the offline optimum's
``(x*, a*)``, has a per-interval objective no lower than the controller's. Summed over T intervals:

    sum_t F_t <= sum_t F*_t + sum_u [T B_u + (Q_u(0)^2 - Q_u(T)^2) / 2 + sum_t Q_u(t) a*_u(t)] / V_u

(Neely's drift-plus-penalty argument, on the sample path instead of in expectation: with i.i.d. states the
last sum vanishes against a stationary policy and the gap is ``B/V`` per interval). Adding the terminal
charges of both runs gives ``online <= offline + bound``, computed in every run from the offline
trajectory: a theorem whenever no threshold binds, so a violation is a bug.

**Variants.** ``standard`` is the textbook form (Huang & Neely): one V for all units, the shift at the low
end ``theta = E_lo + V p_max + a_d`` and ``V <= min_u (E_hi - E_lo - a_c - a_d) / (p_max - p_min)`` (no
efficiency in the thresholds). ``modified`` (seed 000's "minimise the performance gap") tunes each unit:
its own weight ``V_u = V V_max,u / V_max`` (every unit at its own largest admissible weight when
``V = V_max = min_u V_max,u``; the ``B_u / V_u`` term falls as ``V_u`` grows) and, in the interval its shift
may take, the ``theta_u`` closest to its initial energy, which minimises the ``Q_u(0)^2 / (2 V_u)`` term.

**Prices.** ``p_min = 0`` (an agent can always absorb energy by curtailing generation or serving more of its
own load, at a non-negative cost) and ``p_max = PRICE_MARGIN x`` the highest retail price of the run (the
most a buyer pays the utility, plus the losses of bringing it there).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from market.errors import InstanceError
from market.problem.storage import StorageArrays

VARIANTS = ("modified", "standard")
#: p_max over the highest retail price: a buyer's marginal price is its retail price plus the marginal
#: losses of delivering it. Whether prices stayed in range is checked in every interval (``gate_binding``).
PRICE_MARGIN = 1.25


class ControllerError(InstanceError):
    """A controller setting that cannot be used (e.g. a weight V outside the admissible range)."""


@dataclass(frozen=True)
class LyapunovParameters:
    """Everything the controller needs per unit, derived once from the units and the price range."""

    variant: str
    V: float
    v_max: float
    weight: np.ndarray  # V_u, kWh^2/cent
    theta: np.ndarray  # kWh
    charge_gate: np.ndarray  # charging allowed only while Q <= charge_gate (kWh)
    discharge_gate: np.ndarray  # discharging allowed only while Q >= discharge_gate (kWh)
    B: np.ndarray  # kWh^2
    p_min: float
    p_max: float


def admissible_v(arr: StorageArrays, p_min: float, p_max: float, variant: str) -> np.ndarray:
    """The largest admissible weight of every unit (kWh^2/cent); refuse units too small for their ratings."""
    if variant not in VARIANTS:
        raise ControllerError(f"lyapunov variant: expected one of {VARIANTS}, got {variant!r}")
    if not 0 <= p_min < p_max:
        raise ControllerError(f"price range: expected 0 <= p_min < p_max, got {p_min}, {p_max}")
    a_c, a_d = arr.step_max()
    margin = arr.soc_max - arr.soc_min - a_c - a_d
    if np.any(margin <= 0):
        k = int(np.flatnonzero(margin <= 0)[0])
        raise ControllerError(f"storage unit at bus {arr.bus[k]}: its SoC window ({arr.soc_max[k] - arr.soc_min[k]:.3g}"
                              f" kWh) must exceed one full charge step plus one full discharge step "
                              f"({a_c[k] + a_d[k]:.3g} kWh) for the Lyapunov controller to keep it in bounds")
    slope = (arr.eta_d * p_max - p_min / arr.eta_c) if variant == "modified" else np.full(arr.n_units, p_max - p_min)
    return margin / slope


def lyapunov_parameters(arr: StorageArrays, V: float | None, p_min: float, p_max: float,
                        variant: str = "modified") -> LyapunovParameters:
    """Weights, shifts and thresholds for weight ``V`` (default: the largest admissible), or a clear refusal."""
    if arr.n_units == 0:
        raise ControllerError("the Lyapunov controller needs storage units (--storage-share > 0)")
    v_unit = admissible_v(arr, p_min, p_max, variant)
    v_max = float(v_unit.min())
    V = v_max if V is None else float(V)
    if not (np.isfinite(V) and 0 < V <= v_max * (1 + 1e-12)):
        raise ControllerError(f"--V {V:g}: expected 0 < V <= {v_max:.6g} (kWh^2/ct), the largest weight that keeps "
                              f"every unit's SoC within its bounds by construction ({variant} controller)")
    V = min(V, v_max)
    a_c, a_d = arr.step_max()
    if variant == "standard":
        weight = np.full(arr.n_units, V)
        theta = arr.soc_min + V * p_max + a_d
        charge_gate = -weight * p_min
        discharge_gate = -weight * p_max
    else:
        weight = V * v_unit / v_max
        charge_gate = -weight * p_min / arr.eta_c
        discharge_gate = -weight * p_max * arr.eta_d
        lo = arr.soc_min + a_d - discharge_gate
        hi = arr.soc_max - a_c - charge_gate
        theta = np.clip(arr.soc0, lo, np.maximum(lo, hi))
    return LyapunovParameters(variant, V, v_max, weight, theta, charge_gate, discharge_gate,
                              np.maximum(a_c, a_d) ** 2 / 2, p_min, p_max)


def performance_bound(params: LyapunovParameters, queue: np.ndarray, offline_step: np.ndarray) -> float:
    """The drift-plus-penalty bound on ``sum_t F_t - sum_t F*_t`` (cent) for queues ``queue`` (units, T + 1)
    of the online run and the offline optimum's energy steps ``offline_step`` (units, T), in kWh."""
    n_t = offline_step.shape[1]
    per_unit = (n_t * params.B + (queue[:, 0] ** 2 - queue[:, -1] ** 2) / 2
                + np.sum(queue[:, :-1] * offline_step, axis=1))
    return float(np.sum(per_unit / params.weight))
