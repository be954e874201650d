"""The reproduction reports (the screening variant's and the paper's detector's): regenerated from one pass of
fresh runs, they match the committed ones except in wall times."""

from __future__ import annotations

import re
from pathlib import Path

from cosim import reproduction_paper
from cosim.reproduction import report, run_all

WALL_TIME = re.compile(r"\*[0-9.]+\*")  # wall times are the only numbers the report sets in italics


def test_fresh_reports_match_the_committed_ones_except_wall_times():
    cases = run_all(also=reproduction_paper.PLAN)
    reports = {"reproduction.md": report(cases), reproduction_paper.REPORT: reproduction_paper.report(cases)}
    for name, fresh in reports.items():
        committed = Path("docs", name).read_text()
        assert WALL_TIME.sub("*t*", fresh) == WALL_TIME.sub("*t*", committed), name
