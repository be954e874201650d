"""Static structure of the sweep splitting: one copy of every network variable, projected feeder-wide.

In the sweep splitting every agent ``j`` holds a single y-copy of its own variables ``p, q, P, Q, l, lb, v, w``
(no copies of its neighbours' values) and the y-update (6b) projects *all* of them at once onto the DistFlow
equalities of the whole feeder (1j-1l, ``w = v_parent``, ``l = lb``, the reactive model). That projection is
the mean of a Gaussian ``N(z, W^-1)`` conditioned on the equalities, and on a tree it is computed exactly by
belief propagation in moment form:

- *upward*: agent ``j`` conditions its own values (prior ``N(z_j, W^-1)``) and what its children reported,
  ``N(s_hat_k, Sigma_k)`` for ``s_k = (v_j, P_k, Q_k)``, on its own equalities (power balance over its
  children's flows, voltage drop, ``l = lb``, reactive model) and on every child's ``v = v_j``. The mean of
  what it shares with its parent, ``s_hat_j = (w_j, P_j, Q_j)``, is what it sends up (message ``subtree``):
  the parent voltage and line flows its subtree would like; ``Sigma_j`` is static and known to the parent;
- *at the top*: an agent fed by the substation conditions on ``v_parent = 1``;
- *downward*: conditioning an agent on its final ``s_j`` is a multiplier ``xi_j`` with
  ``s_j = s_hat_j + Sigma_j xi_j`` -- the price its parent puts on its parent voltage and line flows. Told
  ``xi_j``, the agent has its own projected values and sends each child its price ``xi_k`` (message
  ``price``); the child's projected parent voltage and line flows are ``s_hat_k + Sigma_k xi_k``.

After both sweeps every agent's copy satisfies the feeder's equalities exactly -- the global projection
``y = z - W^-1 A' (A W^-1 A')^-1 (A z - b)`` (tested against cvxpy). The cost is ``2 x (depth - 1)`` hops per
y-update instead of one; in exchange the ADMM needs several times fewer iterations than the one-hop
splitting of :mod:`market.admm.layout`, whose information travels one line per iteration.

Moment form with prices coming down, rather than quadratic summaries ``1/2 s'Hs - g's`` or projected values
coming down, because a line of near-zero impedance (a switch modelled as a line, as in case16am and case141)
pins a leaf's flows to each other: its ``H`` is nearly infinite in one direction and its ``Sigma`` nearly
singular, and neither is inverted here (the other forms lost up to 1e-4 on case141).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from market.admm.layout import OWN, Weights, objective_scale, own_bounds
from market.formulation.trading import MarketArrays, market_arrays
from market.instance import MarketInstance

#: An agent's variables, in the order of its y- and u-blocks (the local splitting's own variables).
VARIABLES = OWN
#: Where ``s = (v_parent, P, Q)`` sits among an agent's variables: ``w`` is its copy of the parent voltage.
SHARED = (VARIABLES.index("w"), VARIABLES.index("P"), VARIABLES.index("Q"))
#: Rows of an agent's equalities: power balance (P, Q), voltage drop, ``l = lb``, reactive model; then one
#: row ``v_child = v`` per child.
OWN_ROWS = 5
E1, E2 = 0, 1
REACTIVE = 4  # the reactive-model row


@dataclass(frozen=True, eq=False)
class SweepLayout:
    """The sweep's static data, in *sweep order*: agents sorted by depth, and within a depth by their parent's
    position, so every depth is a contiguous range and the children of one parent are adjacent. Link ``c``
    (the channel of both sweep message kinds) joins the agent at sweep position ``n_top + c`` to its parent.
    Each agent's equalities are padded to ``rows = 5 + most children`` (a padded row is ``0 = 0``).
    """

    n: int
    m: int
    arrays: MarketArrays
    weights: Weights
    copy_weight: np.ndarray  # (8 n): penalty weight of every own variable, variable-major like ``y``
    order: np.ndarray  # agent at each sweep position
    levels: tuple[slice, ...]  # sweep positions at depth 1, 2, ...
    to_parent: tuple[np.ndarray, ...]  # per depth d >= 1: (links to depth d + 1, agents at d) 0/1 parent matrix
    slot: np.ndarray  # per link: the child's row among its parent's ``v_child = v`` rows
    link_child: np.ndarray  # agent (not position) of each link's child
    link_parent: np.ndarray  # ... and parent
    # per sweep position: residual of the equalities r = A z - b + (children), nu = Ninv r,
    # m = z - WA nu (own posterior mean), then y = m + PC xi once its price xi is known
    A: np.ndarray  # (n, rows, 8) own coefficients
    b: np.ndarray  # (n, rows)
    Ninv: np.ndarray  # (n, rows, rows)
    WA: np.ndarray  # (n, 8, rows): W^-1 A'
    Sigma: np.ndarray  # (n, 3, 3): covariance of s_hat
    PC: np.ndarray  # (n, 8, 3): covariance of the own values with s
    # per link: a child's price is xi_k = [-nu_slot, nu_E1, nu_E2] + L xi_parent (all at the parent)
    L: np.ndarray  # (e, 3, 3)
    bounds: tuple[np.ndarray, np.ndarray, np.ndarray]  # per agent (market.admm.layout.own_bounds)
    scale: float

    @property
    def n_top(self) -> int:
        """Agents fed by the substation (they start the downward sweep)."""
        return self.levels[0].stop

    @property
    def rows(self) -> int:
        return self.A.shape[1]

    def block(self, vec: np.ndarray, name: str) -> np.ndarray:
        """The entries of variable ``name`` (all agents) in a variable-major vector of length ``8 n``."""
        i = VARIABLES.index(name)
        return vec[i * self.n:(i + 1) * self.n]


def variable_weights(weights: Weights) -> np.ndarray:
    """Penalty weight of each of an agent's variables (``VARIABLES`` order)."""
    w = weights
    return np.array([w.market, w.market, w.flow, w.flow, w.current, w.current, w.voltage, w.voltage])


def sweep_order(parent: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """Agents by depth, then by their parent's position (so siblings are adjacent), then by number."""
    n = len(parent)
    position = np.full(n, -1)
    order: list[int] = []
    for d in range(1, int(depth.max()) + 1):
        here = np.flatnonzero(depth == d)
        key = position[parent[here]] if d > 1 else np.zeros(len(here), dtype=int)
        here = here[np.lexsort((here, key))]
        position[here] = np.arange(len(order), len(order) + len(here))
        order.extend(here.tolist())
    return np.array(order, dtype=int)


def own_equalities(r: float, x: float, slope: float, c6: float, rows: int, n_children: int, reactive: bool = True
                   ) -> tuple[np.ndarray, np.ndarray]:
    """An agent's equalities on its own 8 values (children's flows enter E1, E2 with -1, see ``child_coefficients``);
    without ``reactive`` the reactive-model row is ``0 = 0`` (the agent holds it in its local step)."""
    p, q, P, Q, l, lb, v, w = range(8)
    A, b = np.zeros((rows, 8)), np.zeros(rows)
    A[E1, [p, P, l]] = 1.0, 1.0, -r  # p + P - r l - sum_k P_k = 0
    A[E2, [q, Q, l]] = 1.0, 1.0, -x
    A[2, [v, w, P, Q, l]] = 1.0, -1.0, 2 * r, 2 * x, -(r * r + x * x)  # voltage drop
    A[3, [l, lb]] = 1.0, -1.0
    if reactive:
        A[REACTIVE, [q, p]] = 1.0, -slope
        b[REACTIVE] = c6
    A[OWN_ROWS:OWN_ROWS + n_children, v] = -1.0  # v_child - v = 0
    return A, b


def child_coefficients(rows: int, slot: int) -> np.ndarray:
    """How child ``slot``'s ``s = (v, P, Q)`` enters its parent's equalities."""
    A = np.zeros((rows, 3))
    A[E1, 1] = A[E2, 2] = -1.0
    A[OWN_ROWS + slot, 0] = 1.0
    return A


def build_sweep_layout(instance: MarketInstance, weights: Weights, reactive_local: np.ndarray | None = None
                       ) -> SweepLayout:
    """The sweep's static data; agents flagged in ``reactive_local`` (the owners of batteries) hold their
    reactive model in their local step (:mod:`market.admm.battery`)."""
    f = instance.feeder
    arr = market_arrays(instance)
    n, m = len(instance.agents), len(instance.trades)
    parent_agent = f.parent[1:] - 1
    depth_agent = f.depth[1:].astype(int)
    order = sweep_order(parent_agent, depth_agent)
    position = np.empty(n, dtype=int)
    position[order] = np.arange(n)
    depth = depth_agent[order]
    parent = np.where(parent_agent[order] >= 0, position[np.maximum(parent_agent[order], 0)], -1)
    r, x = f.r_pu[1:][order], f.x_pu[1:][order]
    slope, c6 = arr.q_slope[order], (arr.q_hat - arr.q_slope * arr.p_hat)[order]
    grouped = np.ones(n, dtype=bool) if reactive_local is None else ~reactive_local[order]
    n_top = int((depth == 1).sum())
    children = [np.flatnonzero(parent == j) for j in range(n)]
    rows = OWN_ROWS + max(len(k) for k in children)
    wv = variable_weights(weights)
    W_inv = np.diag(1.0 / wv)
    e = n - n_top  # link c joins position n_top + c to its parent
    slot = np.zeros(e, dtype=int)
    A, b = np.zeros((n, rows, 8)), np.zeros((n, rows))
    Ninv, WA = np.zeros((n, rows, rows)), np.zeros((n, 8, rows))
    Sigma, PC, L = np.zeros((n, 3, 3)), np.zeros((n, 8, 3)), np.zeros((e, 3, 3))
    shared = list(SHARED)
    for j in range(n - 1, -1, -1):  # children (deeper, later positions) before parents
        kids = children[j]
        A[j], b[j] = own_equalities(r[j], x[j], slope[j], c6[j], rows, len(kids), bool(grouped[j]))
        # the node's joint prior: own values N(z, W^-1), children's shares N(s_hat_k, Sigma_k)
        size = 8 + 3 * len(kids)
        prior = np.zeros((size, size))
        prior[:8, :8] = W_inv
        A_full = np.zeros((rows, size))
        A_full[:, :8] = A[j]
        for i, k in enumerate(kids):
            slot[k - n_top] = i
            prior[8 + 3 * i:11 + 3 * i, 8 + 3 * i:11 + 3 * i] = Sigma[k]
            A_full[:, 8 + 3 * i:11 + 3 * i] = child_coefficients(rows, i)
        N = A_full @ prior @ A_full.T
        unused = np.r_[np.arange(OWN_ROWS + len(kids), rows), [] if grouped[j] else [REACTIVE]].astype(int)
        N[unused, unused] = 1.0  # padded rows: nu = 0
        Ninv[j] = np.linalg.inv(N)
        gain = prior @ A_full.T @ Ninv[j]
        post = prior - gain @ A_full @ prior
        post = 0.5 * (post + post.T)
        WA[j] = W_inv @ A[j].T
        Sigma[j] = post[np.ix_(shared, shared)]
        PC[j] = post[:8, shared]
        # a child's share moves by Sigma_k (-A_k' nu + L_k xi): post[child, shared] = Sigma_k L_k
        pull = Ninv[j] @ (A[j][:, shared] / wv[shared])  # N^-1 A Sigma0 on the shared (own) variables
        for i, k in enumerate(kids):
            L[k - n_top] = -child_coefficients(rows, i).T @ pull
    bounds = np.searchsorted(depth, np.arange(1, int(depth.max()) + 2))
    levels = tuple(slice(int(a), int(c)) for a, c in zip(bounds[:-1], bounds[1:], strict=True))
    to_parent = tuple(_to_parent(parent, levels[d - 1], levels[d]) if d < len(levels) else np.zeros((0, 0))
                      for d in range(1, len(levels) + 1))
    return SweepLayout(
        n=n, m=m, arrays=arr, weights=weights, copy_weight=np.repeat(wv, n), order=order, levels=levels,
        to_parent=to_parent, slot=slot, link_child=order[n_top:], link_parent=order[parent[n_top:]],
        A=A, b=b, Ninv=Ninv, WA=WA, Sigma=Sigma, PC=PC, L=L,
        bounds=own_bounds(instance), scale=objective_scale(arr))


def _to_parent(parent: np.ndarray, here: slice, below: slice) -> np.ndarray:
    """0/1 matrix picking, for each link into depth ``below``, its parent among the agents at ``here``."""
    out = np.zeros((below.stop - below.start, here.stop - here.start))
    kids = np.arange(below.start, below.stop)
    out[kids - below.start, parent[kids] - here.start] = 1.0
    return out
