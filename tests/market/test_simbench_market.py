"""Markets on SimBench grids: the centralized clearing is exact and AC-valid on the SimBench net itself, the
ADMM reaches its optimum, and the prosumers follow the grid's own profiles."""

from __future__ import annotations

import numpy as np
import pytest

from market.admm.driver import AdmmSettings, solve_admm
from market.instance import build_instance
from market.problem.clearing import solve_clearing
from physical.profiles import interval_index
from physical.simbench_grid import load_simbench_grid, simbench_ac_power_flow

LV, MV = "1-LV-rural1--0-sw", "1-MV-rural--0-sw"
LV_TAPPED = "1-LV-rural1--1-sw"  # its MV/LV transformer one step (2.5 %) off neutral


@pytest.mark.parametrize(("code", "when"), [(LV, "2016-06-21T12:00"), (MV, "2016-06-21T12:00"),
                                            (MV, "2016-01-10T18:00"), (LV_TAPPED, "2016-06-21T12:00")])
def test_centralized_clearing_is_exact_on_the_simbench_net(code, when):
    grid = load_simbench_grid(code)
    f = grid.feeder
    inst = build_instance(f, interval=when, seed=4)
    res = solve_clearing(inst)
    assert res.status.has_solution and res.max_relaxation_gap <= 1e-6
    ac = simbench_ac_power_flow(grid, res.p * f.base_mva, res.q * f.base_mva)
    assert np.max(np.abs(ac.vm_pu - f.nominal_vm(np.sqrt(res.v)))) <= 1e-3
    assert abs(ac.losses_mw - res.losses * f.base_mva) <= 1e-3 * max(abs(ac.p0_mw), 1e-3)


def test_prosumers_follow_the_grids_own_profiles():
    grid = load_simbench_grid(MV)
    when = "2016-03-01T07:30"
    demand, gen = grid.feeder.own_profiles.snapshot(interval_index(when))
    a = build_instance(grid.feeder, interval=when, seed=1)
    b = build_instance(grid.feeder, interval=when, seed=2)
    for inst in (a, b):  # the seed draws costs, never the grid's loads and generation
        assert np.allclose([x.d_kw for x in inst.agents], demand[1:] * 1e3)
        assert np.allclose([x.g_kw for x in inst.agents], gen[1:] * 1e3)
    assert [x.b for x in a.agents] != [x.b for x in b.agents]


@pytest.mark.parametrize(("code", "when", "projection"), [
    (LV, "2016-01-10T18:00", "sweep"), (MV, "2016-06-21T12:00", "sweep"), (LV_TAPPED, "2016-01-10T18:00", "sweep"),
    (LV_TAPPED, "2016-01-10T18:00", "local")])
def test_admm_matches_the_centralized_optimum(code, when, projection):
    """Both splittings on a grid with a tapped transformer too (its ratio is in the feeder's voltage bases)."""
    inst = build_instance(load_simbench_grid(code).feeder, interval=when, seed=0)
    ref = solve_clearing(inst)
    res = solve_admm(inst, AdmmSettings(projection=projection)).result
    assert res.info["converged"] and abs(res.objective - ref.objective) <= 1e-4 * abs(ref.objective)
    assert np.max(np.abs(np.sqrt(res.v) - np.sqrt(ref.v))) <= 1e-4
