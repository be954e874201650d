"""The local splitting: the agents' ADMM steps and messages in the paper's one-hop pattern (eqs. 6a-6c).

Every agent projects onto its own DistFlow group with copies of its neighbours' values, so each half-step is
one exchange with the neighbours (the sweep splitting, :mod:`market.admm.sweep`, projects the whole feeder
in ``2 x (depth - 1)`` hops instead). One iteration:

1. *local update (6a)*: every agent minimises its cost plus the penalty towards the targets it holds or has
   received (``flow_target`` from its parent, ``voltage_target`` from its children) over its local set --
   closed form (:mod:`market.admm.prox`);
2. *x-phase messages*: a child sends its flows ``P, Q`` to its parent (``flow``), a parent its voltage to
   its children (``voltage``), buyer and seller exchange their side of each trade (``trade``);
3. *group update (6b) and dual update (6c)*: every agent projects onto its affine group using its own values
   and its inbox; buyer and seller each average the two sides of a trade;
4. *y-phase messages*: the targets for the next local update (``flow_target``, ``voltage_target``).

State is held as arrays over agents, but every step reads only the agent's own rows and its
:class:`~market.messages.Inbox`: what the transport delivered, never the senders' arrays.
"""

from __future__ import annotations

from collections.abc import Generator

import numpy as np

from market.admm.agent_step import initial_own_values, own_update
from market.admm.battery import BatteryAgents, battery_agents, owner_mask
from market.admm.layout import OWN, AdmmLayout, Weights, build_layout
from market.admm.pairs import PairExchange, PlainPairs, initial_pair_duals
from market.admm.states import LOCAL, X_PHASE, Y_PHASE, AgentStates, Exchange, agent_solution, relaxed_update
from market.instance import MarketInstance
from market.messages import Inbox, MessageBatch
from market.problem.storage import BatteryStep

#: message kind -> (phase, fields)
KINDS = {
    "flow": (X_PHASE, ("P", "Q")),
    "voltage": (X_PHASE, ("v",)),
    "trade_to_seller": (X_PHASE, ("t",)),
    "trade_to_buyer": (X_PHASE, ("t",)),
    "flow_target": (Y_PHASE, ("P", "Q")),
    "voltage_target": (Y_PHASE, ("v",)),
}


def initial_states(layout: AdmmLayout, rho: float, weight: tuple[np.ndarray, np.ndarray]) -> AgentStates:
    """Start where a prosumer stands before the market: at its desired injection, settled with the utility.

    Voltages are flat, flows and trades zero, copies equal to the values they copy. The reciprocity duals
    start at the mid utility price (:func:`market.admm.pairs.initial_pair_duals`).
    """
    m, arr = layout.m, layout.arrays
    x = initial_own_values(arr, OWN)
    y = np.zeros(layout.size + 2 * m)
    y[layout.segment["v"]] = y[layout.segment["w"]] = y[layout.segment["vp"]] = 1.0
    y[layout.segment["p"]], y[layout.segment["q"]] = arr.p_hat, arr.q_hat
    u = np.zeros_like(y)
    if m:
        u[layout.pair_b], u[layout.pair_s] = initial_pair_duals(arr, layout.scale, rho, *weight)
    return AgentStates(x, y, u)


def new_inbox(layout: AdmmLayout) -> Inbox:
    nc, m = len(layout.link_child), layout.m
    sizes = {"flow": nc, "voltage": nc, "trade_to_seller": m, "trade_to_buyer": m, "flow_target": nc,
             "voltage_target": nc}
    return Inbox({kind: (sizes[kind], KINDS[kind][1]) for kind in KINDS})


def local_update(lay: AdmmLayout, s: AgentStates, inbox: Inbox, rho: float,
                 weight: tuple[np.ndarray, np.ndarray], battery: BatteryAgents | None = None) -> None:
    """(6a): each agent's closed-form minimisation of cost + penalty over its local set."""
    tgt_all = s.y - s.u
    tgt = tgt_all[lay.bus]
    seg = lay.segment
    # targets: mean over the copies of each variable (own copy + copies received from neighbours)
    own = {name: tgt[seg[name]] for name in OWN}
    P_bar, Q_bar = own["P"].copy(), own["Q"].copy()
    child = lay.link_child
    P_bar[child] = 0.5 * (P_bar[child] + inbox["flow_target", "P"])
    Q_bar[child] = 0.5 * (Q_bar[child] + inbox["flow_target", "Q"])
    v_sum = own["v"] + np.bincount(lay.link_parent, inbox["voltage_target", "v"], minlength=lay.n)
    own |= {"P": P_bar, "Q": Q_bar, "v": v_sum / (1 + lay.n_children)}
    t_target = np.concatenate([tgt_all[lay.pair_b], tgt_all[lay.pair_s]])
    s.x = own_update(lay.arrays, lay.scale, lay.weights, rho, lay.bounds, own, weight, t_target, battery)


def channel_receivers(lay: AdmmLayout) -> dict[str, np.ndarray]:
    """Receiving agent (bus number) of every channel of every message kind, the local report included."""
    child, parent = lay.link_child + 1, lay.link_parent + 1
    buyer, seller = lay.arrays.trade_buyer + 1, lay.arrays.trade_seller + 1
    return {LOCAL: np.arange(lay.n) + 1, "flow": parent, "voltage": child, "trade_to_seller": seller,
            "trade_to_buyer": buyer, "flow_target": child, "voltage_target": parent}


def x_phase_messages(lay: AdmmLayout, s: AgentStates, k: int, alpha: float, pairs: PairExchange
                     ) -> list[MessageBatch]:
    """What the agents send after their local update."""
    child, parent = lay.link_child, lay.link_parent
    links = np.arange(len(child))
    return [
        MessageBatch("flow", X_PHASE, k, child + 1, parent + 1, links,
                     {"P": s.x["P"][child], "Q": s.x["Q"][child]}),
        MessageBatch("voltage", X_PHASE, k, parent + 1, child + 1, links, {"v": s.x["v"][parent]}),
        *pairs.messages(lay.arrays, s, lay.pair_b, lay.pair_s, k, alpha),
    ]


def group_update(lay: AdmmLayout, s: AgentStates, inbox: Inbox, alpha: float,
                 weight: tuple[np.ndarray, np.ndarray], pairs: PairExchange, k: int, exchange: Exchange) -> Generator:
    """(6b) projection onto each agent's affine group and the trade pairs, then (6c) the dual update: a
    generator that sends nothing of its own (every group uses what its agent holds; a pair exchange may) and
    returns, per copy, the primal residual ``x - y`` and the change of ``y`` (for the dual residual)."""
    x = s.x
    x_copy = np.concatenate([x[name] for name in OWN] + [
        inbox["flow", "P"], inbox["flow", "Q"], inbox["voltage", "v"], x["tb"], x["ts"]])

    def project(z: np.ndarray) -> Generator:
        y = np.empty_like(z)
        y[lay.bus] = lay.project(z[lay.bus])
        yield from pairs.project(y, z, s.u, inbox, (lay.pair_b, lay.pair_s), weight, k, exchange)
        return y

    return (yield from relaxed_update(s, x_copy, alpha, project))


def y_phase_messages(lay: AdmmLayout, s: AgentStates, k: int) -> list[MessageBatch]:
    """Targets for the neighbours' next local update: held copy minus its scaled dual."""
    tgt = (s.y - s.u)[lay.bus]
    child, parent = lay.link_child, lay.link_parent
    links = np.arange(len(child))
    return [
        MessageBatch("flow_target", Y_PHASE, k, parent + 1, child + 1, links,
                     {"P": lay.seg(tgt, "Pc"), "Q": lay.seg(tgt, "Qc")}),
        MessageBatch("voltage_target", Y_PHASE, k, child + 1, parent + 1, links, {"v": lay.seg(tgt, "vp")}),
    ]


class LocalSplitting:
    """The paper's one-hop pattern: per-agent groups with copies of the neighbours' values (:mod:`layout`)."""

    name = "local"
    pair_rule = "geometric"
    kinds = KINDS
    flow_kind, voltage_kind = "flow", "voltage"  # child -> parent flows, parent -> child voltage

    def __init__(self, instance: MarketInstance, weights: Weights, pairs: PairExchange | None = None,
                 battery: BatteryStep | None = None) -> None:
        owners = None if battery is None else owner_mask(len(instance.agents), battery)
        self.layout = lay = build_layout(instance, weights, owners)
        self.battery = None if battery is None else battery_agents(lay.arrays, battery, lay.scale)
        self.n, self.m, self.arrays = lay.n, lay.m, lay.arrays
        self.pairs = pairs or PlainPairs()
        self.pair_weight = self.pairs.weights(lay.arrays, weights.trade, self.pair_rule)
        self.pair_b, self.pair_s = lay.pair_b, lay.pair_s
        self.copy_weight = lay.copy_weight
        # the agent holding each copy: own variables, children's flows at the parent, parent's v at the child
        self.copy_holder = np.concatenate([np.tile(np.arange(lay.n), len(OWN)), lay.link_parent, lay.link_parent,
                                           lay.link_child, lay.arrays.trade_buyer, lay.arrays.trade_seller])
        self.root = ~lay.has_parent

    def channel_receivers(self) -> dict[str, np.ndarray]:
        return channel_receivers(self.layout)

    def new_inbox(self) -> Inbox:
        return new_inbox(self.layout)

    def initial_states(self, rho: float) -> AgentStates:
        return initial_states(self.layout, rho, self.pair_weight)

    def opening_messages(self, s: AgentStates) -> list[MessageBatch]:
        return y_phase_messages(self.layout, s, 0)

    def local_update(self, s: AgentStates, inbox: Inbox, rho: float) -> None:
        local_update(self.layout, s, inbox, rho, self.pair_weight, self.battery)

    def x_phase_messages(self, s: AgentStates, k: int, alpha: float) -> list[MessageBatch]:
        return x_phase_messages(self.layout, s, k, alpha, self.pairs)

    def group_update(self, s: AgentStates, inbox: Inbox, alpha: float, k: int, exchange: Exchange) -> Generator:
        return group_update(self.layout, s, inbox, alpha, self.pair_weight, self.pairs, k, exchange)

    def y_phase_messages(self, s: AgentStates, k: int) -> list[MessageBatch]:
        return y_phase_messages(self.layout, s, k)

    def solution(self, s: AgentStates) -> dict[str, np.ndarray]:
        return agent_solution(s.x)
