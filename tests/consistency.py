"""Physics and market invariants as reusable asserts, run after every solve in the tests."""

from __future__ import annotations

import numpy as np

from market.formulation.trading import market_arrays
from market.instance import MarketInstance
from market.result import ClearingResult


def assert_clearing_consistent(instance: MarketInstance, res: ClearingResult, tol: float = 1e-6) -> None:
    """Energy balance, DistFlow equalities, bounds and the reported figures agree with each other."""
    f = instance.feeder
    arr = market_arrays(instance)
    lines = np.arange(1, f.n_buses)
    p, q = res.p[1:], res.q[1:]
    # substation balance: P0 = losses - sum of prosumer injections
    assert abs(res.p[0] - (res.losses - p.sum())) < tol
    # DistFlow at every bus: receiving-end flow plus injection feeds the children
    for j in lines:
        kids = list(f.children[j])
        assert abs(p[j - 1] + res.P[j] - f.r_pu[j] * res.l[j] - res.P[kids].sum()) < tol
        assert abs(q[j - 1] + res.Q[j] - f.x_pu[j] * res.l[j] - res.Q[kids].sum()) < tol
        vi = res.v[f.parent[j]]
        drop = 2 * (f.r_pu[j] * res.P[j] + f.x_pu[j] * res.Q[j]) - (f.r_pu[j] ** 2 + f.x_pu[j] ** 2) * res.l[j]
        assert abs(res.v[j] - (vi - drop)) < tol
    # trading balance (1n)-(1o) with the utility trades, and non-negative trades
    assert np.allclose(p, arr.sell_matrix @ res.t - arr.buy_matrix @ res.t + arr.sign * res.t0, atol=tol)
    assert res.t.min(initial=0.0) > -tol and res.t0.min() > -tol
    e = arr.sign * p
    assert e.min() > -tol and np.all(e <= arr.e_max + tol)
    # voltages inside the limits
    vm = np.sqrt(res.v)
    assert np.all(vm >= instance.vmin_pu - 1e-6) and np.all(vm <= instance.vmax_pu + 1e-6)
