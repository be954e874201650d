"""Cascade model: reproducible states, the shedding rules' bookkeeping, and the premise the placement prunes on."""

import numpy as np
import pytest

from physical.cascade import StateSampling, SystemState, build_study, simulate_cascade
from physical.errors import FeederError


@pytest.fixture(scope="module")
def study():
    return build_study("case39", 40, seed=3)


def test_states_are_reproducible_from_the_seed(study):
    again = build_study("case39", 40, seed=3)
    other = build_study("case39", 40, seed=4)
    assert again.states == study.states
    assert np.array_equal(again.dynamic_mw, study.dynamic_mw)
    assert other.states != study.states
    shed = [simulate_cascade(study, s, frozenset()).shed_mw for s in range(10)]
    assert shed == [simulate_cascade(again, s, frozenset()).shed_mw for s in range(10)]


def test_contingencies_and_levels_follow_the_sampling(study):
    sizes = {len(s.outages) for s in study.states}
    assert sizes == {1, 2}
    levels = np.array([s.load_level for s in study.states])
    assert levels.min() >= StateSampling().load_min and levels.max() <= StateSampling().load_max


def test_intact_case39_at_its_own_load_sheds_nothing(study):
    state = SystemState((), study.states[0].hour, 1.0)
    intact = type(study)(study.case, study.grid, study.static_mw, study.azimuth_deg, (state,), study.dynamic_mw[:1],
                         study.device_available[:1])
    outcome = simulate_cascade(intact, 0, frozenset())
    assert outcome.shed_mw == 0.0 and outcome.tripped == () and outcome.stages == 1


def test_shed_is_between_zero_and_the_demand(study):
    demand = [s.load_level * np.maximum(study.grid.demand_mw, 0).sum() for s in study.states]
    for s in range(len(study.states)):
        outcome = simulate_cascade(study, s, frozenset())
        assert 0.0 <= outcome.shed_mw <= demand[s] + 1e-6
        assert not set(outcome.tripped) & set(study.states[s].outages)


def test_dtr_outside_the_decisive_lines_changes_nothing(study):
    rng = np.random.default_rng(0)
    checked = 0
    for s in range(len(study.states)):
        base = simulate_cascade(study, s, frozenset())
        outside = [e for e in range(study.n_lines) if e not in base.sensitive]
        inside = sorted(base.sensitive)
        if base.shed_mw == 0 or not inside:
            continue
        extra = frozenset(rng.choice(outside, 5, replace=False).tolist())
        same = simulate_cascade(study, s, extra)
        assert same.shed_mw == base.shed_mw and same.tripped == base.tripped
        checked += 1
    assert checked > 0


def test_unknown_case_is_bad_input():
    with pytest.raises(FeederError, match="case39"):
        build_study("case_nowhere", 5, 0)


def test_islands_rebalance_by_the_documented_rules(study):
    from physical.cascade import _balance

    grid = study.grid
    loaded = [b for b in range(grid.n_bus) if grid.demand_mw[b] > 0 and b not in grid.gen_bus]
    alone = loaded[0]
    labels = np.zeros(grid.n_bus, int)
    labels[alone] = 1
    # island without a generator: all its load is shed; the rest: generation meets demand within limits
    served = 1.05 * grid.demand_mw.copy()
    gen = _balance(grid, labels, served, 1.05 * grid.gen_p_mw)
    assert served[alone] == 0.0
    assert gen.sum() == pytest.approx(served.sum(), rel=1e-9)
    assert np.all(gen <= grid.gen_pmax_mw + 1e-9) and np.all(gen >= 0)
    # demand above capacity: every load shed by the same fraction, generators at their limits
    served = 3.0 * grid.demand_mw.copy()
    labels[:] = 0
    gen = _balance(grid, labels, served, grid.gen_p_mw)
    assert gen == pytest.approx(grid.gen_pmax_mw)
    assert served.sum() == pytest.approx(grid.gen_pmax_mw.sum())
    positive = grid.demand_mw > 0
    ratio = served[positive] / (3.0 * grid.demand_mw[positive])
    assert np.allclose(ratio, ratio[0])
