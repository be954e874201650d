"""Physics-informed BHT-ARIMA: the paper's tensor learning (seed 001, Sec. III-B eqs. 11-14, App. A eqs. 22-26).

One agent's window ``s`` (channels x L iterations: its own values and what it received) must satisfy, once the
market has converged, the DistFlow equalities of its group, ``Phi s_k = 0`` at every iteration ``k`` (rows of
``Phi``: :func:`cyber.physics_rows`). Differencing and the delay embedding act on time only, so every Hankel
slice ``X_t`` (channels x tau) of the differenced window satisfies them too, ``Phi X_t = 0``. The learning
problem, batched over agents (each on its own channels of a padded batch), is

    min_{G, U1, U2}  sum_t ||X_t - U1 G_t U2^T||^2  +  sum_{t >= p+q} ||G_t - A_t||^2  +  lam sum_t ||Phi U1 G_t||^2
    s.t. U1^T U1 = I, U2^T U2 = I,

with ``A_t = sum_i alpha_i G_t-i + sum_j beta_j E_t-j`` the ARIMA(p, d, q) model of the cores (``E`` the AR
residuals, ``E_t = G_t - sum_i alpha_i G_t-i``). The paper writes the third term ``||Phi_i G||^2``: the data's
equality carried to the cores, whose channel mode lives in ``U1``'s basis, so the matrix acting on a core is
``Phi U1`` (``U2`` drops out: ``||Phi U1 G U2^T|| = ||Phi U1 G||``). In the scaled coordinates the fit uses
(every channel divided by its RMS difference) ``Phi`` becomes ``Phi diag(scale)``, each row normalised to unit
length so that the equal weights of the paper's (14a) weigh each equality like one data entry.

Block-coordinate steps, each in closed form (:func:`fit` runs ``iterations`` rounds of them):

1. *ARIMA* (App. A, last paragraph): ``alpha`` by Yule-Walker on the cores' tensor inner products, the residuals
   ``E``, ``beta`` by Yule-Walker on ``E`` (BHT-ARIMA's estimate of the MA part);
2. *coupled core update* (22-23): with ``A_t`` held fixed (as BHT-ARIMA does), each core minimises a strictly
   convex quadratic whose normal equations couple its rows through the physics:
   ``((1 + [t >= p+q]) I + lam U1^T Phi^T Phi U1) G_t = U1^T X_t U2 + [t >= p+q] A_t``;
3. *orthogonal factor updates* (24-26), Procrustes via SVD: ``U2 = P V^T`` from the SVD ``P S V^T`` of
   ``sum_t X_t^T U1 G_t``; for ``U1`` the physics term depends on it too, and is majorised at the current
   ``U1`` (``tr(U^T (Phi^T Phi - a I) U C)`` is concave for ``a >= ||Phi||^2``, ``C = sum_t G_t G_t^T``), so
   ``U1`` is the Procrustes solution of ``B = sum_t X_t U2 G_t^T + lam (a I - Phi^T Phi) U1 C`` -- the
   objective never increases. (With ``lam = 0`` this is BHT-ARIMA's factor update.)

One-step forecast (15a-c): ``G_T+1 = sum_i alpha_i G_T+1-i + sum_j beta_j E_T+1-j``; its Hankel slice
``U1 G U2^T``'s last column is the next d-th difference, held within :data:`cyber.tensor_forecast.STEP_BOUND`,
unscaled and integrated. Between refits :func:`extend` adds the newest slice's core by the same coupled update
under fixed factors and coefficients, so that an iteration costs a few small products.

Initial factors: HOSVD + HOOI of the Hankel tensor (:func:`cyber.tensor_forecast.fit`, tested against tensorly),
or the last fit's factors refined by orthogonal iteration.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from cyber import tensor_forecast
from cyber.tensor_forecast import TuckerArimaModel, embed, step_bound, yule_walker


@dataclass(frozen=True)
class PhysicsTensorModel:
    """Orders and ranks (``tucker``: delay ``tau``, differencing ``d``, AR order ``p``, ranks), the MA order
    ``q``, the BHT-ARIMA rounds per fit and the weight ``lam`` of the physics term (the paper: 1, equal
    weights; 0 is the ablation)."""

    tucker: TuckerArimaModel = TuckerArimaModel()
    q: int = 1
    iterations: int = 1
    lam: float = 1.0

    def __post_init__(self) -> None:
        if self.q < 0 or self.iterations < 0 or self.lam < 0:
            raise ValueError("physics tensor model: q, iterations and lam must be >= 0")

    @property
    def lags(self) -> int:
        """Cores before this index have no ARIMA prediction."""
        return self.tucker.p + self.q


@dataclass(frozen=True)
class PhysicsTensorFit:
    """A fitted batch: channel scales (b, m), factors (b, m, r1) and (b, tau, r2), cores and their AR residuals
    (b, T', r1, r2), ARIMA coefficients (b, p) and (b, q), the physics Gram ``U1^T Phi^T Phi U1`` (b, r1, r1)."""

    scale: np.ndarray
    u1: np.ndarray
    u2: np.ndarray
    cores: np.ndarray
    residuals: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    gram: np.ndarray


def scaled_physics(phi: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``Phi diag(scale)`` with every nonzero row normalised to unit length: (b, e, m)."""
    scaled = phi * scale[:, None, :]
    norm = np.linalg.norm(scaled, axis=-1, keepdims=True)
    return np.divide(scaled, norm, out=np.zeros_like(scaled), where=norm > 0)


def arima(cores: np.ndarray, p: int, q: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Step 1: ``alpha`` (b, p) by Yule-Walker on the cores, the AR residuals ``E`` (zero before index p) and
    ``beta`` (b, q) by Yule-Walker on them."""
    alpha = yule_walker(cores, p)
    residuals = np.zeros_like(cores)
    residuals[:, p:] = cores[:, p:] - _lagged(cores, alpha, p, cores.shape[1])
    beta = yule_walker(residuals[:, p:], q) if q else np.zeros((len(cores), 0))
    return alpha, residuals, beta


def _lagged(series: np.ndarray, coef: np.ndarray, start: int, stop: int) -> np.ndarray:
    """``sum_i coef_i series[t - 1 - i]`` for t in start..stop-1: (b, stop - start, r1, r2)."""
    out = np.zeros((series.shape[0], stop - start, *series.shape[2:]))
    for i in range(coef.shape[1]):
        out += coef[:, i, None, None, None] * series[:, start - 1 - i: stop - 1 - i]
    return out


def predictions(cores: np.ndarray, residuals: np.ndarray, alpha: np.ndarray, beta: np.ndarray,
                start: int) -> np.ndarray:
    """``A_t`` for t = start .. T' (the last one is the forecast of the next core): (b, T' + 1 - start, ...)."""
    stop = cores.shape[1] + 1
    padded = np.concatenate([cores, np.zeros_like(cores[:, :1])], axis=1)
    padded_e = np.concatenate([residuals, np.zeros_like(residuals[:, :1])], axis=1)
    return _lagged(padded, alpha, start, stop) + _lagged(padded_e, beta, start, stop)


def core_update(projected: np.ndarray, target: np.ndarray, start: int, gram: np.ndarray, lam: float) -> np.ndarray:
    """Step 2: every core from its projection ``U1^T X_t U2`` (b, T', r1, r2) and, from index ``start`` on,
    the ARIMA prediction ``target`` (b, T' - start, r1, r2), coupled through ``lam * gram`` (b, r1, r1). Two
    systems per member (without and with the ARIMA term), inverted once."""
    eye = np.eye(gram.shape[-1])
    inverse = np.linalg.inv(np.stack([eye + lam * gram, 2 * eye + lam * gram], axis=1))  # (b, 2, r1, r1)
    out = np.empty_like(projected)
    out[:, :start] = inverse[:, :1] @ projected[:, :start]
    out[:, start:] = inverse[:, 1:] @ (projected[:, start:] + target)
    return out


def polar(b: np.ndarray) -> np.ndarray:
    """The orthonormal-column matrix closest to ``b`` (Procrustes): ``P V^T`` of its SVD ``P S V^T``."""
    left, _, right = np.linalg.svd(b, full_matrices=False)
    return left @ right


def channel_factor_update(hankel: np.ndarray, u1: np.ndarray, u2: np.ndarray, cores: np.ndarray,
                          phi: np.ndarray, lam: float) -> np.ndarray:
    """Step 3 for ``U1`` (majorised physics term, see the module docstring); ``hankel`` is (b, T', m, tau)."""
    b = np.einsum("btmj,bjk,btik->bmi", hankel, u2, cores, optimize=True)
    if lam:
        a = np.sum(phi**2, axis=(1, 2))[:, None, None]  # ||Phi||_F^2 >= its largest squared singular value
        c = np.sum(cores @ np.swapaxes(cores, -1, -2), axis=1)
        b = b + lam * (a * u1 - np.swapaxes(phi, -1, -2) @ (phi @ u1)) @ c
    return polar(b)


def delay_factor_update(hankel: np.ndarray, u1: np.ndarray, cores: np.ndarray) -> np.ndarray:
    """Step 3 for ``U2``: Procrustes on ``sum_t X_t^T U1 G_t``."""
    return polar(np.einsum("btmj,bmi,btik->bjk", hankel, u1, cores, optimize=True))


def physics_gram(phi: np.ndarray, u1: np.ndarray) -> np.ndarray:
    phi_u = phi @ u1
    return np.swapaxes(phi_u, -1, -2) @ phi_u


def project(hankel: np.ndarray, u1: np.ndarray, u2: np.ndarray) -> np.ndarray:
    """``U1^T X_t U2`` of every slice: (b, T', r1, r2)."""
    return np.einsum("btmj,bmi,bjk->btik", hankel, u1, u2, optimize=True)


def slices(series: np.ndarray, model: TuckerArimaModel, scale: np.ndarray) -> np.ndarray:
    """The Hankel slices ``X_t`` of scaled differences, (b, T', m, tau) contiguous."""
    return np.ascontiguousarray(np.moveaxis(embed(series, model, scale)[0], -1, 1))


def objective(hankel: np.ndarray, fit: PhysicsTensorFit, phi: np.ndarray, model: PhysicsTensorModel,
              cores: np.ndarray | None = None) -> np.ndarray:
    """The learning problem's objective per batch member with the fit's ARIMA predictions held fixed (what
    the core and factor steps decrease); ``cores`` default the fit's."""
    g = fit.cores if cores is None else cores
    start = model.lags
    target = predictions(fit.cores, fit.residuals, fit.alpha, fit.beta, start)[:, :-1]
    recon = fit.u1[:, None] @ g @ np.swapaxes(fit.u2, -1, -2)[:, None]
    tucker = np.sum((hankel - recon) ** 2, axis=(1, 2, 3))
    arima_term = np.sum((g[:, start:] - target) ** 2, axis=(1, 2, 3))
    physics = np.sum(((phi @ fit.u1)[:, None] @ g) ** 2, axis=(1, 2, 3))
    return tucker + arima_term + model.lam * physics


def fit(series: np.ndarray, phi: np.ndarray, model: PhysicsTensorModel, start: PhysicsTensorFit | None = None,
        widths: np.ndarray | None = None) -> PhysicsTensorFit:
    """Fit a batch of windows ``(b, m, L)`` whose equalities are ``phi`` (b, e, m): initial factors (HOSVD +
    HOOI, or orthogonal-iteration refinement of ``start``'s), then ``model.iterations`` rounds of steps 1-3."""
    tucker = model.tucker
    warm = None if start is None else tensor_forecast.TuckerArimaFit(start.scale, start.u1, start.u2, start.cores)
    init = tensor_forecast.fit(series, tucker, warm, widths)
    hankel = slices(series, tucker, init.scale)
    phi_s = scaled_physics(phi, init.scale)
    state = _with_arima(init.scale, init.u1, init.u2, init.cores, phi_s, model)
    for _ in range(model.iterations):
        state = iterate(hankel, state, phi_s, model)
    return state


def iterate(hankel: np.ndarray, state: PhysicsTensorFit, phi: np.ndarray, model: PhysicsTensorModel
            ) -> PhysicsTensorFit:
    """One round of the coupled core update and the two factor updates, then steps 1 on the new cores."""
    start = model.lags
    target = predictions(state.cores, state.residuals, state.alpha, state.beta, start)[:, :-1]
    cores = core_update(project(hankel, state.u1, state.u2), target, start, state.gram, model.lam)
    u1 = channel_factor_update(hankel, state.u1, state.u2, cores, phi, model.lam)
    u2 = delay_factor_update(hankel, u1, cores)
    gram = physics_gram(phi, u1)
    # the cores under the new factors (ARIMA target from the step's own cores), then the ARIMA refit
    cores = core_update(project(hankel, u1, u2), target, start, gram, model.lam)
    return _with_arima(state.scale, u1, u2, cores, phi, model)


def _with_arima(scale: np.ndarray, u1: np.ndarray, u2: np.ndarray, cores: np.ndarray, phi: np.ndarray,
                model: PhysicsTensorModel) -> PhysicsTensorFit:
    alpha, residuals, beta = arima(cores, model.tucker.p, model.q)
    return PhysicsTensorFit(scale, u1, u2, cores, residuals, alpha, beta, physics_gram(phi, u1))


def extend(state: PhysicsTensorFit, series: np.ndarray, model: PhysicsTensorModel) -> PhysicsTensorFit:
    """Slide the fit by one iteration: the newest Hankel slice of ``series`` (its differences held within the
    step bound) gets its core by the coupled update under the fit's factors and ARIMA coefficients; the oldest
    core is dropped."""
    tucker = model.tucker
    hankel = slices(series[..., -(tucker.tau + tucker.d):], tucker, state.scale)  # (b, 1, m, tau)
    bound = step_bound(state.cores.shape[1], tucker)
    newest = np.clip(hankel, -bound, bound)
    target = predictions(state.cores, state.residuals, state.alpha, state.beta, state.cores.shape[1])
    core = core_update(project(newest, state.u1, state.u2), target, 0, state.gram, model.lam)
    ar_part = _lagged(np.concatenate([state.cores, core], axis=1), state.alpha, state.cores.shape[1],
                      state.cores.shape[1] + 1)
    cores = np.concatenate([state.cores[:, 1:], core], axis=1)
    residuals = np.concatenate([state.residuals[:, 1:], core - ar_part], axis=1)
    return replace(state, cores=cores, residuals=residuals)


def predict(state: PhysicsTensorFit, series: np.ndarray, model: PhysicsTensorModel) -> np.ndarray:
    """Next value of every channel (b, m): the ARIMA forecast of the core, its slice's last column, held within
    the step bound, unscaled and integrated ``d`` times."""
    tucker = model.tucker
    nxt = predictions(state.cores, state.residuals, state.alpha, state.beta, state.cores.shape[1])[:, 0]
    column = (state.u1 @ (nxt @ state.u2[:, -1, :, None]))[..., 0]
    bound = step_bound(state.cores.shape[1], tucker)
    return np.clip(column, -bound, bound) * state.scale + tensor_forecast.integrate(series, tucker.d)
