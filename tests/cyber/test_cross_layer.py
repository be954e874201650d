"""Cross-layer check: the market's reports against the metered AC state, with known ground truth."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from cosim.clearing_run import clear
from cyber.attacks import AttackSpec, byzantine_agents
from cyber.cross_layer import MarketReports, Meters, check_reports, subtree_matrix
from cyber.resilient_admm import CyberSetup
from market.admm.driver import AdmmSettings
from market.instance import build_instance
from market.problem.clearing import solve_clearing
from physical.ac_power_flow import run_ac_power_flow
from tests.conftest import SUMMER_NOON, feeder

LOCAL = AdmmSettings(projection="local", relaxation=1.0)


def test_subtree_matrix_against_networkx():
    f = feeder("case33bw")
    tree = nx.DiGraph((int(f.parent[j]), j) for j in range(1, f.n_buses))
    S = subtree_matrix(f)
    for line in range(1, f.n_buses):
        below = {line} | nx.descendants(tree, line)
        assert set(np.flatnonzero(S[line - 1]) + 1) == below


@pytest.fixture(scope="module")
def honest_centralized():
    """A centralized clearing (its flows satisfy the DistFlow balance exactly) and the AC state of its
    dispatch: reports with nothing misreported."""
    inst = build_instance(feeder("case33bw"), interval=SUMMER_NOON, seed=1)
    res = solve_clearing(inst)
    ac = run_ac_power_flow(inst.feeder, res.p, res.q)  # base 1 MVA: p.u. = MW
    zero = np.zeros(len(inst.agents))
    return inst, MarketReports(res.P[1:], res.Q[1:], res.l[1:], zero + 1e-7, zero + 1e-7), ac


def test_a_misreported_flow_is_located_at_its_sender(honest_centralized):
    """Add a known misreport to one agent's reported flow (its parent's copy, and what the parent passes up
    with it): the estimate is minus that misreport at that bus, and nothing elsewhere."""
    inst, honest, ac = honest_centralized
    f = inst.feeder
    S = subtree_matrix(f)
    for bus, delta in ((7, 0.004), (30, -0.001)):
        lied = honest.P + S[:, bus - 1] * delta  # every line on the path to the substation carries it
        check = check_reports(f, MarketReports(lied, honest.Q, honest.l, honest.slack_p, honest.slack_q), ac,
                              Meters(relative=1e-3, seed=5))
        assert check.suspected == (bus,)
        assert check.misreport_p[bus - 1] == pytest.approx(-delta, abs=5 * np.sqrt(2) * 1e-4)
        others = np.delete(np.abs(check.misreport_p) / (check.threshold_p), bus - 1)
        assert others.max() < 1
    clean = check_reports(f, honest, ac, Meters(seed=5))
    assert clean.suspected == ()


def test_the_estimates_spread_is_the_one_the_threshold_assumes(honest_centralized):
    """Over many meter draws on honest reports, the misreport estimate divided by its predicted standard
    deviation is standard normal (the threshold's z counts those deviations)."""
    inst, honest, ac = honest_centralized
    no_slack = MarketReports(honest.P, honest.Q, honest.l, honest.slack_p * 0, honest.slack_q * 0)
    scaled = []
    for seed in range(200):
        check = check_reports(inst.feeder, no_slack, ac, Meters(relative=2e-3, absolute_pu=1e-5, z=1.0, seed=seed))
        scaled.append(check.misreport_p / check.threshold_p)  # threshold = 1 sd with z = 1 and no slack
    scaled = np.concatenate(scaled)
    assert abs(scaled.mean()) < 0.05
    assert np.std(scaled) == pytest.approx(1.0, abs=0.05)
    assert np.mean(np.abs(scaled) > 2) == pytest.approx(0.0455, abs=0.01)


@pytest.mark.parametrize(("date", "seed", "detector"), [
    (SUMMER_NOON, 0, "tensor"), ("2016-03-10T09:00", 1, "tensor"), ("2016-12-21T18:00", 2, "none")])
def test_no_accusation_without_an_attack(date, seed, detector):
    """Attack-free clearings of case15da (case33bw and case85: ``benchmarks/adversaries.py``), screened or
    not, over-relaxed or not: every honest agent's estimate stays inside its threshold."""
    inst = build_instance(feeder("case15da"), interval=date, seed=seed)
    settings = LOCAL if detector != "none" else AdmmSettings(projection="local")
    run = clear(inst, "admm", settings, CyberSetup(detector=detector))
    assert run.result.info["converged"]
    assert run.cross_layer.suspected == ()
    assert np.all(np.abs(run.cross_layer.misreport_p) < run.cross_layer.threshold_p)


@pytest.mark.parametrize(("seed", "agent", "delta"), [(0, 4, 0.002), (1, 9, -0.005)])
def test_the_period_1_misreport_is_named(seed, agent, delta):
    """A consistent misreport from the first iteration, which no message screen sees, moves the dispatch; the
    check names exactly that agent and estimates the misreport it made."""
    inst = build_instance(feeder("case15da"), interval=SUMMER_NOON, seed=seed)
    assert inst.feeder.parent[agent] > 0  # it reports its flow to a prosumer parent
    attack = AttackSpec("static-fdi", (agent,), period=1, fields=("P", "Q"), delta=delta, seed=seed)
    run = clear(inst, "admm", LOCAL, CyberSetup(attacks=(attack,), detector="tensor"))
    assert run.screening.confusion["tpr"] < 0.1  # the screen does not see it
    assert run.cross_layer.suspected == (agent,)
    assert run.cross_layer.misreport_p[agent - 1] == pytest.approx(-delta, rel=0.05)


def test_a_stealthy_drift_that_moves_the_dispatch_is_named():
    inst = build_instance(feeder("case15da"), interval=SUMMER_NOON, seed=0)
    attack = AttackSpec("stealthy", (4,), fields=("P", "Q"), delta=1.0, drift=0.01)
    run = clear(inst, "admm", LOCAL, CyberSetup(attacks=(attack,), detector="tensor"))
    truth = run.screening.truth
    last = truth[(truth.kind == "flow") & (truth.field == "P")].iloc[-1]
    assert run.screening.confusion["tpr"] < 0.1 and last.sent - last.true > 1e-4
    assert run.cross_layer.suspected == (4,)
    assert run.cross_layer.misreport_p[3] == pytest.approx(-(last.sent - last.true), rel=0.05)


def test_colluders_are_all_named():
    inst = build_instance(feeder("case15da"), interval=SUMMER_NOON, seed=0)
    group = tuple(byzantine_agents(0, inst.feeder.n_buses, 0.2))
    attack = AttackSpec("static-fdi", group, period=1, fields=("P", "Q"), delta=0.01)
    run = clear(inst, "admm", LOCAL, CyberSetup(attacks=(attack,), detector="tensor"))
    assert run.cross_layer.suspected == group


@pytest.mark.parametrize(("bus", "p_mw", "q_mvar"), [(12, 0.08, 0.02), (25, -0.05, 0.0)])
def test_a_load_outside_the_market_is_not_blamed_on_its_bus_agent(honest_centralized, bus, p_mw, q_mvar):
    """An external simulator's load (or generator) on a bus, metered apart from the prosumer: the meters see it
    in the bus's and every upstream line's readings; told about it the check accuses nobody, not told it
    takes it for the bus agent's misreport."""
    inst, honest, _ = honest_centralized
    res = solve_clearing(inst)
    outside_p, outside_q = np.zeros(inst.feeder.n_buses), np.zeros(inst.feeder.n_buses)
    outside_p[bus], outside_q[bus] = -p_mw, -q_mvar
    ac = run_ac_power_flow(inst.feeder, res.p + outside_p, res.q + outside_q)
    told = check_reports(inst.feeder, honest, ac, Meters(seed=3), (outside_p, outside_q))
    assert told.suspected == ()
    assert np.all(np.abs(told.misreport_p) < told.threshold_p)
    assert check_reports(inst.feeder, honest, ac, Meters(seed=3)).suspected == (bus,)
