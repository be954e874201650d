"""The hybrid clearing's multi-party sums: exact sums, shares independent of the flows they hide, the plain
optimum, and a curious parent's reconstruction no better than guessing."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from cyber.errors import CyberError
from cyber.privacy.leakage import leaves_with_siblings, measure_flow_leak
from cyber.privacy.paillier import generate_keys
from cyber.privacy.setup import PrivacySetup, private_settings, secure_pairs
from cyber.privacy.sums import FRACTION_BITS, MODULUS, MaskedSums, decode_share
from market.admm.driver import AdmmSettings, solve_admm
from market.instance import build_instance
from market.problem.clearing import solve_clearing
from tests.conftest import feeder

# bus 1 feeds buses 2, 3, 4 (siblings); bus 4 feeds bus 5 alone
PARENT = np.array([0, 0, 1, 1, 1, 4])
ONE_HOP = np.eye(3)[:, :1].repeat(1, axis=1)  # three links, all into the one parent


def test_the_parent_gets_the_exact_sum_and_the_seeds_travel_under_paillier():
    keys = generate_keys(5, 1024)  # 1024 bits: the test is about the arithmetic
    sums = MaskedSums(PARENT, keys)
    flows = np.array([[0.25, -0.125], [-1.5, 0.0625], [3.0, -2.0]])
    shares = sums.hide(7, np.array([2, 3, 4]), flows)
    total = sums.total(np.ones((3, 1)), shares)
    expected = np.rint(np.ldexp(flows, FRACTION_BITS)).sum(axis=0) / 2.0**FRACTION_BITS
    assert np.array_equal(total[0], expected)
    assert np.all(shares == np.floor(shares)) and shares.max() < MODULUS  # integers a float64 holds exactly
    assert (sums.offline_s[[1, 2, 3]] > 0).all() and len(sums.pairs) == 3  # 3 sibling pairs
    # the lone child's share is its flow: nothing to hide it among
    assert np.allclose(decode_share(sums.hide(7, np.array([5]), flows[:1])), flows[:1], atol=2.0**-FRACTION_BITS)


def test_a_share_is_uniform_and_independent_of_the_flow_it_hides():
    n = 1500
    low, high = np.zeros((n, 2)), np.zeros((n, 2))
    for i in range(n):  # fresh seeds every time: a new clearing's offline phase
        sums = MaskedSums(PARENT)
        low[i] = sums.hide(i, np.array([2]), np.array([[0.0, 0.0]]))[0]
        high[i] = sums.hide(i, np.array([2]), np.array([[3.0, -2.5]]))[0]
    for a in (low, high):
        assert stats.kstest(a[:, 0] / MODULUS, "uniform").pvalue > 1e-3
    assert stats.ks_2samp(low[:, 0], high[:, 0]).pvalue > 1e-3
    assert stats.ks_2samp(low[:, 1], high[:, 1]).pvalue > 1e-3
    # the same test sees through a mask drawn from too small a range (2^36, about 4 p.u. of flow)
    weak = low[:, 0] % 2**36
    assert stats.ks_2samp(weak, weak + np.rint(np.ldexp(3.0, FRACTION_BITS))).pvalue < 1e-6


def test_flows_outside_the_shares_range_are_refused():
    with pytest.raises(CyberError, match="out of the shares' range"):
        MaskedSums(PARENT).hide(1, np.array([2]), np.array([[1e4, 0.0]]))


@pytest.fixture(scope="module")
def case15da_0900():
    return build_instance(feeder("case15da"), interval="2016-06-21T09:00", seed=3)


def test_the_hybrid_clearing_reaches_the_plain_optimum(case15da_0900):
    instance = case15da_0900
    reference = solve_clearing(instance)
    plain = solve_admm(instance).result
    cfg = private_settings(AdmmSettings(relaxation=1.0))
    hybrid = solve_admm(instance, cfg, pairs=secure_pairs(instance, PrivacySetup("hybrid"), 3, encrypted=False))
    r = hybrid.result
    assert r.info["converged"]
    assert abs(r.objective - reference.objective) <= 1e-5 * abs(reference.objective)
    for name in ("v", "p", "q", "P", "Q"):
        assert np.nanmax(np.abs(getattr(r, name) - getattr(plain, name))) <= 1e-5


def test_encrypted_seeds_and_clear_ones_give_the_same_iterates(case15da_0900):
    instance = case15da_0900
    cfg = AdmmSettings(relaxation=1.0, max_iter=2)
    encrypted = secure_pairs(instance, PrivacySetup("hybrid", 1024), 3)
    a = solve_admm(instance, cfg, pairs=encrypted).states
    b = solve_admm(instance, cfg, pairs=secure_pairs(instance, PrivacySetup("hybrid", 1024), 3, encrypted=False)).states
    assert np.array_equal(a.y, b.y) and np.array_equal(a.u, b.u)  # different masks, the same sums
    assert encrypted.offline_s.sum() > 0


def test_a_curious_parent_reads_nothing_from_shares_that_it_read_from_plain_flows():
    f = feeder("case15da")
    instances = [build_instance(f, interval=f"2016-06-21T{h:02d}:00", seed=1) for h in (6, 12, 18)]
    cfg = private_settings(AdmmSettings(relaxation=1.0))

    def solve(mode):
        return lambda i, t: solve_admm(i, cfg, t, pairs=secure_pairs(i, PrivacySetup(mode), 1, encrypted=False)).result

    plain = measure_flow_leak(instances, solve("paillier"), keep=leaves_with_siblings)
    hybrid = measure_flow_leak(instances, solve("hybrid"), decode=decode_share, keep=leaves_with_siblings)
    assert plain.samples == hybrid.samples >= 10
    # the pairs' privacy alone leaves the flows readable (the sweep's preferences: within ~10 kW)
    assert plain.mae_kw < 0.2 * plain.baseline_mae_kw and plain.corr_cleared > 0.95
    assert hybrid.mae_kw > 10 * hybrid.baseline_mae_kw  # a share is no better than the public guess
    assert abs(hybrid.corr_cleared) < 0.8
