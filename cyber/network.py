"""The communication network that carries the market's messages: who talks to whom, and how well.

The communication graph joins every prosumer to its physical neighbours (parent and children on the feeder)
and to its trading partners. Every directed *channel* (sender -> receiver) has a latency distribution
(constant, normal, lognormal or a measured trace), jitter, a loss probability and optionally a bandwidth
that adds a serialisation delay per message. Every draw comes from one seeded generator, in the order the
messages are sent, so the same scenario gives the same deliveries.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import networkx as nx
import numpy as np

from cyber.errors import CyberError
from market.instance import MarketInstance
from market.messages import MessageBatch

LATENCY_KINDS = ("constant", "normal", "lognormal", "trace")
#: Bits per message on the wire: header (sender, receiver, iteration, kind) plus 64 bits per field.
HEADER_BITS = 256
FIELD_BITS = 64


@dataclass(frozen=True)
class ChannelSpec:
    """Quality of one directed channel; times in milliseconds.

    ``mean_ms``/``std_ms`` parameterise the normal and lognormal kinds (the lognormal's own mean and
    standard deviation, not those of its logarithm); ``trace_ms`` is a measured sample drawn from with
    replacement. ``jitter_ms`` adds zero-mean normal noise to every draw; latency never goes below zero.
    """

    kind: str = "constant"
    mean_ms: float = 0.0
    std_ms: float = 0.0
    trace_ms: tuple[float, ...] = ()
    jitter_ms: float = 0.0
    loss: float = 0.0
    bandwidth_kbps: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in LATENCY_KINDS:
            raise CyberError(f"channel kind: expected one of {LATENCY_KINDS}, got {self.kind!r}")
        if not (math.isfinite(self.mean_ms) and self.mean_ms >= 0 and self.std_ms >= 0 and self.jitter_ms >= 0):
            raise CyberError("channel: mean_ms, std_ms and jitter_ms must be finite and non-negative")
        if self.kind == "lognormal" and self.mean_ms <= 0:
            raise CyberError("channel kind lognormal: mean_ms must be positive")
        if self.kind == "trace" and (not self.trace_ms or min(self.trace_ms) < 0):
            raise CyberError("channel kind trace: trace_ms must hold non-negative samples")
        if not 0 <= self.loss < 1:
            raise CyberError(f"channel loss: expected a probability in [0, 1), got {self.loss}")
        if self.bandwidth_kbps is not None and not self.bandwidth_kbps > 0:
            raise CyberError("channel bandwidth_kbps: expected a positive number or none")

    def draw_latency_ms(self, rng: np.random.Generator, size: int) -> np.ndarray:
        if self.kind == "constant":
            base = np.full(size, self.mean_ms)
        elif self.kind == "normal":
            base = rng.normal(self.mean_ms, self.std_ms, size)
        elif self.kind == "lognormal":
            sigma2 = math.log1p((self.std_ms / self.mean_ms) ** 2)
            base = rng.lognormal(math.log(self.mean_ms) - sigma2 / 2, math.sqrt(sigma2), size)
        else:
            base = rng.choice(np.asarray(self.trace_ms, dtype=float), size)
        if self.jitter_ms > 0:
            base = base + rng.normal(0.0, self.jitter_ms, size)
        return np.maximum(base, 0.0)


def message_bits(batch: MessageBatch) -> int:
    """Bits of one message of ``batch`` on the wire: the header and its 64-bit words."""
    return HEADER_BITS + FIELD_BITS * batch.words


class WireCount:
    """Bytes put on the wire per message kind (every copy, headers included): what a transport counts."""

    def __init__(self) -> None:
        self.bytes_by_kind: dict[str, int] = {}

    def count(self, batch: MessageBatch, copies: int, kind: str | None = None) -> None:
        """``copies`` messages of ``batch``'s size (of ``kind``, default the batch's)."""
        kind = kind or batch.kind
        self.bytes_by_kind[kind] = self.bytes_by_kind.get(kind, 0) + copies * message_bits(batch) // 8

    @property
    def bytes_sent(self) -> int:
        return sum(self.bytes_by_kind.values())


@dataclass(frozen=True)
class Delivery:
    """What the network did with a batch: per message, lost or not and the delay it would take."""

    lost: np.ndarray
    delay_ms: np.ndarray


@dataclass(eq=False)
class CommNetwork:
    """Communication graph and channel qualities; ``transmit`` draws losses and delays for a batch."""

    graph: nx.Graph
    default: ChannelSpec
    overrides: dict[tuple[int, int], ChannelSpec]
    seed: int
    rng: np.random.Generator = field(init=False, repr=False)
    _specs: list[ChannelSpec] = field(init=False, repr=False)
    _index_cache: dict[bytes, np.ndarray] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)
        self._specs = [self.default, *dict.fromkeys(self.overrides.values())]
        self._index_cache = {}
        for sender, receiver in self.overrides:
            if not self.graph.has_edge(sender, receiver):
                raise CyberError(f"channel {sender}->{receiver}: the two agents are neither neighbours "
                                 "nor trading partners")

    @property
    def specs(self) -> list[ChannelSpec]:
        """The channel classes :meth:`spec_index` points into."""
        return self._specs

    def channel(self, sender: int, receiver: int) -> ChannelSpec:
        return self.overrides.get((sender, receiver), self.default)

    def transmit(self, batch: MessageBatch) -> Delivery:
        """Losses and delays of every message in ``batch``, drawn channel class by channel class."""
        return self.draw(self.spec_index(batch), message_bits(batch))

    def draw(self, which: np.ndarray, bits: int) -> Delivery:
        """Losses and delays of messages of ``bits`` bits on channels of the classes ``which``
        (:meth:`spec_index`), drawn class by class."""
        n = len(which)
        lost = np.zeros(n, dtype=bool)
        delay = np.zeros(n)
        for k, spec in enumerate(self._specs):
            rows = np.flatnonzero(which == k)
            if rows.size == 0:
                continue
            delay[rows] = spec.draw_latency_ms(self.rng, rows.size)
            if spec.bandwidth_kbps is not None:
                delay[rows] += bits / spec.bandwidth_kbps  # kbit/s = bit/ms
            if spec.loss > 0:
                lost[rows] = self.rng.random(rows.size) < spec.loss
        return Delivery(lost, delay)

    def spec_index(self, batch: MessageBatch) -> np.ndarray:
        """Index into ``_specs`` of every message's channel; batches repeat, so the answer is cached."""
        key = batch.sender.tobytes() + b"|" + batch.receiver.tobytes()
        if key not in self._index_cache:
            position = {spec: k for k, spec in enumerate(self._specs)}
            self._index_cache[key] = np.array(
                [position[self.channel(int(s), int(r))] for s, r in zip(batch.sender, batch.receiver, strict=True)],
                dtype=int)
        return self._index_cache[key]


def communication_graph(instance: MarketInstance) -> nx.Graph:
    """Prosumers (by bus number) joined to physical neighbours (``kind='feeder'``) and partners (``'trade'``)."""
    g = nx.Graph()
    f = instance.feeder
    g.add_nodes_from(range(1, f.n_buses))
    for j in range(1, f.n_buses):
        if f.parent[j] > 0:
            g.add_edge(int(f.parent[j]), j, kind="feeder")
    for t in instance.trades:
        if g.has_edge(t.buyer, t.seller):
            g.edges[t.buyer, t.seller]["kind"] = "feeder+trade"
        else:
            g.add_edge(t.buyer, t.seller, kind="trade")
    return g


def build_network(instance: MarketInstance, default: ChannelSpec | None = None,
                  overrides: Mapping[tuple[int, int], ChannelSpec] | None = None, seed: int = 0) -> CommNetwork:
    return CommNetwork(communication_graph(instance), default or ChannelSpec(), dict(overrides or {}), seed)


class NetworkTransport:
    """In-process transport over a :class:`CommNetwork`: lost messages never arrive (the receiver keeps its
    last value: stale data), delivered ones arrive unchanged; delays are recorded, not waited for (the
    co-simulation turns them into simulated time)."""

    def __init__(self, network: CommNetwork) -> None:
        self.network = network
        self.sent = 0
        self.lost = 0
        self.delay_ms_total = 0.0
        self.wire = WireCount()

    def deliver(self, batch: MessageBatch) -> MessageBatch:
        outcome = self.network.transmit(batch)
        self.sent += len(batch)
        self.wire.count(batch, len(batch))
        self.lost += int(outcome.lost.sum())
        self.delay_ms_total += float(outcome.delay_ms[~outcome.lost].sum())
        return batch.subset(~outcome.lost)
