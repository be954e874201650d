"""`cosim online` end to end: the results folder, its AC check, and bad input refused before anything is written."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cosim.cli import EXIT_INPUT, EXIT_OK, main

SUMMARY_KEYS = {"controller", "V", "v_max", "intervals", "cost_ct", "no_storage_cost_ct", "offline_cost_ct",
                "captured_value", "bound_ct", "soc_violations", "voltage_violations", "wall_s"}
BASE = ["online", "--case", "case15da", "--seed", "1", "--start", "2016-06-21T18:00", "--days", "0.03125",
        "--quiet"]


@pytest.fixture(scope="module")
def online(tmp_path_factory):
    out = tmp_path_factory.mktemp("online") / "run"
    assert main([*BASE, "--controller", "lyapunov", "--V-sweep", "0.5,1", "--out", str(out)]) == EXIT_OK
    return out


def test_results_folder_holds_the_summary_tables_and_figures(online):
    summary = json.loads((online / "summary.json").read_text())
    assert set(summary) >= SUMMARY_KEYS
    assert summary["intervals"] == 3 and summary["controller"] == "lyapunov"
    assert summary["V"] == pytest.approx(summary["v_max"])
    assert summary["offline_cost_ct"] <= summary["cost_ct"] <= summary["offline_cost_ct"] + summary["bound_ct"]
    assert summary["soc_violations"] == 0
    soc = pd.read_csv(online / "soc.csv")
    assert list(soc.columns) == ["interval", "unit", "bus", "soc_kwh", "charge_kw", "discharge_kw", "queue"]
    assert len(soc) == 3 * summary["units"]
    sweep = pd.read_csv(online / "v_sweep.csv")
    assert sweep["V"].iloc[-1] == pytest.approx(summary["v_max"])
    assert {p.name for p in (online / "figures").iterdir()} == {"soc.png", "cumulative_cost.png", "v_sweep.png"}


def test_the_stored_energy_follows_the_powers(online):
    soc = pd.read_csv(online / "soc.csv")
    for _, g in soc.groupby("unit"):
        step = np.diff(g["soc_kwh"].to_numpy())
        expected = 0.25 * (0.95 * g["charge_kw"].to_numpy() - g["discharge_kw"].to_numpy() / 0.95)[1:]
        assert step == pytest.approx(expected, abs=1e-6)


def test_every_interval_passed_the_ac_check(online):
    table = pd.read_csv(online / "intervals.csv")
    assert (table["charge_kw"] >= 0).all() and len(table) == 3
    summary = json.loads((online / "summary.json").read_text())
    assert summary["voltage_violations"] == 0 and summary["max_vm_mismatch_pu"] < 1e-4


@pytest.mark.parametrize("extra, message", [
    (["--controller", "lyapunov", "--V", "1e6"], "--V 1e+06: expected 0 < V <="),
    (["--controller", "myopic", "--V", "0.5"], "--V is the Lyapunov"),
    (["--controller", "lyapunov", "--storage-share", "0"], "no storage units"),
    (["--controller", "myopic", "--V-sweep", "0.5"], "--V-sweep"),
    (["--controller", "lyapunov", "--days", "0"], "--days"),
    (["--controller", "mpc", "--method", "admm"], "--method admm clears one interval at a time"),
    (["--controller", "lyapunov", "--projection", "local"], "--projection"),
])
def test_bad_input_exits_1_and_writes_nothing(tmp_path, capsys, extra, message):
    out = tmp_path / "out"
    assert main([*BASE, *extra, "--out", str(out)]) == EXIT_INPUT
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_the_admm_run_costs_what_the_centralized_run_costs(online, tmp_path):
    out = tmp_path / "admm"
    assert main([*BASE, "--controller", "lyapunov", "--method", "admm", "--out", str(out)]) == EXIT_OK
    got = json.loads((out / "summary.json").read_text())
    ref = json.loads((online / "summary.json").read_text())
    assert got["method"] == "admm" and got["projection"] == "sweep" and got["admm_iterations_max"] >= 1
    assert got["cost_ct"] == pytest.approx(ref["cost_ct"], rel=1e-4)
    assert got["offline_cost_ct"] == ref["offline_cost_ct"] and got["soc_violations"] == 0
    assert got["voltage_violations"] == 0
