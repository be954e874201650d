"""The private exchange on the network: its messages at their real size, its crypto in simulated time.

In-process, over a :class:`~cyber.timing.TimedTransport`, in the protocol's clear arithmetic (the same messages
and the same modelled crypto time as the encrypted run: both follow from the trade graph and the key size).
"""

from __future__ import annotations

import numpy as np
import pytest
from phe import paillier

from cyber.network import FIELD_BITS, HEADER_BITS, ChannelSpec, build_network
from cyber.privacy.costs import CryptoCosts, costs_for
from cyber.privacy.pairs import REQUEST, RESPONSE, SEED, STEP, SecurePairs
from cyber.privacy.setup import PrivacySetup, private_settings, secure_pairs
from cyber.timing import TimedTransport
from market.admm.driver import AdmmSettings, solve_admm
from market.instance import build_instance
from market.problem.clearing import solve_clearing
from tests.conftest import SUMMER_NOON, feeder

ITERATIONS = 3


@pytest.fixture(scope="module")
def inst():
    return build_instance(feeder("case15da"), interval=SUMMER_NOON, seed=0)


def _settings(iterations: int = ITERATIONS) -> AdmmSettings:
    return private_settings(AdmmSettings(relaxation=1.0, max_iter=iterations))


def _pairs(inst, bits: int = 1024, costs: CryptoCosts | None = None) -> SecurePairs:
    pairs = secure_pairs(inst, PrivacySetup("paillier", bits), 0, encrypted=False)
    if costs is not None:
        pairs.costs = costs
    return pairs


def _ciphertext_bytes(bits: int) -> int:
    """A Paillier ciphertext's size from phe: an integer below n^2, written in whole bytes."""
    public, _ = paillier.generate_paillier_keypair(n_length=bits)
    return -(-public.nsquare.bit_length() // 8)


@pytest.mark.parametrize("bits", [1024, 2048])
def test_the_wire_carries_every_ciphertext_at_its_size(inst, bits):
    network = build_network(inst, ChannelSpec(mean_ms=2.0, bandwidth_kbps=1000.0), seed=0)
    transport = TimedTransport(network, compute_ms=0.0, retransmit=False)
    pairs = _pairs(inst, bits)
    run = solve_admm(inst, _settings(), transport, pairs=pairs)
    assert run.result.info["iterations"] == ITERATIONS
    m, ct, header = len(inst.trades), _ciphertext_bytes(bits), HEADER_BITS // 8
    wire = transport.wire.bytes_by_kind
    # one pad seed per trade, then per iteration and trade a request and a response (ciphertexts), a padded step
    assert wire[SEED] == m * (header + ct)
    assert wire[REQUEST] == wire[RESPONSE] == ITERATIONS * m * (header + ct)
    assert wire[STEP] == ITERATIONS * m * (header + 16)
    assert pairs.bytes_sent.sum() == m * ct + ITERATIONS * m * (2 * ct + 16)
    assert "trade_to_seller" not in wire and "trade_to_buyer" not in wire  # no trade value in the clear


def test_privacy_costs_at_least_the_bandwidth_delay_of_its_bytes(inst):
    latency, kbps, bits = 3.0, 500.0, 1024
    network = {"kind": "constant", "mean_ms": latency, "bandwidth_kbps": kbps}

    def clearing_ms(pairs: SecurePairs | None) -> float:
        transport = TimedTransport(build_network(inst, ChannelSpec(**network), seed=0), compute_ms=0.0,
                                   retransmit=False)
        cfg = _settings() if pairs is not None else AdmmSettings(relaxation=1.0, max_iter=ITERATIONS,
                                                                  tol_primal=1e-7, tol_dual=3e-7)
        assert solve_admm(inst, cfg, transport, pairs=pairs).result.info["iterations"] == ITERATIONS
        return transport.finish()

    plain = clearing_ms(None)
    ct_bits = 8 * _ciphertext_bytes(bits)
    # per iteration the request replaces the plain trade message (one 64-bit field) and two rounds follow (the
    # responses, the padded steps); before the first, the pad seeds
    per_iteration = (ct_bits - FIELD_BITS) / kbps + 2 * latency + (HEADER_BITS + ct_bits + HEADER_BITS + 128) / kbps
    extra = ITERATIONS * per_iteration + latency + (HEADER_BITS + ct_bits) / kbps
    assert clearing_ms(_pairs(inst, bits, CryptoCosts.zero())) - plain == pytest.approx(extra, rel=1e-12)
    # with the crypto charged the clearing takes longer still
    assert clearing_ms(_pairs(inst, bits)) - plain > extra + ITERATIONS * costs_for(bits).decrypt / 1e3


def test_a_round_costs_its_slowest_agent(inst):
    costs = CryptoCosts(encrypt=1000.0, respond=300.0, add=10.0, decrypt=5000.0, pad=2.0)  # microseconds
    pairs = _pairs(inst, 1024, costs)
    buyers = np.array([t.buyer for t in inst.trades]) - 1
    sellers = np.array([t.seller for t in inst.trades]) - 1
    # the structure the count below assumes: every seller decrypts all its trades (one packed ciphertext)
    assert np.array_equal(pairs.decryptor, sellers) and np.array_equal(pairs.other, buyers)
    assert np.bincount(sellers).max() <= (1024 - 2) // 80
    network = build_network(inst, ChannelSpec(), seed=0)  # no latency, no bandwidth limit
    transport = TimedTransport(network, compute_ms=0.0, retransmit=False)
    solve_admm(inst, _settings(), transport, pairs=pairs)
    per_seller, per_buyer = np.bincount(sellers)[np.unique(sellers)], np.bincount(buyers)[np.unique(buyers)]

    def rounds(reduce) -> float:
        """Seeds; per iteration requests, responses (the first with the seeds' decryption, later ones with the
        last step's pad removal) and steps (packed responses added up, one decryption, the pads)."""
        seeds = reduce(per_seller * costs.encrypt)
        requests = reduce(per_seller * costs.encrypt)
        first = reduce(per_buyer * (costs.decrypt + costs.respond))
        later = reduce(per_buyer * (costs.pad + costs.respond))
        steps = reduce((per_seller - 1) * costs.add + costs.decrypt + per_seller * costs.pad)
        return (seeds + ITERATIONS * (requests + steps) + first + (ITERATIONS - 1) * later) / 1e3

    assert transport.finish() == pytest.approx(rounds(np.max), rel=1e-12)
    assert rounds(np.max) < rounds(np.sum) / 3
    # the model's crypto over all agents: the same operations, the last pad removals included
    m = len(inst.trades)
    total = m * (costs.encrypt + costs.decrypt) + ITERATIONS * (
        m * (costs.encrypt + costs.respond + 2 * costs.pad) + np.sum((per_seller - 1) * costs.add + costs.decrypt))
    assert pairs.model_s.sum() == pytest.approx(total / 1e6, rel=1e-12)


def test_a_lost_step_stops_the_clearing(inst):
    lossy = ChannelSpec(mean_ms=1.0, loss=0.2)
    transport = TimedTransport(build_network(inst, lossy, seed=3), compute_ms=0.0, retransmit=False)
    run = solve_admm(inst, _settings(50), transport, pairs=_pairs(inst))
    assert not run.result.info["converged"] and "did not arrive" in run.result.message
    # with retransmissions every step arrives within the round: the clearing goes on, as without loss
    transport = TimedTransport(build_network(inst, lossy, seed=3), compute_ms=0.0, retransmit=True)
    pairs = _pairs(inst)
    run = solve_admm(inst, _settings(20), transport, pairs=pairs)
    assert pairs.failure is None and run.result.info["iterations"] == 20 and transport.retransmitted > 0


def test_a_late_share_stops_a_hybrid_clearing(inst):
    # every message later than the round's timeout: a parent would add a stale share, so the clearing stops
    late = ChannelSpec(mean_ms=150.0)
    transport = TimedTransport(build_network(inst, late, seed=0), compute_ms=0.0, timeout_ms=100.0, retransmit=False)
    pairs = secure_pairs(inst, PrivacySetup("hybrid", 1024), 0, encrypted=False)
    run = solve_admm(inst, _settings(5), transport, pairs=pairs)
    assert run.result.info["iterations"] == 1 and "subtree flows" in run.result.message


def test_lost_responses_cost_their_trades_a_step_and_the_clearing_still_reaches_the_optimum(inst):
    pairs = _pairs(inst)
    lossy = ChannelSpec(mean_ms=1.0, loss=0.1)  # on every response's channel (and nothing else of a trade's)
    overrides = {(int(o) + 1, int(d) + 1): lossy for d, o in zip(pairs.decryptor, pairs.other, strict=True)}
    transport = TimedTransport(build_network(inst, ChannelSpec(mean_ms=1.0), overrides, seed=0), compute_ms=0.0,
                               retransmit=False)
    run = solve_admm(inst, _settings(3000), transport, pairs=pairs)
    reference = solve_clearing(inst).objective
    assert transport.lost > 100 and pairs.failure is None and run.result.info["converged"]
    assert abs(run.result.objective - reference) <= 1e-5 * abs(reference)


def test_the_cost_of_a_key_size_between_two_measured_ones_lies_between_them():
    low, high, mid = costs_for(1024).us(), costs_for(2048).us(), costs_for(1448).us()  # 1448 ~ sqrt(1024 2048)
    for op in low:
        assert min(low[op], high[op]) <= mid[op] <= max(low[op], high[op])
        assert mid[op] == pytest.approx((low[op] * high[op]) ** 0.5, rel=1e-3)  # log-log: the geometric mean
    assert costs_for(8192).decrypt > costs_for(4096).decrypt  # extrapolated along the last segment
