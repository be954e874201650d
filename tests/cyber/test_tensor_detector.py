"""The tensor detector's bookkeeping: robust error scales, the despiked history, and what they buy against an
attack whose injections come often enough for the forecast to learn them."""

from __future__ import annotations

import numpy as np

from cyber import detector_kernels as kernels
from cyber.attacks import AttackSpec
from cyber.detector_kernels import is_spike
from cyber.resilient_admm import CyberSetup, default_relaxation, solve_resilient_admm
from cyber.tensor_detector import ErrorScale, TensorDetector, Window
from market.admm.driver import AdmmSettings, build_splitting
from market.admm.states import LOCAL_FIELDS, X_PHASE, local_report
from market.instance import build_instance
from market.messages import MessageBatch
from tests.conftest import feeder


def test_a_spike_is_an_isolated_jump_not_a_trend_or_a_step():
    a, c = np.zeros(4), np.array([0.2, 0.2, 0.0, 1.0])
    b = np.array([0.1, 0.11, 1.0, 0.9])  # on the line, near it, out and back, a step that stays
    assert is_spike(a, b, c, 3.0, 1e-6).tolist() == [False, False, True, False]


def test_the_history_loses_its_spikes_once_the_value_after_them_is_known():
    window = Window(1, 2, 5, np.array([2]))
    series = [[0.0, 0.0], [1.0, 0.1], [6.0, 0.2], [3.0, 0.3]]  # channel 0: a spike at step 2
    for column in series:
        window.append(np.array([column]), np.zeros((1, 2)), (3.0, 1e-6))
    history = window.last(4)[0]
    assert history[0].tolist() == [0.0, 1.0, 2.0, 3.0]  # the spike became the midpoint of its neighbours
    assert np.allclose(history[1], [0.0, 0.1, 0.2, 0.3])  # the trend is left alone


def test_the_windows_last_observations_are_a_slice_in_time_order_across_the_wrap():
    """Seven observations into a window of five: the newest k, oldest first, whatever the ring's head, as a view
    (no gather); the agent's slots beyond its own stay zero."""
    window = Window(2, 3, 5, np.array([3, 2]))
    observations = [np.arange(6.0).reshape(2, 3) + 10 * t for t in range(7)]
    for observation in observations:
        window.append(observation, np.zeros((2, 3)))
    for k in range(1, 6):
        last = window.last(k)
        expected = np.stack(observations[-k:], axis=-1)
        expected[1, 2] = 0.0  # agent 1 uses two slots
        assert np.array_equal(last, expected) and np.shares_memory(last, window.data)


def test_a_retracted_error_is_the_next_one_overwritten():
    honest = (0.01, 0.012, 0.011, 0.009)
    scales = [ErrorScale((1,), k=5), ErrorScale((1,), k=5)]
    for scale in scales:
        for e in (*honest, 1.0):  # the last error belonged to a spike
            scale.push(np.array([0]), np.array([e]))
        scale.refresh()
    kernels.retract_one(*scales[1].rings(), 0, 0)  # what the screening pass does to a spike's error
    for scale in scales:
        scale.push(np.array([0]), np.array([0.01]))
    assert np.isclose(scales[0].errors[0], 1.0).any()  # kept for four more iterations
    assert scales[1].errors[0].max() < 0.02  # gone at once


def test_frequent_injections_at_a_leaf_are_caught_not_learned():
    """Every third iteration from the fourth, a leaf prosumer adds 0.1 p.u. to the flows it reports: before the
    history was despiked, the forecast learned the pattern and caught 6% of them."""
    net = feeder("case33bw")
    inst = build_instance(net, interval="2016-06-21T18:00", seed=3)
    leaf = next(j for j in range(1, net.n_buses) if not net.children[j])
    attack = AttackSpec("static-fdi", agents=(leaf,), fields=("P", "Q"), delta=0.1, period=3, start=4, seed=1)
    run = solve_resilient_admm(inst, AdmmSettings(projection="local", max_iter=1000,
                                                  relaxation=default_relaxation((attack,), "tensor")),
                               CyberSetup(attacks=(attack,), detector="tensor"))
    assert run.tpr_by_kind()["flow"] >= 0.8


def test_voltages_outside_the_senders_limits_are_caught_and_replaced_by_the_receivers_copy():
    """Even before the forecast has any history, a voltage no honest update can produce is flagged and replaced
    by the receiver's own copy of it."""
    inst = build_instance(feeder("case15da"), interval="2016-06-21T12:00", seed=0)
    split = build_splitting(inst, AdmmSettings(projection="local"))
    lay = split.layout
    links = np.arange(len(lay.link_child))
    v = np.where(links % 2 == 0, 1.0, np.where(links % 4 == 1, -1.0, 1.5))  # honest, below, above
    batch = MessageBatch("voltage", X_PHASE, 0, lay.link_parent + 1, lay.link_child + 1, links, {"v": v})
    detector = TensorDetector(inst, split)
    own = {name: np.full(split.n, 1.0) for name in LOCAL_FIELDS} | {"w": 0.95 + 0.001 * np.arange(split.n)}
    detector.screen(local_report(own, 0))  # the agents' own values: w is each one's copy of its parent's voltage
    verdict = detector.screen(batch)
    assert verdict.flagged["v"].tolist() == (links % 2 == 1).tolist()
    impossible = links % 2 == 1  # replaced by the receiver's own copy; honest values pass
    assert np.allclose(verdict.values["v"], np.where(impossible, own["w"][lay.link_child], v))
    assert not TensorDetector(inst, split, physics=False).screen(batch).flagged["v"].any()  # history only


def test_an_attack_on_voltages_far_outside_their_limits_is_caught_throughout():
    inst = build_instance(feeder("case15da"), interval="2016-06-21T12:00", seed=0)
    sender = next(j for j in range(1, inst.feeder.n_buses) if inst.feeder.children[j])
    attack = AttackSpec("random", agents=(sender,), fields=("v",), low=-1.0, high=0.5, period=2, seed=2)
    run = solve_resilient_admm(inst, AdmmSettings(projection="local", max_iter=300),
                               CyberSetup(attacks=(attack,), detector="tensor"))
    assert len(run.truth) > 100 and run.tpr_by_kind() == {"voltage": 1.0}


def test_gross_injections_are_caught_before_the_window_holds_a_forecast():
    """Until the window holds enough iterations to forecast (12), the estimate is the last trusted value: once
    a few steps give its scale, values far off it are caught (before, nothing was screened that early)."""
    inst = build_instance(feeder("case15da"), interval="2016-06-21T12:00", seed=0)
    attack = AttackSpec("random", agents=(2,), fields=("P",), low=2.0, high=3.0, period=3, start=7, seed=3)
    run = solve_resilient_admm(inst, AdmmSettings(projection="local", max_iter=12),
                               CyberSetup(attacks=(attack,), detector="tensor"))
    hits = run.truth.merge(run.flags, on=["iteration", "kind", "field", "channel"])
    assert set(run.truth["iteration"]) == {7, 10} and len(hits) == len(run.truth)


def test_an_injection_every_other_iteration_still_leaves_the_slot_a_scale():
    """Each injection returns to the track one iteration later: its error is taken back, and the de-spiked
    track's two half steps count instead. When the return's step did not count either, the attacked slot never
    gathered the errors for a scale -- nothing was flagged (TPR 0.003) and the clearing did not converge in 6000
    iterations."""
    inst = build_instance(feeder("case15da"), interval="2016-06-21T12:00", seed=0)
    attack = AttackSpec("static-fdi", agents=(2,), fields=("P", "Q"), delta=0.05, period=2, start=2, seed=1)
    run = solve_resilient_admm(inst, AdmmSettings(projection="local", max_iter=1500,
                                                  relaxation=default_relaxation((attack,), "tensor")),
                               CyberSetup(attacks=(attack,), detector="tensor"))
    assert run.admm.result.info["converged"] and run.confusion["tpr"] > 0.2


def test_warm_up_compiles_every_kernel_a_screened_clearing_calls():
    """The detector's cost is timed after :func:`cyber.resilient_admm.warm_up`: a kernel first compiled inside
    the clearing (an argument of another layout than the warm-up's, e.g. a strided view) would be timed too."""
    from numba.core.registry import CPUDispatcher

    from cyber import forecast_kernels
    from cyber.resilient_admm import warm_up

    def signatures() -> dict[str, int]:
        return {f"{module.__name__}.{name}": len(kernel.signatures) for module in (kernels, forecast_kernels)
                for name, kernel in vars(module).items() if isinstance(kernel, CPUDispatcher)}

    warm_up("tensor")
    before = signatures()
    inst = build_instance(feeder("case15da"), interval="2016-06-21T12:00", seed=0)
    attack = AttackSpec("static-fdi", agents=(2,), fields=("P", "Q"), delta=0.05, seed=0)
    solve_resilient_admm(inst, AdmmSettings(projection="local", max_iter=40, relaxation=default_relaxation(
        (attack,), "tensor")), CyberSetup(attacks=(attack,), detector="tensor"))
    assert signatures() == before
