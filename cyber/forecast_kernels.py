"""Compiled Tucker + ARIMA forecasts, one batch member at a time over its own channels only (numba).

The detector forecasts every agent's window at every iteration. Batched in numpy, every agent is padded to
the widest one (case85: 60 slots against 28 used on average) and each step is a call over the whole batch;
here each agent's fit, slide and forecast run over its ``width`` channels, in one compiled call per batch.
The arithmetic is that of :mod:`cyber.tensor_forecast` (steps 1-6 there); ``tests/cyber/test_tensor_forecast.py``
checks the results against tensorly's Tucker and against the slid cores written out with ``einsum``.

Arrays per batch member ``b``: channel scales ``scale[b, :w]``, factors ``u1[b, :w, :r1]`` and
``u2[b, :, :r2]``, cores ``cores[b, t]`` (r1 x r2); entries beyond a member's width stay zero.

The fit's helpers are inlined into the kernels (``inline="always"``) and copies are written as loops: a
separately compiled helper is optimised and emitted again, with all the linear algebra it calls, in every
kernel above it, and a slice assignment compiles numba's string formatting for its error message -- on a
fresh install the forecasts compiled in twice the time (``benchmarks/first_run.py --kernels``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from physical.cache_folders import ensure_kernel_cache

ensure_kernel_cache(__file__)  # before the kernels: numba picks their cache folder as they are defined

#: Ridge of the Yule-Walker system, relative to gamma(0), plus an absolute one: flat series stay solvable.
RIDGE, TINY = 1e-8, 1e-300


@njit(cache=True, inline="always")
def _difference_into(series: np.ndarray, d: int, out: np.ndarray) -> int:
    """``d``-th differences along time of a (w, L) window into the first ``L - d`` columns of ``out`` (w or
    more rows, L or more columns); returns ``L - d``."""
    w, n = series.shape
    for c in range(w):
        for t in range(n):
            out[c, t] = series[c, t]
    for _ in range(d):
        n -= 1
        for c in range(w):
            for t in range(n):
                out[c, t] = out[c, t + 1] - out[c, t]
    return n


@njit(cache=True)
def within(values: np.ndarray, low: int, high: int) -> bool:
    """Every value in ``low..high``: one compiled pass instead of two numpy reductions per forecast call."""
    return values.size == 0 or (values.min() >= low and values.max() <= high)


@njit(cache=True)
def _differenced(series: np.ndarray, d: int) -> np.ndarray:
    """``d``-th differences along time of a (w, L) window, (w, L - d), C-contiguous: every loop over it indexes
    a plain array."""
    out = np.empty(series.shape)
    n = _difference_into(series, d, out)
    return np.ascontiguousarray(out[:, :n])


@njit(cache=True, inline="always")
def _hankel(x: np.ndarray, tau: int) -> np.ndarray:
    """Block Hankel tensor of scaled differences ``x`` (w, L - d), stored (w, T', tau): entry (c, t, j) is
    ``x[c, t + j]``, slice t the columns t..t+tau-1. Every product below is one matrix product over a
    reshape of it."""
    w, n = x.shape
    t_count = n - tau + 1
    h = np.empty((w, t_count, tau))
    for c in range(w):
        for t in range(t_count):
            for j in range(tau):
                h[c, t, j] = x[c, t + j]
    return h


@njit(cache=True, inline="always")
def _top_vectors(a: np.ndarray, rank: int) -> np.ndarray:
    """Leading left singular vectors of ``a``: the top ``rank`` eigenvectors of ``a a^T``."""
    _, vectors = np.linalg.eigh(a @ np.ascontiguousarray(a.T))
    out = np.empty((a.shape[0], rank))
    for r in range(rank):
        for i in range(a.shape[0]):
            out[i, r] = vectors[i, a.shape[0] - 1 - r]
    return out


@njit(cache=True, inline="always")
def _channel_product(h: np.ndarray, u1: np.ndarray) -> np.ndarray:
    """``X x_1 U1^T`` as (r1 * T', tau)."""
    w, t_count, tau = h.shape
    return (np.ascontiguousarray(u1.T) @ h.reshape(w, t_count * tau)).reshape(-1, tau)


@njit(cache=True, inline="always")
def _fit_one(h: np.ndarray, r1: int, r2: int, sweeps: int, cores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Factors (HOSVD + HOOI) and cores of one Hankel tensor (w, T', tau); cores written into ``cores``
    (T', r1, r2)."""
    w, t_count, tau = h.shape
    by_delay = h.reshape(w * t_count, tau)
    f1 = _top_vectors(h.reshape(w, t_count * tau), r1)
    f2 = _top_vectors(np.ascontiguousarray(by_delay.T), r2)
    projected = np.empty((0, tau))  # X x_1 U1^T for the final U1: the last sweep's, else computed below
    for _ in range(sweeps):
        a = (by_delay @ f2).reshape(w, t_count * r2)
        f1 = _top_vectors(a, r1)
        projected = _channel_product(h, f1)
        f2 = _top_vectors(np.ascontiguousarray(projected.T), r2)
    if sweeps == 0:
        projected = _channel_product(h, f1)
    g = (projected @ f2).reshape(r1, t_count, r2)
    for t in range(t_count):
        for i in range(r1):
            for k in range(r2):
                cores[t, i, k] = g[i, t, k]
    return f1, f2


@njit(cache=True, inline="always")
def orthonormalize(y: np.ndarray) -> None:
    """Columns of ``y`` (rows >= columns) replaced in place by an orthonormal basis of their span, column by
    column (classical Gram-Schmidt, each column projected out twice, which keeps the basis orthonormal to
    round-off); a column already in the span of those before it (or zero) is replaced by the unit vector
    farthest from that span. What LAPACK's QR returns up to the columns' signs -- to which the forecast is
    blind -- for a few columns at a fraction of its cost at these sizes (a call to it cost 3 us)."""
    rows, columns = y.shape
    v = np.empty(rows)
    for j in range(columns):
        before = 0.0
        for r in range(rows):
            v[r] = y[r, j]
            before += v[r] * v[r]
        norm = _project_out(y, j, v)
        if not norm > 1e-14 * np.sqrt(before) or not norm > 1e-290:
            best, pick = -1.0, 0
            for e in range(rows):  # the unit vector least in the span, projected out
                v[:] = 0.0
                v[e] = 1.0
                residual = _project_out(y, j, v)
                if residual > best:
                    best, pick = residual, e
            v[:] = 0.0
            v[pick] = 1.0
            norm = _project_out(y, j, v)
        for r in range(rows):
            y[r, j] = v[r] / norm


@njit(cache=True, inline="always")
def _project_out(q: np.ndarray, j: int, v: np.ndarray) -> float:
    """``v`` minus its projection on the orthonormal columns ``q[:, :j]``, twice; returns its norm."""
    rows = v.size
    for _ in range(2):
        for i in range(j):
            dot = 0.0
            for r in range(rows):
                dot += q[r, i] * v[r]
            for r in range(rows):
                v[r] -= dot * q[r, i]
    norm = 0.0
    for r in range(rows):
        norm += v[r] * v[r]
    return np.sqrt(norm)


@njit(cache=True, fastmath={"reassoc", "contract"})
def _refine(x: np.ndarray, tau: int, sweeps: int, f1: np.ndarray, f2: np.ndarray, cores: np.ndarray) -> None:
    """``sweeps`` HOOI sweeps from the factors ``f1`` (w, r1) and ``f2`` (tau, r2), each SVD a single
    orthogonal-iteration step, on the Hankel tensor of ``x`` (w, L - d) without building it (entry (c, t, j)
    is ``x[c, t + j]``); factors refined in place, cores written into ``cores`` (T', r1, r2).

    The mode-1 step ``U1 <- orth(A A^T U1)``, ``A`` the unfolding of ``X x_2 U2^T``, runs through the small
    side: ``A^T U1`` is the delay product of ``U1^T x`` (r1 rows, as the cores are), and ``A`` times it is
    ``x`` times its adjoint delay product -- a third of the flops of forming ``A`` (w rows). Scalar loops,
    innermost along time (contiguous; sums may be reassociated): the products are a few thousand flops, and a
    call to BLAS or LAPACK from compiled code cost more than that."""
    w, n = x.shape
    r1, r2 = f1.shape[1], f2.shape[1]
    t_count = n - tau + 1
    channels = np.empty((r1, n))  # U1^T x: X x_1 U1^T, slice t its columns t..t+tau-1
    delay = np.empty((r1, r2, t_count))  # X x_1 U1^T x_2 U2^T: the cores, time last
    adjoint = np.empty((r1, n))  # its delay product's adjoint: A A^T U1 = x adjoint^T
    for _ in range(sweeps):
        _channel_rows(x, f1, channels)  # U1 <- orthogonal step on the mode-1 unfolding of X x_2 U2^T
        _delay_product(channels, f2, delay)
        adjoint[:] = 0.0
        for i in range(r1):
            for j in range(tau):
                for k in range(r2):
                    factor = f2[j, k]
                    for t in range(t_count):
                        adjoint[i, t + j] += factor * delay[i, k, t]
        for c in range(w):
            for i in range(r1):
                acc = 0.0
                for s in range(n):
                    acc += x[c, s] * adjoint[i, s]
                f1[c, i] = acc
        orthonormalize(f1)
        _channel_rows(x, f1, channels)  # U2 <- orthogonal step on the mode-2 unfolding of X x_1 U1^T
        _delay_product(channels, f2, delay)
        for j in range(tau):
            for k in range(r2):
                acc = 0.0
                for i in range(r1):
                    for t in range(t_count):
                        acc += channels[i, t + j] * delay[i, k, t]
                f2[j, k] = acc
        orthonormalize(f2)
    if sweeps == 0:
        _channel_rows(x, f1, channels)
    _delay_product(channels, f2, delay)
    for t in range(t_count):
        for i in range(r1):
            for k in range(r2):
                cores[t, i, k] = delay[i, k, t]


@njit(cache=True, inline="always")
def _delay_product(x: np.ndarray, f2: np.ndarray, out: np.ndarray) -> None:
    """``out[c, k, t] = sum_j x[c, t + j] f2[j, k]``: the Hankel tensor of the rows of ``x`` times ``f2``
    along its delay mode."""
    out[:] = 0.0
    for c in range(x.shape[0]):
        for j in range(f2.shape[0]):
            for k in range(f2.shape[1]):
                factor = f2[j, k]
                for t in range(out.shape[2]):
                    out[c, k, t] += factor * x[c, t + j]


@njit(cache=True, inline="always")
def _channel_rows(x: np.ndarray, f1: np.ndarray, out: np.ndarray) -> None:
    """``out = f1^T x``: (r1, L - d)."""
    out[:] = 0.0
    for c in range(x.shape[0]):
        for i in range(f1.shape[1]):
            weight = f1[c, i]
            for s in range(x.shape[1]):
                out[i, s] += weight * x[c, s]


@njit(cache=True)
def fit_batch(series: np.ndarray, widths: np.ndarray, d: int, tau: int, rank_channels: int, rank_delay: int,
              sweeps: int, floor: float, warm: bool, scale: np.ndarray, u1: np.ndarray, u2: np.ndarray,
              cores: np.ndarray) -> None:
    """Fit every member's window ``series[b, :w]`` (steps 1-4); with ``warm`` the factors in ``u1, u2`` are
    refined from where they are (orthogonal-iteration steps), else computed by HOSVD + HOOI. Writes scale,
    u1, u2 and cores in place."""
    for b in range(series.shape[0]):
        w = widths[b]
        diff = _differenced(series[b, :w], d)
        n = diff.shape[1]
        for c in range(w):
            square_sum = 0.0  # np.mean(diff[c] ** 2) summed as numba sums it, without an array per channel
            for t in range(n):
                square_sum += diff[c, t] * diff[c, t]
            divisor = scale[b, c] = max(np.sqrt(square_sum / n), floor)
            for t in range(n):  # a loop over a local divisor, not ``diff[c] /= ...``: the same division, vectorized
                diff[c, t] = diff[c, t] / divisor
        r1, r2 = min(rank_channels, w), min(rank_delay, tau)
        if warm:
            f1, f2 = u1[b, :w, :r1].copy(), u2[b, :, :r2].copy()  # copies: the member's factors are reset below
            _refine(diff, tau, sweeps, f1, f2, cores[b, :, :r1, :r2])
        else:
            f1, f2 = _fit_one(_hankel(diff, tau), r1, r2, sweeps, cores[b, :, :r1, :r2])
        u1[b] = 0.0  # a start fitted on other widths leaves nothing behind
        u2[b] = 0.0
        for c in range(w):
            for i in range(r1):
                u1[b, c, i] = f1[c, i]
        for j in range(f2.shape[0]):
            for k in range(r2):
                u2[b, j, k] = f2[j, k]


@njit(cache=True)
def extend_batch(recent: np.ndarray, widths: np.ndarray, d: int, tau: int, scale: np.ndarray, u1: np.ndarray,
                 u2: np.ndarray, previous: np.ndarray, cores: np.ndarray, bound: float) -> None:
    """Slide every member's cores by one iteration under fixed scales and factors: ``recent`` holds the last
    ``tau + d`` columns; ``cores`` gets the ``previous`` cores but the oldest, and the newest computed. A
    scaled difference beyond ``bound`` -- a channel that was flat at the fit and moves now -- counts as
    ``bound``. Scalar loops: the products are a few dozen flops, less than what a matrix product call costs."""
    r1, r2 = cores.shape[2], cores.shape[3]
    last = cores.shape[1] - 1
    projected = np.empty((tau, r1))  # (U1^T X)^T of the newest slice: a channel's weights in one row
    diff = np.empty(recent.shape[1:])  # a member's differences, in a buffer rather than a new array each
    member, core = cores[0].size, r1 * r2
    old, new = previous.reshape(-1), cores.reshape(-1)
    for b in range(recent.shape[0]):
        start = b * member
        for q in range(start, start + member - core):  # the cores but the oldest, one block per member
            new[q] = old[q + core]
        projected[:] = 0.0
        w = widths[b]
        _difference_into(recent[b, :w], d, diff)
        for c in range(w):
            divisor = scale[b, c]
            for j in range(tau):  # the divisions first, apart, by a local: they then overlap
                diff[c, j] = min(max(diff[c, j] / divisor, -bound), bound)
            for j in range(tau):
                for i in range(r1):
                    projected[j, i] += u1[b, c, i] * diff[c, j]
        for i in range(r1):
            for k in range(r2):
                acc = 0.0
                for j in range(tau):
                    acc += projected[j, i] * u2[b, j, k]
                cores[b, last, i, k] = acc


@njit(cache=True, inline="always")
def ar_coefficients(cores: np.ndarray, p: int) -> np.ndarray:
    """Yule-Walker AR(p) coefficients of one member's cores (T', r1, r2) (step 5; with the ridge), by the
    Levinson-Durbin recursion: the system is Toeplitz, so p steps replace a general solve."""
    t_count = cores.shape[0]
    flat = cores.reshape(t_count, -1)
    width = flat.shape[1]
    gamma = np.zeros(p + 1)
    for h in range(0, p + 1, 4):
        # four lags in one pass, each its own sum in the same order (over t, then the core's entries): one sum
        # at a time waited for every addition to finish before the next
        a0 = a1 = a2 = a3 = 0.0
        for t in range(h, t_count):
            for k in range(width):
                x = flat[t, k]
                a0 += x * flat[t - h, k]
                if t >= h + 1:
                    a1 += x * flat[t - h - 1, k]
                if t >= h + 2:
                    a2 += x * flat[t - h - 2, k]
                if t >= h + 3:
                    a3 += x * flat[t - h - 3, k]
        for lag, acc in enumerate((a0, a1, a2, a3)):
            if h + lag <= p:
                gamma[h + lag] = acc / t_count
    alpha, previous = np.zeros(p), np.zeros(p)
    error = gamma[0] + RIDGE * gamma[0] + TINY  # the ridge sits on the diagonal: on gamma(0) of the matrix only
    for k in range(p):
        acc = gamma[k + 1]
        for j in range(k):
            acc -= previous[j] * gamma[k - j]
        reflection = acc / error
        for j in range(k):
            alpha[j] = previous[j] - reflection * previous[k - 1 - j]
        alpha[k] = reflection
        error *= 1.0 - reflection * reflection
        for j in range(k + 1):
            previous[j] = alpha[j]
    return alpha


@njit(cache=True)
def predict_batch(recent: np.ndarray, widths: np.ndarray, d: int, p: int, binomial: np.ndarray,
                  scale: np.ndarray, u1: np.ndarray, u2: np.ndarray, cores: np.ndarray, bound: float) -> np.ndarray:
    """Next value of every channel (step 6): the AR forecast of the core, back to data through the last
    delay row, held within ``bound`` (scaled units), unscaled and integrated ``d`` times from the last columns
    of ``recent`` (``binomial[k] = C(d, k) (-1)^k``). Channels beyond a member's width get the integration
    term only."""
    b_count, m, length = recent.shape
    out = np.zeros((b_count, m))
    t_count, r1, r2 = cores.shape[1], cores.shape[2], cores.shape[3]
    tau = u2.shape[1]
    last_delay = np.empty(r1)  # (sum_i alpha_i G_T-i) u2[tau - 1]: the next slice's last column, in U1's basis
    for b in range(b_count):
        for c in range(m):
            for k in range(1, d + 1):
                out[b, c] -= binomial[k] * recent[b, c, length - k]
        alpha = ar_coefficients(cores[b], p)
        for i in range(r1):
            acc = 0.0
            for lag in range(p):
                for k in range(r2):
                    acc += alpha[lag] * cores[b, t_count - 1 - lag, i, k] * u2[b, tau - 1, k]
            last_delay[i] = acc
        for c in range(widths[b]):
            acc = 0.0
            for i in range(r1):
                acc += u1[b, c, i] * last_delay[i]
            out[b, c] += min(max(acc, -bound), bound) * scale[b, c]
    return out
