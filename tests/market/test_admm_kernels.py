"""Every closed-form ADMM update against a cvxpy solve of the same subproblem on random data."""

from __future__ import annotations

import dataclasses

import cvxpy as cp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market.admm.consensus import OWN, initial_states, local_update, new_inbox
from market.admm.layout import Weights, build_layout
from market.admm.pairs import pair_weights
from market.admm.prox import _sort_falling, project_scaled_branch_cone, project_soc, prox_energy_balance
from market.admm.sweep import SweepSplitting
from market.admm.sweep_layout import VARIABLES, variable_weights
from market.instance import build_instance
from tests.conftest import SUMMER_NOON, feeder

floats = st.floats(-3.0, 3.0, allow_nan=False)
positive = st.floats(0.05, 5.0)
SOLVE = {"solver": cp.CLARABEL, "tol_gap_abs": 1e-10, "tol_gap_rel": 1e-10, "tol_feas": 1e-10}


@settings(max_examples=40, deadline=None)
@given(t=floats, u=st.lists(floats, min_size=3, max_size=3))
def test_project_soc(t, u):
    t_var, u_var = cp.Variable(), cp.Variable(3)
    cp.Problem(cp.Minimize(cp.sum_squares(u_var - np.array(u)) + (t_var - t) ** 2),
               [cp.SOC(t_var, u_var)]).solve(**SOLVE)
    t_got, u_got = project_soc(np.array([t]), np.array([u]))
    assert np.linalg.norm(u_got[0]) <= t_got[0] + 1e-12
    dist_got = (t_got[0] - t) ** 2 + np.sum((u_got[0] - u) ** 2)
    assert dist_got <= (t_var.value - t) ** 2 + np.sum((u_var.value - u) ** 2) + 1e-9
    assert np.allclose(np.r_[t_got[0], u_got[0]], np.r_[t_var.value, u_var.value], atol=1e-3)


@settings(max_examples=40, deadline=None)
@given(w=floats, l=floats, P=floats, Q=floats, sv=positive, sl=st.floats(1e-4, 5.0))
def test_project_scaled_branch_cone(w, l, P, Q, sv, sl):
    sf = 2 * np.sqrt(sv * sl)
    W, L, PP, QQ = cp.Variable(), cp.Variable(), cp.Variable(), cp.Variable()
    cost = sv * (W - w) ** 2 + sl * (L - l) ** 2 + sf * ((PP - P) ** 2 + (QQ - Q) ** 2)
    cp.Problem(cp.Minimize(cost), [cp.SOC(W + L, cp.hstack([2 * PP, 2 * QQ, W - L]))]).solve(**SOLVE)
    got = [float(v[0]) for v in project_scaled_branch_cone(*(np.array([z]) for z in (w, l, P, Q)), sv, sl)]
    # feasible, and no farther from the target than the interior-point solution (which sits just inside)
    assert got[2] ** 2 + got[3] ** 2 <= got[0] * got[1] + 1e-9 and min(got[0], got[1]) >= -1e-12

    def dist(a, b, c, d):
        return sv * (a - w) ** 2 + sl * (b - l) ** 2 + sf * ((c - P) ** 2 + (d - Q) ** 2)

    assert dist(*got) <= dist(W.value, L.value, PP.value, QQ.value) + 1e-7
    # the projection is 1-strongly convex in its metric: near-optimal points are near it in that metric
    dw, dl, dP, dQ = (g - float(v.value) for g, v in zip(got, (W, L, PP, QQ), strict=True))
    assert sv * dw**2 + sl * dl**2 + sf * (dP**2 + dQ**2) <= 1e-6


@pytest.fixture(scope="module")
def layout():
    inst = build_instance(feeder("case33bw"), interval=SUMMER_NOON, seed=1)
    return build_layout(inst, Weights(voltage=2.0, current=0.01, market=1.5, trade=3.0))


def test_group_projection_matches_cvxpy(layout):
    """The precomputed block projection equals the weighted least-distance point of every agent's group."""
    rng = np.random.default_rng(5)
    z = rng.normal(size=layout.size)
    y = cp.Variable(layout.size)
    weight = 1.0 / layout.dinv
    cp.Problem(cp.Minimize(cp.sum(cp.multiply(weight, cp.square(y - z)))), [layout.A @ y == layout.b]).solve(**SOLVE)
    got = layout.project(z)
    assert np.allclose(layout.A @ got, layout.b, atol=1e-10)
    assert np.allclose(got, y.value, atol=1e-6)


@pytest.mark.parametrize("case", ["case15da", "case33bw", "case136ma", "case12da", "case141", "case16am", "star"])
def test_sweep_projection_matches_cvxpy(case):
    """Both sweeps through the feeder give the weighted least-distance point of all DistFlow equalities
    (case141 and case16am have near-zero-impedance lines; "star" is case15da with every bus on the
    substation, a sweep without hops)."""
    if case == "star":
        star = feeder("case15da")
        grid = dataclasses.replace(star, parent=np.r_[-1, np.zeros(star.n_buses - 1, dtype=int)])
    else:
        grid = feeder(case)
    inst = build_instance(grid, interval=SUMMER_NOON, seed=2)
    weights = Weights(voltage=2.0, current=0.01, market=1.5, trade=3.0)
    split = SweepSplitting(inst, weights)
    n, f, arr = split.n, inst.feeder, split.arrays
    z = np.random.default_rng(3).normal(size=8 * n)
    inbox = split.new_inbox()

    def exchange(batches):  # every hop delivered at once
        for batch in batches:
            inbox.store(batch)
        yield from ()

    sweep = split._sweep(z, inbox, 1, exchange)
    with pytest.raises(StopIteration) as done:
        next(sweep)
    got = done.value.value
    y = {name: cp.Variable(n) for name in VARIABLES}
    parent = f.parent[1:] - 1
    r, x = f.r_pu[1:], f.x_pu[1:]
    kids = np.zeros((n, n))
    kids[parent[parent >= 0], np.flatnonzero(parent >= 0)] = 1.0
    v_parent = cp.hstack([np.ones(1), y["v"]])[f.parent[1:]]
    cons = [y["p"] + y["P"] - cp.multiply(r, y["l"]) == kids @ y["P"],
            y["q"] + y["Q"] - cp.multiply(x, y["l"]) == kids @ y["Q"],
            y["v"] - y["w"] + 2 * cp.multiply(r, y["P"]) + 2 * cp.multiply(x, y["Q"])
            - cp.multiply(r**2 + x**2, y["l"]) == 0,
            y["w"] == v_parent, y["l"] == y["lb"], y["q"] - cp.multiply(arr.q_slope, y["p"]) == arr.q_hat
            - arr.q_slope * arr.p_hat]
    weight = variable_weights(weights)
    zz = z.reshape(8, n)
    cost = sum(weight[i] * cp.sum_squares(y[name] - zz[i]) for i, name in enumerate(VARIABLES))
    cp.Problem(cp.Minimize(cost), cons).solve(**SOLVE)
    want = np.concatenate([y[name].value for name in VARIABLES])
    assert np.allclose(got, want, atol=1e-6)


def test_local_update_matches_cvxpy(layout):
    """The whole x-update (6a) of every agent equals a cvxpy solve of cost + penalty over the local set."""
    rng = np.random.default_rng(11)
    weight = pair_weights(layout.arrays, layout.weights.trade, "geometric")
    s = initial_states(layout, 1.0, weight)
    s.y = s.y + rng.normal(scale=0.1, size=s.y.size)
    s.u = rng.normal(scale=0.05, size=s.u.size)
    inbox = new_inbox(layout)
    nc = len(layout.link_child)
    for kind, fields in (("flow_target", ("P", "Q")), ("voltage_target", ("v",))):
        for name in fields:
            inbox[kind, name][:] = rng.normal(scale=0.1, size=nc) + (1.0 if name == "v" else 0.0)
    rho = 2.5
    local_update(layout, s, inbox, rho, weight)

    # the same problem for all agents at once, written from the definitions (targets = mean of copies)
    arr, wt, seg = layout.arrays, layout.weights, layout.segment
    tgt = s.y - s.u
    own = {name: tgt[seg[name]] for name in OWN}
    P_bar, Q_bar = own["P"].copy(), own["Q"].copy()
    P_bar[layout.link_child] = (P_bar[layout.link_child] + inbox["flow_target", "P"]) / 2
    Q_bar[layout.link_child] = (Q_bar[layout.link_child] + inbox["flow_target", "Q"]) / 2
    v_bar = (own["v"] + np.bincount(layout.link_parent, inbox["voltage_target", "v"], minlength=layout.n)) / (
        1 + layout.n_children)
    n, m = layout.n, layout.m
    tb_bar, ts_bar = tgt[layout.pair_b], tgt[layout.pair_s]
    x = {k: cp.Variable(n) for k in ("v", "w", "l", "lb", "P", "Q", "p", "q", "t0")}
    tb, ts = cp.Variable(m), cp.Variable(m)
    S = layout.scale
    e = cp.multiply(arr.sign, x["p"])
    cost = (cp.sum(cp.multiply(arr.quad / S, cp.square(e))) + (arr.lin / S) @ e + (arr.uc_price / S) @ x["t0"]
            + (arr.loss_weight / S) @ x["l"] + (0.5 * arr.trade_lin / S) @ (tb + ts)
            + 0.5 * arr.trade_quad / S * (cp.sum_squares(tb) + cp.sum_squares(ts)))
    pen = rho / 2 * (wt.voltage * (cp.sum_squares(x["v"] - v_bar) + cp.sum_squares(x["w"] - own["w"]))
                     + wt.current * (cp.sum_squares(x["l"] - own["l"]) + cp.sum_squares(x["lb"] - own["lb"]))
                     + wt.flow * (cp.sum_squares(x["P"] - P_bar) + cp.sum_squares(x["Q"] - Q_bar))
                     + wt.market * (cp.sum_squares(x["p"] - own["p"]) + cp.sum_squares(x["q"] - own["q"]))
                     + cp.sum(cp.multiply(weight[0], cp.square(tb - tb_bar)))
                     + cp.sum(cp.multiply(weight[1], cp.square(ts - ts_bar))))
    own_trades = arr.buy_matrix @ tb + arr.sell_matrix @ ts
    vmin2, vmax2, lmax = layout.bounds
    cons = [x["v"] >= vmin2, x["v"] <= vmax2, x["lb"] <= lmax, e >= 0, e <= arr.e_max,
            e == own_trades + x["t0"], x["t0"] >= 0, tb >= 0, ts >= 0,
            cp.SOC(x["w"] + x["l"], cp.vstack([2 * x["P"], 2 * x["Q"], x["w"] - x["l"]]), axis=0)]
    if arr.passive.any():
        cons += [x["p"][np.flatnonzero(arr.passive)] == 0, x["t0"][np.flatnonzero(arr.passive)] == 0]
    problem = cp.Problem(cp.Minimize(cost + pen), cons)
    problem.solve(**SOLVE)
    for name, var in x.items():
        assert np.allclose(s.x[name], var.value, atol=1e-4), name
    assert np.allclose(s.x["tb"], tb.value, atol=1e-4) and np.allclose(s.x["ts"], ts.value, atol=1e-4)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10**6))
def test_prox_energy_balance(seed):
    """Market step of random agents with random trades, against cvxpy."""
    rng = np.random.default_rng(seed)
    n, m = 4, 7
    sign = rng.choice([-1.0, 1.0, 0.0], size=n, p=[0.45, 0.45, 0.1])
    owner = rng.integers(0, n, size=m)
    quad, lin = rng.uniform(0.1, 3, n), rng.normal(size=n)
    price, e_max = rng.normal(size=n), rng.uniform(0, 1.5, n)
    w_p, w_t, t_quad = rng.uniform(0.2, 3), rng.uniform(0.2, 3, m), rng.uniform(0, 0.5)
    p_target, t_target, t_lin = rng.normal(size=n), rng.normal(size=m), rng.uniform(0, 0.5, m)
    if seed % 2:  # ties between kinks: equal weights, costs and coarse targets
        w_t, t_lin, t_target = np.full(m, w_t[0]), np.full(m, t_lin[0]), np.round(t_target, 0)
    p_got, t_got, t0_got = prox_energy_balance(sign, quad, lin, price, w_p, p_target, e_max, owner, t_lin, t_quad,
                                               w_t, t_target)
    p, t, t0 = cp.Variable(n), cp.Variable(m), cp.Variable(n)
    e = cp.multiply(sign, p)
    own = np.zeros((n, m))
    own[owner, np.arange(m)] = 1.0
    cost = (cp.sum(cp.multiply(quad, cp.square(e))) + lin @ e + price @ t0 + t_lin @ t + t_quad * cp.sum_squares(t)
            + w_p / 2 * cp.sum_squares(p - p_target) + cp.sum(cp.multiply(w_t / 2, cp.square(t - t_target))))
    cons = [e == own @ t + t0, t >= 0, t0 >= 0, e >= 0, e <= e_max]
    passive = np.flatnonzero(sign == 0)
    if passive.size:
        cons += [p[passive] == 0, t0[passive] == 0]
        cons += [t[np.isin(owner, passive)] == 0] if np.isin(owner, passive).any() else []
    problem = cp.Problem(cp.Minimize(cost), cons)
    problem.solve(**SOLVE)

    def value(pv, tv, t0v):
        ev = sign * pv
        return (quad @ ev**2 + lin @ ev + price @ t0v + t_lin @ tv + t_quad * tv @ tv
                + w_p / 2 * np.sum((pv - p_target) ** 2) + np.sum(w_t / 2 * (tv - t_target) ** 2))

    ev = sign * p_got
    assert np.all(t_got >= 0) and np.all(t0_got >= 0) and np.all(ev >= -1e-12) and np.all(ev <= e_max + 1e-12)
    assert np.allclose(ev, own @ t_got + t0_got, atol=1e-9)
    assert value(p_got, t_got, t0_got) <= problem.value + 1e-7
    assert np.allclose(p_got, p.value, atol=1e-4) and np.allclose(t_got, t.value, atol=1e-4)


@settings(max_examples=60, deadline=None)
@given(keys=st.lists(st.sampled_from([-1.0, 0.0, 0.5, 2.0]) | floats, min_size=0, max_size=80),
       lo=st.integers(0, 5))
def test_the_root_orders_an_agents_trades_as_a_stable_sort_by_falling_kink(keys, lo):
    """The market step's own sort (plain loops, compiled) against numpy's stable sort, ties included."""
    key = np.asarray([0.0] * lo + keys)
    order = np.arange(key.size, dtype=np.int64)
    _sort_falling(order, lo, key.size, key, np.empty(key.size, dtype=np.int64))
    expected = lo + np.argsort(-key[lo:], kind="stable")
    assert np.array_equal(order[lo:], expected)
    assert np.array_equal(order[:lo], np.arange(lo))
