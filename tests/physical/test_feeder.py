"""Radial trees from case files, and clear errors for what is not a radial feeder."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from physical.catalog import RADIAL_CASES, load_feeder
from physical.errors import FeederError
from physical.matpower_case import case_path
from tests.conftest import feeder


@pytest.mark.parametrize("name", RADIAL_CASES)
def test_every_bundled_radial_case_is_a_tree(name):
    f = feeder(name)
    assert f.parent[0] == -1
    assert all(f.depth[j] == f.depth[f.parent[j]] + 1 for j in range(1, f.n_buses))
    assert sum(len(c) for c in f.children) == f.n_buses - 1
    assert np.all(np.hypot(f.r_pu[1:], f.x_pu[1:]) > 0)


def test_case33bw_skips_its_five_tie_lines():
    f = feeder("case33bw")
    assert f.n_buses == 33
    assert any("5 out-of-service" in note for note in f.notes)


def test_case15da_tree_matches_the_case_file():
    f = feeder("case15da")
    # branches 1-2, 2-3, 3-4, 4-5, 2-9 of the file, buses renumbered 0-based
    assert f.parent[1] == 0 and f.parent[2] == 1 and f.parent[4] == 3 and f.parent[8] == 1
    assert set(f.children[1]) >= {2, 8}


def test_path_impedance_is_a_tree_metric():
    f = feeder("case33bw")
    d = f.path_impedance_pu()
    z = np.hypot(f.r_pu, f.x_pu)
    assert np.allclose(d, d.T) and np.all(np.diag(d) == 0)
    assert np.isclose(d[0, 17], sum(z[j] for j in range(1, 18)))  # the main trunk 0-1-...-17
    j = 20
    assert np.isclose(d[0, j], d[0, f.parent[j]] + z[j])


def _case_with_status(tmp_path, f_bus: int, t_bus: int, status: int) -> str:
    """case33bw with the BR_STATUS of branch f_bus-t_bus changed."""
    lines = case_path("case33bw").read_text().splitlines()
    for k, line in enumerate(lines):
        cols = line.split("\t")
        if len(cols) > 12 and cols[1:3] == [str(f_bus), str(t_bus)]:
            cols[11] = str(status)
            lines[k] = "\t".join(cols)
            break
    else:
        raise AssertionError(f"branch {f_bus}-{t_bus} not found")
    path = tmp_path / "edited.m"
    path.write_text("\n".join(lines))
    return str(path)


def test_meshed_grid_is_refused_with_a_loop(tmp_path):
    with pytest.raises(FeederError, match="meshed.*loop through buses"):
        load_feeder(_case_with_status(tmp_path, 21, 8, 1))  # close the tie line 21-8


def test_disconnected_grid_is_refused(tmp_path):
    with pytest.raises(FeederError, match="disconnected; buses .*3"):
        load_feeder(_case_with_status(tmp_path, 2, 3, 0))  # buses 3..18 lose the substation


@pytest.mark.parametrize(("name", "reason"), [("case70da", "one reference"), ("case16ci", "one reference"),
                                              ("case4_dist", "generators"), ("case18", "shunts")])
def test_grids_outside_the_model_are_refused(name, reason):
    with pytest.raises(FeederError, match=reason):
        load_feeder(name)


def test_unknown_feeder():
    with pytest.raises(FeederError, match="unknown MATPOWER case"):
        load_feeder("case_nope")


def test_path_impedance_rows_match_networkx_shortest_paths():
    f = feeder("case141")
    g = f.graph.to_undirected()
    for u, v in g.edges:
        g.edges[u, v]["z"] = float(np.hypot(f.r_pu[max(u, v, key=lambda b: f.depth[b])],
                                            f.x_pu[max(u, v, key=lambda b: f.depth[b])]))
    rows = [0, 17, 140, 77]
    d = f.path_impedance_pu(rows)
    for k, a in enumerate(rows):
        length = nx.single_source_dijkstra_path_length(g, a, weight="z")
        assert np.allclose(d[k], [length[b] for b in range(f.n_buses)], rtol=1e-12, atol=1e-15)
