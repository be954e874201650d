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
- ``async``: no global round; every agent runs on its own clock (:mod:`cyber.async_rounds`) and uses a
  message in the first of its steps that starts after it arrived -- possibly several iterations late. Behind
  the local barrier of ``max_staleness`` an agent waits, for its own neighbours only, until every value it
  holds is at most that many iterations old (a missing one at most ``timeout_ms`` after its send, sooner
  once it is more likely lost than late when nothing is retransmitted);
  with ``max_staleness=None`` nobody waits and every step lasts ``compute_ms``. Of several values arriving
  together on a channel the most recently sent is kept, and a value older than one already used is dropped.
  With ``retransmit``, asynchronous rounds are acknowledged and retransmitted only behind a barrier of 0,
  which waits for the current values; with a looser bound every channel carries the sender's newest value each
  iteration, which supersedes a copy of the last one before a retransmission timeout (a round trip or more)
  would send it.

Agents compute in parallel: a message leaves when its sender has it ready (``compute_ms`` plus the batch's
``ready_ms``, e.g. the sender's cryptography, :mod:`cyber.privacy.costs`), so a round costs its slowest agent
plus its slowest delivery, never the sum of the agents' times. The receiver's timeout counts from the send.
The transport counts the bytes it put on the wire per message kind (every copy and acknowledgement, headers
included).

The clock (:attr:`TimedTransport.now_ms`) is the simulated time since the clearing started.
"""

from __future__ import annotations

import numpy as np

from cyber.async_rounds import AsyncRounds
from cyber.errors import CyberError
from cyber.network import CommNetwork, WireCount
from cyber.retransmission import Retransmitter
from market.messages import MessageBatch

MODES = ("sync", "async")


class TimedTransport:
    """Delivers over ``network`` in simulated time; counts messages sent, lost and late, and with
    ``retransmit`` the retransmitted copies (``lost`` then counts copies) and the acknowledgements."""

    def __init__(self, network: CommNetwork, mode: str = "sync", timeout_ms: float = 100.0,
                 compute_ms: float = 1.0, retransmit: bool = False, max_staleness: int | None = None) -> None:
        if mode not in MODES:
            raise CyberError(f"ADMM timing mode: expected one of {MODES}, got {mode!r}")
        if not (timeout_ms > 0 and compute_ms >= 0):
            raise CyberError("ADMM timing: timeout_ms must be positive and compute_ms non-negative")
        self.network, self.mode, self.timeout_ms, self.compute_ms = network, mode, timeout_ms, compute_ms
        self.clock_ms = 0.0
        self.sent = self.lost = self._late = self.retransmitted = self.acks = 0
        self.wire = WireCount()
        self._arq = Retransmitter(network) if retransmit else None
        self._round: tuple[int, str, int] | None = None
        self._round_ms = 0.0
        # async rounds are acknowledged only behind a barrier that waits for the current values: otherwise the
        # sender's next value supersedes a lost one
        self._acked_async = retransmit and mode == "async" and max_staleness == 0
        self._async = (AsyncRounds(network, compute_ms, timeout_ms, max_staleness, self._acked_async)
                       if mode == "async" else None)

    def deliver(self, batch: MessageBatch) -> MessageBatch:
        self._enter_round((batch.iteration, batch.phase, batch.stage))
        if self._arq is not None and (self.mode == "sync" or self._acked_async):
            arrival = self._acknowledged(batch)
        else:
            arrival = self._transmitted(batch)
        if self.mode == "async":
            return self._async.release(batch, ~np.isfinite(arrival), arrival)
        on_time = arrival <= self.timeout_ms
        self._late += int((np.isfinite(arrival) & ~on_time).sum())
        self._wait(batch.ready(), arrival, on_time)
        return batch.subset(on_time)

    def _transmitted(self, batch: MessageBatch) -> np.ndarray:
        """One copy per message; per message, when it arrived after the send (``inf``: lost)."""
        outcome = self.network.transmit(batch)
        self.sent += len(batch)
        self.wire.count(batch, len(batch))
        self.lost += int(outcome.lost.sum())
        return np.where(outcome.lost, np.inf, outcome.delay_ms)

    def _wait(self, ready: np.ndarray, delay_ms: np.ndarray, on_time: np.ndarray) -> None:
        """A synchronous round lasts until its last message arrived, or its receiver stopped waiting for it."""
        waited = ready + np.where(on_time, delay_ms, self.timeout_ms)
        self._round_ms = max(self._round_ms, self.compute_ms + float(waited.max(initial=0.0)))

    def _acknowledged(self, batch: MessageBatch) -> np.ndarray:
        """Copies until acknowledged or the receiver stops waiting; per message, when its first copy arrived
        after the send (``inf``: none did)."""
        sent = self._arq.send(batch, self.timeout_ms)
        self.sent += len(batch)
        self.retransmitted += int(sent.copies.sum()) - len(batch)
        self.lost += sent.lost
        self.acks += sent.acks
        self.wire.count(batch, int(sent.copies.sum()))
        self.wire.count(MessageBatch(batch.kind, batch.phase, batch.iteration, batch.sender[:0], batch.receiver[:0],
                                     batch.channel[:0]), sent.acks, f"{batch.kind}_ack")
        return sent.arrival_ms

    @property
    def now_ms(self) -> float:
        """The end of the round under way."""
        return self._async.now_ms if self._async is not None else self.clock_ms + self._round_ms

    @property
    def late(self) -> int:
        """Messages used after the round they were sent in (async) or arrived after the timeout (sync)."""
        return self._late + (self._async.late if self._async is not None else 0)

    def finish(self) -> float:
        """Close the last round; the simulated duration of the clearing in milliseconds."""
        self._enter_round(None)
        return self.now_ms

    def _enter_round(self, key: tuple[int, str, int] | None) -> None:
        if key != self._round:
            self.clock_ms += self._round_ms
            self._round, self._round_ms = key, 0.0
            if self._async is not None and key is not None:
                self._async.new_round()
