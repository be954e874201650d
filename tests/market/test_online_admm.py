"""Online intervals cleared by the distributed ADMM with the batteries in their owners' local steps: the owners'
step against cvxpy on random data, every interval against the centralized solve of the same interval."""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import pytest

from market.admm.battery import battery_agents, battery_update
from market.admm.driver import AdmmSettings
from market.admm.prox import prox_energy_balance
from market.formulation.trading import market_arrays
from market.instance import InstanceOptions, build_instance
from market.online.controllers import LyapunovController, MyopicController
from market.online.distributed import AdmmSlots
from market.online.lyapunov import ControllerError, lyapunov_parameters
from market.online.study import price_range, run_study
from market.problem.storage import BatteryStep, storage_arrays
from physical.profiles import interval_index
from tests.conftest import feeder

SOLVE = {"solver": cp.CLARABEL, "tol_gap_abs": 1e-10, "tol_gap_rel": 1e-10, "tol_feas": 1e-10}
TOU = InstanceOptions(storage_share=0.6, tariff="tou")


def instances(case: str, start: str, n: int, seed: int = 0):
    i0 = interval_index(start)
    return [build_instance(feeder(case), interval=i0 + k, seed=seed, options=TOU) for k in range(n)]


@pytest.mark.parametrize("seed", range(8))
def test_owner_step_matches_cvxpy(seed):
    """Every agent's market step with random battery boxes (some with forced minimum charge or discharge) and
    random prices (some making charging and discharging at once pay), random targets: the closed form against
    cvxpy of the same problem, the reactive model of the owners in it."""
    rng = np.random.default_rng(seed)
    when = ("2016-06-21T11:00", "2016-12-20T18:00")[seed % 2]
    inst = build_instance(feeder("case15da"), interval=interval_index(when), seed=seed, options=TOU)
    arr, sa = market_arrays(inst), storage_arrays(inst)
    n, m, k = len(arr.sign), len(arr.trade_buyer), sa.n_units
    scale = float(rng.uniform(5, 50))
    c_hi, d_hi = sa.charge_max * rng.uniform(0.3, 1.5, k), sa.discharge_max * rng.uniform(0.3, 1.5, k)
    c_lo = np.where(rng.random(k) < 0.2, 0.3 * c_hi, 0.0)
    d_lo = np.where(rng.random(k) < 0.2, 0.3 * d_hi, 0.0)
    step = BatteryStep(sa.agent, c_lo, c_hi, d_lo, d_hi, rng.normal(scale=20 * scale, size=k),
                       rng.normal(scale=20 * scale, size=k), np.zeros(2 * k, dtype=bool))
    bat = battery_agents(arr, step, scale)
    w_m = float(rng.uniform(0.3, 3))
    target = {"p": arr.p_hat + rng.normal(scale=0.02, size=n), "q": arr.q_hat + rng.normal(scale=0.02, size=n)}
    t_target, w_t = rng.normal(scale=0.02, size=2 * m), rng.uniform(0.3, 3, 2 * m)
    owner = np.concatenate([arr.trade_buyer, arr.trade_seller])
    t_lin, t_quad = 0.5 * np.concatenate([arr.trade_lin] * 2) / scale, 0.5 * arr.trade_quad / scale
    p, t, t0 = prox_energy_balance(bat.plain_sign, arr.quad / scale, arr.lin / scale, arr.uc_price / scale, w_m,
                                   target["p"], arr.e_max, owner, t_lin, t_quad, w_t, t_target)
    x = {"p": p, "q": target["q"].copy(), "t0": t0, "tb": t[:m], "ts": t[m:]}
    battery_update(bat, arr, x, w_m, target, t_lin, t_quad, w_t, t_target)

    P, Q, T, T0 = cp.Variable(n), cp.Variable(n), cp.Variable(2 * m), cp.Variable(n)
    ch, dis = cp.Variable(k), cp.Variable(k)
    own = P - sa.to_agents @ (dis - ch)
    e = cp.multiply(arr.sign, own)
    holds = np.zeros((n, 2 * m))
    holds[owner, np.arange(2 * m)] = 1.0

    def cost(p, q, t, t0, c, d, e, sq=np.square, ssq=lambda v: np.sum(v**2)):
        return (arr.quad / scale @ sq(e) + arr.lin / scale @ e + arr.uc_price / scale @ t0 + t_lin @ t
                + t_quad * ssq(t) + w_m / 2 * ssq(p - target["p"]) + w_m / 2 * ssq(q - target["q"])
                + w_t / 2 @ sq(t - t_target) + step.charge_price / scale @ c + step.discharge_price / scale @ d)

    objective = cost(P, Q, T, T0, ch, dis, e, cp.square, cp.sum_squares)
    cons = [cp.multiply(arr.sign, P) == holds @ T + T0, T >= 0, T0 >= 0, e >= 0, e <= arr.e_max,
            ch >= c_lo, ch <= c_hi, dis >= d_lo, dis <= d_hi,
            Q[bat.mask] == (arr.q_hat + cp.multiply(arr.q_slope, own - arr.p_hat))[bat.mask]]
    passive = np.flatnonzero(arr.sign == 0)
    if passive.size:
        cons += [P[passive] == 0, T0[passive] == 0, own[passive] == 0]
    problem = cp.Problem(cp.Minimize(objective), cons)
    problem.solve(**SOLVE)
    assert problem.status == cp.OPTIMAL

    o = bat.mask
    c, d = x["c"][sa.agent], x["d"][sa.agent]
    assert np.all(c >= c_lo - 1e-12) and np.all(c <= c_hi + 1e-12) and np.all(d >= d_lo - 1e-12)
    assert np.all(d <= d_hi + 1e-12) and np.allclose(x["s"][sa.agent], d - c, atol=1e-12)
    own_x = x["p"] - x["s"]
    e_x = arr.sign * own_x
    assert np.all(e_x[o] >= -1e-12) and np.all(e_x[o] <= arr.e_max[o] + 1e-12)
    t_x = np.concatenate([x["tb"], x["ts"]])
    assert np.allclose(arr.sign * x["p"], holds @ t_x + x["t0"], atol=1e-12)
    assert np.allclose(x["q"][o], (arr.q_hat + arr.q_slope * (own_x - arr.p_hat))[o], atol=1e-12)
    got = cost(x["p"], x["q"], t_x, x["t0"], c, d, e_x)
    assert got <= problem.value + 1e-7 * max(1.0, abs(problem.value))
    assert np.allclose(x["p"][o], P.value[o], atol=1e-5) and np.allclose(x["s"][sa.agent], (dis.value - ch.value),
                                                                         atol=1e-5)


def compare_intervals(case: str, start: str, n: int, projection: str, controller: str = "lyapunov") -> None:
    """Each interval's ADMM clearing from the centralized run's state of charge against the centralized solve."""
    insts = instances(case, start, n)
    arr = storage_arrays(insts[0])
    slots = AdmmSlots(AdmmSettings(projection=projection))
    if controller == "lyapunov":
        params = lyapunov_parameters(arr, None, *price_range(insts))
        central, distributed = LyapunovController(params, arr), LyapunovController(params, arr, solve=slots)
    else:
        central, distributed = MyopicController(arr), MyopicController(arr, solve=slots)
    soc = arr.soc0.copy()
    for t, inst in enumerate(insts):
        ref, got = central.step(t, inst, soc), distributed.step(t, inst, soc)
        assert got.clearing.info["converged"]
        # the per-interval objective: market cost plus the batteries' (queue) prices
        queue = (soc - params.theta) / params.weight if controller == "lyapunov" else np.zeros(arr.n_units)
        term = [queue @ arr.energy_step(r.charge, r.discharge) for r in (ref, got)]
        total = [r.clearing.objective + q for r, q in zip((ref, got), term, strict=True)]
        assert abs(total[1] - total[0]) <= 1e-4 * abs(total[0])
        # the market cost alone, on the scale of the problem's two terms: where a unit sits at its threshold
        # price, moving energy between the market and the queue costs next to nothing, so the split between
        # them settles more slowly than the objective (case15da 16:45, local splitting: 2e-3 of the market
        # cost, 5e-4 of the two terms)
        scale = abs(ref.clearing.objective) + abs(term[0])
        assert abs(got.clearing.objective - ref.clearing.objective) <= 1e-3 * scale
        rating = arr.charge_max.max()
        assert np.max(np.abs(got.charge - ref.charge)) <= 1e-2 * rating
        assert np.max(np.abs(got.discharge - ref.discharge)) <= 1e-2 * rating
        assert np.max(np.abs(got.clearing.p - ref.clearing.p)) <= 1e-3
        assert got.gate_binding == ref.gate_binding
        soc = soc + arr.energy_step(ref.charge, ref.discharge)


def test_lyapunov_intervals_match_centralized_on_case15da():
    compare_intervals("case15da", "2016-06-21T16:30", 3, "sweep")


def test_lyapunov_intervals_match_centralized_with_the_local_splitting():
    compare_intervals("case15da", "2016-12-20T07:00", 2, "local")


def test_lyapunov_evening_intervals_match_centralized_on_case33bw():
    compare_intervals("case33bw", "2016-12-20T18:30", 2, "sweep")


def test_myopic_intervals_match_centralized_on_case15da():
    compare_intervals("case15da", "2016-06-21T10:00", 2, "sweep", controller="myopic")


def test_an_admm_run_costs_what_the_centralized_run_costs():
    insts = instances("case15da", "2016-12-20T17:00", 4, seed=1)
    ref = run_study(insts, "lyapunov")
    got = run_study(insts, "lyapunov", method="admm", offline=ref.offline, no_storage_cost_ct=ref.no_storage_cost_ct)
    assert got.method == "admm" and len(got.admm_iterations) == 4
    assert got.run.cost_ct == pytest.approx(ref.run.cost_ct, rel=1e-4)
    assert np.allclose(got.run.soc_kwh, ref.run.soc_kwh, atol=1e-2 * storage_arrays(insts[0]).soc_max.max())
    assert got.soc_violations == 0
    assert got.offline.cost_ct <= got.run.cost_ct <= got.offline.cost_ct + got.bound_ct


def test_horizon_controllers_refuse_the_admm():
    insts = instances("case15da", "2016-06-21T12:00", 1)
    with pytest.raises(ControllerError, match="--method admm"):
        run_study(insts, "mpc", method="admm")
