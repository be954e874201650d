"""ADMM messages in simulated time: how long a clearing takes over a given network, and what arrives late.

Each ADMM half-step (the x-phase: flows, voltages, trades; the y-phase: targets) is a round in which every
agent computes for ``compute_ms`` and then sends; the batches of one round travel in parallel, each message
after its channel's latency (:class:`~cyber.network.CommNetwork`). A half-step whose messages depend on each
other (the sweep splitting's levels, :attr:`~market.messages.MessageBatch.stage`) is one round per stage.

- ``sync``: every receiver waits for all its messages, but at most ``timeout_ms``; a message lost or later
  than that is not used (the receiver keeps its last value: stale data). A round lasts ``compute_ms`` plus
  the longest delivery, or the timeout when something did not come.
- ``async``: nobody waits; a round lasts ``compute_ms``, and a message is used in the first round that ends
  after it arrived -- possibly several iterations late. Of several values arriving together on a channel the
  most recently sent is kept, and a value older than one already used is dropped.

The clock (``clock_ms``) is the simulated time since the clearing started.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cyber.errors import CyberError
from cyber.network import CommNetwork
from market.messages import MessageBatch

MODES = ("sync", "async")


@dataclass
class _InFlight:
    """Messages of one kind on their way: arrival time, send iteration and the rows themselves."""

    arrival_ms: list[np.ndarray] = field(default_factory=list)
    batches: list[MessageBatch] = field(default_factory=list)


class TimedTransport:
    """Delivers over ``network`` in simulated time; counts sent, lost and late messages."""

    def __init__(self, network: CommNetwork, mode: str = "sync", timeout_ms: float = 100.0,
                 compute_ms: float = 1.0) -> None:
        if mode not in MODES:
            raise CyberError(f"ADMM timing mode: expected one of {MODES}, got {mode!r}")
        if not (timeout_ms > 0 and compute_ms >= 0):
            raise CyberError("ADMM timing: timeout_ms must be positive and compute_ms non-negative")
        self.network, self.mode, self.timeout_ms, self.compute_ms = network, mode, timeout_ms, compute_ms
        self.clock_ms = 0.0
        self.sent = self.lost = self.late = 0
        self._round: tuple[int, str, int] | None = None
        self._round_ms = 0.0
        self._in_flight: dict[str, _InFlight] = {}
        self._used: dict[str, np.ndarray] = {}  # per kind and channel: send iteration of the value in use

    def deliver(self, batch: MessageBatch) -> MessageBatch:
        self._enter_round((batch.iteration, batch.phase, batch.stage))
        outcome = self.network.transmit(batch)
        self.sent += len(batch)
        self.lost += int(outcome.lost.sum())
        if self.mode == "sync":
            on_time = ~outcome.lost & (outcome.delay_ms <= self.timeout_ms)
            self.late += int((~outcome.lost & ~on_time).sum())
            waited = self.timeout_ms if not on_time.all() else float(outcome.delay_ms.max(initial=0.0))
            self._round_ms = max(self._round_ms, self.compute_ms + waited)
            return batch.subset(on_time)
        self._round_ms = self.compute_ms
        return self._release(batch, outcome.lost, self.clock_ms + self.compute_ms + outcome.delay_ms)

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
        queue = self._in_flight.setdefault(batch.kind, _InFlight())
        kept = ~lost
        queue.batches.append(batch.subset(kept))
        queue.arrival_ms.append(arrival[kept])
        end = self.clock_ms + self.compute_ms
        ready, waiting = [], _InFlight()
        for rows, when in zip(queue.batches, queue.arrival_ms, strict=True):
            now = when <= end
            ready.append(rows.subset(now))
            if not now.all():
                waiting.batches.append(rows.subset(~now))
                waiting.arrival_ms.append(when[~now])
        self._in_flight[batch.kind] = waiting
        used = self._used.setdefault(batch.kind, np.full(int(batch.channel.max(initial=-1)) + 1, -1))
        out = []
        for rows in ready:  # oldest sends first, so the newest value on a channel is stored last
            fresh = rows.iteration >= used[rows.channel]
            if rows.iteration < batch.iteration:
                self.late += int(fresh.sum())
            out.append(rows.subset(fresh))
            used[rows.channel[fresh]] = rows.iteration
        return _concatenate(batch, out)


def _concatenate(like: MessageBatch, parts: list[MessageBatch]) -> MessageBatch:
    """One batch of the rows of ``parts``; where a channel occurs twice the later part's row is kept."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return like.subset(np.zeros(len(like), dtype=bool))
    merged = MessageBatch(like.kind, like.phase, like.iteration, np.concatenate([p.sender for p in parts]),
                          np.concatenate([p.receiver for p in parts]), np.concatenate([p.channel for p in parts]),
                          {name: np.concatenate([p.fields[name] for p in parts]) for name in like.fields},
                          like.stage)
    _, last = np.unique(merged.channel[::-1], return_index=True)
    return merged.subset(np.sort(len(merged) - 1 - last))
