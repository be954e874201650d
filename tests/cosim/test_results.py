"""Results folders appear whole or not at all."""

from __future__ import annotations

import pandas as pd
import pytest

from cosim.results import ResultsError, write_results


def test_failure_mid_write_leaves_no_folder_and_no_temporary(tmp_path):
    out = tmp_path / "run"
    files = {"a.csv": pd.DataFrame({"x": [1]}), "b.txt": object()}  # the second cannot be written
    with pytest.raises(TypeError):
        write_results(out, files)
    assert list(tmp_path.iterdir()) == []


def test_force_replaces_a_previous_run_atomically(tmp_path):
    out = tmp_path / "run"
    write_results(out, {"summary.json": {"objective": 1.0, "gap": float("nan")}})
    assert '"gap": null' in (out / "summary.json").read_text()
    with pytest.raises(ResultsError, match="not empty"):
        write_results(out, {"other.txt": "x"})
    write_results(out, {"other.txt": "x"}, force=True)
    assert [p.name for p in out.iterdir()] == ["other.txt"]
