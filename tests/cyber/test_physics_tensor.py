"""The physics-informed BHT-ARIMA steps against cvxpy (core update), scipy (Procrustes), tensorly (Tucker) and
first-order optimality (the majorised factor update)."""

import cvxpy as cp
import numpy as np
import pytest
import scipy.linalg

from cyber import physics_tensor as pt
from cyber.tensor_forecast import TuckerArimaModel, forecast_reference


def _orthonormal(rng, rows, cols, batch):
    return np.stack([np.linalg.qr(rng.normal(size=(rows, cols)))[0] for _ in range(batch)])


@pytest.fixture
def problem():
    rng = np.random.default_rng(7)
    b, m, tau, t, r1, r2, e = 2, 6, 4, 9, 3, 2, 2
    hankel = rng.normal(size=(b, t, m, tau))
    return dict(rng=rng, hankel=hankel, u1=_orthonormal(rng, m, r1, b), u2=_orthonormal(rng, tau, r2, b),
                phi=rng.normal(size=(b, e, m)), target=rng.normal(size=(b, t - 3, r1, r2)), start=3)


def test_core_update_solves_the_regularised_least_squares_problem(problem):
    """Every core minimises ||X_t - U1 G U2^T||^2 + [t >= start] ||G - A_t||^2 + lam ||Phi U1 G||^2 (cvxpy)."""
    h, u1, u2, phi, lam = problem["hankel"], problem["u1"], problem["u2"], problem["phi"], 0.7
    start = problem["start"]
    cores = pt.core_update(pt.project(h, u1, u2), problem["target"], start, pt.physics_gram(phi, u1), lam)
    for b in range(h.shape[0]):
        for t in (0, start, h.shape[1] - 1):
            g = cp.Variable(cores.shape[2:])
            cost = cp.sum_squares(h[b, t] - u1[b] @ g @ u2[b].T) + lam * cp.sum_squares(phi[b] @ u1[b] @ g)
            if t >= start:
                cost += cp.sum_squares(g - problem["target"][b, t - start])
            cp.Problem(cp.Minimize(cost)).solve()
            assert np.allclose(cores[b, t], g.value, atol=1e-5)


def test_factor_updates_without_physics_are_procrustes(problem):
    """lam = 0: U1 and U2 are scipy's polar factors of sum_t X_t U2 G_t^T and sum_t X_t^T U1 G_t."""
    h, u1, u2 = problem["hankel"], problem["u1"], problem["u2"]
    cores = pt.project(h, u1, u2) + 0.1
    new_u1 = pt.channel_factor_update(h, u1, u2, cores, problem["phi"], 0.0)
    new_u2 = pt.delay_factor_update(h, u1, cores)
    for b in range(h.shape[0]):
        b1 = sum(h[b, t] @ u2[b] @ cores[b, t].T for t in range(h.shape[1]))
        b2 = sum(h[b, t].T @ u1[b] @ cores[b, t] for t in range(h.shape[1]))
        assert np.allclose(new_u1[b], scipy.linalg.polar(b1)[0])
        assert np.allclose(new_u2[b], scipy.linalg.polar(b2)[0])


def _channel_cost(h, u1, u2, cores, phi, lam):
    recon = np.einsum("mi,tik,jk->tmj", u1, cores, u2)
    return np.sum((h - recon) ** 2) + lam * np.sum(np.einsum("em,mi,tik->tek", phi, u1, cores) ** 2)


def test_physics_factor_update_descends_to_a_stationary_point(problem):
    """With the physics term the U1 step never increases the cost, and its fixed point satisfies the first-order
    condition on the Stiefel manifold (Riemannian gradient ``grad - U sym(U^T grad)`` zero)."""
    h, u1, u2, phi, lam = problem["hankel"], problem["u1"], problem["u2"], problem["phi"], 2.0
    cores = pt.project(h, u1, u2) + 0.2
    costs = [_channel_cost(h[0], u1[0], u2[0], cores[0], phi[0], lam)]
    for _ in range(1500):
        u1 = pt.channel_factor_update(h, u1, u2, cores, phi, lam)
        costs.append(_channel_cost(h[0], u1[0], u2[0], cores[0], phi[0], lam))
    assert np.all(np.diff(costs) <= 1e-9 * costs[0])
    u = u1[0]
    c = np.einsum("tik,tjk->ij", cores[0], cores[0])
    grad = -2 * sum(h[0, t] @ u2[0] @ cores[0, t].T for t in range(h.shape[1])) + 2 * u @ c \
        + 2 * lam * phi[0].T @ phi[0] @ u @ c
    riemannian = grad - u @ (0.5 * (u.T @ grad + grad.T @ u))
    assert np.linalg.norm(riemannian) < 1e-6 * np.linalg.norm(grad)


def test_a_round_never_increases_the_objective_with_the_arima_target_fixed():
    rng = np.random.default_rng(3)
    series = np.cumsum(rng.normal(size=(3, 7, 30)), axis=-1)
    phi = rng.normal(size=(3, 2, 7))
    model = pt.PhysicsTensorModel(iterations=0, lam=1.0)
    state = pt.fit(series, phi, model)
    hankel = pt.slices(series, model.tucker, state.scale)
    phi_s = pt.scaled_physics(phi, state.scale)
    before = pt.objective(hankel, state, phi_s, model)
    after = pt.iterate(hankel, state, phi_s, model)
    # the round's cost: its factors and cores, the targets of the state it started from
    assert np.all(pt.objective(hankel, pt.PhysicsTensorFit(**{**state.__dict__, "u1": after.u1, "u2": after.u2}),
                               phi_s, model, after.cores) <= before + 1e-9)


def test_without_rounds_or_ma_the_forecast_is_tensorlys_tucker_arima():
    """Zero rounds, q = 0: the HOSVD + HOOI factors and the AR forecast of the tensorly oracle."""
    rng = np.random.default_rng(11)
    series = np.cumsum(rng.normal(size=(2, 6, 24)), axis=-1)
    model = pt.PhysicsTensorModel(TuckerArimaModel(), q=0, iterations=0)
    got = pt.predict(pt.fit(series, np.zeros((2, 1, 6)), model), series, model)
    for b in range(2):
        assert np.allclose(got[b], forecast_reference(series[b], model.tucker))


def test_physics_pulls_the_forecast_onto_the_equality():
    """Series whose last channel is the sum of the others, observed with noise: with the equality
    ``sum - last = 0`` the one-step forecasts violate it less than without."""
    rng = np.random.default_rng(5)
    bases = np.cumsum(rng.normal(size=(20, 4, 40)), axis=-1)
    series = np.concatenate([bases, bases.sum(axis=1, keepdims=True)], axis=1) + 0.3 * rng.normal(size=(20, 5, 40))
    phi = np.broadcast_to(np.array([1.0, 1, 1, 1, -1]), (20, 1, 5))
    violation = {}
    for lam in (0.0, 1.0):
        model = pt.PhysicsTensorModel(lam=lam)
        forecast = pt.predict(pt.fit(series, phi, model), series, model)
        violation[lam] = np.mean(np.abs(np.einsum("bem,bm->be", phi, forecast)))
    assert violation[1.0] < violation[0.0]


def test_arima_coefficients_of_an_ar1_core_series():
    """Cores that follow G_t = 0.5 G_t-1 + white noise: alpha close to 0.5, AR residuals ``G_t - alpha G_t-1``
    white, so the MA coefficient (Yule-Walker on the residuals) close to 0."""
    rng = np.random.default_rng(2)
    g = np.zeros((5000, 2, 2))
    for t in range(1, len(g)):
        g[t] = 0.5 * g[t - 1] + rng.normal(size=(2, 2))
    alpha, residuals, beta = pt.arima(g[None], 1, 1)
    assert abs(alpha[0, 0] - 0.5) < 0.03 and abs(beta[0, 0]) < 0.03
    assert np.allclose(residuals[0, 1:], g[1:] - alpha[0, 0] * g[:-1])
