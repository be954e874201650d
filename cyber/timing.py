"""ADMM messages in simulated time: how long a clearing takes over a given network, and what arrives late.

Each ADMM half-step (the x-phase: flows, voltages, trades; the y-phase: targets) is a round in which every
agent computes for ``compute_ms`` and then sends; the batches of one round travel in parallel, each message
after its channel's latency (:class:`~cyber.network.CommNetwork`). A half-step whose messages depend on each
other (the sweep splitting's levels, :attr:`~market.messages.MessageBatch.stage`) is one round per stage.

- ``sync``: every receiver waits for all its messages, but at most ``timeout_ms``; a message lost or later
  than that is not used (the receiver keeps its last value: stale data). A round lasts ``compute_ms`` plus
  the longest delivery, or the timeout when something did not come. With ``retransmit`` every message is
  acknowledged and sent again while unacknowledged (:mod:`cyber.retransmission`) until the receiver stops
  waiting: a round then lasts until the first copy of its slowest message arrived, and misses a message only
  when every copy sent within the timeout was lost or late.
- ``async``: nobody waits; a round lasts ``compute_ms``, and a message is used in the first round that ends
  after it arrived -- possibly several iterations late. Of several values arriving together on a channel the
  most recently sent is kept, and a value older than one already used is dropped. Asynchronous rounds are not
  retransmitted: every channel carries the sender's newest value each iteration, which supersedes a copy of the
  last one before a retransmission timeout (a round trip or more) would send it, as long as an iteration
  (two rounds) is shorter than a round trip.

Agents compute in parallel: a message leaves when its sender has it ready (``compute_ms`` plus the batch's
``ready_ms``, e.g. the sender's cryptography, :mod:`cyber.privacy.costs`), so a round costs its slowest agent
plus its slowest delivery, never the sum of the agents' times. The receiver's timeout counts from the send.
The transport counts the bytes it put on the wire per message kind (every copy and acknowledgement, headers
included).

The clock (``clock_ms``) is the simulated time since the clearing started.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cyber.errors import CyberError
from cyber.network import CommNetwork, WireCount
from cyber.retransmission import Retransmitter
from market.messages import MessageBatch

MODES = ("sync", "async")


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


class TimedTransport:
    """Delivers over ``network`` in simulated time; counts messages sent, lost and late, and with
    ``retransmit`` the retransmitted copies (``lost`` then counts copies) and the acknowledgements."""

    def __init__(self, network: CommNetwork, mode: str = "sync", timeout_ms: float = 100.0,
                 compute_ms: float = 1.0, retransmit: bool = False) -> None:
        if mode not in MODES:
            raise CyberError(f"ADMM timing mode: expected one of {MODES}, got {mode!r}")
        if not (timeout_ms > 0 and compute_ms >= 0):
            raise CyberError("ADMM timing: timeout_ms must be positive and compute_ms non-negative")
        self.network, self.mode, self.timeout_ms, self.compute_ms = network, mode, timeout_ms, compute_ms
        self.clock_ms = 0.0
        self.sent = self.lost = self.late = self.retransmitted = self.acks = 0
        self.wire = WireCount()
        self._arq = Retransmitter(network) if retransmit else None
        self._round: tuple[int, str, int] | None = None
        self._round_ms = 0.0
        self._in_flight: dict[str, _InFlight] = {}
        self._used: dict[str, np.ndarray] = {}  # per kind and channel: send iteration of the value in use

    def deliver(self, batch: MessageBatch) -> MessageBatch:
        self._enter_round((batch.iteration, batch.phase, batch.stage))
        if self._arq is not None and self.mode == "sync":
            return self._acknowledged(batch)
        outcome = self.network.transmit(batch)
        self.sent += len(batch)
        self.wire.count(batch, len(batch))
        self.lost += int(outcome.lost.sum())
        ready = batch.ready()
        if self.mode == "sync":
            on_time = ~outcome.lost & (outcome.delay_ms <= self.timeout_ms)
            self.late += int((~outcome.lost & ~on_time).sum())
            self._wait(ready, outcome.delay_ms, on_time)
            return batch.subset(on_time)
        self._round_ms = max(self._round_ms, self.compute_ms + float(ready.max(initial=0.0)))
        return self._release(batch, outcome.lost, self.clock_ms + self.compute_ms + ready + outcome.delay_ms)

    def _wait(self, ready: np.ndarray, delay_ms: np.ndarray, on_time: np.ndarray) -> None:
        """A synchronous round lasts until its last message arrived, or its receiver stopped waiting for it."""
        waited = ready + np.where(on_time, delay_ms, self.timeout_ms)
        self._round_ms = max(self._round_ms, self.compute_ms + float(waited.max(initial=0.0)))

    def _acknowledged(self, batch: MessageBatch) -> MessageBatch:
        """Sync with retransmissions: copies until acknowledged or the receiver stops waiting."""
        sent = self._arq.send(batch, self.timeout_ms)
        self.sent += len(batch)
        self.retransmitted += int(sent.copies.sum()) - len(batch)
        self.lost += sent.lost
        self.acks += sent.acks
        self.wire.count(batch, int(sent.copies.sum()))
        self.wire.count(MessageBatch(batch.kind, batch.phase, batch.iteration, batch.sender[:0], batch.receiver[:0],
                                     batch.channel[:0]), sent.acks, f"{batch.kind}_ack")
        on_time = sent.arrival_ms <= self.timeout_ms
        self.late += int((np.isfinite(sent.arrival_ms) & ~on_time).sum())
        self._wait(batch.ready(), sent.arrival_ms, on_time)
        return batch.subset(on_time)

    @property
    def now_ms(self) -> float:
        """The end of the round under way."""
        return self.clock_ms + self._round_ms

    def finish(self) -> float:
        """Close the last round; the simulated duration of the clearing in milliseconds."""
        self._enter_round(None)
        return self.clock_ms

    def _enter_round(self, key: tuple[int, str, int] | None) -> None:
        if key != self._round:
            self.clock_ms += self._round_ms
            self._round, self._round_ms = key, 0.0

    def _release(self, batch: MessageBatch, lost: np.ndarray, arrival: np.ndarray) -> MessageBatch:
        """Async: queue this batch, hand over everything of its kind that has arrived by the round's end."""
        kept = ~lost
        sent = _InFlight(batch.subset(kept), np.full(int(kept.sum()), batch.iteration), arrival[kept])
        queue = self._in_flight[batch.kind].extend(sent.rows, sent.arrival_ms) if batch.kind in self._in_flight \
            else sent
        now = queue.arrival_ms <= self.clock_ms + self.compute_ms
        ready, self._in_flight[batch.kind] = queue.take(now), queue.take(~now)
        used = self._used.setdefault(batch.kind, np.full(int(batch.channel.max(initial=-1)) + 1, -1))
        # rows are in send order, so a row is fresh unless a newer value on its channel was used before
        fresh = ready.iteration >= used[ready.rows.channel]
        self.late += int((fresh & (ready.iteration < batch.iteration)).sum())
        np.maximum.at(used, ready.rows.channel[fresh], ready.iteration[fresh])
        out = ready.rows.subset(fresh)
        # of several values on a channel the newest (sent last) is kept
        _, last = np.unique(out.channel[::-1], return_index=True)
        return out.subset(np.sort(len(out) - 1 - last))
