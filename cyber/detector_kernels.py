"""Compiled per-slot loops of the tensor detector's screening (numba).

The detector decides every received field on its own: a handful of scalar operations per slot, but in numpy
each of them is a call over a few hundred slots, and a clearing screens six batches per iteration for
thousands of iterations -- the calls, not the arithmetic, cost the time. These kernels do the same
arithmetic in one pass per batch, in the same order, so the decisions are the same to the bit
(``tests/cyber/test_detector_kernels.py`` checks them against the numpy expressions they replace).

Error rings are ``(slots, predictors, k)`` arrays with a write count per slot and predictor (see
:class:`cyber.tensor_detector.ErrorScale`): a slot's rings of every predictor lie side by side, so that the
screening of one slot reads and writes one stretch of memory; ``flat`` holds raveled slot positions, each at
most once.
"""

from __future__ import annotations

import numpy as np
from numba import njit, vectorize

from cyber.screening import MAD_SCALE as MAD_TO_SIGMA  # median |e| = 0.6745 sigma for a normal error
from physical.cache_folders import ensure_kernel_cache

ensure_kernel_cache(__file__)  # before the kernels: numba picks their cache folder as they are defined


@njit(cache=True, inline="always")
def _position(count: int, k: int) -> int:
    """``count % k``, the ring position of a write; for the default memory of nine with the divisor known to
    the compiler, which then multiplies instead of dividing (a division per push was half the screening's
    time)."""
    if k == 9:
        return count % 9
    return count % k


#: Marks of a slot (int8): the values of the last two iterations that the window keeps replaced (bit 0 the
#: newest, bit 1 the one before; flagged, or an impossible voltage). The line ``2 h[k-1] - h[k-2]`` through a
#: replaced value extrapolates the screen's own guess and carries twice its error (then minus it once): used,
#: it screens the two values after every caught injection against a wrong estimate; scored, it puts those
#: errors into the line's ring of nine, two after every injection
REPLACED_RECENTLY = 3
#: ... and whether the line's error of the last iteration went into its ring (what a return takes back)
LINE_PUSHED = 4
#: The tensor detector's predictors, in the order of their rings (:class:`cyber.tensor_detector.ErrorScale`):
#: repeating the last trusted value, the (fused) forecast, the temporal forecast, the drift and the line
STEP, FORECAST, TEMPORAL, DRIFT, LINE = range(5)


@njit(cache=True, inline="always")
def push_one(errors: np.ndarray, count: np.ndarray, s: int, p: int, error: float) -> None:
    """Write ``error`` into slot ``s``'s ring of predictor ``p``."""
    errors[s, p, _position(count[s, p], errors.shape[2])] = error
    count[s, p] += 1


@njit(cache=True, inline="always")
def retract_one(errors: np.ndarray, count: np.ndarray, sigma: np.ndarray, s: int, p: int) -> None:
    """Take back the last error of slot ``s``'s ring of predictor ``p``: it becomes the ring's current median."""
    count[s, p] -= 1
    errors[s, p, _position(count[s, p], errors.shape[2])] = sigma[s, p] / MAD_TO_SIGMA


@njit(cache=True)
def ring_push(errors: np.ndarray, count: np.ndarray, flat: np.ndarray, p: int, error: np.ndarray) -> None:
    for i in range(flat.size):
        push_one(errors, count, flat[i], p, error[i])


@njit(cache=True)
def _median_of_9(row: np.ndarray) -> float:
    """Paeth's 19 compare-exchanges, after which the middle of nine values is their median: a quarter of an
    insertion sort's time, for the detector's default memory of nine errors. Written out on locals: numba
    does not unroll a loop over the pairs (the loop costs more than the sort), and a helper inlined 19 times
    cost a second of compile time."""
    v0, v1, v2, v3, v4, v5, v6, v7, v8 = row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8]
    v1, v2 = min(v1, v2), max(v1, v2)
    v4, v5 = min(v4, v5), max(v4, v5)
    v7, v8 = min(v7, v8), max(v7, v8)
    v0, v1 = min(v0, v1), max(v0, v1)
    v3, v4 = min(v3, v4), max(v3, v4)
    v6, v7 = min(v6, v7), max(v6, v7)
    v1, v2 = min(v1, v2), max(v1, v2)
    v4, v5 = min(v4, v5), max(v4, v5)
    v7, v8 = min(v7, v8), max(v7, v8)
    v0, v3 = min(v0, v3), max(v0, v3)
    v5, v8 = min(v5, v8), max(v5, v8)
    v4, v7 = min(v4, v7), max(v4, v7)
    v3, v6 = min(v3, v6), max(v3, v6)
    v1, v4 = min(v1, v4), max(v1, v4)
    v2, v5 = min(v2, v5), max(v2, v5)
    v4, v7 = min(v4, v7), max(v4, v7)
    v4, v2 = min(v4, v2), max(v4, v2)
    v6, v4 = min(v6, v4), max(v6, v4)
    v4, v2 = min(v4, v2), max(v4, v2)
    return v4


@njit(cache=True)
def ring_scales(errors: np.ndarray, used: np.ndarray, predictors: np.ndarray, sigma: np.ndarray) -> None:
    """``sigma[s, p] = 1.4826 x median`` (the ``k // 2``-th smallest) of the ring of every slot ``s`` in
    ``used`` and predictor ``p`` in ``predictors``."""
    k = errors.shape[2]
    row = np.empty(k)
    for i in range(used.size):
        s = used[i]
        for p in predictors:
            if k == 9:  # the network reads the ring's row itself: no copy
                sigma[s, p] = MAD_TO_SIGMA * _median_of_9(errors[s, p])
                continue
            for j in range(k):
                row[j] = errors[s, p, j]
            for j in range(1, k):  # insertion sort
                value = row[j]
                m = j
                while m > 0 and row[m - 1] > value:
                    row[m] = row[m - 1]
                    m -= 1
                row[m] = value
            sigma[s, p] = MAD_TO_SIGMA * row[k // 2]


@njit(cache=True)
def median_step(history: np.ndarray, s: int, times: np.ndarray, steps: np.ndarray) -> float:
    """The median of slot ``s``'s last ``steps.size`` steps in the window (``history``, slot first), between
    the ``steps.size + 1`` observations at ``times`` (oldest first; found once per batch: an integer division
    per read was most of the screening's time), sorted into ``steps``: a trend that the two steps of one missed
    spike, out and back, do not bend (with five steps or more)."""
    k = steps.size
    for j in range(k):
        value = history[s, times[j + 1]] - history[s, times[j]]
        m = j
        while m > 0 and steps[m - 1] > value:  # insertion sort: a handful of steps
            steps[m] = steps[m - 1]
            m -= 1
        steps[m] = value
    return steps[k // 2]


@vectorize(["boolean(float64, float64, float64, float64, float64)"], cache=True)
def is_spike(a: float, b: float, c: float, ratio: float, floor: float) -> bool:
    """``b`` lies farther from the midpoint of its neighbours ``a`` and ``c`` than ``ratio`` half-steps
    between them (plus ``floor``): an isolated jump out and back, not a trend. A ufunc: the detector's window
    applies it to whole observations, :func:`screen_slots` to one slot."""
    return abs(b - 0.5 * (a + c)) > ratio * 0.5 * abs(c - a) + floor


@njit(cache=True)
def screen_slots(flat: np.ndarray, received: np.ndarray, trusted: np.ndarray, forecast: np.ndarray,
                 temporal: np.ndarray, has_forecast: bool, z: float, floor: float, flag_sign: np.ndarray,
                 last_deviation: np.ndarray, return_share: float, history: np.ndarray, head: int, filled: int,
                 ratio: float, count_returns: bool, rings: np.ndarray, count: np.ndarray, sigmas: np.ndarray,
                 drift_steps: int, replaced: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """Steps 3-6 per slot, in one pass: the estimate (of the forecast, the last trusted value, its drift --
    the last value plus the median of its last ``drift_steps`` steps, :func:`median_step` -- and its line --
    ``2 x last - the one before`` --, the one whose record is best; ``drift_steps`` 0: neither trend; the line
    not in the two iterations after a replaced value, see :data:`REPLACED_RECENTLY`), the
    bound (infinite for a trend that persists -- a deviation the same way as the last flagged one, and at most
    ``1 / return_share`` times as large -- or for a return to the track, see :func:`is_spike`, unless the last
    value deviated from its estimate less than ``return_share`` of this one's deviation -- the last one was
    then honest and this one is the injection -- with the track not turning before it), decision and
    replacement (:func:`cyber.screening.clean`), then the bookkeeping -- each flagged deviation's sign (the
    next iteration's trend test) and every deviation (``last_deviation``, its return test), the last error of a
    slot found to have been a spike taken out of its rings, this iteration's errors of the others pushed (of
    the last trusted value, of its drift and line, and once there is a forecast, of the fused and of the
    temporal forecast; with ``count_returns``, a spike's last-value error is replaced by the de-spiked track's
    two half steps). ``rings``, ``count`` and ``sigmas`` are the predictors' error rings, write counts and
    scales, indexed (slot, predictor) as :data:`STEP` .. :data:`LINE`; ``history`` is the window (slot, time),
    a ring whose newest observation sits before ``head``; ``replaced`` holds every slot's marks
    (:data:`REPLACED_RECENTLY`, :data:`LINE_PUSHED`), updated here. Returns the cleaned values, the flags, the summed
    absolute deviation from the estimate and the values the window keeps: the received value, or for a flagged
    one the estimate (the cleaned value of a value just outside the band sits on the band's edge, which is no
    better a guess of the honest value, and the drift and the line extrapolate what the window keeps)."""
    n = flat.size
    length = history.shape[1]
    oldest, previous, newest_time = (head - 3) % length, (head - 2) % length, (head - 1) % length
    cleaned, kept, flagged = np.empty(n), np.empty(n), np.zeros(n, dtype=np.bool_)
    total = 0.0
    steps, times = np.empty(drift_steps), np.empty(drift_steps + 1, dtype=np.int64)
    for j in range(drift_steps + 1):  # the window's newest drift_steps + 1 observations, oldest first
        times[j] = (head - drift_steps - 1 + j) % length
    # the window holds the steps of a drift, and of a line from two values on (no trends: ``drift_steps`` 0)
    drifts, lines = drift_steps > 0 and filled > drift_steps, drift_steps > 0 and filled >= 2
    for i in range(n):
        s, x = flat[i], received[i]
        last, sigma_last = trusted[s], sigmas[s, STEP]
        f, sigma_f = (forecast[s], sigmas[s, FORECAST]) if has_forecast else (last, np.inf)
        estimate, sigma = (f, sigma_f) if not sigma_f > sigma_last else (last, sigma_last)
        drifted = last + median_step(history, s, times, steps) if drifts else last
        if drifts and sigmas[s, DRIFT] < sigma:
            estimate, sigma = drifted, sigmas[s, DRIFT]
        line = 2.0 * last - history[s, previous]
        marks = replaced[s]
        # in the two iterations after a replaced value the line extrapolates a guess: neither used nor scored
        fresh_line = lines and not marks & REPLACED_RECENTLY
        if fresh_line and sigmas[s, LINE] < sigma:
            estimate, sigma = line, sigmas[s, LINE]
        deviation = x - estimate
        sign = 1 if deviation > 0 else (-1 if deviation < 0 else 0)
        before, newest = history[s, previous], history[s, newest_time]
        # a value back on the track the last one left was honest and the last one a missed spike -- the
        # estimate and the rings would blame the return; unless the last value matched its estimate and this
        # one does not: this one is then the injection, landed near the value before the last (but not where
        # the track turned before the last value: the iterates ringing, whose every turn looks like a spike)
        back = filled >= 2 and is_spike(before, newest, x, ratio, floor)
        if back and last_deviation[s] < return_share * abs(deviation):
            back = filled < 3 or (before - history[s, oldest]) * (newest - before) < 0
        # a deviation the same way as last iteration's flagged one is the iterates moving on, not an injection
        # (Byzantine values come and go, an ADMM trend persists) -- unless it is far larger than that one (the
        # return test's share): a move carries the last deviation on, an injection after it starts its own
        moving_on = (flag_sign[s] != 0 and sign == flag_sign[s]
                     and not last_deviation[s] < return_share * abs(deviation))
        bound = np.inf if moving_on or back else z * sigma + floor
        flagged[i] = abs(deviation) > bound
        if abs(deviation) > 2 * bound:
            cleaned[i] = estimate
        elif flagged[i]:
            cleaned[i] = estimate + min(max(deviation, -bound), bound)
        else:
            cleaned[i] = x
        kept[i] = estimate if flagged[i] else x
        total += abs(deviation)
        flag_sign[s] = sign if flagged[i] else 0
        last_deviation[s] = abs(deviation)
        replaced[s] = (((marks << 1) & REPLACED_RECENTLY) | (1 if flagged[i] else 0)
                       | (LINE_PUSHED if fresh_line and not back else 0))
        if back:
            retract_one(rings, count, sigmas, s, STEP)
            if count_returns:
                # the de-spiked track steps half the jump, twice: else an attack every other iteration would
                # leave the slot without a scale for ever
                half = 0.5 * abs(x - before)
                push_one(rings, count, s, STEP, half)
                push_one(rings, count, s, STEP, half)
            if has_forecast:
                retract_one(rings, count, sigmas, s, FORECAST)
                retract_one(rings, count, sigmas, s, TEMPORAL)
            if drifts and filled > drift_steps + 1:  # the spike's drift and line errors, pushed one iteration ago
                retract_one(rings, count, sigmas, s, DRIFT)
            if marks & LINE_PUSHED:
                retract_one(rings, count, sigmas, s, LINE)
        else:
            if drifts:
                push_one(rings, count, s, DRIFT, abs(x - drifted))
            if fresh_line:
                push_one(rings, count, s, LINE, abs(x - line))
            if has_forecast:
                push_one(rings, count, s, FORECAST, abs(x - forecast[s]))
                push_one(rings, count, s, TEMPORAL, abs(x - temporal[s]))
            push_one(rings, count, s, STEP, abs(x - last))
    return cleaned, flagged, total, kept


@njit(cache=True, inline="always")
def _clip(x: float, low: float, high: float) -> float:
    """``np.clip``'s order: the low bound first, a NaN kept."""
    if x < low:
        x = low
    if x > high:
        x = high
    return x


@njit(cache=True)
def screen_batch(rows: np.ndarray, channel: np.ndarray, received: np.ndarray, sender: np.ndarray, screen: bool,
                 limited: bool, has_forecast: bool, head: int, filled: int, trusted: np.ndarray, forecast: np.ndarray,
                 temporal: np.ndarray, flag_sign: np.ndarray, last_deviation: np.ndarray, replaced: np.ndarray,
                 history: np.ndarray, rings: np.ndarray, count: np.ndarray, sigmas: np.ndarray, own_slot: np.ndarray,
                 current: np.ndarray,
                 low: np.ndarray, high: np.ndarray, z: float, floor: float, return_share: float, ratio: float,
                 count_returns: bool, drift_steps: int, tolerance: float) -> tuple[np.ndarray, np.ndarray, float]:
    """One batch of received fields, from its channels to the values delivered, in one call: the raveled
    slots of every field and channel (``rows[field, channel]``), with ``screen`` steps 3-6 of
    :func:`screen_slots`, then with ``limited`` step 7: a value outside its sender's limits (``low`` and
    ``high`` indexed by the ``sender`` bus of every message, beyond ``tolerance``) flagged and replaced by the
    receiver's own copy (``current`` at ``own_slot[agent]``, read before this batch is written; marked
    replaced), every value clipped to them; what the window keeps (:func:`screen_slots`: for a flagged value its
    estimate; limited and clipped alike) is written into ``current`` (raveled). ``received`` holds the fields
    one after the other (field-major, as ``rows``); returns the cleaned values and flags as (fields, messages)
    and the summed absolute deviation from the estimate (0 without ``screen``). The arguments from ``trusted``
    on are the detector's own, the same at every call (it passes them as one tuple)."""
    n_fields, n = rows.shape[0], channel.size
    flat = np.empty(n_fields * n, dtype=np.int64)
    for f in range(n_fields):
        for j in range(n):
            flat[f * n + j] = rows[f, channel[j]]
    if screen:
        cleaned, flagged, total, kept = screen_slots(
            flat, received, trusted, forecast, temporal, has_forecast, z, floor, flag_sign, last_deviation,
            return_share, history, head, filled, ratio, count_returns, rings, count, sigmas, drift_steps, replaced)
    else:
        cleaned, flagged, total, kept = received.copy(), np.zeros(flat.size, dtype=np.bool_), 0.0, received.copy()
    if limited:
        width = current.size // own_slot.size
        for f in range(n_fields):
            for j in range(n):
                i, bus = f * n + j, sender[j]
                x = received[i]
                if x < low[bus] - tolerance or x > high[bus] + tolerance:
                    # an impossible voltage says nothing about the real one: the receiver keeps its own copy
                    agent = flat[i] // width
                    cleaned[i] = kept[i] = current[agent * width + own_slot[agent]]
                    flagged[i] = True
                    replaced[flat[i]] |= 1
                cleaned[i], kept[i] = _clip(cleaned[i], low[bus], high[bus]), _clip(kept[i], low[bus], high[bus])
    for i in range(flat.size):
        current[flat[i]] = kept[i]
    return cleaned.reshape(n_fields, n), flagged.reshape(n_fields, n), total


@njit(cache=True)
def append_column(by_slot: np.ndarray, head: int, observation: np.ndarray, used: np.ndarray, despike: bool,
                  ratio: float, floor: float, trusted: np.ndarray) -> None:
    """Write the raveled ``observation`` as column ``head`` of the ring ``by_slot`` (slot, time), which holds
    every column twice, at ``t`` and ``t + length`` (so that any ``length`` consecutive columns are one slice),
    of every agent ``a`` its first ``used[a]`` slots (the others, padding, stay zero); with ``despike``, the
    column before it (the second-newest now) is replaced by the midpoint of its neighbours wherever it is a
    spike (:func:`is_spike`) between them; the observation is copied into ``trusted`` too. One pass over the
    slots, each one's row once."""
    length, width = by_slot.shape[1] // 2, by_slot.shape[0] // used.size
    middle, before = (head - 1) % length, (head - 2) % length
    for a in range(used.size):
        for s in range(a * width, a * width + used[a]):
            c = observation[s]
            by_slot[s, head] = by_slot[s, head + length] = trusted[s] = c
            if despike:
                x = by_slot[s, before]
                if is_spike(x, by_slot[s, middle], c, ratio, floor):
                    by_slot[s, middle] = by_slot[s, middle + length] = 0.5 * (x + c)


@njit(cache=True)
def push_residuals(agent: np.ndarray, flat: np.ndarray, rows: np.ndarray, values: np.ndarray, target: np.ndarray,
                   errors: np.ndarray, count: np.ndarray) -> None:
    """How far an equality held: ``|target - sum of values at flat per agent|`` (``np.bincount``'s order)
    pushed into the rings of the agents ``rows``."""
    total = np.zeros(target.size)
    for i in range(flat.size):
        total[agent[i]] += values[flat[i]]
    for r in rows:
        push_one(errors, count, r, 0, abs(target[r] - total[r]))


@njit(cache=True)
def equality_targets(channel: np.ndarray, p: np.ndarray, q: np.ndarray, big_p: np.ndarray, big_q: np.ndarray,
                     loss: np.ndarray, w: np.ndarray, r: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The right-hand sides of every agent's equalities from its own values of this iteration (a local report,
    one message per agent at ``channel``): its children's active flows ``p + P - r l``, reactive ``q + Q - x l``
    and its parent's voltage ``w``, as rows (3, agents)."""
    out = np.empty((3, r.size))
    for j in range(channel.size):
        a = channel[j]
        out[0, a] = (p[j] + big_p[j]) - r[a] * loss[j]
        out[1, a] = (q[j] + big_q[j]) - x[a] * loss[j]
        out[2, a] = w[j]
    return out


@njit(cache=True)
def fuse(agent: np.ndarray, flat: np.ndarray, forecast: np.ndarray, sigma: np.ndarray, physics_sigma: np.ndarray,
         target: np.ndarray) -> None:
    """Posterior mean of every agent's slots ``flat`` (raveled) given that their sum is ``target[agent] +
    noise``: ``forecast += var * (target - sum forecast) / (sum var + physics_sigma^2)`` in place, with
    ``var = sigma^2`` per slot -- only where both sources have a track record (finite, positive total; a slot
    without one, infinite variance, is left alone)."""
    n = target.size
    total, predicted = np.zeros(n), np.zeros(n)
    for i in range(flat.size):
        total[agent[i]] += sigma[flat[i]] ** 2
        predicted[agent[i]] += forecast[flat[i]]
    for a in range(n):
        total[a] += physics_sigma[a] ** 2
    for i in range(flat.size):
        a, var = agent[i], sigma[flat[i]] ** 2
        if np.isfinite(total[a]) and total[a] > 0 and np.isfinite(var):
            forecast[flat[i]] += var * ((target[a] - predicted[a]) / total[a])


def warm_up(screening: bool = True) -> None:
    """Load (or compile) the kernels for the argument types the detector passes, so that a timed run does not
    pay for it (a few hundred milliseconds each from the cache, seconds to compile): the error rings' and the
    window's, and with ``screening`` the screening's, the de-spiking's and the physics' (the paper's detector
    runs the rings and the window only)."""
    flat, values = np.zeros(1, dtype=np.int64), np.zeros(1)
    signs = np.zeros(1, dtype=np.int8)
    ring = (np.zeros((1, 1, 3)), np.zeros((1, 1), dtype=np.int64), np.zeros((1, 1)))
    ring_scales(ring[0], flat, flat, ring[2])
    ring_push(ring[0], ring[1], flat, 0, values)
    window = np.zeros((1, 6))
    append_column(window, 0, values, flat + 1, False, 3.0, 0.0, values.copy())
    if not screening:
        return
    record = np.zeros((2, 5))[:, 0]  # the detector's per-slot state, columns of one record per slot (two rows:
    # numpy calls a one-element array contiguous whatever its stride, and numba would compile for that)
    screen_batch(np.zeros((1, 1), dtype=np.int64), flat, values, flat, True, True, True, 0, 0, record, record, record,
                 signs, record, signs.copy(), np.zeros((2, 6))[:, :3], np.zeros((1, 5, 3)),
                 np.zeros((1, 5), dtype=np.int64),
                 np.zeros((1, 5)), flat, record, values, values, 1.0, 0.0, 0.25, 3.0, True, 1, 1e-9)
    append_column(window, 0, record, flat + 1, True, 3.0, 0.0, record)  # observations: columns of the record
    push_residuals(flat, flat, flat, record, values, ring[0], ring[1])
    equality_targets(flat, values, values, values, values, values, values, values, values)
    fuse(flat, flat, record, np.zeros((2, 5))[:, TEMPORAL], values, values)  # a predictor's scales: strided
