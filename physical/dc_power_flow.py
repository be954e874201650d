"""DC power flow on a transmission case, fast enough to run thousands of cascade steps.

The grid is taken from pandapower's own DC model of the net (the ``ppc`` that ``rundcpp`` builds: branch
reactances, tap ratios and phase shifts, bus demand and shunts, generator dispatch and limits), so the flows are
pandapower's; what this module adds is a solve that takes a branch outage mask and per-bus injections without
rebuilding a net, and that handles islands (one angle reference in each). Tested against ``pandapower.rundcpp``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import pandapower as pp
from pandapower.pypower.idx_brch import BR_X, F_BUS, RATE_A, SHIFT, T_BUS, TAP
from pandapower.pypower.idx_bus import GS, PD
from pandapower.pypower.idx_gen import GEN_BUS, PG, PMAX
from scipy.sparse import coo_matrix, csc_matrix
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import spsolve


@dataclass(frozen=True, eq=False)
class DCGrid:
    """A transmission grid in DC form; buses and branches in pandapower's internal (ppc) order.

    Branches are the net's lines first, then its transformers (``line_index``/``trafo_index`` give the pandapower
    indices). Powers in MW, susceptances in MW per radian.
    """

    n_bus: int
    from_bus: np.ndarray
    to_bus: np.ndarray
    susceptance_mw: np.ndarray
    shift_rad: np.ndarray
    rate_mva: np.ndarray
    demand_mw: np.ndarray  # per bus: load plus shunt conductance at 1 p.u.
    gen_bus: np.ndarray
    gen_p_mw: np.ndarray
    gen_pmax_mw: np.ndarray
    line_index: np.ndarray  # pandapower line index of branches 0 .. n_lines-1
    trafo_index: np.ndarray

    @property
    def n_branch(self) -> int:
        return len(self.from_bus)

    @property
    def n_lines(self) -> int:
        return len(self.line_index)

    def islands(self, in_service: np.ndarray) -> np.ndarray:
        """Island label of every bus over the in-service branches."""
        on = np.flatnonzero(in_service)
        adj = coo_matrix((np.ones(len(on)), (self.from_bus[on], self.to_bus[on])), shape=(self.n_bus, self.n_bus))
        return connected_components(adj, directed=False)[1]

    def flows_mw(self, in_service: np.ndarray, injection_mw: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """Branch flows (MW, from-end) for per-bus injections that balance in every island.

        ``reference`` holds one bus per island (angle 0); out-of-service branches carry 0.
        """
        b = np.where(in_service, self.susceptance_mw, 0.0)
        f, t = self.from_bus, self.to_bus
        # a phase shifter acts as an injection pair at its ends
        rhs = injection_mw + np.bincount(f, b * self.shift_rad, self.n_bus) - np.bincount(t, b * self.shift_rad,
                                                                                           self.n_bus)
        free = np.ones(self.n_bus, bool)
        free[reference] = False
        position = np.cumsum(free) - 1  # bus -> row of the reduced system (reference buses dropped)
        rows = np.concatenate([f, t, f, t])
        cols = np.concatenate([f, t, t, f])
        keep = free[rows] & free[cols]
        n = int(free.sum())
        reduced = csc_matrix((np.concatenate([b, b, -b, -b])[keep], (position[rows[keep]], position[cols[keep]])),
                             shape=(n, n))
        theta = np.zeros(self.n_bus)
        # sparse LU: a dense solve goes through threaded BLAS, 100x slower on a busy 2-core machine
        theta[free] = spsolve(reduced, rhs[free])
        return b * (theta[f] - theta[t] - self.shift_rad)


def dc_grid(net: pp.pandapowerNet) -> DCGrid:
    """The DC model of a pandapower net, read from the ppc that ``rundcpp`` builds (the net is not changed)."""
    net = copy.deepcopy(net)
    pp.rundcpp(net)
    ppc = net._ppc
    base = float(ppc["baseMVA"])
    branch, bus, gen = ppc["branch"], ppc["bus"], ppc["gen"]
    tap = np.real(branch[:, TAP])
    tap = np.where(tap == 0, 1.0, tap)
    lookup = net._pd2ppc_lookups["branch"]
    n_lines = lookup["line"][1] - lookup["line"][0] if "line" in lookup else 0
    pmax = np.nan_to_num(np.real(gen[:, PMAX]), nan=0.0, posinf=0.0)
    # the ppc gives the external grid (slack) 1e9 MW; the case's own limit is in net.ext_grid.max_p_mw
    ext = net.ext_grid[net.ext_grid.in_service]
    if "max_p_mw" in ext and np.all(np.isfinite(ext.max_p_mw.to_numpy(float))):
        pmax[: len(ext)] = ext.max_p_mw.to_numpy(float)
    return DCGrid(
        n_bus=bus.shape[0],
        from_bus=np.real(branch[:, F_BUS]).astype(int),
        to_bus=np.real(branch[:, T_BUS]).astype(int),
        susceptance_mw=base / (np.real(branch[:, BR_X]) * tap),
        shift_rad=np.radians(np.real(branch[:, SHIFT])),
        rate_mva=np.real(branch[:, RATE_A]),
        demand_mw=np.real(bus[:, PD]) + np.real(bus[:, GS]),
        gen_bus=np.real(gen[:, GEN_BUS]).astype(int),
        gen_p_mw=np.real(gen[:, PG]),
        gen_pmax_mw=pmax,
        line_index=net.line.index.to_numpy()[:n_lines],
        trafo_index=net.trafo.index.to_numpy(),
    )
