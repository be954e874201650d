"""Distributed ADMM: agrees with the centralized optimum, talks only through messages, reports failure."""

from __future__ import annotations

import numpy as np
import pytest

from market.admm.driver import PROJECTIONS, AdmmSettings, build_splitting, solve_admm
from market.instance import InstanceOptions, build_instance
from market.messages import IdealTransport, MessageBatch
from market.problem.clearing import solve_clearing
from market.result import Status
from tests.conftest import SUMMER_NOON, feeder


def assert_matches_reference(case: str, seed: int, projection: str = "sweep") -> None:
    inst = build_instance(feeder(case), interval=SUMMER_NOON, seed=seed)
    ref = solve_clearing(inst)
    run = solve_admm(inst, AdmmSettings(projection=projection))
    res = run.result
    assert res.status is Status.OPTIMAL and res.info["converged"]
    assert abs(res.objective - ref.objective) <= 1e-4 * abs(ref.objective)
    assert np.max(np.abs(np.sqrt(res.v) - np.sqrt(ref.v))) <= 1e-3
    assert np.max(np.abs(res.p - ref.p)) <= 1e-3
    assert np.max(np.abs(res.q - ref.q)) <= 1e-3
    assert res.info["primal_residual"] <= AdmmSettings(projection=projection).tolerances()[0]
    assert len(run.history) == res.info["iterations"]
    assert res.info["projection"] == projection


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_centralized_on_case15da(seed):
    assert_matches_reference("case15da", seed)


@pytest.mark.parametrize(("case", "seed"), [("case33bw", 1), ("case85", 2), ("case12da", 0), ("case18nbr", 0),
                                           ("case69", 1), ("case136ma", 0), ("case141", 0)])
def test_matches_centralized_on_other_feeders(case, seed):
    assert_matches_reference(case, seed)


@pytest.mark.parametrize("interval", ["2016-06-21T12:00", "2016-12-20T18:00"])
@pytest.mark.parametrize("case", ["case15da", "case33bw", "case85"])
def test_the_sweep_converges_within_500_iterations(case, interval):
    """The default settings reach the default tolerances well within the paper's iteration counts."""
    inst = build_instance(feeder(case), interval=interval, seed=0)
    res = solve_admm(inst).result
    assert res.info["converged"] and res.info["iterations"] <= 500


@pytest.mark.parametrize("projection", PROJECTIONS)
def test_a_warm_start_from_the_last_quarter_hour_reaches_the_new_optimum_sooner(projection):
    settings = AdmmSettings(projection=projection)
    before = build_instance(feeder("case85"), interval="2016-06-21T10:00", seed=0)
    now = build_instance(feeder("case85"), interval="2016-06-21T10:15", seed=0)
    ref = solve_clearing(now)
    cold = solve_admm(now, settings).result
    warm = solve_admm(now, settings, warm=solve_admm(before, settings)).result
    assert warm.info["converged"] and abs(warm.objective - ref.objective) <= 1e-4 * abs(ref.objective)
    assert warm.info["iterations"] < 0.9 * cold.info["iterations"]


@pytest.mark.parametrize(("case", "seed"), [("case15da", 2), ("case33bw", 1), ("case85", 2)])
def test_local_splitting_matches_centralized(case, seed):
    assert_matches_reference(case, seed, "local")


class Recording(IdealTransport):
    """Delivers copies of the batches (so nothing shares memory with the senders) and counts them."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def deliver(self, batch: MessageBatch) -> MessageBatch:
        self.counts[batch.kind] = self.counts.get(batch.kind, 0) + len(batch)
        return batch.with_fields(**{k: v.copy() for k, v in batch.fields.items()})


class DropTrades(IdealTransport):
    """Loses every message about trades: the sellers never hear from their buyers and vice versa."""

    def deliver(self, batch: MessageBatch) -> MessageBatch:
        return batch.subset(np.zeros(len(batch), dtype=bool)) if batch.kind.startswith("trade") else batch


#: batches per link of the feeder's link kinds over a run of k iterations: the local splitting sends flows
#: every iteration and targets before the first and after all but the last; the sweep opens both directions
#: before the first iteration and sweeps both ways in every one
LINK_BATCHES = {"local": {"flow": lambda k: k, "voltage_target": lambda k: k},
                "sweep": {"subtree": lambda k: k + 1, "price": lambda k: k + 1}}


@pytest.mark.parametrize("projection", PROJECTIONS)
def test_agents_use_only_what_is_delivered(projection):
    inst = build_instance(feeder("case15da"), interval=SUMMER_NOON, seed=1)
    settings = AdmmSettings(max_iter=200, projection=projection)
    direct = solve_admm(inst, settings)
    recording = Recording()
    copied = solve_admm(inst, settings, transport=recording)
    # the same iterates (to round-off: without a transport the sweep's hops are one sparse projection)
    assert len(direct.history) == len(copied.history)
    np.testing.assert_allclose(direct.history.objective, copied.history.objective, rtol=1e-9)
    links = sum(1 for j in range(1, inst.feeder.n_buses) if inst.feeder.parent[j] > 0)
    iterations = len(copied.history)
    for kind, batches in LINK_BATCHES[projection].items():
        assert recording.counts[kind] == links * batches(iterations), kind
    assert recording.counts["trade_to_seller"] == len(inst.trades) * iterations
    cut = solve_admm(inst, settings, transport=DropTrades())
    assert not np.allclose(cut.history.traded_kw.iloc[-1], direct.history.traded_kw.iloc[-1], rtol=1e-2)


@pytest.mark.parametrize(("projection", "kinds"), [
    ("local", {"local", "flow", "voltage", "trade_to_seller", "trade_to_buyer"}),  # the last x-phase
    ("sweep", {"local", "subtree", "price", "trade_to_seller", "trade_to_buyer"})])
def test_messages_are_explicit_objects(projection, kinds):
    inst = build_instance(feeder("case15da"), interval=SUMMER_NOON, seed=0)
    seen = []

    class Keep(IdealTransport):
        def deliver(self, batch):
            if batch.iteration == 3:
                seen.extend(batch.messages())
            return batch

        def observe_local(self, report):  # what a transport with detectors is handed: the agents' own values
            if report.iteration == 3:
                seen.extend(report.messages())

    settings = AdmmSettings(max_iter=3, projection=projection)
    solve_admm(inst, settings, transport=Keep())
    assert {m.kind for m in seen} == kinds
    assert all(m.sender == m.receiver for m in seen if m.kind == "local")  # a report to the agent's own detector
    receivers = build_splitting(inst, settings).channel_receivers()
    assert all(receivers[m.kind][m.channel] == m.receiver for m in seen)
    up = next(m for m in seen if m.kind in ("flow", "subtree"))
    assert inst.feeder.parent[up.sender] == up.receiver and {"P", "Q"} <= set(up.fields)
    assert all(m.iteration == 3 for m in seen)


def test_sweep_messages_travel_one_depth_per_stage():
    """The upward sweep leaves the deepest agents first, the downward sweep the top first, one stage a hop."""
    inst = build_instance(feeder("case33bw"), interval=SUMMER_NOON, seed=0)
    stages = []

    class Keep(IdealTransport):
        def deliver(self, batch):
            if batch.iteration == 2 and batch.kind in ("subtree", "price"):
                stages.append((batch.kind, batch.stage, set(inst.feeder.depth[batch.sender].tolist())))
            return batch

    solve_admm(inst, AdmmSettings(max_iter=2), transport=Keep())
    depth = int(inst.feeder.depth.max())
    assert [s for _, s, _ in stages] == list(range(2 * depth - 2))
    assert [d for kind, _, d in stages if kind == "subtree"] == [{k} for k in range(depth, 1, -1)]
    assert [d for kind, _, d in stages if kind == "price"] == [{k} for k in range(1, depth)]


def test_non_convergence_is_reported_not_returned_as_a_result():
    inst = build_instance(feeder("case33bw"), interval=SUMMER_NOON, seed=0)
    run = solve_admm(inst, AdmmSettings(max_iter=25))
    assert run.result.status is Status.NOT_CONVERGED and not run.result.status.has_solution
    assert run.result.info["converged"] is False and run.result.info["iterations"] == 25
    assert "did not converge within 25 iterations" in run.result.message


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="relaxation"):
        AdmmSettings(relaxation=2.5)
    with pytest.raises(ValueError, match="positive"):
        AdmmSettings(rho=0)


@pytest.mark.parametrize("projection", PROJECTIONS)
def test_a_warm_start_from_the_same_quarter_hour_is_already_converged(projection):
    """The carried-over copies and prices are the fixed point again: rescaling the duals by the new
    penalty, cost scale and pair weights loses nothing."""
    inst = build_instance(feeder("case33bw"), interval=SUMMER_NOON, seed=1)
    settings = AdmmSettings(projection=projection)
    done = solve_admm(inst, settings)
    again = solve_admm(inst, AdmmSettings(projection=projection, rho=2 * settings.rho), warm=done).result
    assert again.info["converged"] and again.info["iterations"] <= 3
    other = "local" if projection == "sweep" else "sweep"
    with pytest.raises(ValueError, match="another feeder or splitting"):
        solve_admm(inst, AdmmSettings(projection=other), warm=done)


@pytest.mark.parametrize("projection", PROJECTIONS)
def test_a_market_without_trades_clears(projection):
    """At night without PV or wind there are no sellers: no trade pairs, only the network and the utility."""
    inst = build_instance(feeder("case15da"), interval="2016-06-21T23:00", seed=0,
                          options=InstanceOptions(pv_share=0.0, wind_share=0.0))
    assert len(inst.trades) == 0
    ref = solve_clearing(inst)
    res = solve_admm(inst, AdmmSettings(projection=projection)).result
    assert res.info["converged"] and abs(res.objective - ref.objective) <= 1e-4 * abs(ref.objective)


@pytest.mark.parametrize("case", ["case15da", "case141"])
def test_the_direct_projection_is_the_sweeps_message_passing(case):
    """In-process over the ideal transport the sweep's hops are one sparse projection; passed as messages
    (an explicit transport) they must give the same iterates: same iterations, same dispatch."""
    inst = build_instance(feeder(case), interval=SUMMER_NOON, seed=1)
    settings = AdmmSettings(max_iter=3000)
    direct = solve_admm(inst, settings)
    hops = solve_admm(inst, settings, IdealTransport())
    assert direct.split.direct is not None and hops.split.direct is None
    assert direct.result.info["iterations"] == hops.result.info["iterations"]
    assert direct.result.p == pytest.approx(hops.result.p, abs=1e-9)
    assert direct.result.v == pytest.approx(hops.result.v, abs=1e-9)
    # and the projection itself, on an arbitrary point: the feeder's equalities hold after it
    proj, rng = direct.split.direct, np.random.default_rng(3)
    y = proj(rng.normal(size=proj.A.shape[1]))
    assert np.abs(proj.A @ y - proj.b).max() < 1e-10


def test_in_process_run_keeps_blas_to_one_thread():
    """The agents' steps run with BLAS_THREADS BLAS threads, and the caller's setting is restored after."""
    from threadpoolctl import threadpool_info, threadpool_limits

    from market.admm.driver import BLAS_THREADS

    def blas_threads() -> dict[str, int]:
        return {lib["filepath"]: lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}

    seen: list[dict[str, int]] = []
    inst = build_instance(feeder("case15da"), interval=SUMMER_NOON, seed=0)
    with threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        solve_admm(inst, AdmmSettings(max_iter=3), on_iteration=lambda k, s: seen.append(blas_threads()))
        after = blas_threads()
    assert 2 in before.values()  # (a single-threaded build, as SCS bundles, stays at 1)
    assert seen and all(set(threads.values()) == {BLAS_THREADS} for threads in seen)
    assert {lib: after[lib] for lib in before} == before
