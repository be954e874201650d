"""Static structure of the distributed ADMM: who holds which copy, and the closed-form group projections.

Splitting (after Peng & Low, "Distributed optimal power flow algorithm for radial networks", 2016):

- x-block, agent ``j``'s own variables: ``v, w, l, lb, P, Q, p, q, t0`` and its side of each of its trades
  (``tb`` for a buyer, ``ts`` for a seller). ``w`` is j's local copy of its parent's voltage, so the cone
  ``P^2 + Q^2 <= w l`` is local; ``lb`` is a copy of ``l`` that carries the thermal limit. The local set is
  the cone, the boxes and the energy balance (1n-1o) of ``p``, the trades and the utility trade ``t0``
  (model.md: "over its local set (bounds, SOC, energy balance)"); the cost is the agent's own.
- y-block, one affine *group* per agent, held by that agent: copies of its own network variables, of its
  children's ``P, Q`` (``Pc, Qc``) and of its parent's ``v`` (``vp``) with the constraints
  E1/E2 power balance, E3 voltage drop, E4 ``w = v_parent``, E5 ``l = lb``, E6 its reactive model; and one
  *pair* group per trade, ``tb = ts`` (reciprocity 1i), that buyer and seller each evaluate from the values
  they exchange. ``t0`` is settled with the utility company and needs no copy.

Each copy ``c`` of a variable ``u`` has the penalty ``rho * sigma_u / n_u`` (``n_u`` copies of ``u``,
``sigma_u`` the weight of its family, :class:`Weights`; a small agent's trades are weighted up by
:func:`market.admm.pairs.trade_size_factor`). The group projection in that metric is
``y = z - D^-1 A^T (A D^-1 A^T)^-1 (A z - b)`` (paper eqs. 7-8) with a 6x6 block per agent, precomputed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from market.formulation.trading import MarketArrays, market_arrays
from market.instance import MarketInstance

#: Segments of the bus-group copy vector: an agent's own network variables, children's flows, parent's v.
OWN = ("p", "q", "P", "Q", "l", "lb", "v", "w")
SEGMENTS = (*OWN, "Pc", "Qc", "vp")
ROWS_PER_AGENT = 6


@dataclass(frozen=True, eq=False)
class AdmmLayout:
    """Everything about the splitting that does not change over the iterations."""

    n: int
    m: int
    arrays: MarketArrays
    has_parent: np.ndarray  # agent's parent is a prosumer (not the substation)
    link_child: np.ndarray  # per parent-child link c between two prosumers: the child agent
    link_parent: np.ndarray  # ... and the parent agent
    n_children: np.ndarray
    segment: dict[str, slice]
    size: int  # length of the bus-group copy vector
    A: sp.csr_matrix
    At: sp.csr_matrix
    b: np.ndarray
    dinv: np.ndarray  # 1 / (sigma_u / n_u) per bus copy
    copy_weight: np.ndarray  # norm of the residuals: sigma_u / n_u of every held copy, pairs without size factor
    K: np.ndarray  # (n, 6, 6): (A D^-1 A^T)^-1 per agent
    bounds: tuple[np.ndarray, np.ndarray, np.ndarray]  # own_bounds
    scale: float  # objective divisor: the largest linear cost coefficient (cent per p.u.)
    weights: Weights

    @property
    def bus(self) -> slice:
        """Part of a held-copy vector (``y``, ``u``) that belongs to the bus groups."""
        return slice(0, self.size)

    @property
    def pair_b(self) -> slice:
        """Buyers' sides of the reciprocity pairs."""
        return slice(self.size, self.size + self.m)

    @property
    def pair_s(self) -> slice:
        """Sellers' sides of the reciprocity pairs."""
        return slice(self.size + self.m, self.size + 2 * self.m)

    def seg(self, vec: np.ndarray, name: str) -> np.ndarray:
        return vec[self.segment[name]]

    def project(self, z: np.ndarray) -> np.ndarray:
        """All bus-group projections at once: block-diagonal, so each agent's block uses only its copies."""
        res = (self.A @ z - self.b).reshape(self.n, ROWS_PER_AGENT)
        mult = np.einsum("aij,aj->ai", self.K, res).ravel()
        return z - self.dinv * (self.At @ mult)


@dataclass(frozen=True)
class Weights:
    """Relative penalty of each variable family (a diagonal preconditioner of the ADMM).

    ``P, Q`` get ``2 sqrt(voltage * current)``, which keeps the branch cone a Euclidean projection after
    rescaling (:func:`market.admm.prox.project_branch_cone`).
    """

    voltage: float = 1.0  # v, w and the copies of v
    current: float = 1.0  # l, lb
    market: float = 1.0  # p, q
    trade: float = 1.0  # each side of a bilateral trade

    def __post_init__(self) -> None:
        if min(self.voltage, self.current, self.market, self.trade) <= 0:
            raise ValueError("ADMM weights must be positive")

    @property
    def flow(self) -> float:
        return 2.0 * float(np.sqrt(self.voltage * self.current))

    def on_base(self, base_mva: float) -> Weights:
        """These weights, stated for a 1 MVA base, on a feeder expressed in ``base_mva``.

        Powers in p.u. shrink with the base ``s`` and squared currents with its square, voltages not at all:
        weighting voltages by ``1/s^2`` and squared currents by ``s^2`` keeps the balance between the
        families. (The costs, divided by
        the largest price per p.u., are not rescaled: on the feeders with a 10 MVA base a penalty ``s`` times
        heavier, which would make the iterates exactly base-free, took several times more iterations.)
        """
        s = base_mva
        return Weights(voltage=self.voltage / s**2, current=self.current * s**2, market=self.market,
                       trade=self.trade)


def own_bounds(instance: MarketInstance) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per agent the box of its own x-update: squared voltage limits and the squared current rating."""
    return instance.vmin_pu[1:] ** 2, instance.vmax_pu[1:] ** 2, instance.feeder.imax_pu[1:] ** 2


def objective_scale(arr: MarketArrays) -> float:
    """Divisor of all costs: the largest linear cost coefficient (cent per p.u.), so penalties are O(1)."""
    return float(max(np.abs(arr.lin).max(initial=0.0), np.abs(arr.uc_price).max(initial=0.0), 1.0))


def build_layout(instance: MarketInstance, weights: Weights | None = None,
                 reactive_local: np.ndarray | None = None) -> AdmmLayout:
    """The local splitting's static data; agents flagged in ``reactive_local`` (the owners of batteries) hold
    their reactive model in their local step, not in their group (:mod:`market.admm.battery`)."""
    f = instance.feeder
    arr = market_arrays(instance)
    n, m = len(instance.agents), len(instance.trades)
    agents = np.arange(n)
    parent_agent = f.parent[1:] - 1  # -1: fed by the substation
    has_parent = parent_agent >= 0
    link_child = agents[has_parent]
    link_parent = parent_agent[has_parent]
    nc = len(link_child)
    n_children = np.bincount(link_parent, minlength=n)
    lengths = dict.fromkeys(OWN, n) | {"Pc": nc, "Qc": nc, "vp": nc}
    offsets = np.cumsum([0] + [lengths[s] for s in SEGMENTS])
    segment = {s: slice(offsets[i], offsets[i + 1]) for i, s in enumerate(SEGMENTS)}
    size = int(offsets[-1])

    def col(name: str, index) -> np.ndarray:
        return segment[name].start + np.asarray(index)

    r, x = f.r_pu[1:], f.x_pu[1:]
    rows, cols, vals = [], [], []

    def add(eq: int, agent, name: str, index, value) -> None:
        agent = np.asarray(agent)
        rows.append(ROWS_PER_AGENT * agent + eq)
        cols.append(col(name, index))
        vals.append(np.broadcast_to(np.asarray(value, dtype=float), agent.shape))

    links = np.arange(nc)
    # E1, E2: p + P - r l - sum children P = 0 (and the reactive twin)
    add(0, agents, "p", agents, 1.0), add(0, agents, "P", agents, 1.0), add(0, agents, "l", agents, -r)
    add(0, link_parent, "Pc", links, -1.0)
    add(1, agents, "q", agents, 1.0), add(1, agents, "Q", agents, 1.0), add(1, agents, "l", agents, -x)
    add(1, link_parent, "Qc", links, -1.0)
    # E3: v - w + 2 (r P + x Q) - (r^2 + x^2) l = 0
    add(2, agents, "v", agents, 1.0), add(2, agents, "w", agents, -1.0)
    add(2, agents, "P", agents, 2 * r), add(2, agents, "Q", agents, 2 * x), add(2, agents, "l", agents, -(r**2 + x**2))
    # E4: w = v_parent (= 1 under the substation)
    add(3, agents, "w", agents, 1.0), add(3, link_child, "vp", links, -1.0)
    # E5: l = lb
    add(4, agents, "l", agents, 1.0), add(4, agents, "lb", agents, -1.0)
    # E6: q - slope p = q_hat - slope p_hat (a row 0 = 0 for agents that hold it locally)
    grouped = agents if reactive_local is None else agents[~reactive_local]
    add(5, grouped, "q", grouped, 1.0), add(5, grouped, "p", grouped, -arr.q_slope[grouped])
    A = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                      shape=(ROWS_PER_AGENT * n, size))
    b = np.zeros((n, ROWS_PER_AGENT))
    b[~has_parent, 3] = 1.0
    b[grouped, 5] = (arr.q_hat - arr.q_slope * arr.p_hat)[grouped]

    wt = weights or Weights()
    n_P = 1 + has_parent
    n_v = 1 + n_children
    weight = np.full(size, float(wt.market))
    weight[segment["P"]] = weight[segment["Q"]] = wt.flow / n_P
    weight[segment["Pc"]] = weight[segment["Qc"]] = wt.flow / n_P[link_child]
    weight[segment["v"]] = wt.voltage / n_v
    weight[segment["vp"]] = wt.voltage / n_v[link_parent]
    weight[segment["w"]] = wt.voltage
    weight[segment["l"]] = weight[segment["lb"]] = wt.current
    dinv = 1.0 / weight
    G = (A.multiply(dinv[None, :]) @ A.T).tocsr()  # block diagonal: an agent's rows touch only its copies
    k = ROWS_PER_AGENT
    blocks = np.stack([G[k * a:k * (a + 1), k * a:k * (a + 1)].toarray() for a in range(n)])
    if reactive_local is not None:
        blocks[reactive_local, 5, 5] = 1.0  # the empty row: its multiplier stays 0
    K = np.linalg.inv(blocks)

    return AdmmLayout(
        n=n, m=m, arrays=arr, has_parent=has_parent, link_child=link_child, link_parent=link_parent,
        n_children=n_children, segment=segment, size=size, A=A, At=A.T.tocsr(),
        b=b.ravel(), dinv=dinv, copy_weight=np.concatenate([weight, np.full(2 * m, wt.trade)]), K=K,
        bounds=own_bounds(instance), scale=objective_scale(arr),
        weights=wt,
    )
