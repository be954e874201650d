"""The compiled cascade stage against its numpy/scipy definition and pandapower's rundcpp, with outages and
islands; the stage tree against direct simulation."""

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pytest
from pandapower.pypower.idx_brch import BR_STATUS
from pandapower.pypower.idx_bus import BUS_TYPE, GS, NONE, PD
from pandapower.pypower.idx_gen import GEN_BUS, GEN_STATUS, PG

from physical.cascade import _balance, _reference_buses, build_study, numpy_stage, simulate_cascade
from physical.cascade_kernels import balance, flows_mw, island_labels, kernel_grid, reference_buses, stage_flows
from physical.cascade_tree import CascadeTree
from physical.dc_power_flow import dc_grid


def _random_masks(grid, rng, n):
    """In-service masks from 0 to 30 % of the branches out: most split the grid into islands."""
    return [rng.random(grid.n_branch) >= rng.uniform(0.0, 0.3) for _ in range(n)]


@pytest.mark.parametrize("case", ["case39", "case118", "case300"])
def test_islands_rebalancing_and_flows_equal_the_numpy_stage(case):
    grid = build_study(case, 1, 0).grid
    kg = kernel_grid(grid)
    rng = np.random.default_rng(7)
    islanded = 0
    for in_service in _random_masks(grid, rng, 60):
        labels = grid.islands(in_service)
        assert np.array_equal(island_labels(kg, in_service), labels)
        islanded += labels.max() > 0
        assert np.array_equal(reference_buses(kg, labels), _reference_buses(grid, labels))
        level = rng.uniform(0.8, 1.6)  # above ~1.2 islands run short of generation and shed
        served, served_kernel = level * grid.demand_mw, level * grid.demand_mw
        gen = _balance(grid, labels, served, level * grid.gen_p_mw)
        gen_kernel = balance(kg, labels, served_kernel, level * grid.gen_p_mw)
        assert np.array_equal(gen_kernel, gen) and np.array_equal(served_kernel, served)  # same to the bit
        injection = -served
        np.add.at(injection, grid.gen_bus, gen)
        reference = _reference_buses(grid, labels)
        expected = grid.flows_mw(in_service, injection, reference)
        got = flows_mw(kg, in_service, injection, reference)
        assert np.max(np.abs(got - expected)) <= 1e-9 * max(1.0, np.abs(expected).max())
        assert np.all(got[~in_service] == 0.0)
    assert islanded > 30


def _island_cut(grid, nth):
    """The lines of the nth bus (by index) with load, 2-3 branches, all of them lines: out, the bus is alone."""
    at = [np.flatnonzero((grid.from_bus == b) | (grid.to_bus == b)) for b in range(grid.n_bus)]
    cuts = [a for b, a in enumerate(at) if grid.demand_mw[b] > 0 and 2 <= len(a) <= 3 and a.max() < grid.n_lines]
    return tuple(cuts[nth].tolist())


@pytest.mark.parametrize("case, lines_out", [("case39", (3, 20)), ("case39", "island"), ("case118", (30, 100)),
                                             ("case118", "island")])
def test_kernel_flows_equal_rundcpp(case, lines_out):
    """pandapower drops an island without a slack (its buses out of service, no flows); the kernel, given the
    injections rundcpp ended with (zero on dropped buses), must give the same flows everywhere."""
    net = getattr(pn, case)()
    grid = dc_grid(net)
    if lines_out == "island":
        lines_out = _island_cut(grid, 0) + _island_cut(grid, 3) + (5,)
    net.line.loc[grid.line_index[list(lines_out)], "in_service"] = False
    grid = dc_grid(net)  # pandapower numbers isolated buses last: the grid in the ppc order of this net
    pp.rundcpp(net)
    ppc = net._ppc
    in_service = np.real(ppc["branch"][:, BR_STATUS]) > 0
    injection = -(np.real(ppc["bus"][:, PD]) + np.real(ppc["bus"][:, GS]))
    on = np.real(ppc["gen"][:, GEN_STATUS]) > 0
    np.add.at(injection, np.real(ppc["gen"][on, GEN_BUS]).astype(int), np.real(ppc["gen"][on, PG]))
    dropped = np.real(ppc["bus"][:, BUS_TYPE]) == NONE
    injection[dropped] = 0.0
    kg = kernel_grid(grid)
    labels = island_labels(kg, in_service)
    reference = reference_buses(kg, labels)
    reference[labels[grid.gen_bus[0]]] = grid.gen_bus[0]  # rundcpp's slack: the ext_grid, first in the ppc
    expected = np.nan_to_num(np.concatenate([net.res_line.p_from_mw.to_numpy(), net.res_trafo.p_hv_mw.to_numpy()]))
    got = flows_mw(kg, in_service, injection, reference)
    assert np.max(np.abs(got - expected)) < 1e-6 * max(1.0, np.abs(expected).max())
    assert (labels.max() > 0) == dropped.any()


def test_compiled_stage_equals_the_numpy_stage():
    study = build_study("case118", 3, 1)
    grid = study.grid
    reference = numpy_stage(grid)
    rng = np.random.default_rng(3)
    for in_service in _random_masks(grid, rng, 20):
        served, served_kernel = 1.2 * grid.demand_mw, 1.2 * grid.demand_mw
        expected = reference(in_service, served, 1.2 * grid.gen_p_mw)
        got = stage_flows(kernel_grid(grid), in_service, served_kernel, 1.2 * grid.gen_p_mw)
        assert np.array_equal(served_kernel, served)
        assert np.allclose(got, expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("case, states", [("case39", 12), ("case118", 4)])
def test_tree_equals_direct_simulation_of_every_stage(case, states):
    """Cascades looked up in the tree (after many others filled it) against the numpy stage run start to end."""
    study = build_study(case, states, 5)
    rng = np.random.default_rng(5)
    reference = numpy_stage(study.grid)
    for s in range(states):
        tree = CascadeTree(study, s)
        sets = [frozenset(rng.choice(study.n_lines, int(rng.integers(0, 12)), replace=False).tolist())
                for _ in range(30)]
        base = simulate_cascade(study, s, frozenset(), stage=reference)
        sets += [frozenset(rng.choice(sorted(base.sensitive), min(k, len(base.sensitive)), replace=False).tolist())
                 for k in (1, 2, 3) for _ in range(5)]
        for operating in sets:
            tree.run(operating)
        for operating in sets[::3]:
            direct = simulate_cascade(study, s, operating, stage=reference)
            got = tree.run(operating)
            assert got.shed_mw == direct.shed_mw
            assert got.decisive == direct.sensitive
        assert tree.stages_solved < sum(simulate_cascade(study, s, t).stages for t in set(sets))
