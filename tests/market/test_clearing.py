"""Centralized SOCP clearing: exact relaxation, AC agreement, invariants and infeasibility diagnosis."""

from __future__ import annotations

import numpy as np
import pytest

from market.formulation.trading import welfare_cost
from market.instance import InstanceOptions, build_instance
from market.problem.clearing import build_clearing, solve_clearing
from market.result import Status
from physical.ac_power_flow import validate_dispatch
from physical.catalog import RADIAL_CASES
from tests.conftest import SUMMER_NOON, feeder
from tests.consistency import assert_clearing_consistent


def ac_mismatch(inst, res) -> float:
    base = inst.feeder.base_mva
    val = validate_dispatch(inst.feeder, res.p * base, res.q * base, np.sqrt(res.v), res.losses * base,
                            inst.vmin_pu, inst.vmax_pu)
    assert val.losses_mismatch_kw == pytest.approx(0.0, abs=1e-3)
    assert val.voltage_violations == ()
    return val.max_vm_mismatch_pu


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("case", ["case15da", "case33bw", "case85"])
@pytest.mark.parametrize("interval", [SUMMER_NOON, "2016-03-10T13:30", "2016-12-20T18:00"])
def test_named_cases_are_optimal_exact_and_match_ac(case, seed, interval):
    inst = build_instance(feeder(case), interval=interval, seed=seed)
    res = solve_clearing(inst)
    assert res.status is Status.OPTIMAL
    assert res.max_relaxation_gap <= 1e-6
    assert ac_mismatch(inst, res) <= 1e-3
    assert_clearing_consistent(inst, res)


@pytest.mark.parametrize("case", RADIAL_CASES)
def test_relaxation_is_exact_on_every_bundled_case(case):
    for seed in (0, 1):
        inst = build_instance(feeder(case), interval=SUMMER_NOON, seed=seed)
        res = solve_clearing(inst)
        assert res.status is Status.OPTIMAL, res.message
        assert res.max_relaxation_gap <= 1e-6
        assert ac_mismatch(inst, res) <= 1e-3
        assert_clearing_consistent(inst, res)


def test_numpy_and_cvxpy_objectives_agree():
    inst = build_instance(feeder("case33bw"), interval=SUMMER_NOON, seed=1)
    model = build_clearing(inst)
    model.problem.solve(solver="CLARABEL")
    x = {k: v.value for k, v in model.vars.items()}
    assert model.problem.value == pytest.approx(welfare_cost(model.arrays, x["p"], x["t"], x["t0"], x["l"]),
                                                rel=1e-12)


def test_no_p2p_trade_when_sellers_cost_more_than_retail():
    opts = InstanceOptions(seller_b=(30.0, 31.0), retail_price=22.0)
    inst = build_instance(feeder("case15da"), interval=SUMMER_NOON, seed=0, options=opts)
    res = solve_clearing(inst)
    assert res.status is Status.OPTIMAL
    assert res.t.sum() < 1e-7
    # ... and with cheap sellers the same buyers do trade
    cheap = solve_clearing(build_instance(feeder("case15da"), interval=SUMMER_NOON, seed=0))
    assert cheap.t.sum() > 1e-3


def test_buyers_curtail_when_retail_is_dear_and_no_one_sells():
    """At night only the utility sells; a retail price above the marginal utility makes buyers curtail."""
    night = "2016-12-20T02:00"
    dear = solve_clearing(build_instance(feeder("case15da"), interval=night, seed=0,
                                         options=InstanceOptions(retail_price=60.0, loss_price=60.0)))
    usual = solve_clearing(build_instance(feeder("case15da"), interval=night, seed=0))
    assert dear.status is Status.OPTIMAL and usual.status is Status.OPTIMAL
    assert -dear.p[1:].sum() < -usual.p[1:].sum() - 1e-3


def test_infeasible_instance_names_the_constraint_family():
    inst = build_instance(feeder("case85"), interval=SUMMER_NOON, seed=0,
                          options=InstanceOptions(vmin_pu=0.9995, vmax_pu=1.0005))
    res = solve_clearing(inst)
    assert res.status is Status.INFEASIBLE
    assert "voltage lower limit at buses" in res.message
    assert np.isnan(res.objective)
