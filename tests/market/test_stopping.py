"""The distributed stopping rule: the agents' own test on flooded residual shares against the central one."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from cosim.cli import EXIT_INPUT, main
from cyber.network import ChannelSpec, NetworkTransport, build_network, communication_graph
from market.admm.driver import AdmmSettings, build_splitting, solve_admm
from market.admm.stopping import KIND, DistributedStop
from market.instance import InstanceOptions, build_instance
from market.problem.clearing import solve_clearing
from market.result import Status
from tests.conftest import SUMMER_NOON, feeder
from tests.cosim.test_cosim import assert_refused


def instance(case: str = "case15da", seed: int = 0, **options):
    return build_instance(feeder(case), interval=SUMMER_NOON, seed=seed, options=InstanceOptions(**options))


@pytest.mark.parametrize(("case", "seed", "projection"), [("case15da", 0, "sweep"), ("case15da", 2, "local"),
                                                          ("case33bw", 1, "sweep")])
def test_plain_distributed_test_is_the_central_one_lag_iterations_late(case, seed, projection):
    """On a lossless network every agent tests the same snapshot, which holds every share: the test passes on
    the very iteration the central test does, and the agents stop ``lag`` iterations later, at the optimum."""
    inst = instance(case, seed)
    central = solve_admm(inst, AdmmSettings(projection=projection)).result
    run = solve_admm(inst, AdmmSettings(projection=projection, stopping="distributed"))
    res = run.result
    assert res.status is Status.OPTIMAL
    assert res.info["stop_snapshot"] == central.info["iterations"]
    assert res.info["iterations"] == central.info["iterations"] + res.info["stop_lag"]
    # the snapshot's sums are the central residuals of that iteration over the squared tolerances
    row = run.history.iloc[central.info["iterations"] - 1]
    tol_primal, tol_dual = AdmmSettings(projection=projection).tolerances()
    assert res.info["stop_primal_share"] == pytest.approx((row["primal_residual"] / tol_primal) ** 2, rel=1e-9)
    assert res.info["stop_dual_share"] == pytest.approx((row["dual_residual"] / tol_dual) ** 2, rel=1e-9)
    ref = solve_clearing(inst)
    assert abs(res.objective - ref.objective) <= 1e-4 * abs(ref.objective)


def test_lag_is_the_diameter_of_the_communication_graph():
    """Sparse partners make a deep graph: the flood needs as many hops as networkx's diameter."""
    inst = instance("case33bw", 0, partners="nearest", k_nearest=1)
    split = build_splitting(inst, AdmmSettings(projection="local"))
    stop = DistributedStop(inst, split.copy_holder, split.copy_weight, (1e-6, 1e-6))
    assert stop.lag == nx.diameter(communication_graph(inst)) - 1 > 2


def test_feeders_leaving_the_substation_reach_each_other_through_their_heads():
    """case136ma has eight feeders; with partners only nearby they trade within them, and the shares cross
    between feeders at the substation's busbar: the market still stops, at the central test's snapshot."""
    inst = instance("case136ma", 0, partners="nearest", k_nearest=1)
    assert not nx.is_connected(communication_graph(inst))
    central = solve_admm(inst, AdmmSettings()).result
    res = solve_admm(inst, AdmmSettings(stopping="distributed")).result
    assert res.status is Status.OPTIMAL and res.info["stop_snapshot"] == central.info["iterations"]


def test_every_share_reaches_every_agent_in_the_round_lag_iterations_later():
    inst = instance("case33bw", 0, partners="nearest", k_nearest=1)
    split = build_splitting(inst, AdmmSettings(projection="local"))
    stop = DistributedStop(inst, split.copy_holder, split.copy_weight, (1.0, 1.0))
    own = np.full((stop.n, 2), 0.1 / stop.n)
    for k in range(1, stop.lag + 2):
        stop.receive(stop.messages(k, own))
        if k <= stop.lag:
            assert not stop.have[:, :, 1 % stop.window].all()  # someone still misses a share of iteration 1
            assert not stop.all_stop(k)
    assert stop.have[:, :, 1 % stop.window].all()
    assert stop.all_stop(stop.lag + 1) and stop.last.iteration == 1
    assert stop.last.primal == pytest.approx(0.1)


def test_the_shares_sum_to_the_central_residuals():
    inst = instance()
    split = build_splitting(inst, AdmmSettings(projection="local"))
    stop = DistributedStop(inst, split.copy_holder, split.copy_weight, (2.0, 3.0))
    rng = np.random.default_rng(0)
    residual, change = rng.normal(size=(2, len(split.copy_weight)))
    shares = stop.shares(residual, change, rho=1.5)
    assert shares[:, 0].sum() == pytest.approx(split.copy_weight @ residual**2 / 4.0)
    assert shares[:, 1].sum() == pytest.approx(1.5**2 * (split.copy_weight @ change**2) / 9.0)


def test_a_lossy_network_delays_the_stop_but_not_the_optimum():
    """Lost shares leave snapshots incomplete: the agents test a later one (never an earlier one)."""
    inst = instance()
    central = solve_admm(inst, AdmmSettings(projection="local")).result
    net = NetworkTransport(build_network(inst, ChannelSpec(loss=0.2), seed=3))
    res = solve_admm(inst, AdmmSettings(projection="local", stopping="distributed"), transport=net).result
    assert res.status is Status.OPTIMAL and net.lost > 0
    assert res.info["stop_snapshot"] >= central.info["iterations"] - 50  # lost ADMM messages change the path
    ref = solve_clearing(inst)
    assert abs(res.objective - ref.objective) <= 1e-4 * abs(ref.objective)


def test_the_shares_cross_the_network_at_their_size():
    """Each flood message carries the relayed window: its size on the wire grows with the agents and lag."""
    inst = instance()
    split = build_splitting(inst, AdmmSettings(projection="local"))
    stop = DistributedStop(inst, split.copy_holder, split.copy_weight, (1.0, 1.0))
    batch = stop.messages(1, np.zeros((stop.n, 2)))
    assert batch.kind == KIND and batch.words == 2 + 2 * stop.n * stop.window
    slow = build_network(inst, ChannelSpec(bandwidth_kbps=100.0))
    assert slow.transmit(batch).delay_ms.min() == pytest.approx((256 + 64 * batch.words) / 100.0)


@pytest.mark.parametrize("settings", [dict(stop_trim=1), dict(stopping="distributed", stop_trim=-1),
                                      dict(stopping="everyone")])
def test_bad_stopping_settings_are_refused(settings):
    with pytest.raises(ValueError, match="stop"):
        AdmmSettings(**settings)


def test_a_market_larger_than_the_simulated_flood_is_refused(monkeypatch):
    monkeypatch.setattr("market.admm.stopping.MAX_AGENTS", 10)
    inst = instance()
    split = build_splitting(inst, AdmmSettings(projection="local"))
    with pytest.raises(ValueError, match="at most 10 agents"):
        DistributedStop(inst, split.copy_holder, split.copy_weight, (1.0, 1.0))


def test_a_trim_as_large_as_the_market_is_refused():
    inst = instance()
    split = build_splitting(inst, AdmmSettings(projection="local"))
    with pytest.raises(ValueError, match="trim"):
        DistributedStop(inst, split.copy_holder, split.copy_weight, (1.0, 1.0), trim=len(inst.agents))


def test_the_cli_refuses_a_market_too_large_for_the_flood_and_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("market.admm.stopping.MAX_AGENTS", 10)
    out = tmp_path / "r"
    args = ["clear", "--case", "case15da", "--method", "admm", "--stopping", "distributed", "--out", str(out)]
    assert main(args) == EXIT_INPUT
    assert "at most 10 agents" in capsys.readouterr().err and not out.exists()


def test_a_scenario_too_large_for_the_flood_is_refused_before_the_run(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("market.admm.stopping.MAX_AGENTS", 10)
    path = tmp_path / "scenario.toml"
    path.write_text('name = "t"\ncase = "case15da"\n[admm]\nstopping = "distributed"\n')
    assert_refused(path, "field admm.stopping: stopping: the distributed test is simulated for at most 10", capsys)
