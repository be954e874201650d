"""The agents' ADMM steps and the messages between them (paper eqs. 6a-6c, 19; Algorithm 1 without attacks).

One iteration:

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

from dataclasses import dataclass

import numpy as np

from market.admm.layout import OWN, AdmmLayout
from market.admm.prox import project_scaled_branch_cone, prox_energy_balance
from market.messages import Inbox, MessageBatch

X_PHASE, Y_PHASE = "x", "y"
#: message kind -> (phase, fields)
KINDS = {
    "flow": (X_PHASE, ("P", "Q")),
    "voltage": (X_PHASE, ("v",)),
    "trade_to_seller": (X_PHASE, ("t",)),
    "trade_to_buyer": (X_PHASE, ("t",)),
    "flow_target": (Y_PHASE, ("P", "Q")),
    "voltage_target": (Y_PHASE, ("v",)),
}
#: An agent's report of its own current values to its own detector (sender = receiver): never on the network.
LOCAL = "local"
LOCAL_FIELDS = ("p", "q", "P", "Q", "l", "v", "w")


@dataclass
class AgentStates:
    """Own variables (``x``), held copies (``y``) and their scaled duals (``u``) of all agents.

    ``y`` and ``u`` are laid out as the bus-group copies (``layout.size``), then the buyer's and the
    seller's copy of each trade in its reciprocity pair (``m`` each).
    """

    x: dict[str, np.ndarray]
    y: np.ndarray
    u: np.ndarray


def initial_states(layout: AdmmLayout, rho: float = 1.0) -> AgentStates:
    """Start where a prosumer stands before the market: at its desired injection, settled with the utility.

    Voltages are flat, flows and trades zero, copies equal to the values they copy. The reciprocity duals
    start at the price halfway between the utility's retail and feed-in prices: the P2P price lies between
    them, and starting there spares the slow walk of the duals from zero.
    """
    n, m = layout.n, layout.m
    x = {name: np.zeros(n) for name in OWN} | {"t0": np.zeros(n), "tb": np.zeros(m), "ts": np.zeros(m)}
    arr = layout.arrays
    x["v"][:] = 1.0
    x["w"][:] = 1.0
    x["p"][:], x["q"][:], x["t0"][:] = arr.p_hat, arr.q_hat, np.abs(arr.p_hat)
    y = np.zeros(layout.size + 2 * m)
    y[layout.segment["v"]] = y[layout.segment["w"]] = y[layout.segment["vp"]] = 1.0
    y[layout.segment["p"]], y[layout.segment["q"]] = arr.p_hat, arr.q_hat
    u = np.zeros_like(y)
    if m:
        mid = 0.5 * (arr.uc_price[arr.trade_buyer] - arr.uc_price[arr.trade_seller])  # (retail + feed-in) / 2
        u[layout.pair_b] = mid / (layout.scale * rho * layout.pair_weight_b)
        u[layout.pair_s] = -mid / (layout.scale * rho * layout.pair_weight_s)
    return AgentStates(x, y, u)


def new_inbox(layout: AdmmLayout) -> Inbox:
    nc, m = len(layout.link_child), layout.m
    sizes = {"flow": nc, "voltage": nc, "trade_to_seller": m, "trade_to_buyer": m, "flow_target": nc,
             "voltage_target": nc}
    return Inbox({kind: (sizes[kind], KINDS[kind][1]) for kind in KINDS})


def local_update(lay: AdmmLayout, s: AgentStates, inbox: Inbox, rho: float) -> None:
    """(6a): each agent's closed-form minimisation of cost + penalty over its local set."""
    tgt_all = s.y - s.u
    tgt = tgt_all[lay.bus]
    seg = lay.segment
    arr, scale = lay.arrays, lay.scale
    x = s.x
    # targets: mean over the copies of each variable (own copy + copies received from neighbours)
    own = {name: tgt[seg[name]] for name in OWN}
    P_bar, Q_bar = own["P"].copy(), own["Q"].copy()
    child = lay.link_child
    P_bar[child] = 0.5 * (P_bar[child] + inbox["flow_target", "P"])
    Q_bar[child] = 0.5 * (Q_bar[child] + inbox["flow_target", "Q"])
    v_sum = own["v"] + np.bincount(lay.link_parent, inbox["voltage_target", "v"], minlength=lay.n)
    v_bar = v_sum / (1 + lay.n_children)

    wl, wm = rho * lay.weights.current, rho * lay.weights.market
    wt = rho * np.concatenate([lay.pair_weight_b, lay.pair_weight_s])
    owner = np.concatenate([arr.trade_buyer, arr.trade_seller])
    half_fee = 0.5 * np.concatenate([arr.trade_lin, arr.trade_lin]) / scale
    t_target = np.concatenate([tgt_all[lay.pair_b], tgt_all[lay.pair_s]])
    x["p"], t, x["t0"] = prox_energy_balance(
        arr.sign, arr.quad / scale, arr.lin / scale, arr.uc_price / scale, wm, own["p"], arr.e_max, owner,
        half_fee, 0.5 * arr.trade_quad / scale, wt, t_target)
    x["tb"], x["ts"] = t[: lay.m], t[lay.m:]
    x["q"] = own["q"]
    x["lb"] = np.minimum(own["lb"], lay.lmax)  # l >= 0 is the cone's; a second floor here only slows the duals
    x["v"] = np.clip(v_bar, lay.vmin2, lay.vmax2)
    l_target = own["l"] - arr.loss_weight / (scale * wl)
    x["w"], x["l"], x["P"], x["Q"] = project_scaled_branch_cone(own["w"], l_target, P_bar, Q_bar,
                                                                lay.weights.voltage, lay.weights.current)


def local_report(lay: AdmmLayout, s: AgentStates, k: int) -> MessageBatch:
    """Each agent's own values after its local update, handed to its own detector (the "own shared values"
    of a detection window; the physics check needs them)."""
    buses = np.arange(lay.n)
    return MessageBatch(LOCAL, X_PHASE, k, buses + 1, buses + 1, buses, {f: s.x[f].copy() for f in LOCAL_FIELDS})


def channel_receivers(lay: AdmmLayout) -> dict[str, np.ndarray]:
    """Receiving agent (bus number) of every channel of every message kind, the local report included."""
    child, parent = lay.link_child + 1, lay.link_parent + 1
    buyer, seller = lay.arrays.trade_buyer + 1, lay.arrays.trade_seller + 1
    return {LOCAL: np.arange(lay.n) + 1, "flow": parent, "voltage": child, "trade_to_seller": seller,
            "trade_to_buyer": buyer, "flow_target": child, "voltage_target": parent}


def x_phase_messages(lay: AdmmLayout, s: AgentStates, k: int, alpha: float) -> list[MessageBatch]:
    """What the agents send after their local update."""
    child, parent = lay.link_child, lay.link_parent
    links = np.arange(len(child))
    trades = np.arange(lay.m)
    buyer, seller = lay.arrays.trade_buyer, lay.arrays.trade_seller
    zb = alpha * s.x["tb"] + (1 - alpha) * s.y[lay.pair_b] + s.u[lay.pair_b]
    zs = alpha * s.x["ts"] + (1 - alpha) * s.y[lay.pair_s] + s.u[lay.pair_s]
    return [
        MessageBatch("flow", X_PHASE, k, child + 1, parent + 1, links,
                     {"P": s.x["P"][child], "Q": s.x["Q"][child]}),
        MessageBatch("voltage", X_PHASE, k, parent + 1, child + 1, links, {"v": s.x["v"][parent]}),
        MessageBatch("trade_to_seller", X_PHASE, k, buyer + 1, seller + 1, trades, {"t": zb}),
        MessageBatch("trade_to_buyer", X_PHASE, k, seller + 1, buyer + 1, trades, {"t": zs}),
    ]


def group_update(lay: AdmmLayout, s: AgentStates, inbox: Inbox, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """(6b) projection onto each agent's affine group and the trade pairs, then (6c) the dual update.

    Returns, per copy, the primal residual ``x - y`` and the change of ``y`` (for the dual residual).
    """
    x = s.x
    x_copy = np.concatenate([x[name] for name in OWN] + [
        inbox["flow", "P"], inbox["flow", "Q"], inbox["voltage", "v"], x["tb"], x["ts"]])
    x_hat = alpha * x_copy + (1 - alpha) * s.y
    z = x_hat + s.u
    y = np.empty_like(z)
    y[lay.bus] = lay.project(z[lay.bus])
    # each side of a trade averages its own value with the one it received from the other side
    wb, ws = lay.pair_weight_b, lay.pair_weight_s  # the partners' weights are static and known to both
    y[lay.pair_b] = (wb * z[lay.pair_b] + ws * inbox["trade_to_buyer", "t"]) / (wb + ws)
    y[lay.pair_s] = (ws * z[lay.pair_s] + wb * inbox["trade_to_seller", "t"]) / (wb + ws)
    change = y - s.y
    s.y = y
    s.u = s.u + x_hat - y
    return x_copy - y, change


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


def rescale_duals(s: AgentStates, factor: float) -> None:
    """Scaled duals ``u = lambda / rho`` after ``rho`` is multiplied by ``1 / factor``."""
    s.u = s.u * factor
