"""The radial feeder every layer works on: buses 0..n, bus 0 the substation, line j ends at bus j.

Built from plain branch/bus tables by :func:`build_feeder`, whatever the source (MATPOWER case files,
SimBench grids). The tree is checked with networkx: a meshed, disconnected or multi-source grid is refused
with a message that names the offending branches or buses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import networkx as nx
import numpy as np

from physical.errors import FeederError

if TYPE_CHECKING:
    from physical.profiles import UnitProfiles


@dataclass(frozen=True, eq=False)
class Feeder:
    """Radial feeder in per unit on ``base_mva``/``base_kv``.

    Arrays are indexed by bus ``0..n``; entry ``j >= 1`` of a line array belongs to line ``j`` (the line whose
    end bus is ``j``), entry 0 is unused. ``labels`` keeps the source's own bus numbers.

    ``vm_base[j]`` is bus ``j``'s voltage base over its nominal voltage (``None``: 1 everywhere). Below a
    transformer off its nominal ratio ``n`` the buses are in p.u. of ``n`` times their nominal voltage, which
    folds the ratio into the per-unit system exactly (:mod:`physical.simbench_grid` derives it): the voltages,
    voltage limits, impedances and current limits of these arrays are all in that model's p.u.
    :meth:`nominal_vm` turns a voltage into p.u. of the bus's nominal voltage, :meth:`model_vm` back.
    """

    name: str
    base_mva: float
    base_kv: float
    labels: tuple[int, ...]
    parent: np.ndarray
    r_pu: np.ndarray
    x_pu: np.ndarray
    pd_mw: np.ndarray
    qd_mvar: np.ndarray
    vmin_pu: np.ndarray
    vmax_pu: np.ndarray
    imax_pu: np.ndarray
    source: str = ""
    notes: tuple[str, ...] = field(default=())
    own_profiles: UnitProfiles | None = field(default=None, repr=False)
    vm_base: np.ndarray | None = field(default=None, repr=False)

    @property
    def n_buses(self) -> int:
        return len(self.labels)

    def nominal_vm(self, vm_pu: np.ndarray) -> np.ndarray:
        """Voltage magnitudes of every bus in p.u. of its nominal voltage, from the model's p.u."""
        return np.asarray(vm_pu, dtype=float) * (1.0 if self.vm_base is None else self.vm_base)

    def model_vm(self, vm_pu: np.ndarray | float) -> np.ndarray:
        """Voltage magnitudes of every bus in the model's p.u., from p.u. of its nominal voltage."""
        return np.broadcast_to(np.asarray(vm_pu, dtype=float), (self.n_buses,)) / (
            1.0 if self.vm_base is None else self.vm_base)

    @cached_property
    def children(self) -> tuple[tuple[int, ...], ...]:
        kids: list[list[int]] = [[] for _ in range(self.n_buses)]
        for j in range(1, self.n_buses):
            kids[int(self.parent[j])].append(j)
        return tuple(tuple(k) for k in kids)

    @cached_property
    def depth(self) -> np.ndarray:
        depth = np.zeros(self.n_buses, dtype=int)
        for j in self.topological_order[1:]:
            depth[j] = depth[self.parent[j]] + 1
        return depth

    @cached_property
    def topological_order(self) -> tuple[int, ...]:
        """Buses in breadth-first order from the substation (every parent before its children)."""
        return tuple(nx.bfs_tree(self.graph, 0).nodes)

    @cached_property
    def graph(self) -> nx.DiGraph:
        """Directed tree, edges parent -> child, carrying line impedances."""
        g = nx.DiGraph()
        g.add_nodes_from(range(self.n_buses))
        for j in range(1, self.n_buses):
            g.add_edge(int(self.parent[j]), j, line=j, r_pu=float(self.r_pu[j]), x_pu=float(self.x_pu[j]))
        return g

    def path_impedance_pu(self, rows: Sequence[int] | None = None) -> np.ndarray:
        """|Z| of the tree path between buses: the electrical distance used for trading fees, in p.u. of the
        buses' nominal voltages (a transformer's tap does not change it).

        Entry ``[k, b]`` is the distance from bus ``rows[k]`` (every bus by default) to bus ``b``:
        ``to_root[a] + to_root[b] - 2 to_root[lca(a, b)]``. The lowest common ancestors of all rows are found
        together, level by level from the substation (a bus's is itself when it is an ancestor of ``a``,
        else its parent's), so a 5 000-bus feeder costs one numpy pass per level rather than a Python step
        per pair.
        """
        rows = np.arange(self.n_buses) if rows is None else np.asarray(rows, dtype=int)
        z = np.hypot(self.r_pu, self.x_pu) * (1.0 if self.vm_base is None else self.vm_base**2)
        to_root = np.zeros(self.n_buses)
        for j in self.topological_order[1:]:
            to_root[j] = to_root[self.parent[j]] + z[j]
        # bus-major layout (bus, row): each level reads and writes whole rows of memory
        ancestor = np.zeros((self.n_buses, len(rows)), dtype=bool)
        walk = rows.copy()
        while True:  # mark each row's path to the substation
            ancestor[np.maximum(walk, 0), np.arange(len(rows))] |= walk >= 0
            if np.all(walk <= 0):
                break
            walk = np.where(walk > 0, self.parent[np.maximum(walk, 0)], -1)
        lca_to_root = np.zeros((self.n_buses, len(rows)))
        depth = self.depth
        for level in range(1, int(depth.max()) + 1):
            buses = np.flatnonzero(depth == level)
            lca_to_root[buses] = np.where(ancestor[buses], to_root[buses, None], lca_to_root[self.parent[buses]])
        return np.ascontiguousarray((to_root[:, None] + to_root[None, rows] - 2 * lca_to_root).T)


def working_base_mva(total_load_mw: float) -> float:
    """Power base for the market: the largest power of ten not above the feeder's total load.

    Case files use 1, 10 or 100 MVA whatever their size; on a 100 MVA base a 1 MW feeder has injections of
    1e-2 p.u. and squared currents of 1e-4 p.u., which leaves the conic solver short of its tolerances.
    """
    return float(10.0 ** np.floor(np.log10(total_load_mw))) if total_load_mw > 0 else 1.0


def build_feeder(
    name: str,
    *,
    base_mva: float,
    base_kv: float,
    bus_labels: list[int],
    root_label: int,
    branches: list[tuple[int, int, float, float, float]],
    pd_mw: dict[int, float],
    qd_mvar: dict[int, float],
    vmin_pu: dict[int, float],
    vmax_pu: dict[int, float],
    source: str,
    notes: tuple[str, ...] = (),
) -> Feeder:
    """Orient an in-service branch list into a radial tree rooted at ``root_label``.

    ``branches`` holds ``(from_label, to_label, r_pu, x_pu, imax_pu)``; ``imax_pu`` is ``inf`` when the
    source gives no rating. Bus indices follow ``bus_labels`` with the root moved to index 0.
    """
    labels = [root_label] + [b for b in bus_labels if b != root_label]
    index = {b: i for i, b in enumerate(labels)}
    g = nx.MultiGraph()
    g.add_nodes_from(range(len(labels)))
    for f, t, r, x, imax in branches:
        if f not in index or t not in index:
            raise FeederError(f"{source}: branch {f}-{t} refers to a bus that is not in the bus table")
        g.add_edge(index[f], index[t], r=r, x=x, imax=imax)
    _check_radial(g, labels, source)

    n = len(labels)
    parent = np.full(n, -1, dtype=int)
    r = np.zeros(n)
    x = np.zeros(n)
    imax = np.full(n, np.inf)
    for u, v in nx.bfs_edges(g, 0):
        data = next(iter(g.get_edge_data(u, v).values()))
        parent[v], r[v], x[v], imax[v] = u, data["r"], data["x"], data["imax"]
    return Feeder(
        name=name,
        base_mva=float(base_mva),
        base_kv=float(base_kv),
        labels=tuple(int(b) for b in labels),
        parent=parent,
        r_pu=r,
        x_pu=x,
        pd_mw=np.array([pd_mw.get(b, 0.0) for b in labels]),
        qd_mvar=np.array([qd_mvar.get(b, 0.0) for b in labels]),
        vmin_pu=np.array([vmin_pu.get(b, 0.9) for b in labels]),
        vmax_pu=np.array([vmax_pu.get(b, 1.1) for b in labels]),
        imax_pu=imax,
        source=source,
        notes=notes,
    )


def _check_radial(g: nx.MultiGraph, labels: list[int], source: str) -> None:
    components = list(nx.connected_components(g))
    if len(components) > 1:
        islanded = sorted(labels[i] for comp in components if 0 not in comp for i in comp)
        raise FeederError(f"{source}: grid is disconnected; buses {islanded[:10]}"
                          f"{' ...' if len(islanded) > 10 else ''} are not connected to the substation "
                          f"(bus {labels[0]})")
    if g.number_of_edges() != g.number_of_nodes() - 1:
        loops = nx.cycle_basis(nx.Graph(g)) or [[u, v] for u, v, k in g.edges(keys=True) if k > 0]
        loop = [labels[i] for i in loops[0]]
        raise FeederError(f"{source}: grid is meshed ({g.number_of_edges()} in-service branches for "
                          f"{g.number_of_nodes()} buses); e.g. the loop through buses {loop}. "
                          "A radial feeder is required (open a branch with BR_STATUS = 0)")
