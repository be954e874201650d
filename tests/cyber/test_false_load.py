"""The attacker that runs its ADMM step on a false load: invisible to message screens, named by the meters."""

from __future__ import annotations

import numpy as np
import pytest

from cosim.clearing_run import clear
from cyber.attacks import AttackSpec
from cyber.errors import CyberError
from cyber.false_load import declared_instance, true_injections
from cyber.resilient_admm import CyberSetup
from market.admm.driver import AdmmSettings
from market.instance import build_instance
from market.problem.clearing import solve_clearing
from tests.conftest import SUMMER_NOON, feeder


def market(seed: int = 0):
    return build_instance(feeder("case15da"), interval=SUMMER_NOON, seed=seed)


def test_the_declared_instance_shifts_only_the_attackers_load_at_its_power_factor():
    inst = market()
    buyer = next(a.bus for a in inst.agents if a.role == "buyer")
    declared = declared_instance(inst, [AttackSpec("false-load", agents=(buyer,), delta=0.004)])
    for a, d in zip(inst.agents, declared.agents, strict=True):
        if a.bus != buyer:
            assert d == a
            continue
        assert d.d_kw == pytest.approx(a.d_kw + 4.0) and d.p_hat_kw == pytest.approx(a.p_hat_kw - 4.0)
        assert d.q_hat_kvar == pytest.approx(-a.tan_phi * d.d_kw) and d.role == a.role


def test_a_declared_load_that_would_change_the_role_is_refused():
    inst = market()
    seller = next(a for a in inst.agents if a.role == "seller")
    with pytest.raises(CyberError, match=f"agent {seller.bus}"):
        declared_instance(inst, [AttackSpec("false-load", agents=(seller.bus,), delta=(seller.g_kw + 1) / 1e3)])


def test_a_false_load_is_declared_from_the_first_iteration():
    with pytest.raises(CyberError, match="false-load"):
        AttackSpec("false-load", agents=(2,), start=50)


@pytest.mark.parametrize(("seed", "rank"), [(0, 0), (1, 2)])
def test_message_screens_cannot_see_it_and_the_cross_layer_check_names_it(seed, rank):
    """Every message of the attacker is consistent, so the tensor detector flags them no more often than honest
    ones; the market clears the declared instance's optimum; the meters read the true load, and the
    cross-layer check names the attacker -- nobody else -- with its invented load."""
    inst = market(seed)
    buyer = [a.bus for a in inst.agents if a.role == "buyer"][rank]
    spec = AttackSpec("false-load", agents=(buyer,), delta=0.01)
    settings = AdmmSettings(projection="local", relaxation=1.0)
    run = clear(inst, "admm", settings, CyberSetup(attacks=(spec,), detector="tensor"))
    declared = solve_clearing(declared_instance(inst, [spec]))
    assert abs(run.result.objective - declared.objective) <= 1e-4 * abs(declared.objective)
    confusion = run.screening.confusion
    assert confusion["tp"] + confusion["fn"] > 1000  # every field it sent counts as corrupted
    assert confusion["tpr"] <= 3 * confusion["fpr"] + 0.01
    assert run.cross_layer.suspected == (buyer,)
    kw = inst.feeder.base_mva * 1e3
    estimate = run.cross_layer.summary(inst.feeder.base_mva)["max_misreport_kw"]
    assert estimate == pytest.approx(0.01 * kw, rel=0.1)


def test_the_meters_read_the_true_injection():
    inst = market()
    buyer = next(a.bus for a in inst.agents if a.role == "buyer")
    spec = AttackSpec("false-load", agents=(buyer,), delta=0.002)
    result = solve_clearing(declared_instance(inst, [spec]))
    metered = true_injections(result, inst, [spec])
    moved = np.flatnonzero(metered.p != result.p)
    assert moved.tolist() == [buyer] and metered.p[buyer] - result.p[buyer] == pytest.approx(0.002)
