"""Byzantine attacks on messages: what changes, when, consistently with DistFlow, and the ground truth."""

from __future__ import annotations

import numpy as np
import pytest

from cyber.attacks import AttackSpec, ByzantineTransport
from cyber.errors import CyberError
from market.admm.driver import AdmmSettings, solve_admm
from market.instance import build_instance
from market.messages import IdealTransport, MessageBatch
from market.problem.clearing import solve_clearing
from tests.conftest import SUMMER_NOON, feeder


class Recorder(IdealTransport):
    """Keeps what arrives, by (iteration, kind)."""

    def __init__(self) -> None:
        self.seen: dict[tuple[int, str], MessageBatch] = {}

    def deliver(self, batch: MessageBatch) -> MessageBatch:
        self.seen[batch.iteration, batch.kind] = batch
        return batch


@pytest.fixture(scope="module")
def inst():
    return build_instance(feeder("case15da"), interval=SUMMER_NOON, seed=0)


def middle_agent(inst) -> int:
    """A prosumer with a prosumer parent and at least one child: it sends flows up and voltages down."""
    f = inst.feeder
    return next(j for j in range(1, f.n_buses) if f.parent[j] > 0 and f.children[j])


def run_with(inst, spec: AttackSpec, iterations: int = 12):
    clean, dirty = Recorder(), Recorder()
    solve_admm(inst, AdmmSettings(projection="local", max_iter=iterations), transport=clean)
    byz = ByzantineTransport(inst, [spec], dirty)
    # the attacked run diverges from the clean one after the first injection; compare message by message
    solve_admm(inst, AdmmSettings(projection="local", max_iter=iterations), transport=byz)
    return clean, dirty, byz


def test_static_fdi_keeps_the_voltage_drop_consistent(inst):
    j = middle_agent(inst)
    spec = AttackSpec("static-fdi", agents=(j,), start=3, period=5, fields=("P", "Q"), delta=0.02)
    _, _, byz = run_with(inst, spec)
    truth = byz.ground_truth()
    assert set(truth.iteration) == {3, 8}
    flows = truth[(truth.kind == "flow")]
    assert set(flows.sender) == {j} and set(flows.field) == {"P", "Q"}
    assert np.allclose(flows.sent - flows.true, 0.02)
    volts = truth[truth.kind == "voltage"]
    f = inst.feeder
    assert set(volts.sender) == {j} and set(volts.receiver) == set(f.children[j])
    assert np.allclose(volts.sent - volts.true, -2 * (f.r_pu[j] + f.x_pu[j]) * 0.02)


def test_dynamic_noise_is_seeded_and_shared_by_an_agents_messages(inst):
    j = middle_agent(inst)
    spec = AttackSpec("dynamic-noise", agents=(j,), start=1, period=1, fields=("P",), sigma=0.01, seed=4)
    a = run_with(inst, spec, 6)[2].ground_truth()
    b = run_with(inst, spec, 6)[2].ground_truth()
    assert a.equals(b) and set(a.iteration) == set(range(1, 7))
    f = inst.feeder
    for _, rows in a.groupby("iteration"):
        dp = float((rows[rows.kind == "flow"].sent - rows[rows.kind == "flow"].true).iloc[0])
        dv = rows[rows.kind == "voltage"].sent - rows[rows.kind == "voltage"].true
        assert np.allclose(dv, -2 * f.r_pu[j] * dp)


@pytest.mark.parametrize("kind", ["random", "sign-flip", "scale", "replay"])
def test_value_attacks_touch_only_the_byzantine_agents_fields(inst, kind):
    buyer = next(t.buyer for t in inst.trades)
    spec = AttackSpec(kind, agents=(buyer,), start=4, period=2, fields=("t",), lag=2, factor=3.0, seed=1)
    _, _, byz = run_with(inst, spec, 10)
    truth = byz.ground_truth()
    assert len(truth) > 0
    assert set(truth.kind) == {"trade_to_seller"} and set(truth.sender) == {buyer}
    assert set(truth.iteration) <= {4, 6, 8, 10}
    if kind == "scale":
        assert np.allclose(truth.sent, 3.0 * truth.true)
    if kind == "sign-flip":
        assert np.allclose(truth.sent, -truth.true)
    if kind == "random":
        assert truth.sent.between(-1, 1).all()


def test_static_fdi_pulls_the_market_away_from_the_optimum(inst):
    j = middle_agent(inst)
    ref = solve_clearing(inst)
    spec = AttackSpec("static-fdi", agents=(j,), start=1, period=5, fields=("P", "Q"), delta=0.05)
    local = AdmmSettings(projection="local", max_iter=500)
    run = solve_admm(inst, local, transport=ByzantineTransport(inst, [spec], IdealTransport()))
    honest = solve_admm(inst, AdmmSettings(projection="local", max_iter=500))
    gap = abs(run.result.objective - ref.objective) / abs(ref.objective)
    assert not run.result.info["converged"]
    assert gap > 10 * abs(honest.history.objective.iloc[-1] - ref.objective) / abs(ref.objective)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"kind": "teleport", "agents": (1,)}, "kind"), ({"kind": "scale", "agents": ()}, "at least one"),
    ({"kind": "scale", "agents": (1,), "period": 0}, ">= 1"), ({"kind": "scale", "agents": (1,), "fields": ("z",)},
                                                              "fields"),
    ({"kind": "static-fdi", "agents": (1,), "fields": ("t",)}, "flows"),
])
def test_bad_attack_specs(kwargs, message):
    with pytest.raises(CyberError, match=message):
        AttackSpec(**kwargs)


def test_unknown_byzantine_agent(inst):
    with pytest.raises(CyberError, match="has prosumers 1..14"):
        ByzantineTransport(inst, [AttackSpec("scale", agents=(99,))], IdealTransport())
