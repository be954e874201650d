"""Messages: the only thing the market and the cyber layer share.

A :class:`Message` is one sender-to-receiver datum of one ADMM half-step. The distributed ADMM emits them in
:class:`MessageBatch` es -- one batch per message kind and half-step, a struct of arrays with one row per
message -- so that a transport can delay, drop, corrupt or screen rows with numpy while the market code
stays unaware of it. Every row has a fixed ``channel``: the slot in the receiver's inbox that the row
overwrites when delivered, so an agent always works with the latest value it has *received* on a channel.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Message:
    """One message: ``fields`` maps names (``P``, ``v``, ``t``, ...) to the values sent."""

    sender: int
    receiver: int
    iteration: int
    phase: str
    kind: str
    fields: dict[str, float]
    channel: int = -1


@dataclass(eq=False)
class MessageBatch:
    """Messages of one kind and half-step as arrays; ``sender``/``receiver`` are bus numbers.

    ``stage`` orders the hops within a half-step whose messages depend on each other (the levels of a
    sweep through the feeder): batches of one half-step and stage travel in parallel, later stages wait.
    ``extra_words``: 64-bit words each message carries beyond its fields (a relayed table or a ciphertext the
    model keeps elsewhere, :mod:`market.admm.stopping`, :mod:`cyber.privacy.pairs`), for its size on the wire.
    ``ready_ms``: per message, how long after the round started its sender had it ready (its compute time in
    simulated time, e.g. the cryptography of a private exchange); ``None``: at once.
    """

    kind: str
    phase: str
    iteration: int
    sender: np.ndarray
    receiver: np.ndarray
    channel: np.ndarray
    fields: dict[str, np.ndarray] = field(default_factory=dict)
    stage: int = 0
    extra_words: int = 0
    ready_ms: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.channel)

    def subset(self, rows: np.ndarray) -> MessageBatch:
        """The messages at ``rows`` (indices or a boolean mask), e.g. those that were delivered. A mask that
        keeps every message gives the batch itself: a batch's arrays are never written once it is built
        (senders build fresh ones, attacks and detectors copy, :meth:`with_fields`), and most rounds lose
        nothing."""
        rows = np.asarray(rows)
        if rows.dtype == bool and rows.size == len(self) and rows.all():
            return self
        return MessageBatch(self.kind, self.phase, self.iteration, self.sender[rows], self.receiver[rows],
                            self.channel[rows], {k: v[rows] for k, v in self.fields.items()}, self.stage,
                            self.extra_words, None if self.ready_ms is None else self.ready_ms[rows])

    def with_fields(self, **values: np.ndarray) -> MessageBatch:
        """A copy with some field arrays replaced (how an attack or a detector changes what is received)."""
        return MessageBatch(self.kind, self.phase, self.iteration, self.sender, self.receiver, self.channel,
                            {**self.fields, **values}, self.stage, self.extra_words, self.ready_ms)

    def ready(self) -> np.ndarray:
        """:attr:`ready_ms`, zeros when not given."""
        return np.zeros(len(self)) if self.ready_ms is None else self.ready_ms

    @property
    def words(self) -> int:
        """64-bit words per message beyond its header: its fields and ``extra_words``."""
        return len(self.fields) + self.extra_words

    def messages(self) -> Iterator[Message]:
        """The batch as individual :class:`Message` objects (for inspection and logging; slow)."""
        for i in range(len(self)):
            yield Message(int(self.sender[i]), int(self.receiver[i]), self.iteration, self.phase, self.kind,
                          {k: float(v[i]) for k, v in self.fields.items()}, int(self.channel[i]))


class Transport(Protocol):
    """Carries a batch from its senders to its receivers; returns what arrives (possibly fewer, changed)."""

    def deliver(self, batch: MessageBatch) -> MessageBatch: ...


class IdealTransport:
    """Every message arrives at once and unchanged."""

    def deliver(self, batch: MessageBatch) -> MessageBatch:
        return batch


class Inbox:
    """Latest received value per channel and field, for every message kind an agent listens to."""

    def __init__(self, sizes: dict[str, tuple[int, tuple[str, ...]]]) -> None:
        self._tables = {kind: np.zeros((n, len(names))) for kind, (n, names) in sizes.items()}
        self._column = {kind: {name: i for i, name in enumerate(names)} for kind, (_, names) in sizes.items()}
        self.received = {kind: np.zeros(n, dtype=int) for kind, (n, _) in sizes.items()}

    def store(self, batch: MessageBatch) -> None:
        table, column = self._tables[batch.kind], self._column[batch.kind]
        for name, values in batch.fields.items():
            table[batch.channel, column[name]] = values
        self.received[batch.kind][batch.channel] += 1

    def __getitem__(self, key: tuple[str, str]) -> np.ndarray:
        kind, name = key
        return self._tables[kind][:, self._column[kind][name]]

    def table(self, kind: str) -> np.ndarray:
        """All fields of a kind, one row per channel, columns in the order the kind declared them."""
        return self._tables[kind]
