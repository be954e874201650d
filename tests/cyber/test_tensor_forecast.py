"""The batched Tucker + ARIMA forecast against tensorly, its online update, and its accuracy on known series."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cyber.forecast_kernels import ar_coefficients, orthonormalize
from cyber.tensor_forecast import (
    TuckerArimaModel,
    embed,
    extend,
    fit,
    forecast_batch,
    forecast_reference,
    predict,
    step_bound,
    yule_walker,
)


def random_walks(seed: int, b: int = 3, m: int = 7, length: int = 30) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.standard_normal((b, m, length)), axis=2)


@settings(deadline=None)  # the first example compiles the kernels
@given(seed=st.integers(0, 10_000), sweeps=st.integers(0, 3), d=st.integers(1, 2), m=st.integers(2, 9))
def test_batched_forecast_equals_tensorly(seed, sweeps, d, m):
    model = TuckerArimaModel(d=d, sweeps=sweeps)
    series = random_walks(seed, m=m)
    expected = np.stack([forecast_reference(s, model) for s in series])
    assert np.allclose(forecast_batch(series, model), expected, rtol=1e-7, atol=1e-9)


@settings(deadline=None)
@given(seed=st.integers(0, 10_000), d=st.integers(1, 2))
def test_a_member_narrower_than_the_batch_is_forecast_on_its_own_channels(seed, d):
    """Padding: a member fitted on its first w channels of a wider batch gets the forecast of its w-channel
    series, whatever the padded channels hold; online refits and slides keep to its channels too."""
    model = TuckerArimaModel(d=d)
    series = random_walks(seed, b=2, m=9, length=31)
    widths = np.array([9, 5])
    alone = forecast_reference(series[1, :5, :30], model)
    assert np.allclose(forecast_batch(series[..., :30], model, widths)[1, :5], alone, rtol=1e-7, atol=1e-9)
    state = fit(series[..., :30], model, widths=widths)
    again = fit(series[..., 1:], model, state, widths)
    narrow = fit(series[1:, :5, 1:], model, fit(series[1:, :5, :30], model))
    assert np.allclose(again.cores[1, :, :4], narrow.cores[0], atol=1e-10)
    slid = extend(state, series, model, widths)
    assert np.allclose(slid.cores[1, :, :4], extend(fit(series[1:, :5, :30], model), series[1:, :5], model).cores[0],
                       atol=1e-10)


def test_factors_are_orthonormal_and_refits_keep_them_so():
    model = TuckerArimaModel()
    series = random_walks(3)
    first = fit(series, model)
    again = fit(series + 0.01, model, first)
    for u in (first.u1, first.u2, again.u1, again.u2):
        gram = np.swapaxes(u, 1, 2) @ u
        assert np.allclose(gram, np.eye(u.shape[2]), atol=1e-10)


def test_refits_from_the_last_factors_reach_the_same_subspace():
    """On data with a clear rank-2 structure (one oscillation, random phases), refits from unrelated factors
    converge to the subspaces of a full HOOI."""
    model = TuckerArimaModel(rank_channels=2, rank_delay=2, sweeps=1)
    rng = np.random.default_rng(5)
    t = np.arange(30)
    series = rng.uniform(0.5, 2, (2, 7, 1)) * np.sin(0.4 * t + rng.uniform(0, 6, (2, 7, 1)))
    series = np.cumsum(series + 1e-3 * rng.standard_normal(series.shape), axis=2)
    full = fit(series, TuckerArimaModel(rank_channels=2, rank_delay=2, sweeps=30))
    exact = (full.u1, full.u2)
    state = fit(random_walks(6, b=2), model)  # factors of other data
    for _ in range(40):
        state = fit(series, model, state)
    for a, b in zip(exact, (state.u1, state.u2), strict=True):
        projector = a @ np.swapaxes(a, 1, 2)
        assert np.allclose(projector @ b, b, atol=1e-6)


@settings(deadline=None)
@given(seed=st.integers(0, 10_000), d=st.integers(1, 2), sweeps=st.integers(0, 2))
def test_a_refit_is_the_orthogonal_iteration_written_with_numpy(seed, d, sweeps):
    """The compiled refit (scalar loops, its own Gram-Schmidt) against the same sweeps in numpy with LAPACK's
    QR: the same subspaces, and the same Tucker slices ``U1 G_t U2^T`` (blind to the factors' signs)."""
    model = TuckerArimaModel(d=d, sweeps=sweeps)
    series = random_walks(seed, b=2, m=6)
    start = fit(random_walks(seed + 1, b=2, m=6), model)  # factors of other data
    refit = fit(series, model, start)
    for b in range(2):
        x, _ = embed(series[b], model, refit.scale[b])  # (m, tau, T')
        u1, u2 = start.u1[b], start.u2[b]
        for _ in range(sweeps):
            a = np.einsum("mjt,jk->mtk", x, u2).reshape(len(x), -1)
            u1 = np.linalg.qr(a @ (a.T @ u1))[0]
            projected = np.einsum("mjt,mi->itj", x, u1).reshape(-1, model.tau)
            u2 = np.linalg.qr(projected.T @ (projected @ u2))[0]
        cores = np.einsum("mjt,mi,jk->tik", x, u1, u2)
        assert np.allclose(refit.u1[b] @ refit.u1[b].T, u1 @ u1.T, atol=1e-9)
        assert np.allclose(refit.u2[b] @ refit.u2[b].T, u2 @ u2.T, atol=1e-9)
        slices = np.einsum("mi,tik,jk->tmj", refit.u1[b], refit.cores[b], refit.u2[b])
        assert np.allclose(slices, np.einsum("mi,tik,jk->tmj", u1, cores, u2), atol=1e-9)


@settings(deadline=None)
@given(seed=st.integers(0, 10_000), rows=st.integers(1, 9), columns=st.integers(1, 4),
       degenerate=st.sampled_from(["none", "zero", "repeated", "tiny"]))
def test_orthonormalize_spans_what_lapack_qr_spans(seed, rows, columns, degenerate):
    """Orthonormal columns spanning the input's columns, as ``np.linalg.qr``'s; a zero, repeated or tiny column
    still gets an orthonormal partner (the fit's windows hold flat channels and zero padding)."""
    columns = min(columns, rows)
    rng = np.random.default_rng(seed)
    y = rng.standard_normal((rows, columns)) * 10.0 ** rng.uniform(-8, 3)
    if columns > 1 and degenerate == "zero":
        y[:, 1] = 0.0
    elif columns > 1 and degenerate == "repeated":
        y[:, -1] = y[:, 0]
    elif degenerate == "tiny":
        y[:, 0] *= 1e-200
    q = y.copy()
    orthonormalize(q)
    assert np.allclose(q.T @ q, np.eye(columns), atol=1e-12)
    if degenerate == "none":
        lapack = np.linalg.qr(y)[0]
        assert np.allclose(q @ q.T, lapack @ lapack.T, atol=1e-9)
    residual = np.linalg.norm(q @ (q.T @ y) - y, axis=0)
    assert (residual <= 1e-9 * np.linalg.norm(y, axis=0)).all()


def test_extend_equals_the_cores_of_the_slid_window_under_fixed_factors():
    model = TuckerArimaModel()
    series = random_walks(7, length=31)
    state = fit(series[..., :-1], model)
    slid = extend(state, series, model)
    hankel, _ = embed(series[..., 1:], model, state.scale)
    expected = np.einsum("bmr,bmkt,bks->btrs", state.u1, hankel, state.u2)
    assert np.allclose(slid.cores, expected, atol=1e-12)


@pytest.mark.parametrize("d", [1, 2])
def test_forecast_beats_repeating_the_last_value_on_smooth_multichannel_series(d):
    t = np.arange(31)
    rng = np.random.default_rng(0)
    phases, amps = rng.uniform(0, 6, 8), rng.uniform(0.5, 2, 8)
    clean = amps[:, None] * np.sin(0.25 * t[None, :] + phases[:, None])
    forecast = forecast_batch(clean[None, :, :30], TuckerArimaModel(d=d))[0]
    assert np.abs(forecast - clean[:, 30]).max() < 0.2 * np.abs(clean[:, 29] - clean[:, 30]).max()


def test_flat_channels_stay_finite():
    series = np.zeros((2, 4, 30))
    series[:, 0] = np.linspace(0, 1, 30)
    state = fit(series, TuckerArimaModel())
    series[:, 1, -1] = 1e-6  # a flat channel that moves after the fit
    assert np.isfinite(predict(extend(state, series, TuckerArimaModel()), series, TuckerArimaModel())).all()


@pytest.mark.parametrize("seed", range(5))
def test_a_channel_flat_at_the_fit_that_starts_moving_does_not_derail_the_others(seed):
    """Channels nearly flat when the factors were fitted (scale near the floor) start moving over the next
    iterations, as a market's flows do when a disturbance reaches them. Their differences are 1e3-1e6 of
    their fitted scale; the smooth channels' forecasts must stay within what their own window could hold
    (unbounded: 700x that) and near their linear continuation."""
    model = TuckerArimaModel()
    rng = np.random.default_rng(seed)
    t = np.arange(36)
    slopes = rng.uniform(-3e-5, 3e-5, (1, 8, 1))
    series = 0.5 + slopes * t + 1e-7 * rng.standard_normal((1, 8, 36))
    series[0, :4] = 0.9 + 1e-9 * rng.standard_normal((4, 36))
    series[0, :4, 30:] += np.cumsum(rng.choice([-1, 1], (4, 6)) * np.logspace(-6, -3, 6), axis=1)
    state = fit(series[..., :30], model)
    for k in range(31, 37):
        state = extend(state, series[..., :k], model)
    forecast = predict(state, series, model)[0, 4:]
    scale = state.scale[0, 4:]
    assert (np.abs(forecast - series[0, 4:, -1]) <= step_bound(state.cores.shape[1], model) * scale).all()
    assert np.abs(forecast - (series[0, 4:, -1] + slopes[0, 4:, 0])).max() < 3 * scale.max()


def test_a_refit_at_other_widths_leaves_nothing_of_the_start_beyond_them():
    """Factors fitted on 9 channels, refitted on 2: the slid cores and the forecast see only the 2."""
    model = TuckerArimaModel()
    series = random_walks(11, b=1, m=9, length=31)
    narrow = np.array([2])
    again = fit(series[..., :30], model, fit(series[..., :30], model), narrow)
    assert not again.u1[0, 2:].any() and not again.u1[0, :, 2:].any()
    slid = extend(again, series, model, narrow)
    assert not slid.cores[..., 2:, :].any()  # the rank on 2 channels is 2: no core from a stale factor column


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), p=st.integers(1, 6))
def test_levinson_recursion_solves_the_yule_walker_system(seed, p):
    """The compiled AR fit (Levinson-Durbin on the Toeplitz system) against a general solve of it."""
    rng = np.random.default_rng(seed)
    cores = np.cumsum(rng.standard_normal((26, 4, 2)), axis=0) * 10.0 ** rng.uniform(-6, 2)
    assert np.allclose(ar_coefficients(cores, p), yule_walker(cores[None], p)[0], rtol=1e-8, atol=1e-10)


def test_widths_outside_the_channels_are_refused():
    """The compiled loops trust the widths (no bounds checks): a width of 0 or beyond the channels is an error."""
    series, model = random_walks(0, b=2, m=3), TuckerArimaModel()
    assert np.array_equal(forecast_batch(series, model, np.array([3, 3])), forecast_batch(series, model))
    for bad in ([0, 3], [3, 4], [3]):
        with pytest.raises(ValueError, match="widths must be 2 channel counts in 1..3"):
            forecast_batch(series, model, np.array(bad))
