"""Feeder line ratings per quarter hour: the TMY hour a quarter hour takes, the MV conductors' data, the
conversion to the market's and pandapower's limits."""

from datetime import datetime

import numpy as np
import pytest

from physical.ac_power_flow import run_ac_power_flow, set_line_ratings, to_pandapower
from physical.errors import FeederError
from physical.feeder_ratings import (
    MV_CONDUCTORS,
    feeder_conductors,
    line_ratings,
    overloaded_lines,
    weather_hour,
    with_ratings,
)
from physical.profiles import interval_index, interval_start
from physical.thermal_rating import _line_std_type, static_ampacity_a
from physical.weather import load_tmy
from tests.conftest import feeder


@pytest.mark.parametrize(("local", "utc_end"), [
    ("2016-06-21T12:00", "1990-06-21T18:00"),  # the hour 12-13 EST ends at 18:00 UTC (Greensboro, UTC-5)
    ("2016-01-01T00:45", "1990-01-01T06:00"),
    ("2016-12-31T23:15", "1991-01-01T05:00"),  # the last record: 24:00 EST on 31 December, dated the next day
    ("2016-02-29T07:30", "1990-02-28T13:00"),  # the leap day takes 28 February's weather
])
def test_a_quarter_hour_takes_the_tmy_record_of_its_local_hour(local, utc_end):
    weather = load_tmy()
    hour = weather_hour(datetime.fromisoformat(local), weather)
    assert weather.time_utc[hour] == np.datetime64(utc_end)


def test_mv_conductor_data_give_ratings_near_pandapowers():
    """EN 50182 quotes ratings at 35 degC, 0.6 m/s and 900 W/m2; our static assumption is hotter (40 degC):
    a wrong diameter or resistance moves the IEEE 738 rating out of this band."""
    station = load_tmy()
    types = list(MV_CONDUCTORS.values())
    static = static_ampacity_a(types, np.zeros(len(types)), station.latitude_deg, station.longitude_deg,
                               station.altitude_m)
    quoted = np.array([_line_std_type(c.std_type)["max_i_ka"] * 1e3 for c in types])
    assert np.all(static < quoted) and np.all(static > 0.85 * quoted)
    assert np.all(np.diff(static) > 0)  # thicker conductors carry more


def test_quarter_hours_of_one_hour_share_its_weather_and_the_static_rating_never_moves():
    f = feeder("case33bw")
    first = interval_index("2016-07-04T13:00")
    ks = list(range(first, first + 8))
    ratings = line_ratings(feeder_conductors(f, 3), load_tmy(), ks, [interval_start(k) for k in ks])
    assert [r.interval for r in ratings] == ks
    assert np.array_equal(ratings[0].dynamic_a, ratings[3].dynamic_a)
    assert not np.array_equal(ratings[3].dynamic_a, ratings[4].dynamic_a)
    assert all(np.array_equal(r.static_a, ratings[0].static_a) for r in ratings)
    assert len(np.unique(ratings[0].dynamic_a[1:])) > 1  # the lines' azimuths differ: so do their ratings


def test_ratings_in_per_unit_are_pandapowers_amperes():
    f = feeder("case15da")
    k = interval_index("2016-03-10T09:00")
    r = line_ratings(feeder_conductors(f, 0, "48-AL1/8-ST1A 10.0"), load_tmy(), [k], [interval_start(k)])[0]
    rated = with_ratings(f, r.imax_pu(f, "dynamic"))
    net = to_pandapower(f)
    set_line_ratings(net, rated)
    assert np.allclose(net.line.sort_index().max_i_ka.to_numpy() * 1e3, r.dynamic_a[1:], rtol=1e-12)
    ac = run_ac_power_flow(rated, net=net)
    current_a = ac.loading_percent[1:] / 100 * r.dynamic_a[1:]
    assert np.all(np.isfinite(current_a)) and current_a.max() > 0
    assert overloaded_lines(ac) == ()
    tight = with_ratings(f, np.r_[np.inf, np.full(f.n_buses - 1, 0.5 * current_a.max()) / r.dynamic_a[1:]
                                  * r.imax_pu(f, "dynamic")[1:]])
    set_line_ratings(net, tight)
    assert 1 in overloaded_lines(run_ac_power_flow(tight, net=net))


def test_bad_ratings_and_conductors_are_refused_by_name():
    f = feeder("case15da")
    with pytest.raises(FeederError, match="conductor 'copper'"):
        feeder_conductors(f, 0, "copper")
    with pytest.raises(FeederError, match="positive values"):
        with_ratings(f, np.zeros(f.n_buses))
    with pytest.raises(FeederError, match="rating mode"):
        line_ratings(feeder_conductors(f, 0), load_tmy(), [0], [interval_start(0)])[0].amperes("cool")
