"""The README's Python example (docs/examples/python_api.py) runs as written and its numbers hold."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pandas as pd

from cosim import api

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "python_api.py"


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


def test_readme_shows_the_example_that_runs():
    """Once the README holds the example, it is this file's text (the test above runs it)."""
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    shown = [b for b in blocks if "from cosim import api" in b]
    assert all(b == EXAMPLE.read_text() for b in shown)
