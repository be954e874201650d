"""The mosaik co-simulation against the direct driver on the same scenario, measured in the same run.

    python benchmarks/cosim_vs_direct.py [scenarios/case15da_normal_none.toml ...]

Direct: for every interval, the market clearing (:func:`cosim.interval.clear_interval`) and the AC check
called in-process. Co-simulation: the same through mosaik, every message round crossing the Market, Comm
and Detector simulators (Profiles -> Market -> Comm -> Detector -> Market, Market -> Grid).
Prints both wall times and their ratio, and whether the two give the same objectives.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np

from cosim.clearing_run import validate
from cosim.interval import clear_interval
from cosim.scenario import load_scenario
from cosim.world import run_world
from cyber.resilient_admm import warm_up
from physical.ac_power_flow import to_pandapower
from physical.catalog import load_feeder
from physical.profiles import interval_index

DEFAULT = ["scenarios/case15da_normal_none.toml", "scenarios/case85_normal_none.toml",
           "scenarios/case15da_static_fdi_tensor.toml"]


def direct(scenario) -> list[float]:
    feeder = load_feeder(scenario.case)
    net = to_pandapower(feeder)  # as the Grid simulator does: one net, each dispatch's injections set on it
    objectives = []
    clearing = None
    for k in range(scenario.intervals):
        clearing = clear_interval(scenario, feeder, interval_index(scenario.start) + k, clearing)
        if not clearing.fallback:
            validate(clearing.instance, clearing.run.result, net)
        objectives.append(clearing.run.result.objective)
    return objectives


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("scenarios", nargs="*", default=DEFAULT)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    warm_up()  # compiled kernels load once per process, not inside the first timed run
    print(f"{'scenario':40} {'intervals':>9} {'direct_s':>9} {'cosim_s':>8} {'ratio':>6} {'same':>5}")
    for path in args.scenarios:
        scenario = load_scenario(Path(path))
        start = time.perf_counter()
        expected = direct(scenario)
        direct_s = time.perf_counter() - start
        start = time.perf_counter()
        run = run_world(scenario)
        cosim_s = time.perf_counter() - start
        same = np.allclose(run.intervals["objective"], expected, rtol=0, atol=1e-9, equal_nan=True)
        print(f"{Path(path).stem:40} {scenario.intervals:>9} {direct_s:>9.2f} {cosim_s:>8.2f} "
              f"{cosim_s / direct_s:>6.2f} {str(same):>5}")


if __name__ == "__main__":
    main()
