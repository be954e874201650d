"""SimBench profiles: one year of quarter hours, seeded assignment, scaling to nominal load."""

from __future__ import annotations

import numpy as np
import pytest

from physical.errors import FeederError
from physical.profiles import (
    assign_profiles,
    cache_dir,
    interval_index,
    interval_start,
    profile_library,
)
from tests.conftest import feeder

DRAW = {"pv_share": 0.5, "pv_ratio": (0.5, 2.0), "wind_share": 0.2, "wind_ratio": (0.5, 1.5)}


def test_library_holds_a_leap_year_of_quarter_hours():
    lib = profile_library()
    assert lib.n_intervals == 366 * 96
    assert {"H0-A", "G0-A", "L0-A"} <= set(lib.load) and "PV3" in lib.pv and "WP4" in lib.wind
    assert all(np.isclose(v.max(), 1.0) for v in lib.load.values())  # SimBench loads peak at 1
    night, noon = interval_index("2016-06-21T02:00"), interval_index("2016-06-21T12:00")
    assert all(pv[night] == 0 for pv in lib.pv.values())
    assert np.mean([pv[noon] for pv in lib.pv.values()]) > 0.2


def test_cache_is_written_once():
    profile_library.cache_clear()
    profile_library()
    assert list(cache_dir().glob("simbench-*-profiles.npz"))


def test_interval_parsing():
    assert interval_index("2016-01-01T00:00") == 0
    assert interval_index("2016-01-01T00:15") == 1
    assert interval_index(96) == 96 and interval_index("96") == 96
    assert interval_start(interval_index("2016-06-21T12:00")).isoformat() == "2016-06-21T12:00:00"
    for bad in ("2017-01-01T00:00", "yesterday", 10**6, -1):
        with pytest.raises(FeederError, match="interval"):
            interval_index(bad)


def test_assignment_is_seeded_and_scaled_to_nominal_load():
    f = feeder("case33bw")
    a = assign_profiles(f, np.random.default_rng(7), **DRAW)
    b = assign_profiles(f, np.random.default_rng(7), **DRAW)
    assert a.load_type == b.load_type and np.array_equal(a.pv_mw, b.pv_mw)
    lib = profile_library()
    yearly_peak = np.array([a.load_peak_mw[j] * lib.load[a.load_type[j]].max() if a.load_type[j] else 0.0
                            for j in range(f.n_buses)])
    assert np.allclose(yearly_peak[1:], f.pd_mw[1:])
    pv = np.array([bool(t) for t in a.pv_type])
    assert np.all((a.pv_mw[pv] >= 0.5 * f.pd_mw[pv]) & (a.pv_mw[pv] <= 2.0 * f.pd_mw[pv]))
    demand, gen = a.snapshot(interval_index("2016-06-21T12:00"))
    assert demand[0] == 0 and np.all(demand <= f.pd_mw + 1e-12) and np.all(gen >= 0)


def test_unknown_load_type_prefix():
    with pytest.raises(FeederError, match="no SimBench load profile"):
        assign_profiles(feeder("case15da"), np.random.default_rng(0), load_types=("XX",), **DRAW)
