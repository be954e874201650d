"""`cosim clear` end to end: the results folder, re-running its dispatch, and bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cosim.cli import EXIT_INPUT, EXIT_NO_SOLUTION, EXIT_NOT_CONVERGED, EXIT_OK, main
from cosim.results import MANIFEST
from physical.ac_power_flow import run_ac_power_flow
from physical.catalog import load_feeder

SUMMARY_KEYS = {"case", "seed", "method", "status", "objective", "traded_kw", "p0_kw", "losses_kw",
                "max_relaxation_gap", "max_vm_mismatch_pu", "voltage_violations", "wall_s"}


@pytest.fixture(scope="module")
def cleared(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "case15da"
    assert main(["clear", "--case", "case15da", "--seed", "0", "--out", str(out), "--quiet"]) == EXIT_OK
    return out


def test_results_folder_holds_every_file(cleared):
    assert {p.name for p in cleared.iterdir()} == {"instance.json", "summary.json", "buses.csv", "lines.csv",
                                                   "trades.csv", MANIFEST}
    summary = json.loads((cleared / "summary.json").read_text())
    assert set(summary) >= SUMMARY_KEYS
    assert summary["status"] == "optimal" and summary["case"] == "case15da" and summary["seed"] == 0
    assert summary["max_relaxation_gap"] <= 1e-6 and summary["max_vm_mismatch_pu"] <= 1e-3
    buses = pd.read_csv(cleared / "buses.csv")
    assert list(buses.columns[:1]) == ["bus"]
    assert {"p_kw", "q_kvar", "v_socp_pu", "vm_ac_pu"} <= set(buses.columns)
    lines = pd.read_csv(cleared / "lines.csv")
    assert {"line", "from_bus", "to_bus", "p_kw", "q_kvar", "loading_percent"} <= set(lines.columns)
    trades = pd.read_csv(cleared / "trades.csv")
    assert {"buyer", "seller", "kw"} <= set(trades.columns)
    bilateral = trades[(trades.buyer > 0) & (trades.seller > 0)]
    assert bilateral.kw.sum() == pytest.approx(summary["traded_kw"], rel=1e-9)
    assert buses.p_kw.iloc[0] == pytest.approx(summary["p0_kw"])


def test_rerunning_pandapower_on_buses_csv_reproduces_vm_ac(cleared):
    buses = pd.read_csv(cleared / "buses.csv")
    feeder = load_feeder("case15da")
    ac = run_ac_power_flow(feeder, buses.p_kw.to_numpy() / 1e3, buses.q_kvar.to_numpy() / 1e3)
    assert np.allclose(ac.vm_pu, buses.vm_ac_pu, atol=1e-8)
    assert np.allclose(buses.v_socp_pu, buses.vm_ac_pu, atol=1e-3)


def test_resolving_a_saved_instance_gives_the_same_clearing(cleared, tmp_path):
    out = tmp_path / "again"
    assert main(["clear", "--instance", str(cleared / "instance.json"), "--out", str(out), "--quiet"]) == EXIT_OK
    first = json.loads((cleared / "summary.json").read_text())
    second = json.loads((out / "summary.json").read_text())
    assert second["objective"] == pytest.approx(first["objective"], rel=1e-9)
    assert (out / "instance.json").read_text() == (cleared / "instance.json").read_text()


def test_unknown_case_is_a_clear_error_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "nope"
    assert main(["clear", "--case", "case_nope", "--out", str(out)]) == EXIT_INPUT
    assert "unknown MATPOWER case 'case_nope'" in capsys.readouterr().err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_meshed_grid_is_a_clear_error(tmp_path, capsys):
    assert main(["clear", "--case", "case16ci", "--out", str(tmp_path / "x")]) == EXIT_INPUT
    assert "exactly one reference" in capsys.readouterr().err


def test_malformed_instance_file_is_a_clear_error(cleared, tmp_path, capsys):
    data = json.loads((cleared / "instance.json").read_text())
    del data["feeder"]["r_pu"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    assert main(["clear", "--instance", str(bad), "--out", str(tmp_path / "x")]) == EXIT_INPUT
    err = capsys.readouterr().err
    assert str(bad) in err and "feeder.r_pu" in err
    assert not (tmp_path / "x").exists()


def test_existing_results_are_not_overwritten_without_force(cleared, capsys):
    before = (cleared / "summary.json").read_text()
    assert main(["clear", "--case", "case15da", "--seed", "1", "--out", str(cleared)]) == EXIT_INPUT
    assert "not empty" in capsys.readouterr().err
    assert (cleared / "summary.json").read_text() == before


def test_infeasible_clearing_reports_why_and_exits_non_zero(tmp_path):
    out = tmp_path / "tight"
    code = main(["clear", "--case", "case85", "--vmin", "0.9995", "--vmax", "1.0005", "--out", str(out), "--quiet"])
    assert code == EXIT_NO_SOLUTION
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "infeasible" and "voltage lower limit" in summary["message"]
    assert not (out / "buses.csv").exists()


def test_console_script_help(capsys):
    assert main(["--help"]) == 0
    assert "clear" in capsys.readouterr().out


def test_admm_clearing_reports_iterations_and_gap(tmp_path):
    out = tmp_path / "admm"
    args = ["clear", "--case", "case15da", "--seed", "2", "--method", "admm", "--out", str(out), "--quiet"]
    assert main(args) == EXIT_OK
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == "admm" and summary["converged"] is True
    assert {"iterations", "primal_residual", "dual_residual", "reference_objective", "optimality_gap"} <= set(summary)
    assert summary["optimality_gap"] <= 1e-4
    assert summary["objective"] == pytest.approx(summary["reference_objective"], rel=1e-4)
    history = pd.read_csv(out / "iterations.csv")
    assert list(history.columns[:6]) == ["iteration", "primal_residual", "dual_residual", "objective", "traded_kw",
                                         "p0_kw"]
    assert len(history) == summary["iterations"]
    assert (out / "buses.csv").exists()


def test_admm_that_does_not_converge_exits_3_without_a_dispatch(tmp_path, capsys):
    out = tmp_path / "short"
    code = main(["clear", "--case", "case15da", "--method", "admm", "--max-iter", "20", "--out", str(out)])
    assert code == EXIT_NOT_CONVERGED
    summary = json.loads((out / "summary.json").read_text())
    assert summary["converged"] is False and summary["status"] == "not_converged"
    assert (out / "iterations.csv").exists() and not (out / "buses.csv").exists()
    assert "did not converge within 20 iterations" in capsys.readouterr().out


def test_bad_admm_option_is_a_clear_error(tmp_path, capsys):
    assert main(["clear", "--case", "case15da", "--method", "admm", "--rho", "-1", "--out", str(tmp_path / "x")]) == 1
    assert "ADMM options" in capsys.readouterr().err


def test_attacked_clearing_reports_the_detector_score(tmp_path):
    out = tmp_path / "attacked"
    args = ["clear", "--case", "case15da", "--method", "admm", "--attack", "static-fdi", "--byzantine", "2",
            "--attack-fields", "P,Q", "--detector", "tensor", "--out", str(out), "--quiet"]
    assert main(args) == EXIT_OK
    summary = json.loads((out / "summary.json").read_text())
    assert summary["attack"] == "static-fdi" and summary["byzantine"] == [2] and summary["detector"] == "tensor"
    assert summary["tp"] + summary["fn"] > 0 and summary["detector_wall_s"] > 0
    assert summary["tpr"] == pytest.approx(summary["tp"] / (summary["tp"] + summary["fn"]))
    steps = summary["n_agents"] * summary["iterations"]
    assert summary["detector_us_per_agent_iteration"] == pytest.approx(summary["detector_wall_s"] * 1e6 / steps)
    fields = summary["tp"] + summary["fp"] + summary["fn"] + summary["tn"]
    assert summary["detector_us_per_field"] == pytest.approx(summary["detector_wall_s"] * 1e6 / fields)
    history = pd.read_csv(out / "iterations.csv")
    assert history["attacked"].sum() == summary["tp"] + summary["fn"]
    assert history["flagged"].sum() == summary["tp"] + summary["fp"]


@pytest.mark.parametrize("extra, message", [
    (["--attack", "static-fdi"], "go together"),
    (["--attack", "scale", "--byzantine", "99"], "prosumers 1..14"),
    (["--detector", "tensor", "--alpha", "3"], "alpha in (0, 1)"),
    (["--attack", "static-fdi", "--byzantine", "2", "--attack-fields", "t"], "falsifies the flows"),
])
def test_bad_cyber_options_are_clear_errors_and_write_nothing(tmp_path, capsys, extra, message):
    out = tmp_path / "bad"
    assert main(["clear", "--case", "case15da", "--method", "admm", "--out", str(out), *extra]) == EXIT_INPUT
    assert message in capsys.readouterr().err and not out.exists()


def test_simbench_grid_by_code(tmp_path, capsys):
    out = tmp_path / "lv"
    assert main(["clear", "--case", "1-LV-rural1--0-sw", "--out", str(out), "--quiet"]) == EXIT_OK
    summary = json.loads((out / "summary.json").read_text())
    assert summary["case"] == "1-LV-rural1--0-sw" and summary["max_relaxation_gap"] <= 1e-6
    assert summary["max_vm_mismatch_pu"] <= 1e-3
    assert main(["clear", "--case", "1-LV-rural1--0-sw", "--pv-share", "0.3", "--out", str(tmp_path / "x")]) \
        == EXIT_INPUT
    assert "--pv-share" in capsys.readouterr().err and not (tmp_path / "x").exists()
    assert main(["cases"]) == EXIT_OK
    listed = capsys.readouterr().out.split()
    assert "case15da" in listed and "1-MV-urban--0-sw" in listed and "1-MVLV-rural-all-0-sw" in listed
