"""The paper's detector (seed 001, Sec. III-B/C, Algorithm 1), one per receiving agent: physics-informed
BHT-ARIMA forecasts (:mod:`cyber.physics_tensor`), a threshold set by the false-alarm rate, replacement.

Each agent keeps a window of the last ``L`` iterations of what it observed -- its own values and every field it
received, cleaned (flagged values replaced). At every iteration:

1. *forecast* every slot of the window by the physics-informed tensor learning, whose ``Phi_i`` holds the
   equalities of the agent's DistFlow group over its window (:func:`physics_rows`); refitted every
   ``refit_every`` iterations (warm from the last fit), slid by one coupled core update in between;
2. *estimate* (18): per slot, the forecast, unless its recent errors are larger than those of repeating the
   last trusted value (the forecast is then "relatively inaccurate" and the last trusted value stands in);
3. *decision* (16a-b): flag ``|x - estimate| > c sigma + floor``, ``sigma`` the robust scale (1.4826 x median)
   of the slot's last ``memory`` errors, ``c`` the receiving agent's multiplier for that quantity (powers or
   voltages): the conformal ``1 - alpha`` quantile of the scores of its *own* values of the quantity (own
   ``P, Q`` for flows and trades, own ``v`` for voltages), scored by the same rule as if received
   (:class:`OwnScoreQuantile`). The multiplier exact for Gaussian errors (:func:`threshold_multiplier`) is the
   start, not the answer: the errors are heavy-tailed and come in phases (below);
4. *replacement* (17): :func:`cyber.screening.clean` -- far outliers replaced by the estimate, values just
   outside the band pulled onto its edge; every error goes into its source's scale, censored at the bound.

``Phi_i`` only holds equalities that the shared values satisfy at the market's solution: the x-phase flows and
voltage are the senders' own variables, but the trade messages carry each side's iterate *plus its scaled dual*
(the trade's price, nonzero at the solution) and the targets a copy *minus* its dual, so reciprocity
``t_buyer = t_seller`` and the copy equalities do not hold on what is shared and are left out.

Why a fixed multiplier is not calibrated (measured attack-free on case33bw at alpha 0.05, with the Gaussian
``c`` = 2.50): the standardised scores ``|e| / sigma`` of honest flows have quantiles 0.68 / 2.7 / 7.0 / 61
(50 / 90 / 95 / 99 %; a Gaussian's: 0.67 / 1.64 / 1.96 / 2.58); the false alarms come in runs (a flagged
honest flow is flagged again at the next iteration with probability 0.78, after an accepted one 0.018) in the
market's active phase (20-30 % of the honest flows flagged in iterations 50-800, none after 1600, where the
errors are below the floor); the fallback estimate (18), used for a quarter of the fields, is flagged at 18 %
against 4 % for the forecast. The agent's own flows, scored by the same rule, are flagged at 5.2 %, starting
runs about as often (2.2 % against 1.8 %) but shorter (flagged again with probability 0.60): a flagged received
value is replaced, so the next estimate starts off the honest track -- which the own values' shadow replays.

What the calibration leaves (``benchmarks/physics_ablation.py calibration``; case15da, case33bw, case85 at
seeds 0-1 on 2016-06-21 12:00, and with case69 at seed 0 on 2016-12-20 18:00): among the decisions the
multiplier can turn (error above the floor), honest flows and voltages are flagged at 1.2-2.3 alpha at alpha
0.05 and 0.1, and 1.7-4.8 alpha at 0.01, where a quantile needs 99 own scores (50-100 iterations of the
market's most active phase; the largest score so far stands in until then). Over whole runs, where 45-93 % of
the decisions fall below the floor and are never flagged, 0.17-1.58 alpha.

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
    """The own-score quantiles' start: ``c`` such that a Gaussian error ``e`` exceeds ``c sigma``, ``sigma`` 1.4826 x
    the median ``M`` of ``memory`` earlier absolute errors (odd ``memory``: the middle order statistic of
    half-normals), with probability ``alpha``: ``E[2 (1 - Phi(1.4826 c M))] = alpha`` over the density of ``M``.
    (The censoring of step 4 moves the median only when most of the nine errors exceed their bound: negligible.)"""
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


class OwnScoreQuantile:
    """Multipliers ``c`` from the empirical quantile of scores: per member (agent and quantity), the last
    ``history`` scores ``s = (|e| - floor) / sigma`` of decisions ``c`` could turn, and ``c`` their
    ``ceil((1 - alpha) (n + 1))``-th smallest of ``n`` -- the split-conformal quantile: a new score exchangeable
    with the stored ones exceeds it with probability at most ``alpha``, whatever their law (heavy tails
    included), and the sliding history follows the market's phases. Until a member has the ``1 / alpha - 1``
    scores this needs, the largest of its scores (exceeded with probability ``1 / (n + 1)``), at least
    ``start``, stands in. The detector feeds each agent with its *own* values only -- the same
    quantities it receives from its neighbours, under the same dynamics, but beyond any attacker's reach:
    injections cannot drag the multiplier that judges them (fed the received values, a sender injecting more
    often than ``alpha`` would become the quantile)."""

    def __init__(self, shape: tuple[int, ...], alpha: float, start: float, history: int) -> None:
        self.alpha, self.start = alpha, start
        self.scores = np.full((*shape, history), np.nan)
        self.count = np.zeros(shape, dtype=np.int64)
        self.multiplier = np.full(shape, start)

    def c(self, index: tuple[np.ndarray, int] | np.ndarray | slice) -> np.ndarray:
        return self.multiplier[index]

    def update(self, index: tuple[np.ndarray, int] | np.ndarray, scores: np.ndarray) -> None:
        """Store ``scores`` at members ``index`` (repeats in order), oldest first out."""
        rows = index if isinstance(index, tuple) else (index,)
        members = np.ravel_multi_index(tuple(np.broadcast_to(i, scores.shape) for i in rows), self.count.shape)
        ring, count = self.scores.reshape(-1, self.scores.shape[-1]), self.count.reshape(-1)
        for member, score in zip(members.tolist(), scores.tolist(), strict=True):
            ring[member, count[member] % ring.shape[1]] = score
            count[member] += 1

    def refresh(self) -> None:
        """Every member's multiplier from its stored scores."""
        n = np.minimum(self.count, self.scores.shape[-1])
        rank = np.ceil((1 - self.alpha) * (n + 1)).astype(np.int64)  # 1-based
        ordered = np.sort(self.scores, axis=-1)  # NaN (unfilled) last
        picked = np.take_along_axis(ordered, (np.minimum(rank, n) - 1)[..., None], axis=-1)[..., 0]
        self.multiplier = np.where(rank <= n, picked, np.fmax(picked, self.start))


class PhysicsTensorDetector:
    """Batched over agents; agent ``a`` uses only row ``a`` of every state array (and ``Phi`` row ``a``)."""

    def __init__(self, instance: MarketInstance, split: Splitting, *, physics: bool = True, window: int = 30,
                 model: PhysicsTensorModel | None = None, alpha: float = 0.1, floor: float = 1e-5,
                 refit_every: int = 10, memory: int = 9, min_history: int = 12, history: int = 200) -> None:
        self.name = "tensor-paper" if physics else "tensor-paper-no-physics"
        base = model or PhysicsTensorModel()
        self.model = base if physics else PhysicsTensorModel(base.tucker, base.q, base.iterations, 0.0)
        tucker = self.model.tucker
        if not tucker.d + tucker.tau + self.model.lags + 2 <= min_history <= window:
            raise ValueError("tensor detector: min_history must cover d + tau + p + q + 2 and not exceed the window")
        if not 0 < alpha < 1 or floor < 0 or refit_every < 1 or memory < 3 or history < 1:
            raise ValueError("tensor detector: alpha in (0, 1), floor >= 0, refit_every >= 1, memory >= 3, "
                             "history >= 1")
        self.min_history, self.refit_every, self.floor = min_history, refit_every, floor
        #: per agent and quantity (column 0: powers -- flows, trades; 1: voltages), calibrated on the agent's
        #: own values of that quantity
        self.rate = OwnScoreQuantile((split.n, 2), alpha, threshold_multiplier(alpha, memory), history)
        self.slots = SlotMap.of(split, LOCAL_FIELDS)
        n, m = self.slots.n_agents, self.slots.width
        buses = np.arange(1, n + 1)
        self.phi = physics_rows(self.slots, split.flow_kind, split.voltage_kind, instance.feeder.r_pu[buses],
                                instance.feeder.x_pu[buses])
        self.window = Window(n, m, window, self.slots.used)
        self.current = np.zeros((n, m))  # this iteration's cleaned observation, completed as batches arrive
        self.trusted = np.zeros((n, m))  # the last iteration's: the fallback (18)
        self.forecast = np.zeros((n, m))
        #: own calibration values: what the replacement made of the last one, minus the value (:meth:`screen`)
        self.shadow = np.zeros((n, m))
        self.has_forecast = False
        #: the agent's own values of the fields it receives as flows and voltages: its calibration set
        self.own = tuple(name for kind in (split.flow_kind, split.voltage_kind) for name in split.kinds[kind][1])
        self.voltages = split.kinds[split.voltage_kind][1]
        scored = np.unique(np.concatenate([self.slots.flat(*key) for key in self.slots.agent
                                           if key[0] != LOCAL or key[1] in self.own]))
        self.error = ErrorScale((n, m), memory, scored)  # of the forecast
        self.step = ErrorScale((n, m), memory, scored)  # of repeating the last trusted value
        self.fit: PhysicsTensorFit | None = None
        self.iteration = -1
        self._rows: dict[tuple[str, str], np.ndarray] = {}
        #: per iteration: mean absolute error of the estimate on every screened field (the paper's Fig. 8a)
        self.prediction_error: dict[int, float] = {}
        self._error_sum, self._error_count = 0.0, 0
        #: per received kind: [flagged, decided] over the decisions the multiplier could turn (scale known,
        #: error above the floor; below the floor nothing is flagged whatever ``c``): the rate it calibrates
        self.above_floor: dict[str, np.ndarray] = {}

    def screen(self, batch: MessageBatch) -> Verdict:
        if batch.kind == LOCAL:
            self._start_iteration(batch)
        values, flagged = {}, {}
        receivers = batch.receiver - 1
        for name, received in batch.fields.items():
            flat = self.slots.flat(batch.kind, name)[batch.channel]
            rows = (receivers, int(name in self.voltages))
            if batch.kind == LOCAL:
                values[name], flagged[name] = received, np.zeros(len(received), dtype=bool)
                if name in self.own:  # scored as if received: from where the replacement left the last one
                    cleaned, _, sigma, estimate = self._decide(flat, received, rows, self.shadow.ravel()[flat])
                    excess = np.abs(received - estimate) - self.floor
                    turnable = np.isfinite(sigma) & (sigma > 0) & (excess > 0)  # flagged iff excess > c sigma
                    self.rate.update((rows[0][turnable], rows[1]), excess[turnable] / sigma[turnable])
                    self.shadow.ravel()[flat] = cleaned - received
            else:
                values[name], flagged[name], sigma, estimate = self._decide(flat, received, rows)
                decided = np.isfinite(sigma) & (sigma > 0) & (np.abs(received - estimate) > self.floor)
                self.above_floor.setdefault(batch.kind, np.zeros(2, dtype=np.int64))[:] += \
                    (int(flagged[name][decided].sum()), int(decided.sum()))
                self._error_sum += float(np.abs(received - estimate).sum())
                self._error_count += len(received)
            self.current.ravel()[flat] = values[name]
        return Verdict(values, flagged, np.zeros(len(batch), dtype=bool))

    def _decide(self, flat: np.ndarray, received: np.ndarray, rows: tuple[np.ndarray, int],
                offset: np.ndarray | float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Steps 2-4 at raveled slots ``flat``, judged by the multipliers ``rate.c(rows)`` and from estimates
        shifted by ``offset``: cleaned values, flags, the scales (infinite while unknown) and the estimates.

        Every error goes into its scale censored at the bound: honest errors above it are fewer than half and
        leave the median where it is; an injection cannot blow the scale up in one step (nor, as a replaced
        value's zero error would, shrink it until every honest value is flagged)."""
        c = self.rate.c(rows)
        last, sigma_last = self.trusted.ravel()[flat] + offset, self.step.of(0)[flat]
        if self.has_forecast:
            f, sigma_f = self.forecast.ravel()[flat] + offset, self.error.of(0)[flat]
            use = ~(sigma_f > sigma_last)
            estimate, sigma = np.where(use, f, last), np.where(use, sigma_f, sigma_last)
        else:
            estimate, sigma = last, sigma_last
        known = np.isfinite(sigma)
        bound = np.where(known, c * sigma + self.floor, np.inf)
        cleaned, flags = clean(received, estimate, bound)
        if self.has_forecast:
            self.error.push(flat, np.minimum(np.abs(received - f), c * sigma_f + self.floor))
        self.step.push(flat, np.minimum(np.abs(received - last), c * sigma_last + self.floor))
        return cleaned, flags, sigma, estimate

    def _start_iteration(self, local: MessageBatch) -> None:
        """Close the last iteration's observation into the window and forecast this one's (step 1)."""
        if self._error_count:
            self.prediction_error[self.iteration] = self._error_sum / self._error_count
        self._error_sum, self._error_count = 0.0, 0
        if self.iteration >= 0:
            self.window.append(self.current, self.trusted)
        self.iteration = local.iteration
        self.step.refresh()
        self.rate.refresh()
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
