"""The detectability oracle: injections beyond the honest history's own moves are detectable, small ones not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from cyber.detectability import HonestHistory, detected_of_detectable, oracle_flags
from cyber.screening import BAND_FLOOR as FLOOR
from market.messages import IdealTransport, MessageBatch


def honest_run(values: np.ndarray) -> HonestHistory:
    """Two channels of kind ``flow`` over ``len(values)`` iterations: channel 0 carries ``values``, channel 1
    a constant."""
    history = HonestHistory(IdealTransport())
    for k, value in enumerate(values, start=1):
        batch = MessageBatch("flow", "x", k, np.array([1, 2]), np.array([0, 0]), np.array([0, 1]),
                             {"P": np.array([value, 0.3])})
        history.deliver(batch)
    return history


def truth(rows: list[tuple[int, int, float]]) -> pd.DataFrame:
    return pd.DataFrame({"iteration": [r[0] for r in rows], "kind": "flow", "field": "P",
                         "channel": [r[1] for r in rows], "true": np.nan, "sent": [r[2] for r in rows]})


def test_the_oracle_flags_what_leaves_the_honest_tracks_band_and_nothing_else():
    rng = np.random.default_rng(3)
    noise = rng.normal(0.0, 1e-3, 40)
    values = 0.01 * np.arange(40) + noise
    history = honest_run(values)
    # the band at iteration 30: z x 1.4826 x median of the last nine extrapolation errors, plus the floor
    honest = values[:29]
    errors = np.abs(honest[2:] - (2 * honest[1:-1] - honest[:-2]))[-9:]
    band = norm.ppf(0.95) * 1.4826 * np.median(errors) + FLOOR
    estimate = 2 * honest[-1] - honest[-2]
    cases = truth([(30, 0, estimate + 1.5 * band), (30, 0, estimate + 0.5 * band), (30, 0, estimate - 1.5 * band),
                   (3, 0, values[2] + 1.0),  # too little history to tell anything
                   (30, 1, 0.3 + 2 * FLOOR), (30, 1, 0.3 + 0.5 * FLOOR)])  # a flat channel: the floor decides
    assert oracle_flags(cases, history, alpha=0.1).tolist() == [True, False, True, False, True, False]
    # a stricter false-alarm rate widens the band
    assert not oracle_flags(cases.iloc[:1], history, alpha=1e-9)[0]


def test_detected_of_detectable_counts_flags_on_detectable_injections_only():
    cases = truth([(10, 0, 1.0), (11, 0, 1.0), (12, 0, 1.0)]).assign(detectable=[True, True, False])
    flags = cases.iloc[[1, 2]][["iteration", "kind", "field", "channel"]]
    assert detected_of_detectable(flags, cases) == (1, 2)
    assert detected_of_detectable(flags, cases.drop(columns="detectable")) == (0, 0)


@pytest.mark.parametrize("attack", ["dynamic-noise", "static-fdi"])
def test_a_screened_clearing_reports_tpr_on_detectable_injections(attack, tmp_path):
    import json

    from cosim.cli import EXIT_OK, main

    out = tmp_path / "run"
    args = ["clear", "--case", "case15da", "--method", "admm", "--attack", attack, "--byzantine", "3",
            "--attack-fields", "P,Q", "--detector", "tensor", "--max-iter", "3000", "--out", str(out), "--quiet"]
    assert main(args) == EXIT_OK
    s = json.loads((out / "summary.json").read_text())
    assert 0 < s["detectable"] <= s["tp"] + s["fn"] and s["tp_detectable"] <= s["tp"]
    assert s["tpr_detectable"] == pytest.approx(s["tp_detectable"] / s["detectable"])
