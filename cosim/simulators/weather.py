"""Weather simulator: every quarter hour, each line's dynamic and static thermal rating from the measured weather
(:func:`cosim.interval.scenario_ratings`, i.e. :mod:`physical.feeder_ratings`), for the Market's line limits and
the Grid's loading check. The ratings cross mosaik as a plain message (:func:`ratings_message`) and are read
back as the typed :class:`physical.feeder_ratings.LineRatings` (:func:`ratings_from_message`)."""

from __future__ import annotations

import math

import numpy as np

from cosim.interval import scenario_ratings
from cosim.simulators.quarter_hourly import QuarterHourlySim, quarter_hourly_meta
from physical.feeder_ratings import LineRatings

META = quarter_hourly_meta("Weather", "ratings")


def ratings_message(r: LineRatings) -> dict:
    """The ratings as mosaik data (JSON types; the unused entry 0 of the line arrays is left out)."""
    return {"interval": r.interval, "weather_hour": r.weather_hour, "air_temperature_c": r.air_temperature_c,
            "wind_speed_m_s": r.wind_speed_m_s, "dynamic_a": r.dynamic_a[1:].tolist(),
            "static_a": r.static_a[1:].tolist()}


def ratings_from_message(d: dict) -> LineRatings:
    return LineRatings(int(d["interval"]), int(d["weather_hour"]), float(d["air_temperature_c"]),
                       float(d["wind_speed_m_s"]), np.r_[math.inf, d["dynamic_a"]], np.r_[math.inf, d["static_a"]])


class WeatherSim(QuarterHourlySim):
    eid, attr = "weather", "ratings"

    def __init__(self) -> None:
        super().__init__(META)

    def publish(self, interval: int) -> dict:
        return ratings_message(scenario_ratings(self.scenario, self.feeder, [interval])[0])
