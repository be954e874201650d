"""Acknowledged, retransmitted exchanges: the timeout rule against the round trip's own distribution, and the
copies and arrival times against the geometric law of an ARQ on a channel of constant latency."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from cyber.network import FIELD_BITS, HEADER_BITS, ChannelSpec, build_network
from cyber.retransmission import Retransmitter, retransmission_timeout_ms
from market.instance import build_instance
from market.messages import MessageBatch
from tests.conftest import SUMMER_NOON, feeder


@pytest.fixture(scope="module")
def inst():
    return build_instance(feeder("case15da"), interval=SUMMER_NOON, seed=1)


def batch_of(n: int) -> MessageBatch:
    return MessageBatch("flow", "x", 1, np.full(n, 2), np.full(n, 1), np.arange(n), {"P": np.zeros(n)})


def test_a_lossless_channel_never_retransmits():
    assert retransmission_timeout_ms(ChannelSpec(mean_ms=5.0, jitter_ms=2.0), ChannelSpec(mean_ms=5.0), 2) == np.inf


def test_on_a_constant_channel_the_timeout_is_the_round_trip_with_serialisation():
    spec = ChannelSpec(mean_ms=7.0, loss=0.1, bandwidth_kbps=100.0)
    want = 2 * 7.0 + (HEADER_BITS + 2 * FIELD_BITS) / 100.0 + HEADER_BITS / 100.0
    assert retransmission_timeout_ms(spec, spec, 2) == pytest.approx(want)


@pytest.mark.parametrize(("loss", "level"), [
    (0.01, 1 - (1 - 0.99**2) / 0.99**2),  # loss as likely as a delay: P(RTT > t) = l / (1 - l)
    (0.05, 1 - (1 - 0.95**2) / 0.95**2),
    (0.2, 0.5),  # the posterior rule would resend earlier than the median round trip
    (0.4, 0.5),  # ... or at once
])
def test_the_timeout_is_the_round_trip_quantile_where_a_loss_is_as_likely_as_a_delay(loss, level):
    # normal latencies far from zero: the round trip is normal with twice the mean and sqrt(2) x the spread
    spec = ChannelSpec("normal", mean_ms=100.0, std_ms=10.0, loss=loss)
    want = 200.0 + np.sqrt(2) * 10.0 * norm.ppf(level)
    assert retransmission_timeout_ms(spec, spec, 1) == pytest.approx(want, abs=0.5)


def test_copies_and_arrivals_follow_the_geometric_law_of_the_protocol(inst):
    latency, p, n = 4.0, 0.2, 40_000
    arq = Retransmitter(build_network(inst, ChannelSpec(mean_ms=latency, loss=p), seed=2))
    sent = arq.send(batch_of(n), horizon_ms=np.inf)
    rto = 2 * latency
    # a copy is sent until one round trip succeeds: (1 - p)^2 per copy
    assert sent.copies.mean() == pytest.approx(1 / (1 - p) ** 2, rel=0.02)
    # the first copy that gets through is the j-th with probability p^j (1 - p), and arrives j timeouts later
    assert np.isfinite(sent.arrival_ms).all()
    assert sent.arrival_ms.mean() == pytest.approx(latency + rto * p / (1 - p), rel=0.02)
    assert set(np.unique((sent.arrival_ms - latency) / rto)) <= set(range(20))
    assert sent.lost == pytest.approx(p * sent.copies.sum(), rel=0.03)
    assert sent.acks == sent.copies.sum() - sent.lost


def test_no_copy_is_sent_once_the_receiver_stopped_waiting(inst):
    latency, p, n = 4.0, 0.5, 20_000
    arq = Retransmitter(build_network(inst, ChannelSpec(mean_ms=latency, loss=p), seed=4))
    horizon = 2.5 * 2 * latency  # copies at 0, 8 and 16 ms
    sent = arq.send(batch_of(n), horizon_ms=horizon)
    assert sent.copies.max() == 3
    missing = ~np.isfinite(sent.arrival_ms)
    assert missing.mean() == pytest.approx(p**3, rel=0.1)


def test_the_same_seed_gives_the_same_exchanges(inst):
    spec = ChannelSpec(mean_ms=10.0, jitter_ms=50.0, loss=0.2)
    a, b = (Retransmitter(build_network(inst, spec, seed=9)).send(batch_of(500), 150.0) for _ in range(2))
    assert np.array_equal(a.arrival_ms, b.arrival_ms) and np.array_equal(a.copies, b.copies)


def test_each_channel_has_the_timeout_of_its_own_round_trip(inst):
    """A lossy channel 2 -> 1 among lossless ones: messages over it and their acknowledgements over 1 -> 2,
    or messages over 1 -> 2 and their acknowledgements over it, are retransmitted after 20 + 5 ms; the others
    never."""
    net = build_network(inst, ChannelSpec(mean_ms=5.0), {(2, 1): ChannelSpec(mean_ms=20.0, loss=0.2)}, seed=1)
    batch = MessageBatch("flow", "x", 1, np.array([2, 1, 3]), np.array([1, 2, 2]), np.arange(3), {"P": np.zeros(3)})
    arq = Retransmitter(net)
    ack = MessageBatch("ack", "x", 1, batch.receiver, batch.sender, batch.channel)
    timeouts = arq.timeouts_ms(net.spec_index(batch), net.spec_index(ack), 1)
    assert timeouts.tolist() == [pytest.approx(25.0), pytest.approx(25.0), np.inf]
