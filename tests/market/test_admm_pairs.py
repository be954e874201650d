"""Reciprocity pairs: weights, starting prices and the per-trade residual balancing."""

from __future__ import annotations

import numpy as np

from market.admm.pairs import PairBalancer


def test_the_balancer_acts_every_few_iterations_within_its_bounds():
    balancer = PairBalancer(3, every=10, mu=2.0, factor=2.0, low=0.25, high=4.0)
    primal, dual = np.array([1.0, 1e-3, 1.0]), np.array([1e-3, 1.0, 0.8])
    assert balancer.update(7, 1.0, primal, 0 * primal, dual) is None  # not a check iteration
    steps = []
    for k in range(10, 60, 10):
        step = balancer.update(k, 1.0, primal, 0 * primal, dual / np.sqrt(2))
        steps.append(np.ones(3) if step is None else step)
    # pair 0: primal dominates -> up to the bound 4; pair 1: dual dominates -> down to 1/4; pair 2: balanced
    assert np.allclose(balancer.scale, [4.0, 0.25, 1.0])
    assert np.allclose(np.prod(steps, axis=0), balancer.scale)


def test_the_balancer_of_a_market_without_trades_does_nothing():
    assert PairBalancer(0).update(10, 1.0, np.zeros(0), np.zeros(0), np.zeros(0)) is None
