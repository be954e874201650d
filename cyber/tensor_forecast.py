"""One-step forecasts of multichannel series by Tucker decomposition and ARIMA on the cores.

After BHT-ARIMA (Shi et al., AAAI 2020), the model of the paper's detector (seed 001, Sec. III-B, App. A):

1. the window ``s`` (channels x L iterations) is differenced ``d`` times along time;
2. each channel is scaled to unit RMS so that small quantities (losses, trades) weigh as much as large ones;
3. multi-way delay embedding (MDT) along time: a block Hankel tensor, channels x tau x T' (T' = L - d - tau + 1),
   whose t-th slice holds the iterations t .. t + tau - 1;
4. Tucker decomposition with orthogonal factors on the channel and the delay modes (HOSVD then HOOI sweeps,
   every factor a closed-form SVD), cores ``G_t = U1^T X_t U2``;
5. AR(p) coefficients shared by all core entries, by Yule-Walker on the cores' tensor inner products
   (the MA part of BHT-ARIMA is left out: q = 0);
6. ``G_T+1 = sum_i alpha_i G_T+1-i``, back to a Hankel slice ``U1 G U2^T`` whose last column is the next
   iteration's d-th difference, held within :data:`STEP_BOUND`, unscaled and integrated ``d`` times.

:func:`forecast_batch` runs many independent series at once (one per agent, each on its own channels of a
padded batch) in compiled kernels (:mod:`cyber.forecast_kernels`); :func:`forecast_reference` does one series
with tensorly and is the test oracle. Online, :func:`fit` is redone every few iterations (refining the factors
from the last fit) and :func:`extend` adds one core per iteration in between, so that an iteration costs a few
small matrix products.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from math import comb, sqrt

import numpy as np
import tensorly as tl
from numpy.lib.stride_tricks import sliding_window_view
from tensorly.decomposition import partial_tucker

from cyber import forecast_kernels as kernels

#: Channels that moved less than this (p.u. per iteration) are scaled as if they had: a flat channel must not
#: turn its next tiny move into a huge standardised one.
SCALE_FLOOR = 1e-9
#: A d-th difference -- forecast, or new since the last fit -- counts at most this many times the largest one
#: the fitted window could hold (its scaled differences have RMS 1, so none exceeds the square root of their
#: number). A channel flat at the fit (scale near the floor) that starts moving afterwards would otherwise
#: put differences of 1e5 into the cores, and the Tucker factors mix channels: an 85-bus clearing converging
#: at residual 1e-4 got forecasts 3 p.u. off, replacements made of them, and a residual of 200.
STEP_BOUND = 2.0


@dataclass(frozen=True)
class TuckerArimaModel:
    """Orders and ranks: ``tau`` MDT delay, ``d`` differencing order, ``p`` AR order, ranks on the channel and
    delay modes, ``sweeps`` HOOI sweeps after the HOSVD."""

    tau: int = 4
    d: int = 1
    p: int = 3
    rank_channels: int = 4
    rank_delay: int = 2
    sweeps: int = 1

    def slices(self, window: int) -> int:
        return window - self.d - self.tau + 1


@dataclass(frozen=True)
class TuckerArimaFit:
    """A fitted batch: channel scales (b, m), factors (b, m, r1) and (b, tau, r2), cores (b, T', r1, r2)."""

    scale: np.ndarray
    u1: np.ndarray
    u2: np.ndarray
    cores: np.ndarray


def embed(series: np.ndarray, model: TuckerArimaModel,
          scale: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Steps 1-3 over the last axis: (..., m, L) -> Hankel tensor (..., m, tau, T') and the channel scales
    (computed from the series unless given)."""
    diff = np.diff(series, n=model.d, axis=-1)
    if scale is None:
        scale = np.maximum(np.sqrt(np.mean(diff**2, axis=-1)), SCALE_FLOOR)
    hankel = sliding_window_view(diff / scale[..., None], model.tau, axis=-1)  # (..., m, T', tau)
    return np.swapaxes(hankel, -1, -2), scale


def yule_walker(cores: np.ndarray, p: int) -> np.ndarray:
    """AR(p) coefficients per batch member from cores (b, T', r1, r2): ``R alpha = gamma`` with
    ``gamma(h) = sum_t <G_t, G_t-h> / T'`` (step 5). A ridge of 1e-8 gamma(0) keeps flat series solvable."""
    b, t = cores.shape[:2]
    flat = cores.reshape(b, t, -1)
    gamma = np.stack([(flat[:, h:] * flat[:, : t - h]).sum(axis=(1, 2)) / t for h in range(p + 1)], axis=1)
    lags = np.abs(np.subtract.outer(np.arange(p), np.arange(p)))
    toeplitz = gamma[:, lags] + (kernels.RIDGE * gamma[:, :1] + kernels.TINY)[:, :, None] * np.eye(p)
    return np.linalg.solve(toeplitz, gamma[:, 1:, None])[..., 0]


def fit(series: np.ndarray, model: TuckerArimaModel, start: TuckerArimaFit | None = None,
        widths: np.ndarray | None = None) -> TuckerArimaFit:
    """Fit a batch of windows ``(b, m, L)``, member ``b`` on its first ``widths[b]`` channels (default all):
    HOSVD then ``sweeps`` HOOI sweeps, or -- with ``start`` -- ``sweeps`` HOOI sweeps whose SVDs are single
    orthogonal-iteration steps from its factors (what an online refit needs)."""
    b, m, length = series.shape
    r1, r2 = min(model.rank_channels, m), min(model.rank_delay, model.tau)
    u1, u2 = (np.zeros((b, m, r1)), np.zeros((b, model.tau, r2))) if start is None else (start.u1.copy(),
                                                                                          start.u2.copy())
    state = TuckerArimaFit(np.full((b, m), SCALE_FLOOR), u1, u2, np.zeros((b, model.slices(length), r1, r2)))
    kernels.fit_batch(np.ascontiguousarray(series, dtype=float), _widths(widths, b, m), model.d, model.tau,
                      model.rank_channels, model.rank_delay, model.sweeps, SCALE_FLOOR, start is not None,
                      state.scale, state.u1, state.u2, state.cores)
    return state


def extend(state: TuckerArimaFit, series: np.ndarray, model: TuckerArimaModel,
           widths: np.ndarray | None = None) -> TuckerArimaFit:
    """Slide the fit by one iteration without refitting: the newest slice of ``series`` (whose last column is
    new) gets its core under the same scales and factors, its differences held within :data:`STEP_BOUND`;
    the oldest core is dropped."""
    cores = np.empty_like(state.cores)
    recent = np.asarray(series[..., -(model.tau + model.d):], dtype=float)  # a window's view: read, not copied
    kernels.extend_batch(recent, _widths(widths, *series.shape[:2]), model.d, model.tau, state.scale, state.u1,
                         state.u2, state.cores, cores, step_bound(cores.shape[1], model))
    return TuckerArimaFit(state.scale, state.u1, state.u2, cores)


def predict(state: TuckerArimaFit, series: np.ndarray, model: TuckerArimaModel,
            widths: np.ndarray | None = None) -> np.ndarray:
    """Next value of every channel (step 6): AR forecast of the core, back to data, held within
    :data:`STEP_BOUND`, integrated ``d`` times."""
    return kernels.predict_batch(np.asarray(series, dtype=float), _widths(widths, *series.shape[:2]),
                                 model.d, model.p, _binomial(model.d), state.scale, state.u1, state.u2, state.cores,
                                 step_bound(state.cores.shape[1], model))


@cache
def _binomial(d: int) -> np.ndarray:
    """``C(d, k) (-1)^k`` for k = 0..d: the weights that integrate a d-th difference (read-only, made once)."""
    weights = np.array([comb(d, k) * (-1) ** k for k in range(d + 1)], dtype=float)
    weights.flags.writeable = False
    return weights


def warm_up_fit(model: TuckerArimaModel) -> tuple[TuckerArimaFit, np.ndarray]:
    """Load (or compile) the fit's kernel for the argument types the detectors pass -- a fit and a refit
    from it, one compiled signature -- so that a timed run does not pay for it. Returns the refit and the
    small series it was fitted on (for warming up :func:`extend` and :func:`predict`)."""
    series = np.cumsum(np.ones((1, model.rank_channels, model.d + model.tau + model.p)), axis=-1)
    widths = np.full(1, model.rank_channels)
    return fit(series, model, fit(series, model, widths=widths), widths), series


def step_bound(slices: int, model: TuckerArimaModel) -> float:
    """:data:`STEP_BOUND` in scaled units, for a fit on ``slices`` Hankel slices (``L - d`` differences)."""
    return STEP_BOUND * sqrt(slices + model.tau - 1)


def forecast_batch(series: np.ndarray, model: TuckerArimaModel, widths: np.ndarray | None = None) -> np.ndarray:
    """Next value of every channel of every series ``(b, m, L) -> (b, m)``, from a fresh fit."""
    return predict(fit(series, model, widths=widths), series, model, widths)


def _widths(widths: np.ndarray | None, b: int, m: int) -> np.ndarray:
    if widths is None:
        return np.full(b, m, dtype=np.int64)
    widths = np.asarray(widths, dtype=np.int64)
    if len(widths) != b or not kernels.within(widths, 1, m):
        raise ValueError(f"forecast widths must be {b} channel counts in 1..{m}")
    return widths


def integrate(series: np.ndarray, d: int) -> np.ndarray:
    """What the next value is, given its d-th difference is zero: ``-sum_k C(d,k) (-1)^k s[L-k]``."""
    return -sum(comb(d, k) * (-1) ** k * series[..., -k] for k in range(1, d + 1))


def forecast_reference(series: np.ndarray, model: TuckerArimaModel) -> np.ndarray:
    """The same forecast for one series ``(m, L) -> (m,)`` with tensorly's Tucker (the test oracle)."""
    hankel, scale = embed(series, model)
    m, tau, t = hankel.shape
    ranks = [min(model.rank_channels, m), min(model.rank_delay, tau)]
    (_, (u1, u2)), _ = partial_tucker(tl.tensor(hankel), rank=ranks, modes=[0, 1], init="svd",
                                      n_iter_max=model.sweeps, tol=0.0)
    cores = np.stack([tl.tenalg.multi_mode_dot(hankel[:, :, k], [u1, u2], modes=[0, 1], transpose=True)
                      for k in range(t)])
    alpha = yule_walker(cores[None], model.p)[0]
    nxt = sum(alpha[i] * cores[t - 1 - i] for i in range(model.p))
    slice_next = tl.tenalg.multi_mode_dot(nxt, [u1, u2], modes=[0, 1])
    bound = step_bound(t, model)
    return np.clip(slice_next[:, -1], -bound, bound) * scale + integrate(series, model.d)
