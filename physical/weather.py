"""Measured hourly weather for line ratings, from the typical-meteorological-year (TMY3) files ``pvlib`` ships.

A TMY3 file holds 8760 measured hours (each month taken from a representative year) of one US station: dry-bulb
temperature, wind speed and direction at 10 m, and global, direct-normal and diffuse irradiance. These are the
inputs of a conductor's heat balance (IEEE 738), so a rating drawn from them is a rating a real site saw, not an
invented series. The station stands for the whole grid: the transmission cases carry no geography.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pvlib
from pvlib.iotools import read_tmy3

from physical.errors import FeederError

PVLIB_DATA_DIR = Path(pvlib.__file__).parent / "data"
#: Greensboro (NC) TMY3: a mid-latitude inland station with hot, often calm summers.
DEFAULT_STATION = "723170TYA.CSV"
#: The year the TMY months are set to, so that the hours run in order through one calendar year.
TMY_YEAR = 1990


@dataclass(frozen=True)
class WeatherSeries:
    """Hourly measured weather of one station; arrays share the hour axis, times in UTC."""

    station: str
    latitude_deg: float
    longitude_deg: float
    altitude_m: float
    time_utc: np.ndarray  # datetime64[s]
    air_temperature_c: np.ndarray
    wind_speed_m_s: np.ndarray
    wind_direction_deg: np.ndarray  # where the wind blows from, east of north
    ghi_w_m2: np.ndarray
    dni_w_m2: np.ndarray
    dhi_w_m2: np.ndarray
    utc_offset_h: float = 0.0  # the station's standard time minus UTC (the TMY's local clock)

    @property
    def hours(self) -> int:
        return len(self.time_utc)

    def at(self, hours: np.ndarray) -> WeatherSeries:
        """The same station restricted to the given hour indices (in that order)."""
        idx = np.asarray(hours, dtype=int)
        return WeatherSeries(
            self.station, self.latitude_deg, self.longitude_deg, self.altitude_m,
            self.time_utc[idx], self.air_temperature_c[idx], self.wind_speed_m_s[idx],
            self.wind_direction_deg[idx], self.ghi_w_m2[idx], self.dni_w_m2[idx], self.dhi_w_m2[idx],
            self.utc_offset_h,
        )


def bundled_stations() -> list[str]:
    """The TMY3 files in pvlib's data folder (the names ``load_tmy`` accepts)."""
    return sorted(p.name for p in PVLIB_DATA_DIR.iterdir() if p.name.upper().endswith("TY.CSV")
                  or p.name.upper().endswith("TYA.CSV"))


@cache
def load_tmy(station: str = DEFAULT_STATION) -> WeatherSeries:
    """Read one of pvlib's bundled TMY3 files (by file name) with ``pvlib.iotools.read_tmy3`` (once per station;
    the series is shared, do not modify its arrays)."""
    path = PVLIB_DATA_DIR / station
    if station not in bundled_stations():
        raise FeederError(f"weather station {station!r}: expected one of pvlib's TMY3 files {bundled_stations()}")
    data, meta = read_tmy3(path, coerce_year=TMY_YEAR, map_variables=True)
    data = data.sort_index()
    time_utc = data.index.tz_convert("UTC").tz_localize(None).to_numpy().astype("datetime64[s]")
    return WeatherSeries(
        station=str(meta["Name"]).strip('"'),
        latitude_deg=float(meta["latitude"]),
        longitude_deg=float(meta["longitude"]),
        altitude_m=float(meta["altitude"]),
        time_utc=time_utc,
        air_temperature_c=data["temp_air"].to_numpy(float),
        wind_speed_m_s=data["wind_speed"].to_numpy(float),
        wind_direction_deg=data["wind_direction"].to_numpy(float),
        ghi_w_m2=data["ghi"].to_numpy(float),
        dni_w_m2=data["dni"].to_numpy(float),
        dhi_w_m2=data["dhi"].to_numpy(float),
        utc_offset_h=float(meta["TZ"]),
    )
