"""The sweep splitting: the agents' ADMM steps when the y-update projects the whole feeder at once.

One iteration (the static elimination data is in :mod:`market.admm.sweep_layout`):

1. *local update (6a)*: every agent minimises its cost plus the penalty towards its own copies only;
2. *x-phase messages*: buyer and seller exchange their side of each trade;
3. *y-update (6b)*: the upward sweep (``subtree``: the parent voltage and line flows the sender's subtree
   would like), the substation's children pick their flows, the downward sweep (``price``: the price the
   sender puts on the receiver's parent voltage and line flows); buyer and seller average their trade;
   (6c) duals.

Every agent reads only its own arrays' rows and what its inbox received; a lost sweep message leaves the
receiver the value from the last iteration. The sweep takes ``2 x (depth - 1)`` hops per iteration, which
the timing transport sees as that many rounds (:attr:`~market.messages.MessageBatch.stage`).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from market.admm.agent_step import initial_own_values, own_update
from market.admm.battery import battery_agents, owner_mask
from market.admm.feeder_projection import FeederProjection
from market.admm.layout import Weights
from market.admm.pairs import PairExchange, PlainPairs, initial_pair_duals
from market.admm.states import X_PHASE, Y_PHASE, AgentStates, Exchange, agent_solution, relaxed_update
from market.admm.sweep_layout import E1, E2, OWN_ROWS, SHARED, VARIABLES, build_sweep_layout
from market.instance import MarketInstance
from market.messages import Inbox, MessageBatch
from market.problem.storage import BatteryStep

SUBTREE, PRICE = "subtree", "price"
SWEEP_FIELDS = ("v", "P", "Q")
KINDS = {
    "trade_to_seller": (X_PHASE, ("t",)),
    "trade_to_buyer": (X_PHASE, ("t",)),
    SUBTREE: (Y_PHASE, SWEEP_FIELDS),
    PRICE: (Y_PHASE, SWEEP_FIELDS),
}


class SubtreeSums(Protocol):
    """How the children's subtree flows reach their parent, which needs only their sum: in the clear
    (:class:`PlainSums`), or as additive shares of it (the cyber layer's :mod:`cyber.privacy.sums`)."""

    def hide(self, k: int, child_bus: np.ndarray, flows: np.ndarray) -> np.ndarray: ...

    def total(self, to_parent: np.ndarray, received: np.ndarray) -> np.ndarray: ...


class PlainSums:
    """Each child sends its flows ``(P, Q)`` as they are; the parent adds them up."""

    def hide(self, k: int, child_bus: np.ndarray, flows: np.ndarray) -> np.ndarray:
        return flows

    def total(self, to_parent: np.ndarray, received: np.ndarray) -> np.ndarray:
        return to_parent.T @ received


class SweepSplitting:
    """Single copies, exact feeder-wide projection by a leaf-to-root and a root-to-leaf sweep."""

    name = "sweep"
    pair_rule = "shared"
    kinds = KINDS

    def __init__(self, instance: MarketInstance, weights: Weights, pairs: PairExchange | None = None,
                 battery: BatteryStep | None = None, direct: bool = False) -> None:
        """``direct``: the hops' result computed as one sparse projection (:mod:`.feeder_projection`) where no
        message can be lost, changed or observed (the driver's ideal transport) and the sums are plain."""
        owners = None if battery is None else owner_mask(len(instance.agents), battery)
        self.layout = lay = build_sweep_layout(instance, weights, owners)
        self.n, self.m, self.arrays, self.weights, self.scale = lay.n, lay.m, lay.arrays, weights, lay.scale
        self.battery = None if battery is None else battery_agents(lay.arrays, battery, lay.scale)
        self.pairs = pairs or PlainPairs()
        # a private pair exchange may bring the subtree flows' exchange along (cyber.privacy's hybrid mode)
        self.sums: SubtreeSums = getattr(pairs, "subtree_sums", None) or PlainSums()
        self.direct = FeederProjection(lay) if direct and isinstance(self.sums, PlainSums) else None
        self.pair_weight = self.pairs.weights(lay.arrays, weights.trade, self.pair_rule)
        size = len(VARIABLES) * self.n
        self.pair_b, self.pair_s = slice(size, size + self.m), slice(size + self.m, size + 2 * self.m)
        self.copy_weight = np.concatenate([lay.copy_weight, np.full(2 * self.m, weights.trade)])
        self.copy_holder = np.concatenate([np.tile(np.arange(self.n), len(VARIABLES)), lay.arrays.trade_buyer,
                                           lay.arrays.trade_seller])  # the agent holding each copy
        self.root = np.zeros(self.n, dtype=bool)
        self.root[lay.order[:lay.n_top]] = True
        # _hops[d]: the links into depth d + 1 (index 0 unused: nothing links into the top)
        self._hops = [None] + [self._hop(lay.levels[d - 1], below, d) for d, below in
                               enumerate(lay.levels[1:], start=1)]

    def channel_receivers(self) -> dict[str, np.ndarray]:
        """Receiving agent (bus number) of every channel of every message kind, the local report included."""
        lay, arr = self.layout, self.arrays
        return {"local": np.arange(self.n) + 1, "trade_to_seller": arr.trade_seller + 1,
                "trade_to_buyer": arr.trade_buyer + 1, SUBTREE: lay.link_parent + 1, PRICE: lay.link_child + 1}

    def new_inbox(self) -> Inbox:
        e = len(self.layout.link_child)
        return Inbox({kind: ({SUBTREE: e, PRICE: e}.get(kind, self.m), names)
                      for kind, (_, names) in KINDS.items()} | self.pairs.inbox_kinds())

    def initial_states(self, rho: float) -> AgentStates:
        """At the desired injection, settled with the utility; flat voltages, no flows, no trades."""
        m, arr = self.m, self.arrays
        x = initial_own_values(arr, VARIABLES)
        y = np.concatenate([x[name] for name in VARIABLES] + [np.zeros(2 * m)])
        u = np.zeros_like(y)
        if m:
            u[self.pair_b], u[self.pair_s] = initial_pair_duals(arr, self.scale, rho, *self.pair_weight)
        return AgentStates(x, y, u)

    def opening_messages(self, s: AgentStates) -> list[MessageBatch]:
        """Before the first iteration every link carries the starting copies up and no price down, so a
        message lost later leaves its receiver a sensible stale value."""
        lay = self.layout
        child, parent = lay.link_child, lay.link_parent
        flows = self.sums.hide(0, child + 1, np.column_stack([self._own(s.y, "P")[child], self._own(s.y, "Q")[child]]))
        start = {"v": self._own(s.y, "w")[child], "P": flows[:, 0], "Q": flows[:, 1]}
        links = np.arange(len(child))
        return [*self.pairs.opening_messages(), MessageBatch(SUBTREE, Y_PHASE, 0, child + 1, parent + 1, links, start),
                MessageBatch(PRICE, Y_PHASE, 0, parent + 1, child + 1, links,
                             {f: np.zeros(len(child)) for f in SWEEP_FIELDS})]

    def local_update(self, s: AgentStates, inbox: Inbox, rho: float) -> None:
        """(6a) over every agent's own copies."""
        lay = self.layout
        target = s.y - s.u
        own = {name: self._own(target, name) for name in VARIABLES}
        t_target = np.concatenate([target[self.pair_b], target[self.pair_s]])
        s.x = own_update(self.arrays, self.scale, self.weights, rho, lay.bounds, own,
                         self.pair_weight, t_target, self.battery)

    def x_phase_messages(self, s: AgentStates, k: int, alpha: float) -> list[MessageBatch]:
        return self.pairs.messages(self.arrays, s, self.pair_b, self.pair_s, k, alpha)

    def group_update(self, s: AgentStates, inbox: Inbox, alpha: float, k: int, exchange: Exchange) -> Generator:
        """(6b) the sweep (its hops through ``exchange``) and the pair averages, (6c) the duals; returns
        ``x - y`` and the change of ``y``."""
        x = s.x
        net = slice(0, len(VARIABLES) * self.n)

        def project(z: np.ndarray) -> Generator:
            y = np.empty_like(z)
            if self.direct is not None:
                y[net] = self.direct(z[net])
            else:
                y[net] = yield from self._sweep(z[net], inbox, k, exchange)
            yield from self.pairs.project(y, z, s.u, inbox, (self.pair_b, self.pair_s), self.pair_weight, k, exchange)
            return y

        x_copy = np.concatenate([x[name] for name in VARIABLES] + [x["tb"], x["ts"]])
        return (yield from relaxed_update(s, x_copy, alpha, project))

    def y_phase_messages(self, s: AgentStates, k: int) -> list[MessageBatch]:
        return []  # the sweep already told every agent what it needs

    def _hop(self, here: slice, below: slice, d: int) -> _Hop:
        lay = self.layout
        links = slice(below.start - lay.n_top, below.stop - lay.n_top)
        to_parent = lay.to_parent[d - 1]
        return _Hop(links, lay.link_child[links] + 1, lay.link_parent[links] + 1,
                    here.start + to_parent.argmax(axis=1), lay.slot[links], np.arange(links.stop - links.start),
                    to_parent, np.arange(links.start, links.stop))

    def _own(self, vec: np.ndarray, name: str) -> np.ndarray:
        return self.layout.block(vec, name)

    def _sweep(self, z: np.ndarray, inbox: Inbox, k: int, exchange: Exchange) -> Generator:
        """The exact projection of ``z`` (variable-major, ``8 n``) onto the feeder's equalities.

        Works in sweep order (:class:`~market.admm.sweep_layout.SweepLayout`): depth ``d`` is a slice of
        agents, and the links into it are the matching slice of channels shifted by ``n_top``.
        """
        lay, hops = self.layout, self._hops
        n, top = lay.n, lay.n_top
        Z = z.reshape(len(VARIABLES), n).T[lay.order]
        res = _mv(lay.A, Z) - lay.b  # every agent's equality residual at its own targets; children added below
        nu, m_own = np.zeros((n, lay.rows)), np.zeros((n, len(VARIABLES)))
        heard = np.zeros((n - top, 3))  # what each parent received from each child this sweep
        depth = len(lay.levels)
        for d in range(depth, 0, -1):  # upward: deepest agents first
            here = lay.levels[d - 1]
            if d < depth:
                hop = hops[d]
                heard[hop.links] = inbox.table(SUBTREE)[hop.links]
                flows = self.sums.total(hop.to_parent, heard[hop.links, 1:])
                res[here, E1:E2 + 1] -= flows
                res[hop.parent, OWN_ROWS + hop.slot] += heard[hop.links, 0]
            nu[here] = _mv(lay.Ninv[here], res[here])
            m_own[here] = Z[here] - _mv(lay.WA[here], nu[here])
            if d > 1:
                up = m_own[here][:, SHARED]
                up[:, 1:] = self.sums.hide(k, hops[d - 1].child_bus, up[:, 1:])
                yield from exchange([hops[d - 1].batch(SUBTREE, k, up, depth - d)])
        xi = np.zeros((n, 3))  # each agent's price on its shared values: s = s_hat + Sigma xi
        xi[:top, 0] = (1.0 - m_own[:top, SHARED[0]]) / lay.Sigma[:top, 0, 0]  # v_parent = 1, flows free
        for d in range(1, depth + 1):  # downward
            here = lay.levels[d - 1]
            if d > 1:
                xi[here] = inbox.table(PRICE)[hops[d - 1].links]
            if d < depth:
                hop = hops[d]
                nu_p = nu[hop.parent]
                own = np.column_stack([-nu_p[hop.rows, OWN_ROWS + hop.slot], nu_p[:, E1], nu_p[:, E2]])
                yield from exchange([hop.batch(PRICE, k, own + _mv(lay.L[hop.links], xi[hop.parent]),
                                               depth - 2 + d)])
        y = np.empty((n, len(VARIABLES)))
        y[lay.order] = m_own + _mv(lay.PC, xi)
        return y.T.ravel()

    def solution(self, s: AgentStates) -> dict[str, np.ndarray]:
        return agent_solution(s.x)


def _mv(A: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Row-wise matrix-vector products of a stack of small matrices."""
    return (A @ x[..., None])[..., 0]


@dataclass(frozen=True)
class _Hop:
    """The links into one depth: their channels, ends and where they enter their parents' equalities."""

    links: slice
    child_bus: np.ndarray
    parent_bus: np.ndarray
    parent: np.ndarray  # sweep position of each link's parent
    slot: np.ndarray  # the link's ``v_child = v`` row at its parent
    rows: np.ndarray  # 0 .. links - 1 (to pick each link's own row)
    to_parent: np.ndarray  # (links, agents one depth up): 1 at each link's parent
    channels: np.ndarray  # the links' numbers

    def batch(self, kind: str, k: int, values: np.ndarray, stage: int) -> MessageBatch:
        up = kind == SUBTREE
        sender, receiver = (self.child_bus, self.parent_bus) if up else (self.parent_bus, self.child_bus)
        return MessageBatch(kind, Y_PHASE, k, sender, receiver, self.channels,
                            {f: values[:, i] for i, f in enumerate(SWEEP_FIELDS)}, stage)
