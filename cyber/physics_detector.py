"""The paper's detector (seed 001, Sec. III-B/C, Algorithm 1), one per receiving agent: physics-informed
BHT-ARIMA forecasts (:mod:`cyber.physics_tensor`), a threshold set by the false-alarm rate, replacement.

Each agent keeps a window of the last ``L`` iterations of what it observed -- its own values and every field it
received, cleaned (flagged values replaced). At every iteration:

1. *forecast* every slot of the window by the physics-informed tensor learning, whose ``Phi_i`` holds the
   equalities of the agent's DistFlow group over its window (:func:`physics_rows`); refitted every
   ``refit_every`` iterations (warm from the last fit), slid by one coupled core update in between;
2. *estimate* (18): per slot, the forecast, unless its recent errors are larger than those of repeating the
   last trusted value (the forecast is then "relatively inaccurate" and the last trusted value stands in);
3. *decision* (16a-b): flag ``|x - estimate| > c(alpha) sigma + floor``, ``sigma`` the robust scale (1.4826 x
   median) of the slot's last ``memory`` errors, ``c(alpha)`` the multiplier whose long-run false-alarm rate is
   ``alpha`` for Gaussian errors screened by this very rule (:func:`threshold_multiplier`: the scale is itself
   estimated from nine errors and fed the cleaned ones, so the plug-in ``z_(1 - alpha/2)`` would flag more);
4. *replacement* (17): :func:`cyber.screening.clean` -- far outliers replaced by the estimate, values just
   outside the band pulled onto its edge; every error goes into its source's scale, censored at the bound.

``Phi_i`` only holds equalities that the shared values satisfy at the market's solution: the x-phase flows and
voltage are the senders' own variables, but the trade messages carry each side's iterate *plus its scaled dual*
(the trade's price, nonzero at the solution) and the targets a copy *minus* its dual, so reciprocity
``t_buyer = t_seller`` and the copy equalities do not hold on what is shared and are left out.

Why the physics term adds little (measured): it shapes the forecast *difference* (the cores are of differenced
data), while an equality's violation -- noise, or an attack that shifts a flow from some iteration on -- sits in
the *level* the forecast integrates from. On series whose last channel is the sum of four others plus noise
(``tests/cyber/test_physics_tensor.py``), lam = 0 / 1 / 100 leaves the predicted difference violating the sum by
0.075 / 0.042 / 0.002 but the forecast by 0.62 either way, the violation of the last observed values. A
consistent attack is visible to the physics term in the one difference where it starts.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy.integrate import quad
from scipy.optimize import brentq
from scipy.special import gammaln

from cyber import physics_tensor
from cyber.physics_tensor import PhysicsTensorFit, PhysicsTensorModel
from cyber.screening import SlotMap, Verdict, clean
from cyber.tensor_detector import ErrorScale, Window
from market.admm.driver import Splitting
from market.admm.states import LOCAL, LOCAL_FIELDS
from market.instance import MarketInstance
from market.messages import MessageBatch

MAD_TO_SIGMA = 1.4826


def physics_rows(slots: SlotMap, flow_kind: str, voltage_kind: str, r: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``Phi`` of every agent over its observation slots, (agents, 4, width): the rows of its DistFlow group
    (``market.admm.layout``) that its window can evaluate --
    E1 ``p + P - r l - sum_children P_c = 0``, E2 its reactive twin, E3 ``v - w + 2 (r P + x Q) - (r^2 + x^2) l
    = 0`` and E4 ``w = v_parent``; ``r, x`` per agent. A row without its received values (no children's flows
    under a leaf, no parent voltage under the substation) keeps what it has: E1-E2 then hold on own values."""
    n, width = slots.n_agents, slots.width
    phi = np.zeros((n, 4, width))
    agents = np.arange(n)

    def own(name: str) -> np.ndarray:
        return slots.position[LOCAL, name]

    def put(row: int, agent: np.ndarray, slot: np.ndarray, value: np.ndarray | float) -> None:
        np.add.at(phi, (agent, row, slot), value)

    put(0, agents, own("p"), 1.0), put(0, agents, own("P"), 1.0), put(0, agents, own("l"), -r)
    put(0, slots.agent[flow_kind, "P"], slots.position[flow_kind, "P"], -1.0)
    put(1, agents, own("q"), 1.0), put(1, agents, own("Q"), 1.0), put(1, agents, own("l"), -x)
    put(1, slots.agent[flow_kind, "Q"], slots.position[flow_kind, "Q"], -1.0)
    put(2, agents, own("v"), 1.0), put(2, agents, own("w"), -1.0), put(2, agents, own("P"), 2 * r)
    put(2, agents, own("Q"), 2 * x), put(2, agents, own("l"), -(r**2 + x**2))
    receivers = slots.agent[voltage_kind, "v"]
    put(3, receivers, own("w")[receivers], 1.0)
    put(3, receivers, slots.position[voltage_kind, "v"], -1.0)
    return phi


@lru_cache(maxsize=32)
def threshold_multiplier(alpha: float, memory: int) -> float:
    """``c`` such that a Gaussian error ``e`` exceeds ``c sigma``, ``sigma`` 1.4826 x the median ``M`` of
    ``memory`` earlier absolute errors (odd ``memory``: the middle order statistic of half-normals), with
    probability ``alpha``: ``E[2 (1 - Phi(1.4826 c M))] = alpha`` over the density of ``M``. (The censoring of
    step 4 moves the median only when most of the nine errors exceed their bound: negligible.)"""
    k = memory // 2  # errors below the median
    log_norm = gammaln(memory + 1) - gammaln(k + 1) - gammaln(memory - k)

    def rate(c: float) -> float:
        def integrand(m: float) -> float:  # half-normal median density times the exceedance probability
            below, above = math.erf(m / math.sqrt(2)), math.erfc(m / math.sqrt(2))
            if below <= 0 or above <= 0:
                return 0.0
            log_density = log_norm + k * math.log(below) + (memory - k - 1) * math.log(above) - 0.5 * m * m \
                + math.log(2 / math.sqrt(2 * math.pi))
            return math.erfc(MAD_TO_SIGMA * c * m / math.sqrt(2)) * math.exp(log_density)
        return quad(integrand, 0.0, 12.0, limit=200)[0]

    return float(brentq(lambda c: rate(c) - alpha, 0.5, 50.0, xtol=1e-6))


class PhysicsTensorDetector:
    """Batched over agents; agent ``a`` uses only row ``a`` of every state array (and ``Phi`` row ``a``)."""

    def __init__(self, instance: MarketInstance, split: Splitting, *, physics: bool = True, window: int = 30,
                 model: PhysicsTensorModel | None = None, alpha: float = 0.1, floor: float = 1e-5,
                 refit_every: int = 10, memory: int = 9, min_history: int = 12) -> None:
        self.name = "tensor-paper" if physics else "tensor-paper-no-physics"
        base = model or PhysicsTensorModel()
        self.model = base if physics else PhysicsTensorModel(base.tucker, base.q, base.iterations, 0.0)
        tucker = self.model.tucker
        if not tucker.d + tucker.tau + self.model.lags + 2 <= min_history <= window:
            raise ValueError("tensor detector: min_history must cover d + tau + p + q + 2 and not exceed the window")
        if not 0 < alpha < 1 or floor < 0 or refit_every < 1 or memory < 3:
            raise ValueError("tensor detector: alpha in (0, 1), floor >= 0, refit_every >= 1, memory >= 3")
        self.min_history, self.refit_every, self.floor = min_history, refit_every, floor
        self.c = threshold_multiplier(alpha, memory)
        self.slots = SlotMap.of(split, LOCAL_FIELDS)
        n, m = self.slots.n_agents, self.slots.width
        buses = np.arange(1, n + 1)
        self.phi = physics_rows(self.slots, split.flow_kind, split.voltage_kind, instance.feeder.r_pu[buses],
                                instance.feeder.x_pu[buses])
        self.window = Window(n, m, window)
        self.current = np.zeros((n, m))  # this iteration's cleaned observation, completed as batches arrive
        self.trusted = np.zeros((n, m))  # the last iteration's: the fallback (18)
        self.forecast = np.zeros((n, m))
        self.has_forecast = False
        received = np.unique(np.concatenate([self.slots.flat(*key) for key in self.slots.agent if key[0] != LOCAL]))
        self.error = ErrorScale((n, m), memory, received)  # of the forecast
        self.step = ErrorScale((n, m), memory, received)  # of repeating the last trusted value
        self.fit: PhysicsTensorFit | None = None
        self.iteration = -1
        self._rows: dict[tuple[str, str], np.ndarray] = {}
        #: per iteration: mean absolute error of the estimate on every screened field (the paper's Fig. 8a)
        self.prediction_error: dict[int, float] = {}
        self._error_sum, self._error_count = 0.0, 0

    def screen(self, batch: MessageBatch) -> Verdict:
        if batch.kind == LOCAL:
            self._start_iteration(batch)
        values, flagged = {}, {}
        for name, received in batch.fields.items():
            flat = self.slots.flat(batch.kind, name)[batch.channel]
            if batch.kind == LOCAL:
                values[name], flagged[name] = received, np.zeros(len(received), dtype=bool)
            else:
                values[name], flagged[name] = self._decide(flat, received)
            self.current.ravel()[flat] = values[name]
        return Verdict(values, flagged, np.zeros(len(batch), dtype=bool))

    def _decide(self, flat: np.ndarray, received: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Steps 2-4 at raveled slots ``flat``."""
        last, sigma_last = self.trusted.ravel()[flat], self.step.sigma.ravel()[flat]
        if self.has_forecast:
            f, sigma_f = self.forecast.ravel()[flat], self.error.sigma.ravel()[flat]
            use = ~(sigma_f > sigma_last)
            estimate, sigma = np.where(use, f, last), np.where(use, sigma_f, sigma_last)
        else:
            estimate, sigma = last, sigma_last
        bound = np.where(np.isfinite(sigma), self.c * sigma + self.floor, np.inf)
        cleaned, flags = clean(received, estimate, bound)
        self._error_sum += float(np.abs(received - estimate).sum())
        self._error_count += len(received)
        if self.has_forecast:
            self.error.push(flat, self._censored(received - f, sigma_f))
        self.step.push(flat, self._censored(received - last, sigma_last))
        return cleaned, flags

    def _censored(self, error: np.ndarray, sigma: np.ndarray) -> np.ndarray:
        """An error as its scale learns it: at most the bound. Honest errors above it are fewer than half and
        leave the median where it is; an injection cannot blow the scale up in one step (nor, as a replaced
        value's zero error would, shrink it until every honest value is flagged)."""
        return np.minimum(np.abs(error), self.c * sigma + self.floor)

    def _start_iteration(self, local: MessageBatch) -> None:
        """Close the last iteration's observation into the window and forecast this one's (step 1)."""
        if self._error_count:
            self.prediction_error[self.iteration] = self._error_sum / self._error_count
        self._error_sum, self._error_count = 0.0, 0
        if self.iteration >= 0:
            self.window.append(self.current)
            np.copyto(self.trusted, self.current)
        self.iteration = local.iteration
        self.step.refresh()
        self.has_forecast = False
        w = self.window
        if w.filled < self.min_history:
            return
        tucker = self.model.tucker
        if self.fit is None or w.filled < w.length or self.iteration % self.refit_every == 0:
            start = self.fit if self.fit is not None and self.fit.cores.shape[1] == tucker.slices(w.filled) else None
            self.fit = physics_tensor.fit(w.last(w.filled), self.phi, self.model, start, self.slots.used)
        else:
            self.fit = physics_tensor.extend(self.fit, w.last(tucker.tau + tucker.d), self.model)
        self.forecast[:] = physics_tensor.predict(self.fit, w.last(tucker.d), self.model)
        self.has_forecast = True
        self.error.refresh()
