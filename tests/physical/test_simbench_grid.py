"""SimBench grids as feeders: conversion checked against pandapower on the SimBench net itself, the grid's own
profiles against simbench's absolute values, loops refused by name."""

from __future__ import annotations

import numpy as np
import pytest
import simbench

from physical.ac_power_flow import run_ac_power_flow
from physical.catalog import load_feeder
from physical.errors import FeederError
from physical.profiles import interval_index
from physical.simbench_grid import (
    SIMBENCH_PREFIX,
    grid_from_net,
    is_simbench_code,
    load_simbench_grid,
    simbench_ac_power_flow,
    simbench_codes,
    simbench_net,
)

LV, MV = "1-LV-rural1--0-sw", "1-MV-rural--0-sw"


def test_names_do_not_collide_with_matpower():
    assert is_simbench_code(LV) and is_simbench_code(SIMBENCH_PREFIX + MV)
    assert not any(is_simbench_code(n) for n in ("case15da", "case33bw", "my-grid.m", "case141"))
    codes = simbench_codes()
    assert {LV, MV, "1-MVLV-rural-all-0-sw", "1-LV-urban6--2-no_sw"} <= set(codes)
    assert not any(c.startswith(("1-HV", "1-EHV", "1-complete")) for c in codes)
    assert load_feeder(SIMBENCH_PREFIX + LV) is load_feeder(LV)
    with pytest.raises(FeederError, match="unknown SimBench grid '1-LV-nowhere--0-sw'"):
        load_feeder("1-LV-nowhere--0-sw")


@pytest.mark.parametrize("code", [LV, MV, "1-MV-urban--0-sw", "1-LV-rural1--1-sw"])
def test_feeder_net_reproduces_the_simbench_net(code):
    """The feeder's own pandapower net (lines only, the transformer as a line) and the SimBench net itself
    (its lines, transformer, switches) give the same AC power flow for a random dispatch (the urban grid's
    substation runs its two busbar halves apart; rural1--1's transformer is a tap off neutral)."""
    grid = load_simbench_grid(code)
    f = grid.feeder
    rng = np.random.default_rng(3)
    p = rng.uniform(-1.0, 0.6, f.n_buses) * f.pd_mw.max()
    q = rng.uniform(-0.3, 0.3, f.n_buses) * f.pd_mw.max()
    ours = run_ac_power_flow(f, p, q)
    theirs = simbench_ac_power_flow(grid, p, q)
    assert theirs.vm_pu.min() < 0.999  # the dispatch loads the grid
    assert np.max(np.abs(ours.vm_pu - theirs.vm_pu)) < 1e-9
    assert np.nanmax(np.abs(ours.line_p_from_mw - theirs.line_p_from_mw)) < 1e-9
    assert abs(ours.losses_mw - theirs.losses_mw) < 1e-9
    rated = np.isfinite(f.imax_pu)
    assert np.allclose(ours.loading_percent[rated], theirs.loading_percent[rated], atol=1e-6)


def test_lv_grid_keeps_its_transformer_as_a_line():
    grid = load_simbench_grid(LV)
    f, net = grid.feeder, grid.net
    assert f.labels[0] == int(net.ext_grid.bus.iloc[0]) and f.n_buses == len(net.bus)
    (j,) = [j for j in range(1, f.n_buses) if grid.line_element[j][0] == "trafo"]
    assert f.parent[j] == 0 and f.base_kv == 0.4
    tr = net.trafo.iloc[0]
    assert np.isclose(np.hypot(f.r_pu[j], f.x_pu[j]), tr.vk_percent / 100 * f.base_mva / tr.sn_mva)
    assert np.isclose(f.imax_pu[j], tr.sn_mva / f.base_mva)


def test_mv_grid_root_holds_the_substation_loop():
    grid = load_simbench_grid(MV)
    net, f = grid.net, grid.feeder
    substation = [b for b, j in grid.feeder_bus.items() if j == 0]
    assert len(substation) == 4 and set(net.trafo.hv_bus) | set(net.trafo.lv_bus) <= set(substation)
    assert not any(kind == "trafo" for kind, _ in grid.line_element)
    open_lines = set(net.switch.element[(net.switch.et == "l") & ~net.switch.closed])
    used = {idx for kind, idx in grid.line_element if kind == "line"}
    assert used.isdisjoint(open_lines) and len(used) == f.n_buses - 1


def test_a_loop_in_the_feeder_is_refused_by_name():
    net = simbench_net(MV)
    sw = net.switch
    loop = sw.index[(sw.et == "l") & ~sw.closed][0]
    sw.loc[loop, "closed"] = True
    line_name = net.line.name[sw.element[loop]]
    with pytest.raises(FeederError, match=f"loop through .*{line_name}.*the substation"):
        grid_from_net(net, MV)


@pytest.mark.parametrize(("code", "when"), [(MV, "2016-01-10T18:00"), ("1-MV-rural--1-sw", "2016-06-21T12:00")])
def test_own_profiles_are_simbench_absolute_values(code, when):
    """Per bus, the grid's profile snapshot equals simbench's own absolute load, generation and storage values
    (scenario 1 adds storage units)."""
    grid = load_simbench_grid(code)
    index = interval_index(when)
    demand, gen = grid.feeder.own_profiles.snapshot(index)
    absolute = simbench.get_absolute_values(grid.net, profiles_instead_of_study_cases=True)
    net_mw = np.zeros(grid.feeder.n_buses)
    for element, sign in (("load", 1.0), ("sgen", -1.0), ("storage", 1.0)):
        table = absolute[(element, "p_mw")]
        assert table.shape[1] == grid.net[element].in_service.sum()
        for i, v in (table.iloc[index].items() if len(table) else ()):
            net_mw[grid.feeder_bus[int(grid.net[element].bus[i])]] += sign * v
    net_mw[0] = 0.0
    assert np.allclose(demand - gen, net_mw, atol=1e-12)
    assert gen.sum() > 0 and demand.sum() > 0
