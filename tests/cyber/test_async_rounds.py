"""Asynchronous rounds behind a local barrier of bounded staleness (:mod:`cyber.async_rounds`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cosim.interval import clear_interval
from cosim.scenario import load_scenario
from cyber.async_rounds import overdue_ms
from cyber.network import ChannelSpec, build_network
from cyber.resilient_admm import CyberSetup, Timing, solve_resilient_admm
from cyber.timing import TimedTransport
from market.admm.driver import AdmmSettings, solve_admm
from market.instance import build_instance
from market.messages import MessageBatch
from physical.profiles import interval_index
from tests.conftest import SUMMER_NOON, feeder


@pytest.fixture(scope="module")
def inst():
    return build_instance(feeder("case15da"), interval=SUMMER_NOON, seed=1)


def timed(inst, timing: Timing, channel: ChannelSpec, max_iter: int = 3000):
    setup = CyberSetup(network=build_network(inst, channel, seed=3), timing=timing)
    return solve_resilient_admm(inst, AdmmSettings(projection="local", max_iter=max_iter), setup)


def test_a_barrier_of_staleness_zero_on_a_lossless_network_gives_the_direct_iterates_sooner_than_sync_rounds(inst):
    """Every value is the current iteration's, as in a synchronous round -- but an agent waits only for its own
    neighbours, never for the slowest message of the feeder: the same draws, earlier."""
    jittery = ChannelSpec("constant", mean_ms=2.0, jitter_ms=3.0)
    direct = solve_admm(inst, AdmmSettings(projection="local", max_iter=3000))
    local = timed(inst, Timing(mode="async", max_staleness=0), jittery)
    rounds = timed(inst, Timing(mode="sync", retransmit=False), jittery)
    for run in (local, rounds):
        assert np.allclose(run.admm.history.objective, direct.history.objective, rtol=0, atol=1e-9)
    assert 2 * len(direct.history) * 1.0 < local.clearing_ms < 0.9 * rounds.clearing_ms


def test_no_value_is_older_than_the_bound_while_barrier_free_rounds_use_older_ones(inst):
    """Child-to-parent messages over a lossless, jittery channel (2 +- 20 ms against 1 ms rounds): behind the
    barrier every parent holds, on every channel, a value at most ``max_staleness`` iterations old after
    every round; without it, values many iterations old are used."""
    child = np.flatnonzero(inst.feeder.parent > 0)
    parent = inst.feeder.parent[child]

    def oldest_age(bound: int | None) -> int:
        net = build_network(inst, ChannelSpec("constant", mean_ms=2.0, jitter_ms=20.0), seed=5)
        transport = TimedTransport(net, "async", timeout_ms=1000.0, max_staleness=bound)
        newest = np.full(len(child), -1)
        worst = 0
        for k in range(1, 80):
            batch = MessageBatch("flow", "x", k, child, parent, np.arange(len(child)),
                                 {"P": np.full(len(child), float(k))})
            got = transport.deliver(batch)
            newest[got.channel] = np.maximum(newest[got.channel], got.fields["P"].astype(int))
            worst = max(worst, k - int(newest.min()))
        return worst

    assert oldest_age(2) <= 2
    assert oldest_age(None) > 8


def test_a_channel_is_given_up_once_a_missing_message_is_more_likely_lost_than_late():
    """Loss 20 %: a message still missing at ``t`` was lost with posterior ``0.2 / (0.2 + 0.8 (1 - F(t)))``,
    one half where ``F(t) = 0.75``; for a normal delay of 10 +- 50 ms that is 10 + 50 z_0.75 = 43.7 ms."""
    assert overdue_ms(ChannelSpec("normal", mean_ms=10.0, std_ms=50.0, loss=0.2), 1) == pytest.approx(
        10.0 + 50.0 * 0.6745, rel=0.02)
    assert overdue_ms(ChannelSpec("constant", mean_ms=10.0, jitter_ms=5.0), 1) == float("inf")


def test_async_rounds_clear_case15da_over_the_lossy_network_at_its_optimum():
    """20 % loss, 10 ms latency with 50 ms of jitter (scenarios/lossy_case15da_async.toml): behind the barrier
    the market clears within its deadline, without falling back, within 1e-4 of the centralized optimum."""
    scenario = load_scenario(Path("scenarios/lossy_case15da_async.toml"))
    clearing = clear_interval(scenario, feeder("case15da"), interval_index(scenario.start))
    record = clearing.record()
    assert record["status"] == "optimal" and not clearing.fallback
    assert record["optimality_gap"] <= 1e-4
    assert record["clearing_ms"] < scenario.network.deadline_s * 1e3
    assert record["messages_lost"] > 0.15 * record["messages_sent"] and record["messages_late"] > 0
