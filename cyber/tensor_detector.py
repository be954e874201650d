"""The screening variant of seed 001's detector (``tensor``, the default), one per receiving agent.

The paper's own detector is :mod:`cyber.physics_detector` (``tensor-paper``). This variant forecasts with Tucker +
AR (no MA part, no physics inside the fit) and adds what the paper does not have: the physics as a fusion of
the forecast afterwards, voltage limits, and screening rules for intermittent spikes. It flags fewer honest
fields than its nominal alpha (its threshold is the plug-in ``z_(1 - alpha/2)``), is faster, and keeps the
optimum closer on the bundled cases (``docs/reproduction.md``).

Each agent keeps a window of the last ``L`` iterations of what it observed: its own values and every field it
received, cleaned (flagged values replaced). At every iteration:

1. *temporal forecast* of every received field by Tucker + ARIMA on the window (:mod:`cyber.tensor_forecast`);
2. *physics term*: the agent's own values of this iteration tie what it is about to receive through the
   DistFlow equalities its group must satisfy -- its children's flows ``sum_c P_c = p + P - r l`` (and the
   reactive twin), its parent's voltage ``v_parent = w`` (its copy). The forecast is fused with these
   equalities by weighted least squares, ``min sum_c (s_c - f_c)^2 / sigma_c^2 + (Phi s - b)^2 / sigma_phi^2``,
   each weight the running error of that source on accepted data -- so physics counts for as much as it has
   proven reliable (this is the paper's ``||Phi_i G||^2`` term, applied to the forecast slice);
3. *estimate* (18): per slot, of four predictors the one whose recent track record is best: the forecast,
   repeating the last trusted value, its *drift* (the last value plus the median of its last
   :data:`DRIFT_STEPS` steps) and its *line* (``2 h[k-1] - h[k-2]``, the predictor of the scoring oracle,
   :mod:`cyber.detectability`). The low-rank model cannot follow every one of many trade channels, and while
   the market is in its transient the forecast and the last value lag a track that moves by more each
   iteration than an injection does: their bands are then several times wider than the line's and the
   drift's, and a draw against the lag passes. In the two iterations after a replaced value the line is
   neither used nor scored: it would extrapolate the screen's own guess, and its error carries twice the
   guess's (:data:`cyber.detector_kernels.REPLACED_RECENTLY`). Before the window holds enough iterations for a
   forecast, the last value, the line and the drift screen alone -- an attack from the first iterations is screened as
   soon as a few steps give its scale. Over-relaxed iterates (``zigzag``) go out and back, and no trend
   describes them: the drift and the line are then left out (with them, case15da's over-relaxed market under
   static FDI flagged 16 % of the honest flows and voltages and did not converge);
4. *decision* (16a-b): flag ``|x - estimate| > z_(1 - alpha/2) * sigma + floor`` with ``alpha`` the nominal
   false-alarm rate and ``sigma`` the robust scale (1.4826 x median absolute error) of the slot's last
   errors -- a median, so that an intermittent attack does not widen it;
5. *replacement* (17), the rule of :func:`cyber.screening.clean`: far outliers replaced by the estimate,
   values just outside the band pulled onto its edge (steps 3-6 run in one compiled pass per batch,
   :func:`cyber.detector_kernels.screen_slots`). The window keeps the estimate of every flagged value: the
   band's edge limits what a false alarm costs the ADMM, but is no guess of the honest value, and the line
   extrapolates twice what the window holds (an edge kept there widened the line's band by polluting the
   next two errors of every injection);
6. *hindsight*: a missed injection shows itself one iteration later, when the value after it returns to the
   track. It is then taken out of the history (replaced by the midpoint of its neighbours) and its error out
   of the scales, and the return is not flagged -- otherwise an attack every few iterations teaches the
   forecast its pattern and widens the threshold until nothing is caught. The last-value scale counts the
   de-spiked track's two half steps instead, or an attack every other iteration would leave its slot without a
   scale for ever; not when the ADMM over-relaxes (``zigzag``): its own iterates then go out and back, and
   pairs of half steps would shrink the scale until honest values are flagged. The same geometry fits an
   honest value followed by an injection that lands near the value before it, and the two are told apart by
   their estimates: a missed injection deviated from its estimate about as much as its return does, an honest
   value that its estimate predicted did not (:data:`RETURN_SHARE`) -- then the new value is screened, unless
   the track had turned the step before (the iterates ringing, whose every turn looks like a spike). A
   deviation the same way as the last iteration's flagged one is the iterates moving on and is not flagged,
   unless it is more than ``1 / RETURN_SHARE`` times as large: a move carries its deviation on, an injection
   after a false alarm starts its own;
7. *limits*: a voltage outside its sender's limits (known to every neighbour; the sender's own update keeps
   its voltage within them) is flagged whatever its history and replaced by the receiver's own copy of it
   (available from the first iteration, before the history is), and every voltage kept within them.

Without the physics (``physics=False``: neither step 2 nor step 7) this is the paper's Fig. 9 ablation.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

from cyber import detector_kernels as kernels
from cyber.screening import BAND_ALPHA, BAND_FLOOR, BAND_MEMORY, SlotMap, Verdict
from cyber.tensor_forecast import TuckerArimaFit, TuckerArimaModel, extend, fit, predict, warm_up_fit
from market.admm.driver import Splitting
from market.admm.states import LOCAL, LOCAL_FIELDS
from market.instance import MarketInstance
from market.messages import MessageBatch

DESPIKE_RATIO = 3.0
#: Steps whose median is a slot's drift: the fewest (odd) whose median the two steps of one missed spike, out
#: and back, do not move
DRIFT_STEPS = 5
#: A value back on the track after a spike is the return of a missed injection only if the spike had deviated
#: from its own estimate by at least this share of what the value deviates now (else see step 6)
RETURN_SHARE = 0.25
LIMIT_TOLERANCE = 1e-9  # p.u.^2: an honest voltage sits on its limit to round-off
ONLY = np.zeros(1, dtype=np.int64)  # the one predictor of a single ring
#: the scales the screening reads: without a forecast, and with one (its temporal part is refreshed apart, only
#: where the physics fuses)
TRACKS = np.array([kernels.STEP, kernels.DRIFT, kernels.LINE])
SCREENED = np.array([kernels.STEP, kernels.FORECAST, kernels.DRIFT, kernels.LINE])
TEMPORAL = np.array([kernels.TEMPORAL])


def warm_up(screening: bool = True) -> None:
    """Load (or compile) the detector's kernels, so that a timed run does not pay for it (the first call of
    each in a process costs a few hundred milliseconds from the cache, seconds to compile): the error rings'
    and the forecasts' fit, and with ``screening`` the screening's, the fusion's and the forecasts' slide and
    prediction (:class:`cyber.physics_detector.PhysicsTensorDetector` runs the first two only)."""
    kernels.warm_up(screening)
    model = TuckerArimaModel()
    state, series = warm_up_fit(model)
    if screening:  # the slide and the prediction read the window's slices (views, strided)
        window = np.concatenate([series, series], axis=-1)[..., : series.shape[-1]]
        predict(extend(state, window, model), window, model)


class ErrorScale:
    """The last ``k`` absolute errors of every slot and of each of ``predictors`` in a ring; a scale is 1.4826 x
    their median (unknown, i.e. infinite, while fewer than half of them were seen). ``refresh`` computes the
    scales once per iteration. Every ring has its own write position: a slot whose error is left out of an
    iteration keeps its last ``k``. ``used`` (raveled positions) limits the refresh to the slots that ever get
    errors. A slot's rings of all predictors lie side by side: the screening reads them together."""

    def __init__(self, shape: tuple[int, ...], k: int = 9, used: np.ndarray | None = None,
                 predictors: int = 1) -> None:
        slots = int(np.prod(shape))
        self.errors = np.full((slots, predictors, k), np.inf)
        self.count = np.zeros((slots, predictors), dtype=np.int64)
        self.scales = np.full((slots, predictors), np.inf)
        self.used = np.arange(slots) if used is None else used

    def of(self, predictor: int) -> np.ndarray:
        """One predictor's scales over raveled slots (a view)."""
        return self.scales[:, predictor]

    def push(self, flat: np.ndarray, error: np.ndarray, predictor: int = 0) -> None:
        """An error each for the slots at raveled positions ``flat`` (the screening pass pushes and retracts
        the received slots' errors itself, :func:`cyber.detector_kernels.screen_slots`)."""
        kernels.ring_push(self.errors, self.count, flat, predictor, error)

    def refresh(self, predictors: np.ndarray = ONLY, used: np.ndarray | None = None) -> None:
        """The scales of ``predictors`` (an int array) at the slots ``used`` (default: the constructor's)."""
        kernels.ring_scales(self.errors, self.used if used is None else used, predictors, self.scales)

    def rings(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(errors, count, scales): what the compiled kernels update in place."""
        return self.errors, self.count, self.scales


class Window:
    """The last ``length`` observation vectors of every agent, in a ring (no copying per iteration), slot first:
    what the screening reads of one slot's newest observations is one contiguous stretch, and so is what a
    forecast reads of a channel. Every observation is stored twice, ``length`` columns apart, so that the
    newest ``k`` of them are always one slice (:meth:`last`), never gathered."""

    def __init__(self, n: int, m: int, length: int, used: np.ndarray) -> None:
        self.data = np.zeros((n, m, 2 * length))
        self.by_slot = self.data.reshape(n * m, 2 * length)  # (slot, time), a view
        self.history = self.by_slot[:, :length]  # the ring once: what the screening reads
        self.length, self.filled, self.head = length, 0, 0
        self.used = np.asarray(used, dtype=np.int64)  # every agent's slots, the first of its m

    def append(self, observation: np.ndarray, trusted: np.ndarray, despike: tuple[float, float] | None = None
               ) -> None:
        """Add ``observation`` (n, m) as the newest and copy it into ``trusted`` (n, m; the detector's last
        trusted observation, in the same pass); with ``despike`` (ratio, floor), replace the one before it where
        it is an isolated spike (:func:`cyber.detector_kernels.is_spike`) by the midpoint of its neighbours: a
        missed injection must not teach the forecast its pattern."""
        ratio, floor = despike or (0.0, 0.0)
        kernels.append_column(self.by_slot, self.head, observation.reshape(-1), self.used,
                              despike is not None and self.filled >= 2, ratio, floor, trusted.reshape(-1))
        self.head = (self.head + 1) % self.length
        self.filled = min(self.filled + 1, self.length)

    def last(self, k: int) -> np.ndarray:
        """The last ``k`` observations in time order, (n, m, k), zero beyond an agent's slots: a view into the
        ring, valid until the next append."""
        end = self.head + self.length
        return self.data[:, :, end - k:end]


class TensorDetector:
    """Batched over agents; agent ``a`` uses only row ``a`` of every state array."""

    def __init__(self, instance: MarketInstance, split: Splitting, *, physics: bool = True, window: int = 30,
                 model: TuckerArimaModel | None = None, alpha: float = BAND_ALPHA, floor: float = BAND_FLOOR,
                 refit_every: int = 10, memory: int = BAND_MEMORY, min_history: int = 12,
                 zigzag: bool = False) -> None:
        self.name = "tensor" if physics else "tensor-no-physics"
        self.model = model or TuckerArimaModel()
        if not self.model.d + self.model.tau + self.model.p <= min_history <= window:
            raise ValueError("tensor detector: min_history must cover d + tau + p and not exceed the window")
        if not 0 < alpha < 1 or floor < 0 or refit_every < 1 or memory < 1:
            raise ValueError("tensor detector: alpha in (0, 1), floor >= 0, refit_every and memory >= 1")
        self.physics = physics
        self.zigzag = zigzag
        self.min_history, self.refit_every = min_history, refit_every
        self.z, self.floor = float(norm.ppf(1 - alpha / 2)), floor
        self.slots = SlotMap.of(split, LOCAL_FIELDS)
        self.flow_kind, self.voltage_kind = split.flow_kind, split.voltage_kind
        n, m = self.slots.n_agents, self.slots.width
        self.window = Window(n, m, window, self.slots.used)
        # a slot's values side by side (the arrays below are (n, m) views of one record per slot): the screening
        # of a slot then reads one stretch of memory, not one in each of five arrays
        record = np.zeros((n * m, 5))
        self.current = record[:, 0].reshape(n, m)  # this iteration's cleaned observation, completed as batches arrive
        self.trusted = record[:, 1].reshape(n, m)  # the last iteration's: the fallback (18)
        self.last_deviation = record[:, 2].reshape(n, m)  # last iteration's |value - estimate|: the return test
        self.last_deviation[:] = np.inf
        self.temporal = record[:, 3].reshape(n, m)  # this iteration's temporal forecast
        self.forecast = record[:, 4].reshape(n, m)  # ... fused with the physics: valid once ``has_forecast``
        self.flag_sign = np.zeros((n, m), dtype=np.int8)  # sign of last iteration's flagged deviation, else 0
        self.replaced = np.zeros(n * m, dtype=np.int8)  # replaced values and line pushes, raveled (kernel marks)
        self.has_forecast = False
        self._own_voltage = self.slots.position[LOCAL, "w"]  # an agent's slot of its own copy of its parent's v
        self._equalities: dict[str, np.ndarray] = {}  # this iteration's right-hand sides, by physics scale
        # the received slots each equality ties: children's flows to the balance, the parent's voltage to w
        kinds = {"P": self.flow_kind, "Q": self.flow_kind, "v": self.voltage_kind}
        self._physics_slots = {name: (self.slots.agent[kind, name], self.slots.position[kind, name])
                               for name, kind in kinds.items()}
        self._physics_rows = {name: np.unique(agent) for name, (agent, _) in self._physics_slots.items()}
        self._physics_flat = {name: self.slots.flat(kind, name) for name, kind in kinds.items()}
        received = np.unique(np.concatenate([self.slots.flat(*key) for key in self.slots.agent if key[0] != LOCAL]))
        fused = np.unique(np.concatenate(list(self._physics_flat.values())))
        # per received slot, of every predictor (kernels.STEP .. LINE): repeating the last trusted value, the
        # fused forecast, the temporal forecast, the drift and the line
        self.scales = ErrorScale((n, m), memory, received, predictors=5)
        # the temporal forecast's scale is the fusion weight of the slots the equalities tie, the only ones
        # where it is refreshed (the screening pass writes every received slot's ring; the others are never read)
        self._fused = fused if physics else fused[:0]
        self.physics_error = {name: ErrorScale((n,), memory) for name in ("P", "Q", "v")}
        self.fit: TuckerArimaFit | None = None
        self.iteration = -1
        buses = np.arange(1, n + 1)
        self.r, self.x = instance.feeder.r_pu[buses], instance.feeder.x_pu[buses]
        self.v_limits = (instance.vmin_pu**2, instance.vmax_pu**2)  # squared voltage, indexed by bus
        self._rows: dict[tuple[str, tuple[str, ...]], np.ndarray] = {}
        self._accepted: dict[int, np.ndarray] = {}
        #: per iteration: mean absolute error of the estimate on every screened field (the paper's Fig. 8a)
        self.prediction_error: dict[int, float] = {}
        self._error_sum, self._error_count = 0.0, 0
        # the screening kernel's own arguments, the same at every call: the state it reads and writes, raveled
        # (every array above is updated in place), and its settings
        self._raveled_current = self.current.reshape(-1)
        state = (a.reshape(-1) for a in (self.trusted, self.forecast, self.temporal, self.flag_sign,
                                          self.last_deviation))
        self._state = (*state, self.replaced, self.window.history, *self.scales.rings(), self._own_voltage,
                       self._raveled_current, *self.v_limits, self.z, self.floor, RETURN_SHARE, DESPIKE_RATIO,
                       not zigzag, 0 if zigzag else DRIFT_STEPS, LIMIT_TOLERANCE)

    def screen(self, batch: MessageBatch) -> Verdict:
        if batch.kind == LOCAL:
            self._start_iteration(batch)
        names = tuple(batch.fields)  # all fields of the batch in one pass: each slot is decided on its own
        values = tuple(batch.fields.values())
        received = np.ascontiguousarray(values[0]) if len(values) == 1 else np.concatenate(values)
        cleaned, flags = self._decide(batch, names, received)
        # rows by index: zip(strict=True) over an array's rows cost two microseconds a batch
        return Verdict({name: cleaned[i] for i, name in enumerate(names)},
                       {name: flags[i] for i, name in enumerate(names)}, self._none_rejected(len(batch)))

    def _none_rejected(self, n: int) -> np.ndarray:
        """The detector rejects no message, it replaces values: ``n`` False, one read-only array per size."""
        if n not in self._accepted:
            self._accepted[n] = np.zeros(n, dtype=bool)
            self._accepted[n].flags.writeable = False
        return self._accepted[n]

    def _slot_rows(self, kind: str, names: tuple[str, ...]) -> np.ndarray:
        """Raveled (agent, slot) positions of the fields ``names`` of every channel of ``kind``, one row per
        field (built once per kind and field order)."""
        key = (kind, names)
        if key not in self._rows:
            self._rows[key] = np.stack([self.slots.flat(kind, name) for name in names])
        return self._rows[key]

    def _decide(self, batch: MessageBatch, names: tuple[str, ...], received: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
        """Decision and replacement of the batch's fields ``names`` (their values ``received`` one after the
        other), one compiled call (:func:`cyber.detector_kernels.screen_batch`): the local report is only
        recorded; received fields are screened against the estimate from the history (steps 3-6), voltages
        then against the sender's limits -- the bus's limits, which every neighbour knows: a voltage outside
        them is false whatever its history (step 7). The window keeps, for a flagged value, its estimate.
        Returns cleaned values and flags as (fields, messages)."""
        screen = batch.kind != LOCAL
        w = self.window
        cleaned, flagged, total = kernels.screen_batch(
            self._slot_rows(batch.kind, names), batch.channel, received, batch.sender, screen,
            self.physics and batch.kind == self.voltage_kind, self.has_forecast, w.head, w.filled, *self._state)
        if screen:
            self._error_sum += total
            self._error_count += len(received)
        return cleaned, flagged

    def _start_iteration(self, local: MessageBatch) -> None:
        """Close the last iteration's observation into the window and forecast this one's."""
        if self._error_count:
            self.prediction_error[self.iteration] = self._error_sum / self._error_count
        self._error_sum, self._error_count = 0.0, 0
        if self.iteration >= 0:
            self._learn_physics_error()
            self.window.append(self.current, self.trusted, (DESPIKE_RATIO, self.floor))
        self.iteration = local.iteration
        self.has_forecast = False
        self._equalities = {}
        w = self.window
        if w.filled < self.min_history:
            self.scales.refresh(TRACKS)  # these need no forecast: they screen from the start
            return
        recent = w.last(self.model.tau + self.model.d)
        used = self.slots.used
        if self.fit is None or w.filled < w.length or self.iteration % self.refit_every == 0:
            self.fit = fit(w.last(w.filled), self.model, self.fit, used)
        else:
            self.fit = extend(self.fit, recent, self.model, used)
        self.temporal[:] = predict(self.fit, recent, self.model, used)
        np.copyto(self.forecast, self.temporal)
        self.has_forecast = True
        self.scales.refresh(SCREENED)  # the tracks' and the forecast's in one pass over the rings
        self.scales.refresh(TEMPORAL, self._fused)
        for scale in self.physics_error.values():
            scale.refresh()
        if self.physics:
            self._apply_physics(local)

    def _apply_physics(self, local: MessageBatch) -> None:
        """Fuse the temporal forecast of received flows and voltages with this iteration's equalities, whose
        right-hand sides are the agents' own values (``local``)."""
        own = local.fields
        targets = kernels.equality_targets(local.channel, own["p"], own["q"], own["P"], own["Q"], own["l"], own["w"],
                                           self.r, self.x)
        for name, target in zip(("P", "Q", "v"), targets, strict=True):
            self._fuse(name, target)

    def _fuse(self, name: str, target: np.ndarray) -> None:
        """Posterior mean of an agent's received slots of equality ``name`` given ``their sum = target + noise``
        (weighted least squares with the temporal and the physics error scales as standard deviations)."""
        agent, _ = self._physics_slots[name]
        kernels.fuse(agent, self._physics_flat[name], self.forecast.reshape(-1), self.scales.of(kernels.TEMPORAL),
                     self.physics_error[name].of(0), target)
        self._equalities[name] = target

    def _learn_physics_error(self) -> None:
        """How far the last iteration's equalities held on the cleaned values: the physics term's reliability."""
        for name, target in self._equalities.items():
            agent, _ = self._physics_slots[name]
            kernels.push_residuals(agent, self._physics_flat[name], self._physics_rows[name], self._raveled_current,
                                   target, *self.physics_error[name].rings()[:2])
