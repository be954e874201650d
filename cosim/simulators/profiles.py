"""Profiles simulator: every quarter hour, the prosumers of that interval -- SimBench load, PV and wind
profiles drawn per bus with the scenario's seed, roles and costs (:func:`cosim.interval.interval_instance`)."""

from __future__ import annotations

from cosim.interval import interval_instance
from cosim.simulators.quarter_hourly import QuarterHourlySim, quarter_hourly_meta

META = quarter_hourly_meta("Profiles", "instance_json")


class ProfileSim(QuarterHourlySim):
    eid, attr = "profiles", "instance_json"

    def __init__(self) -> None:
        super().__init__(META)

    def publish(self, interval: int) -> str:
        return interval_instance(self.scenario, self.feeder, interval).to_json()
