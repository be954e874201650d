"""A quarter hour's line ratings as the market's limits: respected by the centralized SOCP, kept in the
instance's JSON, and a higher rating never costs more."""

import json

import numpy as np
import pytest

from market.errors import InstanceError
from market.instance import build_instance, instance_from_dict
from market.line_limits import binding_lines, curtailed_kw, with_line_limits
from market.problem.clearing import solve_clearing
from physical.feeder_ratings import feeder_conductors, line_ratings
from physical.profiles import interval_index, interval_start
from physical.weather import load_tmy
from tests.conftest import feeder

EVENING = "2016-01-15T18:00"


def _within_limits(instance, result, rtol):
    lmax = instance.feeder.imax_pu[1:] ** 2
    return bool(np.all(result.l[1:] <= lmax * (1 + rtol)))


def _tight(instance, share):
    """Every line limited to ``share`` of the largest line current of the unconstrained clearing."""
    free = solve_clearing(instance)
    cap = share * float(np.sqrt(np.nanmax(free.l)))
    return with_line_limits(instance, np.full(instance.feeder.n_buses, cap)), free


@pytest.mark.parametrize(("case", "when", "seed"), [("case15da", EVENING, 0), ("case33bw", "2016-03-10T08:00", 2)])
def test_raising_ratings_never_raises_the_cost_and_every_limit_holds(case, when, seed):
    base = build_instance(feeder(case), interval=when, seed=seed)
    tight, free = _tight(base, 0.8)
    rng = np.random.default_rng(seed)
    looser = with_line_limits(tight, tight.feeder.imax_pu * np.r_[1.0, rng.uniform(1.0, 1.5, base.feeder.n_buses - 1)])
    costs = []
    for inst in (tight, looser):
        res = solve_clearing(inst)
        assert res.status.has_solution and _within_limits(inst, res, 1e-6)
        costs.append(res.objective)
    assert binding_lines(tight, solve_clearing(tight))  # the limits bind: the comparison means something
    assert free.objective <= costs[1] + 1e-6 <= costs[0] + 2e-6
    assert costs[0] > free.objective + 1e-3


def test_the_dynamic_rating_of_a_winter_peak_relieves_a_congested_feeder():
    """case141 strung with 70-AL1/11-ST1A at the 08:00 peak of 15 January 2016 (the bundled scenario's): the
    static rating binds, Greensboro's measured weather rates every line higher, and the market pays less."""
    f = feeder("case141")
    k = interval_index("2016-01-15T08:00")
    r = line_ratings(feeder_conductors(f, 0, "70-AL1/11-ST1A 10.0"), load_tmy(), [k], [interval_start(k)])[0]
    assert np.all(r.dynamic_a[1:] >= r.static_a[1:])
    base = build_instance(f, interval=k, seed=0)
    results = {}
    for mode in ("static", "dynamic"):
        inst = with_line_limits(base, r.imax_pu(f, mode))
        results[mode] = (inst, solve_clearing(inst))
        assert _within_limits(inst, results[mode][1], 1e-6)
    (si, static), (di, dynamic) = results["static"], results["dynamic"]
    assert binding_lines(si, static) and not binding_lines(di, dynamic)
    assert dynamic.objective < static.objective
    assert curtailed_kw(di, dynamic) < curtailed_kw(si, static)


def test_an_instance_keeps_its_quarter_hours_limits_through_json():
    inst, _ = _tight(build_instance(feeder("case15da"), interval=EVENING, seed=0), 0.8)
    again = instance_from_dict(json.loads(inst.to_json()))
    assert np.array_equal(again.feeder.imax_pu, inst.feeder.imax_pu)
    assert solve_clearing(again).objective == pytest.approx(solve_clearing(inst).objective, rel=1e-9)


def test_malformed_limits_are_an_instance_error():
    inst = build_instance(feeder("case15da"), interval=EVENING, seed=0)
    with pytest.raises(InstanceError, match="positive values"):
        with_line_limits(inst, np.ones(3))
    with pytest.raises(InstanceError, match="positive values"):
        with_line_limits(inst, np.r_[np.inf, -np.ones(inst.feeder.n_buses - 1)])
