"""Weather simulator: every quarter hour, each line's dynamic and static thermal rating from the measured weather
(:func:`cosim.interval.scenario_ratings`, i.e. :mod:`physical.feeder_ratings`), for the Market's line limits and
the Grid's loading check, as the typed :class:`physical.feeder_ratings.LineRatings`
(:mod:`cosim.simulators.messages`)."""

from __future__ import annotations

from cosim.interval import scenario_ratings
from cosim.simulators.quarter_hourly import QuarterHourlySim, quarter_hourly_meta
from physical.feeder_ratings import LineRatings

META = quarter_hourly_meta("Weather", "ratings")


class WeatherSim(QuarterHourlySim):
    eid, attr = "weather", "ratings"

    def __init__(self) -> None:
        super().__init__(META)

    def publish(self, interval: int) -> LineRatings:
        return scenario_ratings(self.scenario, self.feeder, [interval])[0]
