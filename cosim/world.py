"""The mosaik world of a scenario, in milliseconds.

Profiles -> Market (and Weather -> Market, Grid: each quarter hour's line ratings, with ``[ratings]``); the
ADMM's message rounds go Market -> Comm -> Detector -> Market in simulated time (the agents' own values for
their detectors ride along, untouched by the network); Market -> Grid; every message is a typed object
(:mod:`cosim.simulators.messages`). Market, Grid and Storage keep typed records for the results outside the
data flow (:mod:`cosim.simulators.run_store`).
Market, Comm and Detector form a group whose loop closes with a weak connection, so a round that takes no
simulated time (no latency, no compute) loops at one instant.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

import mosaik
import numpy as np
import pandas as pd

from cosim.external import attach_external, sim_config
from cosim.mosaik_progress import forget_abandoned_waiters
from cosim.scenario import Scenario, storage_plan
from cosim.simulators import QUARTER_HOUR_MS
from cosim.simulators.run_store import COLLECTED, KeptInterval
from physical.profiles import interval_index

SIM_CONFIG = {
    "Profiles": {"python": "cosim.simulators.profiles:ProfileSim"},
    "Market": {"python": "cosim.simulators.market:MarketSim"},
    "Comm": {"python": "cosim.simulators.comm:CommSim"},
    "Detector": {"python": "cosim.simulators.detector:DetectorSim"},
    "Grid": {"python": "cosim.simulators.grid:GridSim"},
    "Weather": {"python": "cosim.simulators.weather:WeatherSim"},
    "Storage": {"python": "cosim.simulators.storage:StorageSim"},
}
#: Rounds of one clearing may all fall at one instant (zero latency): the same-time loop is bounded by the
#: ADMM's own iteration limit, not by mosaik's.
MAX_LOOP = 10**9


class CosimError(RuntimeError):
    """A co-simulation that ran but could not deliver every interval it was asked for."""


@dataclass(frozen=True, eq=False)
class CosimRun:
    """What came out of a co-simulation, per interval: the market's record joined with the AC check, the
    ADMM iterations, the instance (JSON) and the grid's voltage profile."""

    intervals: pd.DataFrame
    iterations: pd.DataFrame
    instances: dict[int, str]
    voltages: pd.DataFrame
    storage: pd.DataFrame  # with [storage]: interval, unit, bus, soc_kwh (at its end), charge_kw, discharge_kw, queue


def run_world(scenario: Scenario, progress: bool = False) -> CosimRun:
    """Run ``scenario.intervals`` quarter hours from ``scenario.start`` through mosaik."""
    run_id = uuid.uuid4().hex
    logging.getLogger("mosaik").setLevel(logging.WARNING)
    forget_abandoned_waiters()
    # no output cache: simulators that step once a quarter hour would pin every round's outputs in it
    world = mosaik.World({**SIM_CONFIG, **sim_config(scenario.external)}, time_resolution=0.001, cache=False,
                         max_loop_iterations=MAX_LOOP, skip_greetings=True, configure_logging=False)
    data = scenario.model_dump()
    profiles = world.start("Profiles").Profiles.create(1, scenario=data, first=interval_index(scenario.start))[0]
    with world.group():
        market = world.start("Market").Market.create(1, scenario=data, run_id=run_id)[0]
        comm = world.start("Comm").Comm.create(1, scenario=data)[0]
        detector = world.start("Detector").Detector.create(1, scenario=data)[0]
        if scenario.storage is not None:  # Market -> Storage -> the next interval's Market
            storage = world.start("Storage").Storage.create(1, scenario=data, run_id=run_id)[0]
            world.connect(market, storage, "battery")
            world.connect(storage, market, "soc", weak=True)
    mode = scenario.ratings.mode if scenario.ratings is not None else None
    grid = world.start("Grid").Grid.create(1, case=scenario.case, run_id=run_id, mode=mode)[0]
    attach_external(world, grid, scenario.external, scenario.connect)  # the user's simulators (cosim.external)
    world.connect(profiles, market, "instance_json")
    world.connect(market, comm, "round")
    world.connect(comm, detector, "delivered")
    world.connect(detector, market, "screened", weak=True)
    world.connect(market, grid, "dispatch")
    if scenario.ratings is not None:  # the quarter hour's line ratings: the market's limits, the grid's check
        weather = world.start("Weather").Weather.create(1, scenario=data, first=interval_index(scenario.start))[0]
        world.connect(weather, market, "ratings")
        world.connect(weather, grid, "ratings")
    try:
        # one quarter hour beyond the last tick: room for a last clearing that runs past its own; without lazy
        # stepping a simulator steps as soon as its inputs are there, instead of also waiting for its
        # successors to catch up -- the same steps with fewer waits (85-bus day, 3 intervals: 4.5% faster, same
        # iterates), and what may run ahead is only the Profiles' quarter-hourly instances
        world.run(until=(scenario.intervals + 1) * QUARTER_HOUR_MS, print_progress=progress, lazy_stepping=False)
        collected = COLLECTED.pop(run_id, {})
    except BaseException:
        world.shutdown()
        raise
    finally:
        COLLECTED.pop(run_id, None)
    expected = interval_index(scenario.start) + np.arange(scenario.intervals)
    missing = [int(k) for k in expected if int(k) not in collected or collected[int(k)].clearing is None]
    if missing:
        raise CosimError(f"intervals {missing[:5]} were still clearing a quarter hour after the last tick "
                         "(a deadline_s close to 900 with long synchronous rounds can do that)")
    return _tables(collected, storage_plan(scenario).arrays.bus if scenario.storage is not None else None)


def _tables(collected: dict[int, KeptInterval], unit_bus: np.ndarray | None) -> CosimRun:
    rows, iterations, voltages, instances, states = [], [], [], {}, []
    for interval in sorted(collected):
        kept = collected[interval]
        if unit_bus is not None:
            battery = kept.storage
            queue = battery.queue_kwh if battery.queue_kwh is not None else np.full(len(unit_bus), np.nan)
            states.append(pd.DataFrame({"interval": interval, "unit": np.arange(len(unit_bus)), "bus": unit_bus,
                                        "soc_kwh": battery.soc_kwh, "charge_kw": battery.charge_kw,
                                        "discharge_kw": battery.discharge_kw, "queue": queue}))
        clearing, check = kept.clearing, kept.check
        rows.append({**clearing.record, **({} if check is None else {"ac_time_ms": check.time_ms, **check.row})})
        if clearing.iterations is not None:
            iterations.append(clearing.iterations.assign(interval=interval))
        if check is not None:
            voltages.append(pd.DataFrame({"interval": interval, "bus": range(len(check.vm_ac_pu)),
                                          "vm_socp_pu": check.vm_socp_pu, "vm_ac_pu": check.vm_ac_pu}))
        instances[interval] = clearing.instance_json
    table = pd.DataFrame(rows)
    iters = pd.concat(iterations, ignore_index=True) if iterations else pd.DataFrame()
    if len(iters):
        iters = iters[["interval", *[c for c in iters.columns if c != "interval"]]]
    volts = pd.concat(voltages, ignore_index=True) if voltages else pd.DataFrame()
    return CosimRun(table, iters, instances, volts, pd.concat(states, ignore_index=True) if states else pd.DataFrame())
