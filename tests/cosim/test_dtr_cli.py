"""`cosim dtr`: the results folder, and bad input refused before anything is written."""

import json

from cosim.cli import main


def test_dtr_writes_the_summary_and_figures(tmp_path):
    out = tmp_path / "dtr"
    assert main(["dtr", "--case", "case39", "--budget", "2", "--states", "10", "--seed", "1", "--quiet",
                 "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    for field in ("case", "budget", "states", "risk_no_dtr", "risk_all_dtr", "risk_greedy", "risk_exhaustive",
                  "risk_random", "curvature", "bound", "placement", "wall_s"):
        assert field in summary
    assert summary["risk_exhaustive"] <= summary["risk_greedy"] + 1e-9 <= summary["risk_no_dtr"] + 1e-9
    assert 1 - 1 / 2.718281828 - 1e-9 <= summary["bound"] <= 1.0
    assert (out / "figures" / "risk_vs_budget.png").stat().st_size > 0
    assert (out / "figures" / "grid_placement.png").stat().st_size > 0


def test_dtr_bad_input_exits_1_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "dtr"
    assert main(["dtr", "--case", "case_nowhere", "--budget", "2", "--states", "5", "--out", str(out)]) == 1
    assert "case39" in capsys.readouterr().err
    assert main(["dtr", "--case", "case39", "--budget", "0", "--states", "5", "--out", str(out)]) == 1
    assert main(["dtr", "--case", "case39", "--budget", "99", "--states", "2", "--out", str(out)]) == 1
    assert main(["dtr", "--case", "case39", "--budget", "2", "--states", "2", "--device-outage", "1",
                 "--out", str(out)]) == 1
    assert not out.exists()
