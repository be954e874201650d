"""Warm start: a clearing whose agents remember how the last one ended.

Between consecutive quarter hours the feeder is the same and the prices on it (the scaled duals of the
network copies) move little, while the ADMM on the one-hop splitting takes hundreds of iterations to spread
them across a deep feeder from scratch. An agent that keeps its copies and their duals from the last
clearing starts close to the new fixed point (case85, local splitting, 10:15-11:45: 35% fewer iterations).
What changed is restarted: a trade pair that did not exist before starts at the mid utility price as in a
cold start; a pair that persists keeps its copies and price.
"""

from __future__ import annotations

import numpy as np

from market.admm.splittings import Splitting
from market.admm.states import AgentStates


def carry_over(split: Splitting, rho: float, previous_split: Splitting, previous: AgentStates,
               previous_rho: float) -> AgentStates:
    """Initial states of ``split`` from the final ``previous`` states of ``previous_split`` (same feeder and
    splitting), which ended with penalty ``previous_rho``. A scaled dual is ``price / (rho * weight *
    scale)``: prices are kept, so duals are rescaled by the change of ``rho``, of the objective scale and,
    for trades, of the pair weights."""
    s = split.initial_states(rho)
    net = len(s.y) - 2 * split.m
    if (split.name, split.n, net) != (previous_split.name, previous_split.n, len(previous.y) - 2 * previous_split.m):
        raise ValueError("warm start: the previous clearing was on another feeder or splitting")
    ratio = previous_rho * previous_split.layout.scale / (rho * split.layout.scale)
    s.y[:net] = previous.y[:net]
    s.u[:net] = previous.u[:net] * ratio
    before = {(b, sl): k for k, (b, sl) in enumerate(zip(previous_split.arrays.trade_buyer,
                                                          previous_split.arrays.trade_seller, strict=True))}
    now = [before.get(key, -1) for key in zip(split.arrays.trade_buyer, split.arrays.trade_seller, strict=True)]
    kept = np.flatnonzero(np.array(now, dtype=int) >= 0) if split.m else np.zeros(0, dtype=int)
    old = np.array(now, dtype=int)[kept]
    for side, old_side, weight, old_weight in ((split.pair_b, previous_split.pair_b, split.pair_weight[0],
                                                previous_split.pair_weight[0]),
                                               (split.pair_s, previous_split.pair_s, split.pair_weight[1],
                                                previous_split.pair_weight[1])):
        s.y[side.start + kept] = previous.y[old_side.start + old]
        s.u[side.start + kept] = previous.u[old_side.start + old] * ratio * old_weight[old] / weight[kept]
    return s
