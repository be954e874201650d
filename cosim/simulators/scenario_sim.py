"""What the Market, Comm and Detector simulators share: one entity per world, configured by the scenario."""

from __future__ import annotations

import mosaik_api_v3

from cosim.scenario import Scenario


class ScenarioSimulator(mosaik_api_v3.Simulator):
    """A simulator with a single entity ``eid`` whose only parameter is the scenario (as a dict)."""

    eid = ""

    def __init__(self, meta: dict) -> None:
        super().__init__(meta)
        self.scenario: Scenario | None = None

    def create(self, num, model, scenario: dict):
        self.scenario = Scenario.model_validate(scenario)
        return [{"eid": self.eid, "type": model}]
