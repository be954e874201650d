"""Asynchronous ADMM rounds in simulated time: every agent on its own clock, behind a local barrier of bounded
staleness.

A synchronous round waits, everywhere, for the slowest message of the whole feeder (or its timeout). Fully
asynchronous rounds wait for nothing: each agent computes every ``compute_ms`` with whatever has arrived. Over
a network whose delays are tens of iterations long (10 ms mean latency with 50 ms of jitter against 2 ms per
iteration) the values an agent uses are then tens of iterations old, and the ADMM must be under-relaxed (0.5)
to stay stable -- which alone costs four times the iterations of fresh values (case33bw: 7 524 at 0.5 against
2 110 at 1.8) -- and needs more still (10 623 at 20 % loss, over the 10 000 allowed).

Between the two sits the *stale-synchronous* rule of Ho et al. (2013, a stale synchronous parallel parameter
server) and of the asynchronous ADMM of Zhang & Kwok (2014, bounded delay): values may be stale, but by at most
``max_staleness`` iterations. Here it is a *local* barrier -- no agent waits for anyone but the neighbours it
receives from, and no global round exists:

- every agent ``i`` has its own clock: it starts a step at ``start_i``, computes for ``compute_ms`` and sends
  (a message leaves at ``start_i + compute_ms + ready_ms``);
- before its next step it needs, on every channel of the round's kind that ends at it, a value sent at
  iteration ``k - max_staleness`` or later (``k``: the round's iteration); it takes everything that has arrived
  once that holds -- the newest value per channel -- and starts its next step;
- it does not wait for what will not come: it waits for a channel at most until ``timeout_ms`` after the
  channel's newest message was sent when lost messages are sent again (``acknowledged``; the timeout of a
  synchronous round, which also counts from the send), else until that message, still missing, is more
  likely lost than on its way (:func:`overdue_ms`). When nothing recent enough came, the agent goes on with
  what it holds. Counting from the send, not from the receiver's own computing, matters: a receiver that gives
  a neighbour up because the neighbour is still waiting for its own neighbours uses a stale value, and stale
  values cost iterations (case85 at 20 % loss, 150 ms: 1972 iterations and 11 % of the values late counted
  from the receiver's computing, 1477 -- the synchronous count -- and 0.4 % counted from the send).

The bound the market uses by default is 0 (:data:`cyber.resilient_admm.ASYNC_STALENESS`), with acknowledged
exchanges: every agent computes with its neighbours' current values, like a synchronous round, so the ADMM
keeps the synchronous relaxation and iterations, but it waits only for its own neighbours -- never for the
slowest message of the feeder. Any staleness, even bounded, forces the under-relaxation back: one to two
iterations of it (2.5 ms of constant latency, bound 1 or 2, case15da) stall the ADMM at relaxation 0.7 and
above. ``None`` is the barrier-free rule (every agent computes every ``compute_ms``), whose iterates are
those the transport gave before this module.

The rounds are simulated in lockstep of iterations (every agent's step ``r`` is computed before any agent's
step ``r + 1``), so an agent never uses a value a faster neighbour sent in a later round than its own, although
it may have arrived; and a round's kinds are released one batch at a time, each kind's values once that kind's
barrier is met (a value of an earlier kind arriving while the agent still waits for a later kind is used in the
next round). Both make the simulated values at most staler than a real agent's, never fresher.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cyber.errors import CyberError
from cyber.network import FIELD_BITS, HEADER_BITS, ChannelSpec, CommNetwork
from cyber.retransmission import MIN_QUANTILE, one_way_ms
from market.messages import MessageBatch


def overdue_ms(spec: ChannelSpec, n_fields: int) -> float:
    """How long a receiver waits for a message of ``n_fields`` fields over ``spec`` before giving it up: the
    quantile of the one-way delay past which a message still missing was lost with posterior probability at
    least 1/2 -- ``l / (l + (1 - l) (1 - F(t))) >= 1/2``, i.e. ``F(t) >= 1 - l / (1 - l)``, ``l`` the loss
    rate -- but no earlier than the median delay (the rule of :mod:`cyber.retransmission`, for one way);
    infinite on a lossless channel, where every message comes."""
    if spec.loss == 0.0:
        return float("inf")
    level = max(MIN_QUANTILE, 1.0 - spec.loss / (1.0 - spec.loss))
    delays = one_way_ms(spec, np.random.default_rng(0), HEADER_BITS + FIELD_BITS * n_fields)
    return float(np.quantile(delays, level))


@dataclass
class _InFlight:
    """Messages of one kind on their way, in the order they were sent: the rows of their batches with each
    row's send iteration and arrival time."""

    rows: MessageBatch
    iteration: np.ndarray
    arrival_ms: np.ndarray

    def extend(self, rows: MessageBatch, arrival_ms: np.ndarray) -> _InFlight:
        merged = MessageBatch(rows.kind, rows.phase, rows.iteration, np.r_[self.rows.sender, rows.sender],
                              np.r_[self.rows.receiver, rows.receiver], np.r_[self.rows.channel, rows.channel],
                              {k: np.r_[v, rows.fields[k]] for k, v in self.rows.fields.items()}, rows.stage,
                              rows.extra_words, np.r_[self.rows.ready(), rows.ready()])
        return _InFlight(merged, np.r_[self.iteration, np.full(len(rows), rows.iteration)],
                         np.r_[self.arrival_ms, arrival_ms])

    def take(self, rows: np.ndarray) -> _InFlight:
        return _InFlight(self.rows.subset(rows), self.iteration[rows], self.arrival_ms[rows])


class AsyncRounds:
    """Per-agent clocks and the local barrier of bounded staleness (see the module docstring); agents are
    indexed by bus number."""

    def __init__(self, network: CommNetwork, compute_ms: float, timeout_ms: float, max_staleness: int | None,
                 acknowledged: bool = False) -> None:
        if max_staleness is not None and max_staleness < 0:
            raise CyberError(f"ADMM timing max_staleness: expected an integer >= 0 or none, got {max_staleness}")
        self.network, self.acknowledged = network, acknowledged
        self.compute_ms, self.timeout_ms, self.max_staleness = compute_ms, timeout_ms, max_staleness
        n_agents = max(network.graph.nodes, default=0) + 1
        self._patience: dict[tuple[int, int], float] = {}  # per channel class and fields: the wait's bound
        self.start = np.zeros(n_agents)  # when each agent began its step of the round under way
        self.next = np.zeros(n_agents)  # when it begins its next step, as far as known
        self.late = 0
        self._in_flight: dict[str, _InFlight] = {}
        self._used: dict[str, np.ndarray] = {}  # per kind and channel: send iteration of the value in use

    @property
    def now_ms(self) -> float:
        """The end of the round under way: when its last agent starts its next step."""
        return float(self.next.max(initial=0.0))

    def new_round(self) -> None:
        """Every agent starts its step of the next round where its barrier of the last one let it go."""
        self.start = self.next
        self.next = self.start + self.compute_ms

    def release(self, batch: MessageBatch, lost: np.ndarray, delay_ms: np.ndarray) -> MessageBatch:
        """Send ``batch`` (its messages ``lost`` or taking ``delay_ms``), then hand over everything of its
        kind that has arrived by the time each receiver's barrier lets it go: per channel the newest value,
        never one older than a value already used."""
        sent_at = self.start[batch.sender] + self.compute_ms + batch.ready()
        np.maximum.at(self.next, batch.sender, sent_at)
        kept = ~lost
        queue = self._in_flight.get(batch.kind)
        arrival = (sent_at + delay_ms)[kept]
        queue = queue.extend(batch.subset(kept), arrival) if queue is not None else \
            _InFlight(batch.subset(kept), np.full(len(arrival), batch.iteration), arrival)
        used = self._used.setdefault(batch.kind, np.full(int(batch.channel.max(initial=-1)) + 1, -1))
        go = self._barrier(batch, queue, used, sent_at)
        np.maximum.at(self.next, batch.receiver, go[batch.receiver])
        now = queue.arrival_ms <= go[queue.rows.receiver]
        ready, self._in_flight[batch.kind] = queue.take(now), queue.take(~now)
        # rows are in send order, so a row is fresh unless a newer value on its channel was used before
        fresh = ready.iteration >= used[ready.rows.channel]
        self.late += int((fresh & (ready.iteration < batch.iteration)).sum())
        np.maximum.at(used, ready.rows.channel[fresh], ready.iteration[fresh])
        out = ready.rows.subset(fresh)
        # of several values on a channel the newest (sent last) is kept
        _, last = np.unique(out.channel[::-1], return_index=True)
        return out.subset(np.sort(len(out) - 1 - last))

    def _barrier(self, batch: MessageBatch, queue: _InFlight, used: np.ndarray, sent_at: np.ndarray
                 ) -> np.ndarray:
        """Per agent, when it takes this kind's values: once it has computed, and once every channel of the
        batch that ends at it has brought a value of iteration ``k - max_staleness`` or later -- or that
        channel's message of this round, sent at ``sent_at``, is given up (:meth:`patience_ms`)."""
        computed = self.start + self.compute_ms
        if self.max_staleness is None:
            return computed
        floor = batch.iteration - self.max_staleness
        needed = np.full(len(used), np.inf)  # per channel: when a value recent enough arrives
        recent = queue.iteration >= floor
        np.minimum.at(needed, queue.rows.channel[recent], queue.arrival_ms[recent])
        needed[used >= floor] = -np.inf
        waited = np.minimum(needed[batch.channel], sent_at + self.patience_ms(batch))
        go = computed.copy()
        np.maximum.at(go, batch.receiver, waited)
        return go

    def patience_ms(self, batch: MessageBatch) -> np.ndarray:
        """Per message of ``batch``, how long after its send the receiver waits for it: until, still missing, it
        is more likely lost than late (:func:`overdue_ms`), at most ``timeout_ms`` -- the whole ``timeout_ms``
        when lost messages are sent again (``acknowledged``)."""
        if self.acknowledged:
            return np.full(len(batch), self.timeout_ms)
        classes = self.network.spec_index(batch)
        result = np.empty(len(batch))
        for k in np.unique(classes).tolist():
            key = (k, batch.words)
            if key not in self._patience:
                self._patience[key] = min(self.timeout_ms, overdue_ms(self.network.specs[k], batch.words))
            result[classes == k] = self._patience[key]
        return result
