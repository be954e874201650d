"""The ``[privacy]`` scenario section: bad values refused naming their field, a private co-simulation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cosim.cli import EXIT_INPUT, EXIT_OK, main
from cosim.interval import clear_interval
from cosim.scenario import ScenarioError, load_scenario
from cosim.world import run_world
from cyber.privacy.setup import PrivacySetup, secure_pairs
from market.admm.driver import solve_admm
from market.instance import build_instance
from physical.profiles import interval_index
from tests.conftest import SUMMER_NOON, feeder

BASE = """
name = "private"
case = "case15da"
seed = 1
start = "2016-06-21T12:00"
[admm]
projection = "sweep"
"""


def _file(tmp_path, text):
    path = tmp_path / "scenario.toml"
    path.write_text(BASE + text)
    return path


@pytest.mark.parametrize("text, message", [
    ("[privacy]\nmode = \"paillier\"\nkey_bits = 512", "field privacy.key_bits: privacy key_bits: expected"),
    ("[privacy]\nmode = \"paillier\"\nkey_bits = 2047", "field privacy.key_bits"),
    ("[privacy]\nmode = \"paillier\"\ncoefficient_low = 0.4", "coefficient range [0.4, 1.1]"),
    ("[privacy]\nmode = \"hybrid\"\ncoefficient_high = 1.2", "coefficient range [0.5, 1.2]"),
    ("[privacy]\nmode = \"hybrid\"\ncoefficient_low = 1.0\ncoefficient_high = 0.9", "expected 0.5 <= low <= high"),
    ("[privacy]\nmode = \"secret\"", "field privacy.mode"),
    ("[privacy]\nmode = \"paillier\"\nkeys = 2048", "field privacy.keys: Extra inputs"),
    ("method = \"centralized\"\n[privacy]\nmode = \"paillier\"", "field privacy.mode: privacy protects"),
    ("[privacy]\nmode = \"paillier\"\n[detector]\nname = \"median\"", "not combined with attacks or a detector"),
    ("[privacy]\nmode = \"hybrid\"\n[network]\nloss = 0.01", "network.loss must be 0"),
    ("[privacy]\nmode = \"paillier\"\n[network]\nloss = 0.01\nretransmit = false", "it needs retransmit = true"),
    ("relaxation = 1.8\n[privacy]\nmode = \"paillier\"", "field admm: privacy: the encryption coefficient"),
])
def test_bad_privacy_values_name_their_field_and_write_nothing(tmp_path, capsys, text, message):
    # "relaxation" belongs to [admm], which BASE opens last
    path = _file(tmp_path, text) if not text.startswith("method") else _file_top(tmp_path, text)
    with pytest.raises(ScenarioError, match="scenario.toml") as err:
        load_scenario(path)
    assert message in str(err.value), str(err.value)
    out = tmp_path / "results"
    assert main(["run", str(path), "--out", str(out), "--quiet"]) == EXIT_INPUT
    assert message in capsys.readouterr().err and not out.exists()


def _file_top(tmp_path, text):
    top, rest = text.split("\n", 1)
    path = tmp_path / "scenario.toml"
    path.write_text(BASE.replace("[admm]", f"{top}\n[admm]") + rest)
    return path


def test_a_private_cosimulation_runs_the_protocol_of_the_direct_driver(tmp_path):
    # 1024-bit keys and 4 iterations: the test is about the wiring, not the security
    text = "max_iter = 4\n[network]\nmean_ms = 0.0\ncompute_ms = 0.0\n[privacy]\nmode = \"hybrid\"\nkey_bits = 1024\n"
    scenario = load_scenario(_file(tmp_path, text))
    run = run_world(scenario)
    instance = build_instance(feeder("case15da"), interval=SUMMER_NOON, seed=1)
    seed = 1 * 100_003 + interval_index(SUMMER_NOON)
    direct = solve_admm(instance, scenario.admm_settings(),
                        pairs=secure_pairs(instance, PrivacySetup("hybrid"), seed, encrypted=False))
    assert len(run.iterations) == 4
    assert np.array_equal(run.iterations["objective"].to_numpy(), direct.history["objective"].to_numpy())


def test_a_private_cosimulation_charges_the_network_and_the_crypto_as_the_in_process_run(tmp_path):
    # ciphertexts over a lossy, random network with retransmissions; 1024-bit keys and 3 iterations: the test is
    # about the simulated time and the bytes, the same through mosaik as in-process
    text = ("max_iter = 3\n[network]\nlatency = \"normal\"\nmean_ms = 2.0\nstd_ms = 0.5\nloss = 0.02\n"
            "bandwidth_kbps = 1000.0\ncompute_ms = 0.5\n[privacy]\nmode = \"paillier\"\nkey_bits = 1024\n")
    path = _file(tmp_path, text)
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out), "--quiet"]) == EXIT_OK
    row = pd.read_csv(out / "intervals.csv").iloc[0]
    summary = json.loads((out / "summary.json").read_text())
    direct = clear_interval(load_scenario(path), feeder("case15da"), interval_index(SUMMER_NOON))
    record = direct.record()
    for key in ("iterations", "clearing_ms", "messages_sent", "messages_lost", "messages_retransmitted",
                "messages_bytes", "bytes_sent", "crypto_model_s_max", "crypto_model_s_total"):
        assert row[key] == pytest.approx(record[key], rel=1e-9), key  # (intervals.csv keeps 10 digits)
    iterations = pd.read_csv(out / "iterations.csv")
    assert np.allclose(iterations["objective"], direct.run.history["objective"], rtol=1e-9, atol=0)
    assert row["messages_lost"] > 0 and row["messages_retransmitted"] > 0
    assert summary["privacy"] == "paillier" and summary["key_bits"] == 1024 and summary["plain_objective"] is None
    assert summary["bytes_sent"] == record["bytes_sent"] and summary["network_bytes"] == record["messages_bytes"]
    assert 0 < summary["crypto_model_s_max"] < summary["crypto_model_s_total"] == pytest.approx(
        record["crypto_model_s_total"], rel=1e-12)
    # the clear arithmetic (encrypt = false): the same clearing in the same simulated time, nothing encrypted
    clear = clear_interval(load_scenario(_file(tmp_path, text + "encrypt = false\n")), feeder("case15da"),
                           interval_index(SUMMER_NOON)).record()
    for key in ("clearing_ms", "objective", "messages_bytes", "bytes_sent", "crypto_model_s_total"):
        assert clear[key] == record[key], key
    assert clear["crypto_s_total"] == 0 < record["crypto_s_total"]
