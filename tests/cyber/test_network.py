"""Communication network: graph, seeded channel draws with the right statistics, lossy transport."""

from __future__ import annotations

import numpy as np
import pytest

from cyber.errors import CyberError
from cyber.network import ChannelSpec, NetworkTransport, build_network, communication_graph
from market.admm.driver import AdmmSettings, solve_admm
from market.instance import build_instance
from market.messages import IdealTransport, MessageBatch
from market.problem.clearing import solve_clearing
from tests.conftest import SUMMER_NOON, feeder


@pytest.fixture(scope="module")
def inst():
    return build_instance(feeder("case33bw"), interval=SUMMER_NOON, seed=1)


def batch_of(n: int, sender: int = 2, receiver: int = 1) -> MessageBatch:
    return MessageBatch("flow", "x", 1, np.full(n, sender), np.full(n, receiver), np.arange(n) % 4,
                        {"P": np.zeros(n), "Q": np.zeros(n)})


def test_graph_joins_feeder_neighbours_and_trading_partners(inst):
    g = communication_graph(inst)
    f = inst.feeder
    assert set(g.nodes) == set(range(1, f.n_buses))
    for j in range(2, f.n_buses):
        if f.parent[j] > 0:
            assert "feeder" in g.edges[f.parent[j], j]["kind"]
    for t in inst.trades:
        assert "trade" in g.edges[t.buyer, t.seller]["kind"]
    assert g.number_of_edges() <= (f.n_buses - 2) + len(inst.trades)


@pytest.mark.parametrize(("spec", "mean", "std"), [
    (ChannelSpec("constant", mean_ms=12.0), 12.0, 0.0),
    (ChannelSpec("normal", mean_ms=50.0, std_ms=5.0), 50.0, 5.0),
    (ChannelSpec("lognormal", mean_ms=20.0, std_ms=10.0), 20.0, 10.0),
    (ChannelSpec("constant", mean_ms=30.0, jitter_ms=3.0), 30.0, 3.0),
])
def test_latency_statistics(inst, spec, mean, std):
    net = build_network(inst, spec, seed=3)
    delay = net.transmit(batch_of(20000)).delay_ms
    assert delay.mean() == pytest.approx(mean, abs=4 * std / np.sqrt(delay.size) + 1e-9)
    assert delay.std() == pytest.approx(std, rel=0.05, abs=1e-9)
    assert delay.min() >= 0


def test_trace_latency_draws_only_measured_values(inst):
    trace = (3.0, 7.5, 40.0)
    delay = build_network(inst, ChannelSpec("trace", trace_ms=trace), seed=1).transmit(batch_of(3000)).delay_ms
    assert set(np.unique(delay)) == set(trace)


def test_loss_rate_and_bandwidth_delay(inst):
    net = build_network(inst, ChannelSpec(mean_ms=1.0, loss=0.1, bandwidth_kbps=64.0), seed=5)
    out = net.transmit(batch_of(20000))
    assert out.lost.mean() == pytest.approx(0.1, abs=4 * np.sqrt(0.1 * 0.9 / 20000))
    bits = 256 + 2 * 64  # header + two fields
    assert np.allclose(out.delay_ms, 1.0 + bits / 64.0)


def test_same_seed_same_draws_and_overrides_apply(inst):
    slow = ChannelSpec(mean_ms=500.0)
    a = build_network(inst, ChannelSpec("normal", 10.0, 2.0, loss=0.2), {(2, 1): slow}, seed=9)
    b = build_network(inst, ChannelSpec("normal", 10.0, 2.0, loss=0.2), {(2, 1): slow}, seed=9)
    batch = MessageBatch("flow", "x", 1, np.array([2, 3, 2]), np.array([1, 2, 1]), np.arange(3),
                         {"P": np.zeros(3)})
    out_a, out_b = a.transmit(batch), b.transmit(batch)
    assert np.array_equal(out_a.delay_ms, out_b.delay_ms) and np.array_equal(out_a.lost, out_b.lost)
    assert np.all(out_a.delay_ms[[0, 2]] == 500.0) and out_a.delay_ms[1] < 100


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"kind": "pareto"}, "kind"), ({"loss": 1.0}, "loss"), ({"mean_ms": -1.0}, "non-negative"),
    ({"kind": "trace"}, "trace_ms"), ({"bandwidth_kbps": 0.0}, "bandwidth"),
    ({"kind": "lognormal", "mean_ms": 0.0}, "lognormal"),
])
def test_bad_channel_specs(kwargs, message):
    with pytest.raises(CyberError, match=message):
        ChannelSpec(**kwargs)


def test_override_on_a_pair_that_does_not_talk_is_refused(inst):
    far = next(j for j in range(2, inst.feeder.n_buses) if not communication_graph(inst).has_edge(1, j))
    with pytest.raises(CyberError, match="neither neighbours nor trading partners"):
        build_network(inst, overrides={(1, far): ChannelSpec()})


def test_admm_over_the_network(inst):
    settings = AdmmSettings(max_iter=150)
    ideal = solve_admm(inst, settings, transport=IdealTransport())  # every hop a message, as over the network
    perfect = solve_admm(inst, settings, transport=NetworkTransport(build_network(inst, ChannelSpec(mean_ms=5.0))))
    assert np.array_equal(ideal.history.objective, perfect.history.objective)  # delays alone change no value
    lossy_transport = NetworkTransport(build_network(inst, ChannelSpec(mean_ms=5.0, loss=0.2), seed=2))
    lossy = solve_admm(inst, settings, transport=lossy_transport)
    assert lossy_transport.lost / lossy_transport.sent == pytest.approx(0.2, abs=0.01)
    assert not np.array_equal(ideal.history.objective, lossy.history.objective)


def test_admm_reaches_the_optimum_despite_five_percent_loss():
    inst = build_instance(feeder("case15da"), interval=SUMMER_NOON, seed=1)
    ref = solve_clearing(inst)
    run = solve_admm(inst, transport=NetworkTransport(build_network(inst, ChannelSpec(loss=0.05), seed=4)))
    assert run.result.info["converged"]
    assert abs(run.result.objective - ref.objective) <= 1e-4 * abs(ref.objective)
