"""The README's Python examples (docs/examples/python_api*.py) run as written and their numbers hold; the API's
scenario runs, delay studies and online studies are what `cosim run` and `cosim online` write."""

from __future__ import annotations

import io
import json
import re
import runpy
from pathlib import Path

import pandas as pd
import pytest

from cosim import api
from cosim.cli import EXIT_OK, main
from market.errors import InstanceError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "python_api.py"
ONLINE_EXAMPLE = ROOT / "docs" / "examples" / "python_api_online.py"


def test_readme_example_runs(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    ns = runpy.run_path(str(EXAMPLE))
    central, check, distributed, defended, day = (ns[k] for k in ("central", "check", "distributed", "defended",
                                                                     "day"))
    assert isinstance(central.report, api.ClearingReport) and isinstance(central.buses, pd.DataFrame)
    assert central.report.status == "optimal" and central.report.max_relaxation_gap <= 1e-6
    assert check.converged and check.max_vm_mismatch_pu <= 1e-3
    assert abs(check.max_vm_mismatch_pu - central.validation.max_vm_mismatch_pu) <= 1e-9  # same grid, two nets
    assert distributed.report.converged and distributed.report.optimality_gap <= 1e-4
    assert defended.report.converged and defended.report.optimality_gap <= 1e-3 and defended.report.tpr > 0.9
    assert len(defended.iterations) == defended.report.iterations
    assert isinstance(day.report, api.ScenarioReport) and day.report.converged == day.report.intervals == 1
    assert len(day.intervals) == 1 and capsys.readouterr().out


def test_readme_online_example_runs(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    ns = runpy.run_path(str(ONLINE_EXAMPLE))
    online, tables, day = ns["online"], ns["tables"], ns["day"]
    r = online.report
    assert isinstance(r, api.OnlineReport) and r.intervals == 8 and r.soc_violations == r.voltage_violations == 0
    # the Lyapunov guarantee: no better than the offline optimum, no worse than optimum plus the bound
    assert r.offline_cost_ct - 1e-6 <= r.cost_ct <= r.offline_cost_ct + r.bound_ct
    assert r.offline_cost_ct <= r.no_storage_cost_ct + 1e-6
    units = online.summary()["units"]
    assert units > 0 and len(tables["soc.csv"]) == units * 8 and len(tables["intervals.csv"]) == 8
    assert set(day.tables()) == {"intervals.csv", "iterations.csv", "voltages.csv"}
    assert capsys.readouterr().out


def test_readme_shows_the_examples_that_run():
    """Once the README holds the examples, they are these files' text (the tests above run them)."""
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    shown = [b for b in blocks if "from cosim import api" in b]
    assert all(b in (EXAMPLE.read_text(), ONLINE_EXAMPLE.read_text()) for b in shown)


CENTRAL = 'name = "api"\ncase = "case15da"\nseed = 2\nstart = "2016-06-21T12:00"\nmethod = "centralized"\n'


def _drop_wall_times(table: pd.DataFrame) -> pd.DataFrame:
    return table.drop(columns=[c for c in table.columns if "wall" in c])


def test_run_scenario_is_what_cosim_run_writes_and_clears_as_api_clear(tmp_path):
    path = tmp_path / "central.toml"
    path.write_text(CENTRAL)
    outcome = api.run_scenario(path)
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == EXIT_OK
    for name, table in outcome.tables().items():
        written, ours = pd.read_csv(tmp_path / "out" / name), pd.read_csv(io.StringIO(
            table.to_csv(index=False, float_format="%.10g")))
        pd.testing.assert_frame_equal(_drop_wall_times(written), _drop_wall_times(ours))
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["traded_kwh"] == outcome.report.traded_kwh and summary["intervals"] == 1
    # the co-simulated quarter hour is the in-process clearing of the same instance
    direct = api.clear(api.build_instance("case15da", interval="2016-06-21T12:00", seed=2))
    assert outcome.intervals["objective"].iloc[0] == pytest.approx(direct.report.objective_ct, rel=1e-9)
    assert outcome.report.max_vm_mismatch_pu == pytest.approx(direct.report.max_vm_mismatch_pu, abs=1e-12)


def test_run_study_clears_the_first_quarter_hour_per_latency(tmp_path):
    path = tmp_path / "study.toml"
    path.write_text(CENTRAL.replace('method = "centralized"', "") + "[network]\nmean_ms = 5.0\n"
                    "[study]\nlatency_ms = [1.0, 20.0]\nloss = [0.0]\nprojections = [\"sweep\"]\n")
    with pytest.raises(ValueError, match="run_study"):
        api.run_scenario(path)
    study = api.run_study(path)
    table = study.tables()["study.csv"]
    assert list(table["latency_ms"]) == [1.0, 20.0] and study.summary["points"] == 2
    assert table["converged"].all() and (table["iterations"] == table["iterations"].iloc[0]).all()
    # the same iterations, each hop 20 times slower: the clearing takes longer
    assert table["clearing_ms"].iloc[1] > 10 * table["clearing_ms"].iloc[0]


def test_run_online_refuses_a_v_sweep_without_a_lyapunov_controller():
    with pytest.raises(InstanceError, match=r"v_sweep \(--V-sweep\) with controller myopic"):
        api.run_online("case15da", "myopic", intervals=2, v_sweep=(0.5,))
