"""Quarter hours stacked into one clearing: each interval's slice is that interval's own optimum."""

from __future__ import annotations

import numpy as np
import pytest

from market.errors import InstanceError
from market.formulation.distflow import tree_operators
from market.formulation.trading import welfare_cost
from market.instance import build_instance
from market.problem.clearing import solve_clearing, solve_model
from market.problem.stacked import build_stacked, stack_operators
from physical.profiles import interval_index
from tests.conftest import feeder


def test_copies_hang_from_the_one_substation_and_keep_their_own_subtrees():
    ops = tree_operators(feeder("case15da"))
    n = len(ops.r)
    stacked = stack_operators(ops, 3)
    for t in range(3):
        block = slice(t * n, (t + 1) * n)
        top = ops.parent == 0
        assert np.all(stacked.parent[block][top] == 0)
        assert np.array_equal(stacked.parent[block][~top], ops.parent[~top] + t * n)
        assert (stacked.child_sum[block, block] != ops.child_sum).nnz == 0
        others = np.r_[0:t * n, (t + 1) * n:3 * n]
        assert stacked.child_sum[block][:, others].nnz == 0


@pytest.mark.parametrize(("case", "start"), [("case15da", "2016-06-21T10:00"), ("case33bw", "2016-12-20T16:00")])
def test_each_interval_of_a_stacked_clearing_is_its_own_optimum(case, start):
    i0 = interval_index(start)
    insts = [build_instance(feeder(case), interval=i0 + 4 * k, seed=k, options=None) for k in range(3)]
    stacked = build_stacked(insts)
    assert solve_model(stacked.problem).has_solution
    for t, inst in enumerate(insts):
        alone = solve_clearing(inst)
        values = stacked.values(t)
        assert values["p"] == pytest.approx(alone.p[1:], abs=1e-6)
        assert values["v"] == pytest.approx(alone.v[1:], abs=1e-6)
        # the split of a purchase among sellers is nearly indifferent (a small quadratic): compare its cost
        own = welfare_cost(stacked.arrays[t], values["p"], values["t"], values["t0"], values["l"])
        assert own == pytest.approx(alone.objective, rel=1e-6, abs=1e-6)
    total = sum(solve_clearing(inst).objective for inst in insts)
    assert stacked.problem.value == pytest.approx(total, rel=1e-6)


def test_intervals_of_different_feeders_are_refused():
    a = build_instance(feeder("case15da"), interval=interval_index("2016-06-21T12:00"), seed=0, options=None)
    b = build_instance(feeder("case33bw"), interval=interval_index("2016-06-21T12:00"), seed=0, options=None)
    with pytest.raises(InstanceError, match="same feeder"):
        build_stacked([a, b])
