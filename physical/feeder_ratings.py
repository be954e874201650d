"""Dynamic and static thermal ratings of a distribution feeder's overhead lines, per quarter hour.

A feeder's line is rated by the ampacity of its conductor (IEEE 738 through ``linerate``,
:mod:`physical.thermal_rating`): the *static* rating under the conservative weather assumption
(:class:`physical.thermal_rating.StaticWeather`: 40 degC, 0.61 m/s across the line, clear-sky summer-noon sun)
and the *dynamic* rating under the weather measured in the hour the quarter hour falls in (pvlib's bundled
TMY3 year, :mod:`physical.weather`).

Choices written down here:
- **conductors**: the MATPOWER feeders carry no conductor data. Every line of a feeder gets one overhead ACSR
  conductor, a pandapower standard type of the medium-voltage class (:data:`MV_CONDUCTORS`, EN 50182
  dimensions), 94-AL1/15-ST1A by default (:data:`DEFAULT_MV_CONDUCTOR`, a common 10-20 kV overhead trunk);
  a study names another one.
- **geography**: the feeders carry none, so each line gets a seeded azimuth (uniform in 0-180 degrees) that
  sets the wind's angle of attack, as the transmission study does (:mod:`physical.cascade`).
- **time**: the profiles' quarter hours (2016, local clock time) take the TMY record of the same local
  standard-time hour of the year at the station (29 February takes 28 February's weather); a TMY3 record is
  the hour that *ends* at its time stamp. Solar position follows the record's own time at the station.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np

from physical.ac_power_flow import AcPowerFlow
from physical.errors import FeederError
from physical.feeder import Feeder
from physical.thermal_rating import ConductorType, StaticWeather, dynamic_ampacity_a, static_ampacity_a
from physical.weather import WeatherSeries

#: Medium-voltage overhead ACSR conductors (pandapower standard types of the 10 kV class) and their EN 50182
#: stranding: diameter = 3 steel + 4 aluminium wires for 26/7, 3 wires for 6/1.
MV_CONDUCTORS = {
    c.std_type: c for c in (
        ConductorType("34-AL1/6-ST1A 10.0", 8.1e-3, 2.7e-3, 2.7e-3),  # 6/1, 2.7 mm wires
        ConductorType("48-AL1/8-ST1A 10.0", 9.6e-3, 3.2e-3, 3.2e-3),  # 6/1, 3.2 mm wires
        ConductorType("70-AL1/11-ST1A 10.0", 11.72e-3, 4.32e-3, 1.85e-3),  # 26 x 1.85 around 7 x 1.44
        ConductorType("94-AL1/15-ST1A 10.0", 13.61e-3, 5.01e-3, 2.15e-3),  # 26 x 2.15 around 7 x 1.67
        ConductorType("122-AL1/20-ST1A 10.0", 15.46e-3, 5.7e-3, 2.44e-3),  # 26 x 2.44 around 7 x 1.90
        ConductorType("149-AL1/24-ST1A 10.0", 17.1e-3, 6.3e-3, 2.7e-3),  # 26 x 2.70 around 7 x 2.10
    )
}
DEFAULT_MV_CONDUCTOR = "94-AL1/15-ST1A 10.0"
#: AC loading above this share of the rating (1 + tolerance) is an overload: the SOCP bounds the sending-end
#: current, pandapower's loading takes the larger end, and the market's solution is feasible to ~1e-7.
OVERLOAD_TOL = 1e-3
#: The seed stream of the lines' azimuths (apart from every other draw of a scenario's seed).
AZIMUTH_STREAM = 738
TMY_HOURS = 8760
RATING_MODES = ("dynamic", "static")


@dataclass(frozen=True)
class FeederConductors:
    """What rates each line of a feeder: its conductor and the direction it runs (entry 0 unused)."""

    feeder: str
    conductor: ConductorType
    azimuth_deg: np.ndarray
    static: StaticWeather = StaticWeather()


@dataclass(frozen=True)
class LineRatings:
    """The ratings of every line of a feeder in one quarter hour, amperes; entry j is line j, entry 0 unused.

    ``dynamic_a`` from the weather of that quarter hour, ``static_a`` under the conservative assumption;
    ``weather_hour`` is the TMY record (hour of the year) the dynamic rating used.
    """

    interval: int
    weather_hour: int
    air_temperature_c: float
    wind_speed_m_s: float
    dynamic_a: np.ndarray
    static_a: np.ndarray

    def amperes(self, mode: str) -> np.ndarray:
        """The rating a ``mode`` ("dynamic" or "static") operation uses."""
        if mode not in RATING_MODES:
            raise FeederError(f"rating mode {mode!r}: expected one of {RATING_MODES}")
        return self.dynamic_a if mode == "dynamic" else self.static_a

    def imax_pu(self, feeder: Feeder, mode: str) -> np.ndarray:
        """The rating as the feeder's current limit in p.u. (``I_base = S_base / (sqrt(3) V_base)``)."""
        i_base_a = feeder.base_mva * 1e3 / (math.sqrt(3) * feeder.base_kv)
        out = self.amperes(mode) / i_base_a
        out[0] = np.inf
        return out


def feeder_conductors(feeder: Feeder, seed: int, conductor: str = DEFAULT_MV_CONDUCTOR,
                      static: StaticWeather | None = None) -> FeederConductors:
    """Every line of ``feeder`` strung with ``conductor`` (a key of :data:`MV_CONDUCTORS`), seeded azimuths."""
    if conductor not in MV_CONDUCTORS:
        raise FeederError(f"conductor {conductor!r}: expected one of {sorted(MV_CONDUCTORS)}")
    if feeder.base_kv > 36.0:
        raise FeederError(f"{feeder.name}: {feeder.base_kv:g} kV is not a medium-voltage feeder; the feeder "
                          "ratings use medium-voltage overhead conductors")
    azimuth = np.random.default_rng((int(seed), AZIMUTH_STREAM)).uniform(0.0, 180.0, feeder.n_buses)
    azimuth[0] = np.nan
    return FeederConductors(feeder.name, MV_CONDUCTORS[conductor], azimuth, static or StaticWeather())


def weather_hour(when: datetime, weather: WeatherSeries) -> int:
    """Index into ``weather`` of the TMY record that covers local clock time ``when`` (see the module notes)."""
    day = (datetime(1990, when.month, min(when.day, 28 if when.month == 2 else when.day)) - datetime(1990, 1, 1)).days
    hour_of_year = day * 24 + when.hour  # the local hour [h, h + 1) ends at h + 1
    ends_local = weather.time_utc + np.timedelta64(int(round(weather.utc_offset_h * 3600)), "s")
    hour_ends = ((ends_local - np.datetime64("1990-01-01T00:00", "s")) // np.timedelta64(1, "h")).astype(int)
    target = (hour_of_year + 1) % TMY_HOURS
    found = np.flatnonzero(hour_ends % TMY_HOURS == target)
    if found.size != 1:
        raise FeederError(f"weather {weather.station}: no single record for {when:%m-%d %H}:00 local time")
    return int(found[0])


def line_ratings(conductors: FeederConductors, weather: WeatherSeries, intervals: list[int],
                 starts: list[datetime]) -> tuple[LineRatings, ...]:
    """Dynamic and static ratings of every line in each quarter hour (``starts``: their local start times)."""
    hours = np.array([weather_hour(s, weather) for s in starts], dtype=int)
    lines = conductors.azimuth_deg[1:]
    cond = [conductors.conductor] * len(lines)
    static = static_ampacity_a(cond, lines, weather.latitude_deg, weather.longitude_deg, weather.altitude_m,
                               conductors.static)
    unique, inverse = np.unique(hours, return_inverse=True)
    dynamic = dynamic_ampacity_a(cond, lines, weather.at(unique))[inverse]
    return tuple(
        LineRatings(int(k), int(h), float(weather.air_temperature_c[h]), float(weather.wind_speed_m_s[h]),
                    np.r_[np.inf, dynamic[i]], np.r_[np.inf, static])
        for i, (k, h) in enumerate(zip(intervals, hours, strict=True)))


def with_ratings(feeder: Feeder, imax_pu: np.ndarray) -> Feeder:
    """``feeder`` with the current limits ``imax_pu`` (p.u., entry j line j, entry 0 unused, ``inf`` unrated)."""
    limits = np.array(imax_pu, dtype=float)
    if limits.shape != (feeder.n_buses,) or np.any(np.isnan(limits[1:])) or np.any(limits[1:] <= 0):
        raise FeederError(f"line ratings of {feeder.name}: expected {feeder.n_buses} positive values (entry 0 "
                          f"unused), got shape {limits.shape}")
    limits[0] = np.inf
    return replace(feeder, imax_pu=limits)


def overloaded_lines(ac: AcPowerFlow, tol: float = OVERLOAD_TOL) -> tuple[int, ...]:
    """The lines whose AC loading exceeds their rating by more than ``tol`` (share of the rating)."""
    loading = np.nan_to_num(ac.loading_percent, nan=0.0)
    return tuple(int(j) for j in np.flatnonzero(loading > 100.0 * (1.0 + tol)))


def loading_against(ac: AcPowerFlow, checked_a: np.ndarray, other_a: np.ndarray) -> np.ndarray:
    """The AC loading (%) of every line had it been checked against ``other_a`` instead of the ``checked_a`` the
    power flow's loading is against (e.g. a dynamic run's currents over the static ratings)."""
    return ac.loading_percent * np.asarray(checked_a, float) / np.asarray(other_a, float)
