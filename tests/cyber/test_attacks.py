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


def test_stealthy_drifts_one_way_inside_the_band_it_models(inst):
    """Every iteration the offset moves the way ``delta`` points, by ``drift`` times the band the attacker
    models from the steps of what it sent (z * 1.4826 * median of the last 9 + floor), never past ``|delta|``;
    the voltage it sends its children moves with the flows (the DistFlow drop still holds)."""
    from scipy.stats import norm

    from cyber.screening import BAND_FLOOR, BAND_MEMORY

    j = middle_agent(inst)
    spec = AttackSpec("stealthy", agents=(j,), fields=("P", "Q"), delta=-0.002, drift=0.5)
    assert spec.period == 1
    _, dirty, byz = run_with(inst, spec, 60)
    truth = byz.ground_truth()
    flows = truth[truth.kind == "flow"]
    p = flows[flows.field == "P"].set_index("iteration")
    offset = (p.sent - p.true).reindex(range(1, 61), fill_value=0.0).to_numpy()
    still = BAND_MEMORY // 2 + 2  # iterations without a scale: half the ring of steps is filled after the 6th
    assert offset[:still].tolist() == [0.0] * still
    assert np.all(np.diff(offset) <= 1e-15) and offset.min() >= -0.002 - 1e-15 and offset[-1] < 0
    sent = np.array([dirty.seen[k, "flow"].fields["P"][dirty.seen[k, "flow"].sender == j][0] for k in range(1, 61)])
    z = norm.ppf(1 - spec.alpha / 2)
    for k in range(still, 60):  # offset[k] is iteration k + 1's, modelled on the steps before it
        steps = np.abs(np.diff(sent[: k]))[-BAND_MEMORY:]
        band = z * 1.4826 * np.sort(np.r_[steps, [np.inf] * (BAND_MEMORY - len(steps))])[BAND_MEMORY // 2] + BAND_FLOOR
        assert offset[k - 1] - offset[k] <= spec.drift * band + 1e-15
        assert offset[k] == pytest.approx(-0.002) or offset[k - 1] - offset[k] == pytest.approx(spec.drift * band)
    f = inst.feeder
    volts = truth[truth.kind == "voltage"]
    q = flows[flows.field == "Q"].set_index("iteration")
    for it, rows in volts.groupby("iteration"):
        dp, dq = p.sent[it] - p.true[it], q.sent[it] - q.true[it]
        assert np.allclose(rows.sent - rows.true, -2 * (f.r_pu[j] * dp + f.x_pu[j] * dq))


def test_stealthy_drift_needs_every_iteration():
    with pytest.raises(CyberError, match="period 1"):
        AttackSpec("stealthy", agents=(1,), period=5)
    with pytest.raises(CyberError, match="drift"):
        AttackSpec("stealthy", agents=(1,), drift=0.0)


def test_byzantine_share_is_seeded():
    from cyber.attacks import byzantine_agents

    a = byzantine_agents(3, 85, 0.2)
    assert a == byzantine_agents(3, 85, 0.2) != byzantine_agents(4, 85, 0.2)
    assert len(a) == 17 and len(set(a)) == 17 and min(a) >= 1 and max(a) <= 84
    assert len(byzantine_agents(0, 15, 0.01)) == 1
    for share in (0.0, 1.5):
        with pytest.raises(CyberError, match="share"):
            byzantine_agents(0, 15, share)


def test_colluders_accept_what_their_fellows_send_them():
    """A detector that flags and zeroes everything: colluder-to-colluder rows pass untouched, the rest are
    still screened, and an agent's own report is left to the detector."""
    from cyber.screening import Colluding, Verdict

    class Paranoid:
        name = "paranoid"

        def screen(self, batch):
            n = len(batch)
            return Verdict({f: np.zeros(n) for f in batch.fields}, {f: np.ones(n, dtype=bool) for f in batch.fields},
                           np.zeros(n, dtype=bool))

    batch = MessageBatch("flow", "x", 3, np.array([2, 3, 4, 3]), np.array([3, 2, 3, 5]), np.arange(4),
                         {"P": np.array([1.0, 2.0, 3.0, 4.0])})
    verdict = Colluding(Paranoid(), (2, 3)).screen(batch)
    assert verdict.values["P"].tolist() == [1.0, 2.0, 0.0, 0.0]
    assert verdict.flagged["P"].tolist() == [False, False, True, True]
