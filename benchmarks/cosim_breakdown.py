"""Where a co-simulation's wall time goes: each simulator's steps, and mosaik's scheduling around them.

    python benchmarks/cosim_breakdown.py [scenarios/day_case85_static_fdi_tensor.toml] [--intervals 8]

Runs the first ``--intervals`` quarter hours of a scenario through mosaik with every simulator's ``step``
timed, and prints per simulator its seconds, its milliseconds per ADMM iteration and its share of the run;
what is left is mosaik's own scheduling (plus the Profiles simulator). This is the measurement behind the
85-bus day's time budget: detector, market, network, power flow and co-simulation overhead, same run.
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections import Counter
from pathlib import Path

from cosim.scenario import load_scenario
from cosim.simulators.comm import CommSim
from cosim.simulators.detector import DetectorSim
from cosim.simulators.grid import GridSim
from cosim.simulators.market import MarketSim
from cosim.world import run_world
from cyber.resilient_admm import warm_up

TIMED = (MarketSim, CommSim, DetectorSim, GridSim)


def timed_steps(seconds: Counter) -> None:
    """Wrap every timed simulator's ``step`` so that it adds its wall time to ``seconds``."""
    for cls in TIMED:
        step = cls.step

        def wrapper(self, *args, _step=step, _name=cls.__name__, **kwargs):
            start = time.perf_counter()
            try:
                return _step(self, *args, **kwargs)
            finally:
                seconds[_name] += time.perf_counter() - start

        cls.step = wrapper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("scenario", nargs="?", default="scenarios/day_case85_static_fdi_tensor.toml")
    parser.add_argument("--intervals", type=int, default=8)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    warm_up()  # compiled kernels load once per process, not inside the timed run
    scenario = load_scenario(Path(args.scenario))
    scenario = scenario.model_copy(update={"intervals": min(args.intervals, scenario.intervals)})
    seconds: Counter = Counter()
    timed_steps(seconds)
    start = time.perf_counter()
    run = run_world(scenario)
    total = time.perf_counter() - start
    iterations = int(run.intervals["iterations"].sum())
    print(f"{Path(args.scenario).stem}: {scenario.intervals} intervals, {iterations} ADMM iterations, {total:.1f} s")
    rows = [(name, s) for name, s in seconds.most_common()] + [("mosaik and Profiles", total - sum(seconds.values()))]
    for name, s in rows:
        print(f"  {name:20} {s:7.2f} s  {1e3 * s / max(iterations, 1):6.3f} ms/iteration  {s / total:6.1%}")


if __name__ == "__main__":
    main()
