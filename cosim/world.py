"""The mosaik world of a scenario: Profiles -> Market -> Grid, everything -> Collector, in milliseconds."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

import mosaik
import pandas as pd

from cosim.scenario import Scenario
from cosim.simulators import QUARTER_HOUR_MS
from cosim.simulators.collector import COLLECTED
from physical.profiles import interval_index

SIM_CONFIG = {
    "Profiles": {"python": "cosim.simulators.profiles:ProfileSim"},
    "Market": {"python": "cosim.simulators.market:MarketSim"},
    "Grid": {"python": "cosim.simulators.grid:GridSim"},
    "Collector": {"python": "cosim.simulators.collector:CollectorSim"},
}


@dataclass
class CosimRun:
    """What came out of a co-simulation, per interval: the market's record joined with the AC check, the
    ADMM iterations, the instance (JSON) and the grid's voltage profile."""

    intervals: pd.DataFrame
    iterations: pd.DataFrame
    instances: dict[int, str]
    voltages: pd.DataFrame


def run_world(scenario: Scenario, progress: bool = False) -> CosimRun:
    """Run ``scenario.intervals`` quarter hours from ``scenario.start`` through mosaik."""
    run_id = uuid.uuid4().hex
    logging.getLogger("mosaik").setLevel(logging.WARNING)
    world = mosaik.World(SIM_CONFIG, time_resolution=0.001, skip_greetings=True, configure_logging=False)
    profiles = world.start("Profiles").Profiles.create(1, scenario=scenario.model_dump(),
                                                       first=interval_index(scenario.start))[0]
    market = world.start("Market").Market.create(1, scenario=scenario.model_dump())[0]
    grid = world.start("Grid").Grid.create(1, case=scenario.case)[0]
    collector = world.start("Collector").Collector.create(1, run_id=run_id)[0]
    world.connect(profiles, market, "instance_json")
    world.connect(market, grid, "dispatch")
    world.connect(market, collector, "report")
    world.connect(grid, collector, "validation")
    try:
        world.run(until=scenario.intervals * QUARTER_HOUR_MS, print_progress=progress)
        collected = COLLECTED.pop(run_id, {})
    except BaseException:
        world.shutdown()
        raise
    finally:
        COLLECTED.pop(run_id, None)
    return _tables(collected)


def _tables(collected: dict[int, dict]) -> CosimRun:
    rows, iterations, voltages, instances = [], [], [], {}
    for interval in sorted(collected):
        report, check = collected[interval]["report"], collected[interval].get("validation", {})
        ac = {k: v for k, v in check.items() if k not in ("interval", "vm_ac_pu", "vm_socp_pu")}
        rows.append({**report["record"], **{f"ac_{k}" if k == "time_ms" else k: v for k, v in ac.items()}})
        if report["iterations"]:
            iterations.append(pd.DataFrame(report["iterations"]).assign(interval=interval))
        if check:
            voltages.append(pd.DataFrame({"interval": interval, "bus": range(len(check["vm_ac_pu"])),
                                          "vm_socp_pu": check["vm_socp_pu"], "vm_ac_pu": check["vm_ac_pu"]}))
        instances[interval] = report["instance_json"]
    table = pd.DataFrame(rows)
    iters = pd.concat(iterations, ignore_index=True) if iterations else pd.DataFrame()
    if len(iters):
        iters = iters[["interval", *[c for c in iters.columns if c != "interval"]]]
    volts = pd.concat(voltages, ignore_index=True) if voltages else pd.DataFrame()
    return CosimRun(table, iters, instances, volts)
