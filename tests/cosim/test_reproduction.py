"""The reproduction report: regenerated from fresh runs, it matches the committed one except in wall times."""

from __future__ import annotations

import re
from pathlib import Path

from cosim.reproduction import report, run_all

WALL_TIME = re.compile(r"\*[0-9.]+\*")  # wall times are the only numbers the report sets in italics


def test_fresh_report_matches_the_committed_one_except_wall_times():
    committed = Path("docs/reproduction.md").read_text()
    fresh = report(run_all())
    assert WALL_TIME.sub("*t*", fresh) == WALL_TIME.sub("*t*", committed)
