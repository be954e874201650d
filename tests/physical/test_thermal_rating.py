"""Thermal ratings: linerate against IEEE 738's worked example, and the physics the ratings must follow."""

import linerate
import numpy as np
import pytest

from physical.errors import FeederError
from physical.thermal_rating import (
    AL243,
    AL490,
    MAX_CONDUCTOR_TEMPERATURE_C,
    _line_std_type,
    dynamic_ampacity_a,
    rating_factors,
    static_ampacity_a,
)
from physical.weather import WeatherSeries, load_tmy


def _drake_example_model(air_temperature=40.0, wind_speed=0.61):
    """IEEE 738 Annex B: Drake 26/7 ACSR, 0.61 m/s across the line, clear sky, 10 June 14:00, 43 deg N."""
    drake = linerate.Conductor(
        core_diameter=10.4e-3, conductor_diameter=28.12e-3, outer_layer_strand_diameter=4.4e-3,
        emissivity=0.5, solar_absorptivity=0.5, temperature1=25.0, temperature2=75.0,
        resistance_at_temperature1=7.284e-5, resistance_at_temperature2=8.689e-5,
        aluminium_cross_section_area=float("nan"), constant_magnetic_effect=1,
        current_density_proportional_magnetic_effect=0, max_magnetic_core_relative_resistance_increase=1,
    )
    tower = linerate.Tower(latitude=43.0, longitude=0.0, altitude=0.0)
    span = linerate.Span(conductor=drake, start_tower=tower, end_tower=tower, num_conductors=1)
    weather = linerate.Weather(air_temperature=air_temperature, wind_direction=np.radians(90.0),
                               wind_speed=wind_speed, ground_albedo=0.1)
    return linerate.IEEE738(span, weather, np.datetime64("2016-06-10T14:00"))


def test_linerate_reproduces_ieee738_drake_example():
    model = _drake_example_model()
    assert float(model.compute_conductor_temperature(1000.0)) == pytest.approx(100.7, abs=0.5)


def test_drake_rating_gains_match_the_design_note():
    # model.md: rated 996 A at 40 degC / 0.61 m/s; about 1.13x at 25 degC and 1.5x at 25 degC, 2 m/s (at 100 degC)
    base = float(_drake_example_model().compute_steady_state_ampacity(100.0))
    cooler = float(_drake_example_model(25.0).compute_steady_state_ampacity(100.0))
    windy = float(_drake_example_model(25.0, 2.0).compute_steady_state_ampacity(100.0))
    assert base == pytest.approx(996.0, rel=0.01)
    assert cooler / base == pytest.approx(1.13, abs=0.02)
    assert windy / base == pytest.approx(1.5, abs=0.03)


def _weather(temperature, wind, wind_from_deg=90.0, dni=0.0, dhi=0.0):
    n = len(temperature)
    station = load_tmy()
    return WeatherSeries(
        "test", station.latitude_deg, station.longitude_deg, station.altitude_m,
        np.full(n, np.datetime64("1990-07-01T17:00", "s")), np.asarray(temperature, float), np.asarray(wind, float),
        np.full(n, wind_from_deg), np.zeros(n), np.full(n, float(dni)), np.full(n, float(dhi)),
    )


def test_ratings_rise_with_wind_and_fall_with_ambient_temperature():
    conductors, azimuth = [AL243, AL490], np.array([0.0, 0.0])
    winds = dynamic_ampacity_a(conductors, azimuth, _weather([25, 25, 25, 25], [0.0, 0.5, 2.0, 6.0]))
    temps = dynamic_ampacity_a(conductors, azimuth, _weather([0, 15, 30, 40], [1.0, 1.0, 1.0, 1.0]))
    assert np.all(np.diff(winds, axis=0) > 0)
    assert np.all(np.diff(temps, axis=0) < 0)


def test_measured_sun_heats_the_conductor():
    dark = dynamic_ampacity_a([AL490], np.array([0.0]), _weather([30], [1.0]))
    sunny = dynamic_ampacity_a([AL490], np.array([0.0]), _weather([30], [1.0], dni=900.0, dhi=100.0))
    assert sunny[0, 0] < dark[0, 0]


def test_wind_along_the_line_cools_less_than_across():
    along = dynamic_ampacity_a([AL490], np.array([90.0]), _weather([25], [2.0], wind_from_deg=90.0))
    across = dynamic_ampacity_a([AL490], np.array([0.0]), _weather([25], [2.0], wind_from_deg=90.0))
    assert along[0, 0] < across[0, 0]


def test_static_rating_is_near_pandapowers_rating_of_the_standard_type():
    # pandapower quotes EN 50182's rating (35 degC, 0.6 m/s, 900 W/m2, 80 degC); ours assumes 40 degC and summer noon
    station = load_tmy()
    static = static_ampacity_a([AL243, AL490], np.array([0.0, 0.0]), station.latitude_deg, station.longitude_deg,
                               station.altitude_m)
    quoted = np.array([_line_std_type(c.std_type)["max_i_ka"] * 1000.0 for c in (AL243, AL490)])
    assert MAX_CONDUCTOR_TEMPERATURE_C == 80.0
    assert np.all(static < quoted)
    assert np.all(static > 0.8 * quoted)


def test_static_rating_is_conservative_for_measured_weather():
    weather = load_tmy()
    factors = rating_factors([AL243, AL490], np.array([0.0, 60.0]), weather.at(np.arange(0, weather.hours, 12)))
    assert np.mean(factors >= 1.0) > 0.95
    assert np.median(factors) > 1.3


def test_tmy_weather_is_one_measured_year():
    weather = load_tmy()
    assert weather.hours == 8760
    assert np.all(np.diff(weather.time_utc).astype(int) == 3600)
    assert -30 < weather.air_temperature_c.min() < weather.air_temperature_c.max() < 45
    assert weather.wind_speed_m_s.min() >= 0 and weather.dni_w_m2.max() > 500


def test_unknown_station_names_the_choices():
    with pytest.raises(FeederError, match="723170TYA.CSV"):
        load_tmy("nowhere.csv")
