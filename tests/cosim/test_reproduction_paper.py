"""The report with the paper's detector: every row shows the run it names, the paper's numbers sit on the
paper's detector's rows. (Its full runs take tens of minutes: here they stop after a few iterations.)"""

from __future__ import annotations

import pytest

from cosim import reproduction, reproduction_paper
from cosim.reproduction_paper import ABLATED, PAPER_DETECTOR, TABLE_III, VARIANT


@pytest.fixture(scope="module")
def short_runs():
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(reproduction, "DEFENDED_CAP", 30)
        patch.setattr(reproduction, "ATTACK_CAP", 20)
        cases = reproduction_paper.run_all()
    return cases, reproduction_paper.report(cases)


def _section(text: str, heading: str) -> list[list[str]]:
    """The table rows under ``heading`` (up to the next heading), as lists of cells."""
    lines = text.split(heading, 1)[1].split("\n## ", 1)[0].splitlines()
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines if line.startswith("| ")][2:]


def test_table_iii_rows_show_their_runs_and_the_paper_numbers_sit_on_the_paper_detector(short_runs):
    cases, text = short_runs
    rows = _section(text, "## Table III")
    assert [r[0] for r in rows] == [label for label, _, _ in TABLE_III]
    for cells, (_, attack, detector) in zip(rows, TABLE_III, strict=True):
        run = cases["case85", attack, detector]
        assert int(cells[3]) == run.row["iterations"] == (20 if detector == "none" and attack != "normal" else 30)
        assert cells[1] == f"{run.row['traded_kw']:.1f}" and cells[2] == f"{run.row['p0_kw']:.1f}"
        key = ("case85", attack, reproduction.DEFENDED if detector == PAPER_DETECTOR else detector)
        paper = reproduction.PAPER.get(("case85", "normal") if attack == "normal" else key)
        assert cells[11] == (str(paper["iterations"]) if paper else "-"), cells
        assert (paper is None) == (detector == VARIANT or (detector == "none" and attack != "normal"))


def test_table_i_and_the_ablation_name_their_detectors(short_runs):
    cases, text = short_runs
    rows = _section(text, "## Table I ")
    assert rows[2][0] == "With the paper's detector" and rows[2][11] == "312"
    assert rows[3][0] == "With the screening variant" and rows[3][11] == "-"
    assert rows[2][6] == f"{cases['case15da', 'static-fdi', PAPER_DETECTOR].row['tpr']:.3f}"
    ablation = _section(text, "Consistent attack (static FDI")
    assert [r[0] for r in ablation] == [PAPER_DETECTOR, ABLATED, VARIANT]
    for cells in ablation:  # the attack starts after these short runs: no TPR, but each detector's own FPR
        run = cases["case15da", "consistent", cells[0]].row
        assert cells[4] == "-" and cells[7] == f"{run['fpr']:.4f}" and cells[2] == str(run["iterations"])
    assert len({cells[7] for cells in ablation}) == 3
