"""A curious parent reconstructs a leaf child's net injection from the flows it receives (plain ADMM)."""

from __future__ import annotations

import numpy as np

from cyber.privacy.leakage import FlowRecorder, leaf_children, leak_report, reconstruct_leaf_injections
from market.admm.driver import AdmmSettings, solve_admm
from market.instance import build_instance
from market.messages import IdealTransport
from tests.conftest import feeder


def test_leaf_flows_reveal_the_net_injection_to_the_parent():
    f = feeder("case15da")
    guess, cleared, desired, public = [], [], [], []
    for hour in (6, 12, 18):
        instance = build_instance(f, interval=f"2016-06-21T{hour:02d}:00", seed=1)
        recorder = FlowRecorder(IdealTransport())
        result = solve_admm(instance, AdmmSettings(projection="local"), recorder).result
        kw = f.base_mva * 1e3
        guesses = reconstruct_leaf_injections(instance, recorder)
        assert set(guesses) == {int(b) for b in leaf_children(instance)} and guesses
        for bus, value in guesses.items():
            guess.append(value), cleared.append(result.p[bus] * kw)
            desired.append(instance.agents[bus - 1].p_hat_kw), public.append(-f.pd_mw[bus] * 1e3)
    report = leak_report(*(np.array(a) for a in (guess, cleared, desired, public)))
    # the flow message is the injection up to the stopping tolerance: far better than the public guess
    assert report.mae_kw < 0.05 * report.baseline_mae_kw
    assert report.mae_kw < 0.01 * report.scale_kw
    assert report.corr_cleared > 0.999
    assert report.corr_desired > 0.9
