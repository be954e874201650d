"""Results folders appear whole or not at all, and ``--force`` replaces only what cosim wrote."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from cosim.results import MANIFEST, ResultsError, check_target, write_results


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


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
    assert json.loads((out / MANIFEST).read_text())["files"] == ["summary.json"]
    with pytest.raises(ResultsError, match="not empty"):
        write_results(out, {"other.txt": "x"})
    write_results(out, {"other.txt": "x", "figures/a.png": b"png"}, force=True)
    assert sorted(tree(out)) == sorted([MANIFEST, "other.txt", "figures/a.png"])
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # no temporary left beside it


def test_a_failed_forced_write_keeps_the_previous_run(tmp_path):
    out = tmp_path / "run"
    write_results(out, {"summary.json": {"objective": 1.0}})
    before = tree(out)
    with pytest.raises(TypeError):
        write_results(out, {"a.txt": "x", "b.txt": object()}, force=True)
    assert tree(out) == before and [p.name for p in tmp_path.iterdir()] == ["run"]


def test_force_refuses_a_folder_cosim_did_not_write_and_leaves_it(tmp_path):
    user = tmp_path / "thesis"
    (user / "chapters").mkdir(parents=True)
    (user / "chapters" / "one.tex").write_text("precious")
    before = tree(user)
    with pytest.raises(ResultsError, match="not a results folder of cosim.*one.tex"):
        write_results(user, {"summary.json": {}}, force=True)
    assert tree(user) == before


def test_force_refuses_a_results_folder_a_user_added_files_to(tmp_path):
    out = tmp_path / "run"
    write_results(out, {"summary.json": {"objective": 1.0}})
    (out / "my_notes.txt").write_text("do not lose me")
    before = tree(out)
    with pytest.raises(ResultsError, match="did not write.*my_notes.txt"):
        write_results(out, {"summary.json": {}}, force=True)
    assert tree(out) == before


def test_a_forged_manifest_does_not_make_a_folder_replaceable_beyond_its_list(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / MANIFEST).write_text(json.dumps({"files": ["summary.json"]}))
    (out / "data.csv").write_text("x")
    with pytest.raises(ResultsError, match="data.csv"):
        check_target(out, force=True)
    (out / MANIFEST).write_text("not json")
    with pytest.raises(ResultsError, match="data.csv"):
        check_target(out, force=True)


def test_force_never_replaces_the_working_directory_or_its_parents(tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    (work / "keep.txt").write_text("mine")
    monkeypatch.chdir(work)
    for out in (Path("."), Path(".."), Path("sub/.."), work, tmp_path):
        with pytest.raises(ResultsError, match="working directory"):
            write_results(out, {"summary.json": {}}, force=True)
    assert (work / "keep.txt").read_text() == "mine" and sorted(os.listdir(work)) == ["keep.txt"]


def test_force_never_replaces_home_or_a_repository(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / "project" / ".git").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ResultsError, match="home folder"):
        check_target(home, force=True)
    with pytest.raises(ResultsError, match="git repository"):
        check_target(home / "project", force=True)
    with pytest.raises(ResultsError, match="project itself"):
        check_target(Path(__file__).resolve().parents[2], force=True)
    with pytest.raises(ResultsError, match="root"):
        check_target(Path("/"), force=True)


def test_out_below_a_file_or_through_a_link_is_refused_before_any_work(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ResultsError, match="is a file"):
        check_target(tmp_path / "notes.txt" / "run", force=False)
    (tmp_path / "target").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "target")
    with pytest.raises(ResultsError, match="symbolic link"):
        check_target(tmp_path / "link", force=True)


def test_an_empty_folder_is_written_into_without_force(tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    write_results(out, {"a.txt": "x"})
    assert (out / "a.txt").read_text() == "x"
