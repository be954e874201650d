"""Weather simulator: every quarter hour, each line's dynamic and static thermal rating from the measured weather
(:func:`cosim.interval.scenario_ratings`, i.e. :mod:`physical.feeder_ratings`), for the Market's line limits and
the Grid's loading check. The ratings cross mosaik as a plain message (:func:`ratings_message`) and are read
back as the typed :class:`physical.feeder_ratings.LineRatings` (:func:`ratings_from_message`)."""

from __future__ import annotations

import math

import mosaik_api_v3
import numpy as np

from cosim.interval import scenario_ratings
from cosim.scenario import Scenario
from cosim.simulators import QUARTER_HOUR_MS
from physical.catalog import load_feeder
from physical.feeder_ratings import LineRatings

# hybrid like Profiles: a quarter-hourly tick whose ratings are an event (not re-sent at every message round)
META = {"type": "hybrid", "models": {"Weather": {"public": True, "params": ["scenario", "first"],
                                                 "attrs": ["ratings"], "non-persistent": ["ratings"]}}}


def ratings_message(r: LineRatings) -> dict:
    """The ratings as mosaik data (JSON types; the unused entry 0 of the line arrays is left out)."""
    return {"interval": r.interval, "weather_hour": r.weather_hour, "air_temperature_c": r.air_temperature_c,
            "wind_speed_m_s": r.wind_speed_m_s, "dynamic_a": r.dynamic_a[1:].tolist(),
            "static_a": r.static_a[1:].tolist()}


def ratings_from_message(d: dict) -> LineRatings:
    return LineRatings(int(d["interval"]), int(d["weather_hour"]), float(d["air_temperature_c"]),
                       float(d["wind_speed_m_s"]), np.r_[math.inf, d["dynamic_a"]], np.r_[math.inf, d["static_a"]])


class WeatherSim(mosaik_api_v3.Simulator):
    def __init__(self) -> None:
        super().__init__(META)
        self.scenario: Scenario | None = None
        self.feeder = None
        self.first = 0
        self.out: dict = {}

    def create(self, num, model, scenario: dict, first: int):
        self.scenario = Scenario.model_validate(scenario)
        self.feeder = load_feeder(self.scenario.case)
        self.first = first
        return [{"eid": "weather", "type": model}]

    def step(self, time, inputs, max_advance):
        k = time // QUARTER_HOUR_MS
        self.out = {}
        if k < self.scenario.intervals:
            rating = scenario_ratings(self.scenario, self.feeder, [self.first + k])[0]
            self.out = {"ratings": ratings_message(rating)}
        return time + QUARTER_HOUR_MS

    def get_data(self, outputs):
        return {"weather": self.out} if self.out else {}
