"""The secure pair exchange: its coefficient's feasible range, exactness against the plain ADMM, the encrypted
arithmetic equal to the clear one, and what a buyer can reconstruct of its seller's trade."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cyber.errors import CyberError
from cyber.privacy.coefficient import THETA_MAX, CoefficientRange, check_relaxation
from cyber.privacy.paillier import generate_keys
from cyber.privacy.pairs import SecurePairs, decrypting_sides, offline_jobs
from cyber.privacy.setup import private_settings
from market.admm.driver import AdmmSettings, solve_admm
from market.instance import build_instance
from market.problem.clearing import solve_clearing
from tests.conftest import feeder

PRIVATE = private_settings(AdmmSettings(projection="sweep", relaxation=1.0))  # per-trade balancing on


def _pair_iteration(mu_b: float, mu_s: float, beta: float, theta: float) -> np.ndarray:
    """The pair's linear iteration on (y_b, y_s, u_b, u_s): local updates x = mu (y - u), then the update of
    cyber.privacy.coefficient, written out independently of the module."""
    cols = []
    for e in np.eye(4):
        yb, ys, ub, us = e
        xb, xs = mu_b * (yb - ub), mu_s * (ys - us)
        d = xs - xb
        cols.append([xb + theta * beta * d, xs - theta * (1 - beta) * d, ub - theta * beta * d,
                     us + theta * (1 - beta) * d])
    return np.array(cols).T


@pytest.mark.parametrize("beta", [0.1, 0.5, 0.9])
def test_the_derived_bound_is_where_the_pair_iteration_stops_being_stable(beta):
    slopes = np.linspace(0.05, 1.0, 12)
    radius = {theta: max(np.abs(np.linalg.eigvals(_pair_iteration(a, b, beta, theta))).max()
                         for a in slopes for b in slopes) for theta in (0.25, 1.0, 1.3, 1.37)}
    assert radius[0.25] <= 1 + 1e-9 and radius[1.0] <= 1 + 1e-9 and radius[1.3] <= 1 + 1e-9
    assert radius[1.37] > 1.01  # past 4/3 some slope diverges
    assert 1.3 < THETA_MAX < 1.37


@pytest.mark.parametrize("low, high", [(0.49, 1.0), (0.5, 1.1548), (1.0, 0.9), (0.0, 1.0), (0.7, 2.0),
                                       (float("nan"), 1.0), (0.6, float("inf"))])
def test_coefficients_outside_the_feasible_range_are_refused(low, high):
    with pytest.raises(CyberError, match="coefficient range"):
        CoefficientRange(low, high)


def test_over_relaxation_and_the_local_splitting_are_refused_with_privacy():
    with pytest.raises(CyberError, match="relaxation 1"):
        check_relaxation(1.8)
    with pytest.raises(CyberError, match="relaxation 1"):
        private_settings(AdmmSettings())
    with pytest.raises(CyberError, match="projection sweep"):
        private_settings(AdmmSettings(projection="local", relaxation=1.0))


def _pairs(instance, low, high, keys=None, observe=False, seed=0):
    buyer = np.array([t.buyer for t in instance.trades]) - 1
    seller = np.array([t.seller for t in instance.trades]) - 1
    return SecurePairs(len(instance.agents), buyer, seller, CoefficientRange(low, high), seed, keys, observe)


@pytest.mark.parametrize("low, high", [(0.5, 0.5), (math.sqrt(THETA_MAX) - 1e-4, math.sqrt(THETA_MAX) - 1e-4),
                                       (0.5, 1.15)])
def test_at_the_edges_of_the_range_the_private_clearing_reaches_the_plain_optimum(low, high):
    instance = build_instance(feeder("case15da"), interval="2016-06-21T09:00", seed=3)
    reference = solve_clearing(instance)
    plain = solve_admm(instance, PRIVATE).result
    private = solve_admm(instance, PRIVATE, pairs=_pairs(instance, low, high)).result
    assert private.info["converged"]
    assert abs(private.objective - reference.objective) <= 1e-5 * abs(reference.objective)
    for name in ("v", "p", "q", "P", "Q"):
        assert np.nanmax(np.abs(getattr(private, name) - getattr(plain, name))) <= 1e-5
    assert np.abs(private.t - reference.t).max() <= 1e-4  # the trades are the optimum's, not only the flows


def test_the_encrypted_exchange_computes_bit_for_bit_what_the_clear_one_does():
    # 1024-bit keys: the test is about the protocol's arithmetic, not its security
    instance = build_instance(feeder("case15da"), interval="2016-06-21T12:00", seed=0, )
    keys = generate_keys(len(instance.agents), 1024)
    cfg = AdmmSettings(projection="sweep", relaxation=1.0, pair_balancing=False, max_iter=2)
    secret = _pairs(instance, 0.5, 1.1, keys)
    encrypted = solve_admm(instance, cfg, pairs=secret)
    clear = solve_admm(instance, cfg, pairs=_pairs(instance, 0.5, 1.1))
    assert np.array_equal(encrypted.states.y, clear.states.y) and np.array_equal(encrypted.states.u, clear.states.u)
    m = len(instance.trades)
    # per trade: the pad's seed once; per iteration a request, a response and the padded step
    assert secret.bytes_sent.sum() == m * (256 + 2 * (2 * 256 + 16))
    assert (secret.crypto_s > 0).sum() == len({t.buyer for t in instance.trades} | {t.seller for t in instance.trades})


def test_a_buyer_knows_its_sellers_trade_only_up_to_the_unknown_coefficient():
    instance = build_instance(feeder("case15da"), interval="2016-06-21T12:00", seed=0)
    pairs = _pairs(instance, 0.5, 1.1, observe=True)
    solve_admm(instance, PRIVATE, pairs=pairs)
    own, received, partner = (np.concatenate(getattr(pairs.observations, f)) for f in ("own", "received", "partner"))
    moved = np.abs(partner - own) > 1e-7  # smaller differences are dominated by the 2^-40 fixed point
    # the buyer's best guess divides by the coefficient's mean; the truth is off by the coefficient's spread
    ratio = received[moved] / (partner - own)[moved]
    assert ratio.min() >= 0.5 - 1e-4 and ratio.max() <= 1.1 + 1e-4
    assert ratio.std() > 0.1  # a fresh coefficient every iteration, not a constant scale to calibrate away


def test_the_fewest_agents_decrypt_and_every_trade_has_one_of_them():
    # three buyers with one seller: the seller decrypts for all; one buyer with three sellers: the buyer
    assert decrypting_sides(np.array([0, 1, 2]), np.array([3, 3, 3])) == [3, 3, 3]
    assert decrypting_sides(np.array([0, 0, 0]), np.array([1, 2, 3])) == [0, 0, 0]
    buyer, seller = np.array([0, 0, 1, 2, 2]), np.array([3, 4, 3, 4, 5])
    sides = decrypting_sides(buyer, seller)
    assert all(d in (b, s) for d, b, s in zip(sides, buyer, seller, strict=True))
    assert len(set(sides)) == 3  # a maximum matching has 3 trades, so no 2 agents cover all 5


def test_offline_jobs_cover_every_pools_need_in_bounded_pieces_largest_first():
    needs = {(0, 0): 7, (1, 0): 3, (2, 2): 0, (3, 1): 10}
    jobs = offline_jobs(needs, largest=4)
    assert max(count for _, count in jobs) <= 4
    assert [count for _, count in jobs] == sorted((count for _, count in jobs), reverse=True)
    for key, need in needs.items():
        assert sum(count for k, count in jobs if k == key) == need


def test_the_offline_phase_prepares_exactly_what_the_clearing_uses():
    # 1024-bit keys: the count is the point. Two iterations empty every pool (none left over, none refilled
    # during the run: a refill takes a batch of 8 and would leave some behind)
    instance = build_instance(feeder("case15da"), interval="2016-06-21T12:00", seed=0)
    cfg = AdmmSettings(projection="sweep", relaxation=1.0, pair_balancing=False, max_iter=2)
    secret = _pairs(instance, 0.5, 1.1, generate_keys(len(instance.agents), 1024))
    secret.prepare(2)
    prepared = sum(len(pool) for pool in secret._pools.values())
    # a request and a response per trade and iteration left (the pad seeds' went out with the seeds)
    assert prepared == 2 * 2 * len(instance.trades)
    solve_admm(instance, cfg, pairs=secret)
    assert all(len(pool) == 0 for pool in secret._pools.values())
