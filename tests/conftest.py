"""Shared fixtures: feeders are loaded once per session; instances are cheap to rebuild."""

from __future__ import annotations

from functools import cache

import pytest
from hypothesis import settings

from physical.catalog import load_feeder
from physical.feeder import Feeder

SUMMER_NOON = "2016-06-21T12:00"

# the same examples on every run: a property test must not fail CI by drawing a new corner case
settings.register_profile("deterministic", derandomize=True)
settings.load_profile("deterministic")


@cache
def feeder(name: str) -> Feeder:
    return load_feeder(name)


@pytest.fixture(autouse=True)
def _profile_cache(tmp_path_factory, monkeypatch, request):
    """Tests share one profile cache, separate from the user's; SimBench nets (15-20 s each to build) are
    pickled in pytest's own cache folder, so that only the first run builds them."""
    monkeypatch.setenv("P2P_COSIM_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.setenv("P2P_COSIM_SIMBENCH_CACHE", str(request.config.cache.mkdir("simbench-grids")))
