"""An agent's own x-update (paper eq. 6a), the same in both splittings: closed-form steps over its local set.

Given the targets of its variables (its held copies minus their scaled duals; the local splitting first
averages in the copies its neighbours hold), agent ``j`` minimises its cost plus the weighted penalty over
its local set -- the market step (injection, trades and utility trade under its energy balance), the voltage
box, the thermal limit on ``lb`` and the branch cone on ``(w, l, P, Q)`` with the loss price on ``l``.
"""

from __future__ import annotations

import numpy as np

from market.admm.battery import BatteryAgents, battery_update
from market.admm.layout import Weights
from market.admm.prox import project_scaled_branch_cone, prox_energy_balance
from market.formulation.trading import MarketArrays


def initial_own_values(arr: MarketArrays, variables: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Where a prosumer stands before the market: at its desired injection, settled with the utility; flat
    voltages, no flows, no trades."""
    n, m = len(arr.p_hat), len(arr.trade_buyer)
    x = {name: np.zeros(n) for name in variables} | {"t0": np.abs(arr.p_hat), "tb": np.zeros(m),
                                                      "ts": np.zeros(m)}
    x["v"][:] = x["w"][:] = 1.0
    x["p"], x["q"] = arr.p_hat.copy(), arr.q_hat.copy()
    return x


def own_update(arr: MarketArrays, scale: float, weights: Weights, rho: float, bounds: tuple[np.ndarray, ...],
               target: dict[str, np.ndarray], pair_weight: tuple[np.ndarray, np.ndarray], t_target: np.ndarray,
               battery: BatteryAgents | None = None) -> dict[str, np.ndarray]:
    """The agents' x-update, vectorized. ``bounds`` = ``(vmin2, vmax2, lmax)``; ``t_target`` holds the
    buyers' then the sellers' side of every trade, penalised with ``rho`` times ``pair_weight`` (buyers',
    sellers'). With ``battery`` the owners of units take their market step with the unit
    (:mod:`market.admm.battery`)."""
    vmin2, vmax2, lmax = bounds
    m = len(pair_weight[0])
    owner = np.concatenate([arr.trade_buyer, arr.trade_seller])
    half_fee = 0.5 * np.concatenate([arr.trade_lin, arr.trade_lin]) / scale
    wt = rho * np.concatenate(pair_weight)
    sign = arr.sign if battery is None else battery.plain_sign
    p, t, t0 = prox_energy_balance(
        sign, arr.quad / scale, arr.lin / scale, arr.uc_price / scale, rho * weights.market, target["p"],
        arr.e_max, owner, half_fee, 0.5 * arr.trade_quad / scale, wt, t_target)
    l_target = target["l"] - arr.loss_weight / (scale * rho * weights.current)
    w, l, P, Q = project_scaled_branch_cone(target["w"], l_target, target["P"], target["Q"], weights.voltage,
                                            weights.current)
    x = {"p": p, "q": target["q"].copy(), "P": P, "Q": Q, "l": l,
         "lb": np.minimum(target["lb"], lmax),  # l >= 0 is the cone's; a second floor only slows the duals
         "v": np.clip(target["v"], vmin2, vmax2), "w": w, "t0": t0, "tb": t[:m], "ts": t[m:]}
    if battery is not None:
        battery_update(battery, arr, x, rho * weights.market, target, half_fee, 0.5 * arr.trade_quad / scale, wt,
                       t_target)
    return x
