"""A Byzantine agent falsifying its residual share: what it does to the plain distributed stopping test, and
the resilient test that withstands it."""

from __future__ import annotations

import pytest

from cosim.cli import EXIT_INPUT, main
from cyber.attacks import AttackSpec
from cyber.errors import CyberError
from cyber.resilient_admm import CyberSetup, solve_resilient_admm
from market.admm.driver import AdmmSettings, solve_admm
from market.instance import build_instance
from market.problem.clearing import solve_clearing
from market.result import Status
from tests.conftest import SUMMER_NOON, feeder

LOCAL = dict(projection="local", relaxation=1.0)


def market(case: str = "case15da", seed: int = 0):
    return build_instance(feeder(case), interval=SUMMER_NOON, seed=seed)


def run(inst, claim: float, trim: int, agent: int, max_iter: int = 10000, detector: str = "none"):
    settings = AdmmSettings(**LOCAL, stopping="distributed", stop_trim=trim, max_iter=max_iter)
    setup = CyberSetup(attacks=(AttackSpec("residual", agents=(agent,), claim=claim),), detector=detector)
    return solve_resilient_admm(inst, settings, setup)


def gap(inst, result) -> float:
    ref = solve_clearing(inst).objective
    return abs(result.objective - ref) / abs(ref)


@pytest.mark.parametrize("agent", [3])
def test_a_negative_share_stops_the_plain_test_early_and_the_resilient_one_holds(agent):
    inst = market()
    central = solve_admm(inst, AdmmSettings(**LOCAL)).result.info["iterations"]
    early = run(inst, claim=-1e6, trim=0, agent=agent)
    assert early.admm.result.info["iterations"] < central / 2  # the honest residuals were far from the threshold
    assert early.false_shares > 0
    held = run(inst, claim=-1e6, trim=1, agent=agent).admm.result
    assert held.status is Status.OPTIMAL and held.info["stop_disregarded"] == 1  # the invalid share
    assert gap(inst, held) <= 1e-4


@pytest.mark.parametrize("agent", [12])
def test_a_huge_share_keeps_the_plain_test_from_passing_and_the_resilient_one_stops(agent):
    inst = market(seed=1)
    central = solve_admm(inst, AdmmSettings(**LOCAL)).result.info["iterations"]
    never = run(inst, claim=1e6, trim=0, agent=agent, max_iter=2 * central).admm.result
    assert never.status is Status.NOT_CONVERGED and never.info["iterations"] == 2 * central
    stopped = run(inst, claim=1e6, trim=1, agent=agent, max_iter=2 * central).admm.result
    assert stopped.status is Status.OPTIMAL and gap(inst, stopped) <= 1e-4


def test_the_defended_market_with_a_detector_stops_at_the_optimum():
    """The tensor detector screens the market's messages, not the shares (the test screens those itself)."""
    inst = market(seed=2)
    screened = run(inst, claim=0.0, trim=1, agent=6, detector="tensor")
    assert screened.admm.result.status is Status.OPTIMAL and gap(inst, screened.admm.result) <= 1e-3
    assert screened.false_shares > 0 and len(screened.truth) == 0  # no market message was falsified
    assert screened.screened_by_kind and "residual" not in screened.screened_by_kind


def test_a_residual_attack_needs_the_distributed_test():
    setup = CyberSetup(attacks=(AttackSpec("residual", agents=(2,)),))
    with pytest.raises(CyberError, match="stopping distributed"):
        solve_resilient_admm(market(), AdmmSettings(**LOCAL), setup)


@pytest.mark.parametrize("args", [["--attack", "static-fdi", "--byzantine", "2", "--claim", "5"],
                                  ["--stop-trim", "1"], ["--attack", "residual", "--byzantine", "2"]])
def test_residual_options_out_of_place_are_refused(tmp_path, capsys, args):
    out = tmp_path / "r"
    assert main(["clear", "--case", "case15da", "--method", "admm", *args, "--out", str(out)]) == EXIT_INPUT
    assert "error" in capsys.readouterr().err and not out.exists()
