"""The ADMM in simulated time: round durations, timeouts, stale data and deadlines."""

from __future__ import annotations

import numpy as np
import pytest

from cyber.errors import CyberError
from cyber.network import ChannelSpec, build_network
from cyber.resilient_admm import CyberSetup, Timing, solve_resilient_admm
from cyber.timing import TimedTransport
from market.admm.driver import AdmmSettings, solve_admm
from market.instance import build_instance
from market.result import Status
from tests.conftest import SUMMER_NOON, feeder


@pytest.fixture(scope="module")
def inst():
    return build_instance(feeder("case15da"), interval=SUMMER_NOON, seed=1)


def timed(inst, timing: Timing, channel: ChannelSpec, max_iter: int = 3000, projection: str = "local"):
    setup = CyberSetup(network=build_network(inst, channel, seed=3), timing=timing)
    return solve_resilient_admm(inst, AdmmSettings(projection=projection, max_iter=max_iter), setup)


def rounds(projection: str, iterations: int, depth: int) -> int:
    """Rounds of a clearing: local -- the initial targets, then an x- and a y-round per iteration but none
    after the last x-round; sweep -- the opening round, then per iteration the trade round and one round per
    hop of the upward and of the downward sweep."""
    if projection == "local":
        return 2 * iterations
    return 1 + iterations * (1 + 2 * (depth - 1))


@pytest.mark.parametrize(("mode", "latency_ms", "projection"), [("sync", 0.5, "local"), ("async", 0.0, "local"),
                                                                ("sync", 0.5, "sweep")])
def test_a_network_that_keeps_up_gives_the_direct_iterates(inst, mode, latency_ms, projection):
    direct = solve_admm(inst, AdmmSettings(projection=projection, max_iter=3000))
    run = timed(inst, Timing(mode=mode, compute_ms=1.0), ChannelSpec("constant", mean_ms=latency_ms),
                projection=projection)
    assert np.allclose(run.admm.history.objective, direct.history.objective, rtol=0, atol=1e-9)
    # a sync round waits for its slowest message
    depth = int(inst.feeder.depth.max())
    assert run.clearing_ms == pytest.approx(rounds(projection, len(direct.history), depth) * (1.0 + latency_ms))
    assert run.messages["late"] == 0 and run.messages["lost"] == 0


def test_sync_rounds_wait_for_the_timeout_when_messages_are_lost(inst):
    run = timed(inst, Timing(mode="sync", timeout_ms=20.0, retransmit=False),
                ChannelSpec("constant", mean_ms=2.0, loss=0.05), max_iter=50)
    assert run.messages["lost"] > 0 and run.messages["retransmitted"] == run.messages["acks"] == 0
    # nearly every round loses a message, and then lasts compute + timeout
    assert run.clearing_ms > 0.8 * 2 * 50 * 21.0


def test_retransmitted_sync_rounds_get_every_message_and_end_when_the_last_arrives(inst):
    """Loss 5 %, 2 ms latency: a lost message is sent again after one round trip (4 ms), so every message of
    a round arrives before the 20 ms timeout -- the iterates are the lossless ones -- and a round lasts the
    compute time, the latency and a round trip per retransmission of its unluckiest message."""
    lossless = solve_admm(inst, AdmmSettings(projection="local", max_iter=60))
    run = timed(inst, Timing(mode="sync", timeout_ms=20.0), ChannelSpec("constant", mean_ms=2.0, loss=0.05),
                max_iter=60)
    assert np.allclose(run.admm.history.objective, lossless.history.objective, rtol=0, atol=1e-12)
    m = run.messages
    assert m["late"] == 0 and m["lost"] > 0
    assert m["retransmitted"] >= m["lost"]  # a lost message, and a lost acknowledgement, are sent again
    assert m["acks"] == m["sent"] + m["retransmitted"] - m["lost"]
    durations = run.clearing_ms / (2 * 60)
    assert 1.0 + 2.0 + 4.0 <= durations < 1.0 + 2.0 + 3 * 4.0  # most rounds retransmit once, few thrice
    old = timed(inst, Timing(mode="sync", timeout_ms=20.0, retransmit=False),
                ChannelSpec("constant", mean_ms=2.0, loss=0.05), max_iter=60)
    assert run.clearing_ms < 0.5 * old.clearing_ms


def test_async_rounds_without_a_barrier_do_not_wait_and_use_what_arrived_late(inst):
    run = timed(inst, Timing(mode="async", compute_ms=1.0, max_staleness=None), ChannelSpec("constant", mean_ms=2.5),
                max_iter=40)
    assert run.clearing_ms == pytest.approx(2 * 40 * 1.0)
    # a message sent in one round is used three rounds later; the first rounds' messages arrive after the end
    assert 0.9 * run.messages["sent"] < run.messages["late"] < run.messages["sent"]


def test_a_missed_deadline_stops_the_clearing(inst):
    run = timed(inst, Timing(mode="sync", deadline_ms=500.0), ChannelSpec("constant", mean_ms=10.0))
    assert run.deadline_missed and run.admm.result.status is Status.NOT_CONVERGED
    assert "deadline of 500 ms" in run.admm.result.message
    assert 500.0 < run.clearing_ms <= 500.0 + 11.0  # stopped in the round that crossed the deadline


def test_a_sweep_is_refused_asynchronous_rounds(inst):
    with pytest.raises(CyberError, match="asynchronous rounds"):
        timed(inst, Timing(mode="async"), ChannelSpec("constant", mean_ms=1.0), projection="sweep")


def test_bad_timing_is_refused(inst):
    with pytest.raises(CyberError, match="timing mode"):
        TimedTransport(build_network(inst), mode="lazy")
