"""The ADMM's stopping test, decided by the agents themselves from messages that cross the network.

The central test (paper eq. 19) sums every copy's squared residual over the whole market -- a number no agent
holds. The distributed rule builds it from messages. Every agent computes its *share*: the squared primal
and dual residuals of the copies it holds, each divided by the squared tolerance, so the central test reads
``sum of shares <= 1`` for both. In every iteration, with the y-phase messages, each agent sends its
neighbours on the communication graph (feeder neighbours and trading partners, as every other message) its
new share and relays the shares of the others it holds: a flood, one hop per iteration. A share is signed
by the agent it describes, so a relay can drop it but not change it; what a Byzantine agent can falsify is
its own share (``cyber.attacks``, kind ``residual``). A share sent in iteration ``s`` has crossed the graph
in the round of iteration ``s + lag``, ``lag`` = the graph's diameter less one; then every agent holds
everybody's share of iteration ``s`` (the *snapshot*), evaluates the test on it and, if it passes, stops;
with a lossless network they all hold the same snapshot and stop together, ``lag`` iterations after the
iteration the test describes, without any announcement. Shares of the last ``lag + 1``
iterations travel in each message (a message lost once is made up by the next), which sets its size.

The plain test (``trim`` 0) is the central one, ``lag`` iterations late: it sums the shares it holds. A
single agent can break it: a negative share makes the others' sum pass at once (stopping early), a huge one
keeps it from ever passing (never stopping, until the iteration budget). The resilient test (``trim`` F)
disregards up to F shares: those missing from the snapshot or invalid (not finite, or negative: a sum of
squares cannot be) first, then the largest. With at most F liars it passes no earlier than the sum of the
honest shares less their F largest passes: what a liar can still do is leave F honest shares unchecked, and
without liars the test leaves the F largest unchecked. That it stops near the optimum all the same is
measured, not proven: ``tests/market/test_stopping.py``, ``docs/stopping.md``.

When the network loses messages and an agent misses a share of the snapshot, that agent does not stop on it.
The model ends the run at the first iteration at which every agent's test passes; agents whose test passed
earlier are taken to keep iterating until then (a deployment would add a last agreement round).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import shortest_path

from market.admm.states import Y_PHASE
from market.instance import MarketInstance
from market.messages import MessageBatch

STOPPING_RULES = ("central", "distributed")
#: Most agents the flood is simulated for: every agent holds a table of everybody's shares over the window
#: (``n x n x (lag + 1)``), which grows past memory on the largest SimBench grids.
MAX_AGENTS = 2000
#: Message kind of the flood; its fields: the sender's own primal and dual share.
KIND = "residual"
FIELDS = ("primal", "dual")


class StoppingError(ValueError):
    """The distributed test cannot be simulated for this market (too many agents)."""


def check_size(case: str, n_agents: int) -> None:
    """Refuse a market too large for the simulated flood (:data:`MAX_AGENTS`)."""
    if n_agents > MAX_AGENTS:
        raise StoppingError(f"stopping: the distributed test is simulated for at most {MAX_AGENTS} agents (every "
                            f"agent holds everybody's shares), {case} has {n_agents} -- use the central test")


def neighbour_pairs(instance: MarketInstance) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of agents (0-based) that talk -- feeder parent and child, buyer and seller, and the heads of
    the feeders that leave the substation, which share its busbar (a chain of them) -- once each."""
    f = instance.feeder
    child = np.flatnonzero(f.parent[1:] > 0) + 1
    heads = np.flatnonzero(f.parent[1:] == 0)  # agents fed straight from the substation, 0-based
    pairs = {(int(f.parent[j]) - 1, int(j) - 1) for j in child}
    pairs |= {(int(a), int(b)) for a, b in zip(heads[:-1], heads[1:], strict=True)}
    pairs |= {(min(t.buyer, t.seller) - 1, max(t.buyer, t.seller) - 1) for t in instance.trades}
    ordered = sorted(pairs)
    return (np.array([a for a, _ in ordered], dtype=int), np.array([b for _, b in ordered], dtype=int))


@dataclass(frozen=True)
class Snapshot:
    """A test over all agents: the snapshot's iteration, the most shares an agent disregarded for missing or
    invalid, and the largest primal and dual sums an agent tested (the test passes where both are <= 1)."""

    iteration: int
    disregarded: int
    primal: float
    dual: float


class DistributedStop:
    """The flood of residual shares and every agent's test on its snapshot (see the module docstring).

    ``holder``: the agent (0-based) holding each copy of the splitting's residual vector; ``weight`` the
    copies' residual weights; ``trim``: shares the test disregards. Agents are indexed 0..n-1, messages name
    them by bus number (index + 1).
    """

    def __init__(self, instance: MarketInstance, holder: np.ndarray, weight: np.ndarray,
                 tolerances: tuple[float, float], trim: int = 0) -> None:
        if trim < 0:
            raise ValueError(f"stopping: trim must be >= 0, got {trim}")
        self.n = n = len(instance.agents)
        check_size(instance.case, n)
        if trim >= n:
            raise ValueError(f"stopping: trim {trim} must be below the number of agents ({n})")
        self.holder, self.weight, self.trim = holder, weight, trim
        self.tol_primal, self.tol_dual = tolerances
        a, b = neighbour_pairs(instance)
        graph = sp.csr_matrix((np.ones(len(a)), (a, b)), shape=(n, n))  # connected: a tree plus edges
        diameter = int(shortest_path(graph, method="D", directed=False, unweighted=True).max()) if n > 1 else 1
        self.lag = diameter - 1  # a share sent in iteration s has crossed the graph in the round of s + lag
        self.window = self.lag + 1
        self.sender = np.concatenate([a, b])  # directed channels, both ways
        self.receiver = np.concatenate([b, a])
        self.channel = np.arange(len(self.sender))
        # have[i, j, w]: agent i holds j's share of the iteration in window slot w; share[j, w]: its value
        self.have = np.zeros((n, n, self.window), dtype=bool)
        self.share = np.full((n, self.window, 2), np.nan)
        self.last: Snapshot | None = None  # the latest snapshot every agent could test: its worst agent's

    def shares(self, residual: np.ndarray, change: np.ndarray, rho: float) -> np.ndarray:
        """Every agent's own (primal, dual) share: its copies' weighted squares over the squared tolerances."""
        primal = np.bincount(self.holder, self.weight * residual**2, minlength=self.n) / self.tol_primal**2
        dual = rho**2 * np.bincount(self.holder, self.weight * change**2, minlength=self.n) / self.tol_dual**2
        return np.column_stack([primal, dual])

    def messages(self, k: int, own: np.ndarray) -> MessageBatch:
        """The flood's messages of iteration ``k`` (sent with the y-phase round): each sender's own share (what
        an attacker falsifies) plus, in size, the window of shares it relays."""
        slot = k % self.window
        self.have[:, :, slot] = False  # the slot of iteration k - window: forgotten
        self.have[np.arange(self.n), np.arange(self.n), slot] = True
        self.share[:, slot] = own
        relayed = 2 * self.n * self.window  # (value, iteration) per share held in the window
        return MessageBatch(KIND, Y_PHASE, k, self.sender + 1, self.receiver + 1, self.channel,
                            {"primal": own[self.sender, 0], "dual": own[self.sender, 1]}, extra_words=relayed)

    def receive(self, delivered: MessageBatch) -> None:
        """Store what arrived: the senders' own shares of iteration ``k`` (as signed, possibly false) and the
        shares they relayed (as they held them before this round). Rounds are synchronous: what arrives was
        sent in this iteration."""
        if len(delivered) == 0:
            return
        slot = delivered.iteration % self.window
        src, dst = self.sender[delivered.channel], self.receiver[delivered.channel]
        relays = sp.csr_matrix((np.ones(len(src)), (dst, src)), shape=(self.n, self.n))
        held = (relays @ self.have.reshape(self.n, -1).astype(np.float32)) > 0  # what the senders held before
        self.have |= held.reshape(self.have.shape)
        # a sender signs one share per iteration: what its receivers got (the attack sends all the same)
        self.share[src, slot, 0] = delivered.fields["primal"]
        self.share[src, slot, 1] = delivered.fields["dual"]

    def all_stop(self, k: int) -> bool:
        """Whether every agent's test passes on the snapshot of iteration ``k - lag`` it holds."""
        s = k - self.lag
        if s < 1:
            return False
        slot = s % self.window
        values = self.share[:, slot]  # (originator, 2)
        # the plain test sums what it holds; the resilient one screens out what a sum of squares cannot be
        valid = (np.isfinite(values).all(axis=1) & (values >= 0).all(axis=1)) if self.trim else np.ones(self.n, bool)
        good = self.have[:, :, slot] & valid[None, :]  # (agent, originator)
        bad = self.n - good.sum(axis=1)
        passes = bad <= self.trim
        if not passes.all():
            return False
        spare = self.trim - bad  # further shares each agent disregards: its largest
        sums = []
        for col in range(2):
            held = np.where(good, np.where(valid, values[:, col], 0.0)[None, :], 0.0)  # NaN only where invalid
            total = held.sum(axis=1)
            if self.trim:
                top = -np.sort(-held, axis=1)[:, :self.trim]
                total = total - (top * (np.arange(self.trim)[None, :] < spare[:, None])).sum(axis=1)
            sums.append(total)
        self.last = Snapshot(s, int(bad.max()), float(sums[0].max()), float(sums[1].max()))
        return bool(self.last.primal <= 1.0 and self.last.dual <= 1.0)
