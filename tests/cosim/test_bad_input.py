"""Every bad input the CLI and scenario files have been seen to mishandle: one clear line on stderr naming the
option, file or field, exit 1, nothing written; and a dispatch without an AC power flow is a result."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import physical.ac_power_flow as ac_power_flow
from cosim.cli import EXIT_AC_DIVERGED, EXIT_INPUT, main
from physical.errors import AcNotConverged
from tests.conftest import feeder

SCENARIO = """name = "bad"
case = "case15da"
seed = 0
start = "2016-06-21T12:00"
intervals = 1
"""


def one_clear_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize("args, message", [
    (["--seed", "-1"], "--seed: expected an integer >= 0"),
    (["--interval", "2016-06-21T12:00+02:00"], "without a time zone"),
    (["--interval", "2017-01-01T00:00"], "outside the profile year"),
    (["--interval", "noon"], "expected an index"),
    (["--method", "centralized", "--rho", "2"], "--rho: ADMM options act on the distributed market"),
    (["--max-iter", "50", "--relaxation", "1.5"], "--max-iter, --relaxation: ADMM options"),
    (["--method", "admm", "--relaxation", "0"], "relaxation must lie in (0, 2)"),
    (["--method", "admm", "--rho", "inf"], "--rho: expected a finite number"),
    (["--partners", "all", "--k", "4"], "--k: the number of partners per buyer needs --partners nearest or auto"),
    (["--delta", "0.1"], "--delta: attack parameters need --attack"),
    (["--pv-ratio", "1"], "--pv-ratio: expected LOW,HIGH"),
])
def test_bad_clear_options(tmp_path, capsys, args, message):
    out = tmp_path / "out"
    assert main(["clear", "--case", "case15da", "--out", str(out), *args]) == EXIT_INPUT
    assert message in one_clear_line(capsys)
    assert list(tmp_path.iterdir()) == []


def test_binary_instance_file(tmp_path, capsys):
    binary = tmp_path / "instance.json"
    binary.write_bytes(bytes(range(256)))
    assert main(["clear", "--instance", str(binary), "--out", str(tmp_path / "out")]) == EXIT_INPUT
    assert f"{binary}: not a text file" in one_clear_line(capsys)
    assert [p.name for p in tmp_path.iterdir()] == ["instance.json"]


def test_options_an_instance_file_would_ignore(tmp_path, capsys):
    instance = tmp_path / "instance.json"
    instance.write_text("{}")
    assert main(["clear", "--instance", str(instance), "--interval", "5", "--out", str(tmp_path / "o")]) == 1
    assert "--interval: --instance re-solves a saved instance" in one_clear_line(capsys)


def test_out_below_a_regular_file_fails_before_the_clearing(tmp_path, capsys, monkeypatch):
    (tmp_path / "notes.txt").write_text("x")
    monkeypatch.setattr("cosim.clearing_run.clear", lambda *a, **k: pytest.fail("cleared before checking --out"))
    assert main(["clear", "--case", "case15da", "--out", str(tmp_path / "notes.txt" / "run")]) == EXIT_INPUT
    assert "is a file" in one_clear_line(capsys)


@pytest.mark.parametrize("text, message", [
    ("seed = -1\n", "field seed: Input should be greater than or equal to 0"),
    ('start = "2016-13-01T00:00"\n', "field start: interval '2016-13-01T00:00': expected an index"),
    ('start = "2016-06-21T12:00Z"\n', "field start: interval '2016-06-21T12:00Z': expected a local time"),
    ('start = "2016-12-31T20:00"\nintervals = 20\n', "field intervals: 20 quarter hours from 2016-12-31T20:00 run "
                                                     "past the end of the profile year 2016 (at most 16"),
])
def test_bad_scenario_fields(tmp_path, capsys, text, message):
    lines = [line for line in SCENARIO.splitlines() if line.split(" =")[0] not in
             {k.split(" =")[0] for k in text.splitlines()}]
    path = tmp_path / "s.toml"
    path.write_text("\n".join(lines) + "\n" + text)
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == EXIT_INPUT
    err = one_clear_line(capsys)
    assert str(path) in err and message in err
    assert [p.name for p in tmp_path.iterdir()] == ["s.toml"]


@pytest.mark.parametrize("args, message", [
    (["--byzantine-share", "1.5"], "--byzantine-share 1.5: expected shares in (0, 1]"),
    (["--loss", "0,1"], "--loss 0.0,1.0: expected loss rates in [0, 1)"),
    (["--latency-ms", "-5"], "--latency-ms -5.0: expected latencies >= 0"),
    (["--attacks", "none,meteor"], "--attacks none,meteor: expected none or one of"),
])
def test_bad_sweep_grids_are_refused_before_any_worker_starts(tmp_path, capsys, args, message):
    path = tmp_path / "s.toml"
    path.write_text(SCENARIO)
    assert main(["sweep", str(path), "--out", str(tmp_path / "out"), *args]) == EXIT_INPUT
    assert message in one_clear_line(capsys)
    assert [p.name for p in tmp_path.iterdir()] == ["s.toml"]


def test_validate_dispatch_reports_an_ac_power_flow_that_does_not_converge():
    case = feeder("case15da")
    p = np.r_[0.0, np.full(case.n_buses - 1, -50.0)]  # 50 MW at every bus of a 12.66 kV feeder
    check = ac_power_flow.validate_dispatch(case, p, np.zeros(case.n_buses), np.ones(case.n_buses), 0.0,
                                            np.full(case.n_buses, 0.9), np.full(case.n_buses, 1.1))
    assert not check.converged and np.isnan(check.ac.vm_pu).all()
    assert check.summary()["ac_converged"] is False
    with pytest.raises(AcNotConverged):
        ac_power_flow.run_ac_power_flow(case, p, np.zeros(case.n_buses))


def test_a_clearing_whose_ac_check_diverges_is_written_whole_with_its_own_exit_code(tmp_path, monkeypatch):
    def diverge(*args, **kwargs):
        raise AcNotConverged("AC power flow on case15da did not converge for this dispatch")

    monkeypatch.setattr(ac_power_flow, "run_ac_power_flow", diverge)
    out = tmp_path / "out"
    assert main(["clear", "--case", "case15da", "--out", str(out), "--quiet"]) == EXIT_AC_DIVERGED
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "optimal" and summary["ac_converged"] is False
    buses = pd.read_csv(out / "buses.csv")
    assert buses["vm_ac_pu"].isna().all() and buses["v_socp_pu"].notna().all()
    assert {p.name for p in Path(out).iterdir()} >= {"instance.json", "lines.csv", "trades.csv"}
