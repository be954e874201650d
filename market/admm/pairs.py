"""Reciprocity pairs (1i): buyer and seller each hold a copy of their trade and agree by exchanging it.

Each side sends the other its relaxed iterate plus its scaled dual; both then take the weighted mean of the
two values as the pair's y-copy. The weights are static and known to both sides, so both compute the same
mean, and both adapt them by the same rule on the same numbers (:class:`PairBalancer`).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from market.admm.states import X_PHASE, AgentStates, Exchange, relaxed
from market.formulation.trading import MarketArrays
from market.messages import Inbox, MessageBatch

#: Bound on the per-agent trade scaling of :func:`trade_size_factor`.
MAX_SIZE_FACTOR = 100.0


def trade_size_factor(e_max: np.ndarray, trading: np.ndarray) -> np.ndarray:
    """Per-agent multiplier of its trades' penalty: ``(median size / own size)^2``, at least 1.

    A prosumer that wants to trade a tiny amount can only move each of its trades by a tiny amount per
    iteration, so with a common penalty the price it sees (the reciprocity dual) creeps towards equilibrium
    over thousands of iterations. Measuring its trades relative to its own size -- a diagonal
    preconditioner -- lets every agent's prices move at the same pace.
    """
    sizes = e_max[trading & (e_max > 0)]
    if sizes.size == 0:
        return np.ones_like(e_max)
    ratio = np.median(sizes) / np.maximum(e_max, np.median(sizes) / np.sqrt(MAX_SIZE_FACTOR))
    return np.clip(ratio**2, 1.0, MAX_SIZE_FACTOR)


PAIR_RULES = ("shared", "geometric")


def pair_weights(arr: MarketArrays, trade: float, rule: str) -> tuple[np.ndarray, np.ndarray]:
    """Weights of the buyer's and the seller's side of each trade: the family weight times one size factor for
    both sides (weighting up only the small side freezes the other side's dual), either the larger of the
    two (``shared``: a pair led by its smaller party) or their geometric mean (``geometric``).

    The sweep's pairs balance their own weights and start from ``shared``. The local splitting, which cannot
    balance them (rescaled duals make trade messages jump, and detectors flag them), takes the middle
    ``geometric``: with each side its own factor a small buyer weighted 100x pinned the pair to its value, and
    the sellers' prices crept at the pace of a 1e-6 p.u. residual (case85 at 09:15: no convergence in 10000
    iterations, 3014 with ``geometric``); ``shared`` fixes that case but slows pairs whose large side should
    lead (case15da seed 2 at noon: 1976 iterations against 798).
    """
    if rule not in PAIR_RULES:
        raise ValueError(f"pair rule must be one of {PAIR_RULES}, got {rule!r}")
    factor = trade_size_factor(arr.e_max, arr.buyer | arr.seller)
    fb, fs = factor[arr.trade_buyer], factor[arr.trade_seller]
    both = np.maximum(fb, fs) if rule == "shared" else np.sqrt(fb * fs)
    return trade * both, trade * both


def initial_pair_duals(arr: MarketArrays, scale: float, rho: float, wb: np.ndarray, ws: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Scaled duals of the buyer's and the seller's side at the price halfway between the utility's retail
    and feed-in prices: the P2P price lies between them, and starting there spares the slow walk from zero."""
    mid = 0.5 * (arr.uc_price[arr.trade_buyer] - arr.uc_price[arr.trade_seller])  # (retail + feed-in) / 2
    return mid / (scale * rho * wb), -mid / (scale * rho * ws)


def project_pairs(y: np.ndarray, z: np.ndarray, inbox: Inbox, sides: tuple[slice, slice],
                  weight: tuple[np.ndarray, np.ndarray]) -> None:
    """The pairs' y-update, into ``y``: each side takes the weighted mean of its own value and the one it
    received from the other side (the weights are static and known to both)."""
    (pb, ps), (wb, ws) = sides, weight
    y[pb] = (wb * z[pb] + ws * inbox["trade_to_buyer", "t"]) / (wb + ws)
    y[ps] = (ws * z[ps] + wb * inbox["trade_to_seller", "t"]) / (wb + ws)


def sent_value(x: np.ndarray, y: np.ndarray, u: np.ndarray, alpha: float) -> np.ndarray:
    """What one side of a trade sends the other: its relaxed iterate plus its scaled dual."""
    return relaxed(x, y, alpha) + u


@dataclass
class PairBalancer:
    """Residual balancing per trade (Boyd et al. 2011, Sec. 3.4.1, applied pair by pair).

    Every ``every`` iterations a pair whose primal residual (the two sides' disagreement with their mean)
    exceeds ``mu`` times its dual residual raises its weight by ``factor``, and one whose dual residual (how
    far the mean moved, times ``rho``) exceeds ``mu`` times its primal residual lowers it by that factor,
    within ``[low, high]`` times the starting weight. Both parties evaluate the rule on the same numbers.
    Why: the split of a buyer's purchase among its sellers is nearly a matter of indifference (only fees
    and a small quadratic tell the sellers apart), and under the penalty that price discovery needs it
    drifts for thousands of iterations; a pair that has settled its price lets its penalty drop and its
    split settles too. The dual residual is taken with the common ``rho``, not the pair's own penalty:
    Boyd's form (with ``rho * weight``) took 8% to 166% more iterations (case15da and case85, two seeds each).
    """

    m: int  # trades
    every: int = 10
    mu: float = 2.0
    factor: float = float(np.sqrt(2.0))  # 2 made a pair at a bound flip between two weights
    low: float = 0.01
    high: float = 100.0

    def __post_init__(self) -> None:
        self.scale = np.ones(self.m)  # each pair's weights relative to their start

    def update(self, k: int, rho: float, primal_b: np.ndarray, primal_s: np.ndarray, change: np.ndarray
               ) -> np.ndarray | None:
        """The factor each pair's weights are multiplied and its scaled duals divided by, or ``None``."""
        if k % self.every or not self.m:
            return None
        primal = np.hypot(primal_b, primal_s)
        dual = rho * np.sqrt(2.0) * np.abs(change)
        step = np.where(primal > self.mu * dual, self.factor, np.where(dual > self.mu * primal, 1 / self.factor, 1.0))
        new = self.scale * step
        step = np.where((new >= self.low) & (new <= self.high), step, 1.0)
        if np.all(step == 1.0):
            return None
        self.scale = self.scale * step
        return step


def trade_messages(arr: MarketArrays, s: AgentStates, pair_b: slice, pair_s: slice, k: int,
                   alpha: float) -> list[MessageBatch]:
    """Each side of a trade tells the other its relaxed iterate plus scaled dual."""
    trades = np.arange(len(arr.trade_buyer))
    buyer, seller = arr.trade_buyer + 1, arr.trade_seller + 1
    zb = sent_value(s.x["tb"], s.y[pair_b], s.u[pair_b], alpha)
    zs = sent_value(s.x["ts"], s.y[pair_s], s.u[pair_s], alpha)
    return [MessageBatch("trade_to_seller", X_PHASE, k, buyer, seller, trades, {"t": zb}),
            MessageBatch("trade_to_buyer", X_PHASE, k, seller, buyer, trades, {"t": zs})]


class PairExchange(Protocol):
    """How the two sides of every trade agree: what they send before the first iteration and after each local
    update, and how each computes its copy of the pair's y-update -- a generator, which may exchange rounds of
    its own through ``exchange`` (:data:`~market.admm.states.Exchange`). The market's own is
    :class:`PlainPairs`; the cyber layer plugs in a private one (:mod:`cyber.privacy.pairs`) the way a
    transport plugs into the other exchanges. ``failure``: why the clearing cannot go on, else ``None`` (the
    driver stops on it)."""

    failure: str | None

    def weights(self, arr: MarketArrays, trade: float, rule: str) -> tuple[np.ndarray, np.ndarray]: ...

    def inbox_kinds(self) -> dict[str, tuple[int, tuple[str, ...]]]: ...

    def opening_messages(self) -> list[MessageBatch]: ...

    def messages(self, arr: MarketArrays, s: AgentStates, pair_b: slice, pair_s: slice, k: int,
                 alpha: float) -> list[MessageBatch]: ...

    def project(self, y: np.ndarray, z: np.ndarray, u: np.ndarray, inbox: Inbox, sides: tuple[slice, slice],
                weight: tuple[np.ndarray, np.ndarray], k: int, exchange: Exchange) -> Generator: ...


class PlainPairs:
    """Each side sends its relaxed iterate plus scaled dual in the clear; both take the weighted mean."""

    failure = None

    def weights(self, arr: MarketArrays, trade: float, rule: str) -> tuple[np.ndarray, np.ndarray]:
        return pair_weights(arr, trade, rule)

    def inbox_kinds(self) -> dict[str, tuple[int, tuple[str, ...]]]:
        return {}  # the trade messages are the splitting's own kinds

    def opening_messages(self) -> list[MessageBatch]:
        return []

    def messages(self, arr: MarketArrays, s: AgentStates, pair_b: slice, pair_s: slice, k: int,
                 alpha: float) -> list[MessageBatch]:
        return trade_messages(arr, s, pair_b, pair_s, k, alpha)

    def project(self, y: np.ndarray, z: np.ndarray, u: np.ndarray, inbox: Inbox, sides: tuple[slice, slice],
                weight: tuple[np.ndarray, np.ndarray], k: int, exchange: Exchange) -> Generator:
        yield from ()  # nothing more to send: the x-phase carried both sides' values
        project_pairs(y, z, inbox, sides, weight)
