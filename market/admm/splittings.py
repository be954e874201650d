"""The ADMM's splittings as one type: what the driver, the warm start and the cyber layer work with."""

from __future__ import annotations

from market.admm.consensus import LocalSplitting
from market.admm.sweep import SweepSplitting

PROJECTIONS = ("sweep", "local")
Splitting = SweepSplitting | LocalSplitting
