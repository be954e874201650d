"""The paper's detector: its equalities hold at the market's optimum, its threshold flags Gaussian errors at the
nominal rate, and it catches a correlated attack."""

import numpy as np
import pytest

from cyber.attacks import AttackSpec
from cyber.physics_detector import MAD_TO_SIGMA, PhysicsTensorDetector, threshold_multiplier
from cyber.resilient_admm import CyberSetup, default_relaxation, solve_resilient_admm
from market.admm.driver import AdmmSettings, build_splitting
from market.admm.states import LOCAL
from market.instance import build_instance
from market.problem.clearing import solve_clearing
from tests.conftest import SUMMER_NOON, feeder


@pytest.mark.parametrize("case", ["case15da", "case33bw"])
def test_the_equalities_vanish_on_the_centralized_optimum(case):
    """Every agent's observation built from cvxpy's optimum (own values, children's flows, parent's voltage)
    satisfies its Phi rows; a flow falsified by 0.05 p.u. violates its parent's balance by that much."""
    inst = build_instance(feeder(case), interval=SUMMER_NOON, seed=1)
    ref = solve_clearing(inst)
    split = build_splitting(inst, AdmmSettings(projection="local"))
    det = PhysicsTensorDetector(inst, split)
    slots, n = det.slots, split.n
    obs = np.zeros((n, slots.width))
    buses = np.arange(1, n + 1)
    parent_bus = inst.feeder.parent[buses]
    own = {"p": ref.p[buses], "q": ref.q[buses], "P": ref.P[buses], "Q": ref.Q[buses], "l": ref.l[buses],
           "v": ref.v[buses], "w": ref.v[parent_bus]}
    for name, values in own.items():
        obs[np.arange(n), slots.position[LOCAL, name]] = values
    child = split.layout.link_child  # agent index of every link's child
    for name in ("P", "Q"):
        obs[slots.agent["flow", name], slots.position["flow", name]] = own[name][child]
    obs[slots.agent["voltage", "v"], slots.position["voltage", "v"]] = ref.v[split.layout.link_parent + 1]
    residual = np.einsum("aem,am->ae", det.phi, obs)
    assert np.abs(residual).max() < 1e-6
    link = 0
    obs[slots.agent["flow", "P"][link], slots.position["flow", "P"][link]] += 0.05
    violated = np.einsum("aem,am->ae", det.phi, obs)
    assert np.isclose(abs(violated[slots.agent["flow", "P"][link], 0]), 0.05, atol=1e-6)


@pytest.mark.parametrize("alpha", [0.01, 0.1])
def test_the_threshold_flags_gaussian_errors_at_the_nominal_rate(alpha):
    """Simulated: |e| > c sigma, sigma 1.4826 x the median of the last nine errors censored at their bound."""
    c = threshold_multiplier(alpha, 9)
    errors = np.abs(np.random.default_rng(4).normal(size=(209, 5000)))
    ring, flagged = errors[:9].copy(), 0
    for k in range(200):
        bound = c * MAD_TO_SIGMA * np.median(ring, axis=0)
        flagged += int((errors[9 + k] > bound).sum())
        ring[k % 9] = np.minimum(errors[9 + k], bound)
    assert flagged / errors[9:].size == pytest.approx(alpha, rel=0.05)


def test_static_fdi_on_the_flows_is_caught():
    inst = build_instance(feeder("case15da"), interval=SUMMER_NOON, seed=0)
    attack = AttackSpec("static-fdi", agents=(2,), fields=("P", "Q"), delta=0.05)
    run = solve_resilient_admm(inst, AdmmSettings(projection="local", max_iter=250,
                                                  relaxation=default_relaxation((attack,), "tensor-paper")),
                               CyberSetup(attacks=(attack,), detector="tensor-paper"))
    assert run.tpr_by_kind()["flow"] >= 0.9
