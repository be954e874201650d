"""P2P trading pieces: energy balance (1n)-(1o), reactive model and the welfare objective (1a).

Everything is in per unit of the feeder's base power; :class:`MarketArrays` turns an instance's kW and
cent/kWh figures into p.u. coefficients once (``kappa`` = kWh per p.u.-interval), so the cost of an agent is
the same number whether evaluated here, in the cvxpy model or in a closed-form ADMM update.

Storage (``s``: each agent's battery output, discharge minus charge, p.u.; zero without a unit) sits behind the
meter: the bus injection ``p`` is what the agent trades, and its own consumption (buyers) or generation
(sellers) is ``p - s``, what its cost is in. The agent keeps its role in the interval: a buyer's battery
serves its own load and may charge from the grid but never exports (``-p >= 0``), a seller's battery charges
from its own surplus and may sell more (``p >= 0``). Batteries convert at unity power factor: a buyer's
curtailment keeps its load's power factor on ``p - s``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from market.instance import MarketInstance


@dataclass(frozen=True, eq=False)
class MarketArrays:
    """An instance as p.u. arrays over agents (position ``j - 1`` for bus ``j``) and trades."""

    buyer: np.ndarray
    seller: np.ndarray
    passive: np.ndarray
    sign: np.ndarray  # -1 buyer, +1 seller, 0 passive: e = sign * p is what the agent's cost is in
    p_hat: np.ndarray
    q_hat: np.ndarray
    q_slope: np.ndarray  # dq/dp: tan(phi) for buyers, 0 otherwise
    quad: np.ndarray  # cent per p.u.^2: buyers a + c, sellers a (times kappa^2)
    lin: np.ndarray  # cent per p.u. on e (buyers) or s (sellers)
    const: np.ndarray  # cent: buyers' c * E_hat^2
    trade_buyer: np.ndarray  # agent position of each trade's buyer
    trade_seller: np.ndarray
    trade_lin: np.ndarray  # fee, cent per p.u.
    trade_quad: float
    uc_price: np.ndarray  # cent per p.u. of t0: retail for buyers, -feed-in for sellers
    loss_weight: np.ndarray  # cent per p.u. of l: loss price * (r + mu x)
    buy_matrix: sp.csr_matrix  # (n, m): 1 where the trade's buyer is the agent
    sell_matrix: sp.csr_matrix
    e_max: np.ndarray  # bound on e = -p (buyers) or s = p (sellers)


def market_arrays(instance: MarketInstance) -> MarketArrays:
    f, o = instance.feeder, instance.options
    kappa = instance.kwh_per_pu
    to_pu = 1e-3 / f.base_mva
    agents = instance.agents
    n, m = len(agents), len(instance.trades)
    buyer = instance.role_mask("buyer")
    seller = instance.role_mask("seller")
    p_hat = np.array([a.p_hat_kw for a in agents]) * to_pu
    e_hat = np.where(buyer, -p_hat, 0.0) * kappa  # kWh of desired purchase
    a = np.array([a.a for a in agents])
    b = np.array([a.b for a in agents])
    c = np.array([a.c for a in agents])
    quad = np.where(buyer, (a + c), np.where(seller, a, 0.0)) * kappa**2
    lin = np.where(buyer, -b - 2 * c * e_hat, np.where(seller, b, 0.0)) * kappa
    tb = np.array([t.buyer - 1 for t in instance.trades], dtype=int)
    ts = np.array([t.seller - 1 for t in instance.trades], dtype=int)
    cols = np.arange(m)
    lines = np.arange(1, f.n_buses)
    return MarketArrays(
        buyer=buyer,
        seller=seller,
        passive=~(buyer | seller),
        sign=np.where(buyer, -1.0, np.where(seller, 1.0, 0.0)),
        p_hat=p_hat,
        q_hat=np.array([a.q_hat_kvar for a in agents]) * to_pu,
        q_slope=np.where(buyer, [a.tan_phi for a in agents], 0.0),
        quad=quad,
        lin=lin,
        const=np.where(buyer, c * e_hat**2, 0.0),
        trade_buyer=tb,
        trade_seller=ts,
        trade_lin=np.array([t.fee for t in instance.trades]) * kappa,
        trade_quad=o.trade_a * kappa**2,
        uc_price=np.where(buyer, instance.retail_price, np.where(seller, -o.feed_in_price, 0.0)) * kappa,
        loss_weight=o.loss_price * kappa * _loss_impedance(f.r_pu[lines], f.x_pu[lines], o.reactive_loss_weight),
        buy_matrix=sp.csr_matrix((np.ones(m), (tb, cols)), shape=(n, m)),
        sell_matrix=sp.csr_matrix((np.ones(m), (ts, cols)), shape=(n, m)),
        e_max=np.abs(p_hat),
    )


#: Lines priced below this share of the feeder's median impedance get that floor instead: on near-zero
#: impedance lines (switches modelled as lines) an unpriced ``l`` would leave the relaxation loose.
LOSS_IMPEDANCE_FLOOR = 0.1


def _loss_impedance(r: np.ndarray, x: np.ndarray, mu: float) -> np.ndarray:
    """``r + mu x`` per line, floored at ``LOSS_IMPEDANCE_FLOOR x median(r + mu x)``."""
    weight = r + mu * x
    return np.maximum(weight, LOSS_IMPEDANCE_FLOOR * np.median(weight))


def traded_energy(arr: MarketArrays, p):
    """``e`` for buyers, ``s`` for sellers, 0 for passive agents: the quantity each agent's cost is in."""
    return cp.multiply(arr.sign, p) if isinstance(p, cp.Expression) else arr.sign * p


def constraint_energy_balance(arr: MarketArrays, p, q, t, t0, s=None) -> list[cp.Constraint]:
    """(1n)-(1o) with utility trades ``t0``, bounds on curtailment and the reactive model; with storage output
    ``s`` the bounds and the reactive model act on the agent's own quantity ``p - s`` and the role on ``p``."""
    own = p if s is None else p - s
    cons = [
        p == arr.sell_matrix @ t - arr.buy_matrix @ t + cp.multiply(arr.sign, t0),
        q == arr.q_hat + cp.multiply(arr.q_slope, own - arr.p_hat),
        traded_energy(arr, own) >= 0,
        traded_energy(arr, own) <= arr.e_max,
        t >= 0,
        t0 >= 0,
    ]
    if s is not None:
        cons.append(traded_energy(arr, p) >= 0)
    if arr.passive.any():
        cons.append(t0[np.flatnonzero(arr.passive)] == 0)
        if s is not None:  # a passive agent has neither surplus nor demand: its battery idles
            cons.append(own[np.flatnonzero(arr.passive)] == 0)
    return cons


def welfare_cost(arr: MarketArrays, p, t, t0, l, s=None):
    """Objective (1a) in cent: prosumer costs, trading fees, utility trades and priced losses; with storage
    output ``s`` the prosumer costs are in the own quantity ``p - s``.

    Works on cvxpy expressions (for the SOCP) and on numpy arrays (to evaluate any iterate).
    """
    e = traded_energy(arr, p if s is None else p - s)
    if isinstance(p, cp.Expression):
        cost = (cp.sum(cp.multiply(arr.quad, cp.square(e))) + arr.lin @ e + arr.const.sum()
                + arr.uc_price @ t0 + arr.loss_weight @ l)
        if t.size:  # cvxpy cannot take sum_squares of an empty vector (no sellers, e.g. at night)
            cost += arr.trade_lin @ t + arr.trade_quad * cp.sum_squares(t)
        return cost
    return float(arr.quad @ e**2 + arr.lin @ e + arr.const.sum() + arr.trade_lin @ t
                 + arr.trade_quad * (t @ t) + arr.uc_price @ t0 + arr.loss_weight @ l)
