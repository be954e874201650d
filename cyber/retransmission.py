"""Acknowledged, retransmitted exchanges: every message is acknowledged by its receiver, and its sender sends
it again while no acknowledgement has come back within a retransmission timeout (an ARQ protocol).

The timeout of a channel comes from its latency distribution and loss rate (:func:`retransmission_timeout_ms`):
a message whose acknowledgement has not come back after ``t`` ms was lost (the message or its
acknowledgement) with posterior probability ``l / (l + (1 - l) (1 - F(t)))``, ``l`` the probability that
one of the two is lost and ``F`` the distribution of the round trip (message out, acknowledgement back). The
sender retransmits as soon as a loss has become at least as likely as a delay (posterior >= 1/2), but not
before the median round trip: earlier, most missing acknowledgements are only slow, and on a channel that
loses more than 29 % of the round trips the posterior rule alone would resend at once, without end. A lossless
channel never retransmits. Retransmissions of one message are one timeout apart (no back-off: the simulated
channels do not congest), and every copy and acknowledgement is drawn from the network like any message, so
they cost simulated time and count as messages.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cyber.network import FIELD_BITS, HEADER_BITS, ChannelSpec, CommNetwork
from market.messages import MessageBatch

#: Round trips drawn to estimate a channel's round-trip quantile (from a generator of its own, so the
#: network's draws do not depend on it); the quantile's sampling error is then below a percent of its spread.
RTT_SAMPLES = 20_000
#: Never retransmit before this quantile of the round trip (see the module docstring).
MIN_QUANTILE = 0.5


def one_way_ms(spec: ChannelSpec, rng: np.random.Generator, bits: int) -> np.ndarray:
    """``RTT_SAMPLES`` one-way delays of a message of ``bits`` bits over a channel of ``spec``."""
    delay = spec.draw_latency_ms(rng, RTT_SAMPLES)
    return delay + bits / spec.bandwidth_kbps if spec.bandwidth_kbps is not None else delay


def retransmission_timeout_ms(out: ChannelSpec, back: ChannelSpec, n_fields: int) -> float:
    """The retransmission timeout of messages of ``n_fields`` fields sent over ``out`` and acknowledged over
    ``back`` (header only): the round-trip quantile at which a missing acknowledgement means a loss at least
    as likely as a delay, at least the median round trip; infinite on a lossless round trip."""
    lost = 1.0 - (1.0 - out.loss) * (1.0 - back.loss)
    if lost == 0.0:
        return float("inf")
    level = max(MIN_QUANTILE, 1.0 - lost / (1.0 - lost))
    rng = np.random.default_rng(0)
    rtt = one_way_ms(out, rng, HEADER_BITS + FIELD_BITS * n_fields) + one_way_ms(back, rng, HEADER_BITS)
    return float(np.quantile(rtt, level))


@dataclass(frozen=True)
class ArqOutcome:
    """What acknowledged exchanges of a batch did within their horizon, per message and in total.

    ``arrival_ms``: when the first copy arrived, after the send (``inf`` if none did); ``copies``: how many
    times each message was sent; ``lost``: copies lost; ``acks``: acknowledgements sent (one per copy that
    arrived)."""

    arrival_ms: np.ndarray
    copies: np.ndarray
    lost: int
    acks: int


class Retransmitter:
    """Sends batches over ``network`` with acknowledgements and retransmissions; timeouts cached per channel."""

    def __init__(self, network: CommNetwork) -> None:
        self.network = network
        # per message size: the timeout of every (out, back) pair of channel classes, NaN until first needed
        self._timeout: dict[int, np.ndarray] = {}

    def timeouts_ms(self, out: np.ndarray, back: np.ndarray, n_fields: int) -> np.ndarray:
        """The retransmission timeout of every message whose channel is of class ``out`` and whose reverse
        channel is of class ``back`` (:meth:`~cyber.network.CommNetwork.spec_index`)."""
        specs = self.network.specs
        table = self._timeout.setdefault(n_fields, np.full((len(specs), len(specs)), np.nan))
        result = table[out, back]
        missing = np.isnan(result)
        if missing.any():
            for pair in set(zip(out[missing].tolist(), back[missing].tolist(), strict=True)):
                table[pair] = retransmission_timeout_ms(specs[pair[0]], specs[pair[1]], n_fields)
            result = table[out, back]
        return result

    def send(self, batch: MessageBatch, horizon_ms: float) -> ArqOutcome:
        """Send every message of ``batch`` and retransmit it while unacknowledged, until ``horizon_ms`` after
        the send (when the receiver stops waiting); copies and acknowledgements are drawn attempt by attempt,
        so the draws are reproducible."""
        net = self.network
        out, back = net.spec_index(batch), net.spec_index(_acknowledgements(batch))
        timeout = self.timeouts_ms(out, back, batch.words)
        bits = HEADER_BITS + FIELD_BITS * batch.words
        n = len(batch)
        arrival = np.full(n, np.inf)
        acked = np.full(n, np.inf)
        copies = np.zeros(n, dtype=int)
        lost = acks = 0
        at = np.zeros(n)
        while True:
            rows = np.flatnonzero((at < acked) & (at < horizon_ms))
            if rows.size == 0:
                break
            outcome = net.draw(out[rows], bits)
            copies[rows] += 1
            lost += int(outcome.lost.sum())
            got = rows[~outcome.lost]
            when = at[got] + outcome.delay_ms[~outcome.lost]
            arrival[got] = np.minimum(arrival[got], when)
            acks += got.size
            if got.size:
                ack = net.draw(back[got], HEADER_BITS)
                ok = ~ack.lost
                acked[got[ok]] = np.minimum(acked[got[ok]], when[ok] + ack.delay_ms[ok])
            at = at + timeout
        return ArqOutcome(arrival, copies, lost, acks)


def _acknowledgements(batch: MessageBatch) -> MessageBatch:
    """The receivers' acknowledgements of ``batch``: header only, receiver to sender."""
    return MessageBatch(f"{batch.kind}_ack", batch.phase, batch.iteration, batch.receiver, batch.sender,
                        batch.channel, {}, batch.stage)
