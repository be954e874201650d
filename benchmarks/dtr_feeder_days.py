"""Dynamic against static line ratings on the congested feeder, over other dates and seeds, in-process.

    python benchmarks/dtr_feeder_days.py [--scenario scenarios/dtr_case141_winter_day.toml]
                                         [--dates 2016-01-15,2016-02-03,2016-07-20] [--seeds 0,1]

Every quarter hour of each day is cleared twice with the scenario's method (the in-process driver the
co-simulation is tested against, :func:`cosim.interval.clear_instance`): under that quarter hour's static and
dynamic ratings. Prints per day and seed the quarter hours in which some line binds, the cost, curtailment and
import differences (dynamic minus static) and how often the dynamic rating falls below the static one.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np

from cosim.interval import clear_instance, interval_instance, rated_instance, scenario_ratings
from cosim.ratings_run import other_mode
from cosim.scenario import load_scenario
from physical.catalog import load_feeder
from physical.profiles import INTERVALS_PER_DAY, interval_index


def day(scenario, feeder) -> dict:
    first = interval_index(scenario.start)
    intervals = list(range(first, first + INTERVALS_PER_DAY))
    ratings = scenario_ratings(scenario, feeder, intervals)
    modes = {scenario.ratings.mode: scenario, other_mode(scenario).ratings.mode: other_mode(scenario)}
    out = {m: {"cost": 0.0, "curtailed": 0.0, "import": 0.0, "binding": 0, "fallbacks": 0} for m in modes}
    for k, rating in zip(intervals, ratings, strict=True):
        base = interval_instance(scenario, feeder, k)
        for mode, run in modes.items():
            record = clear_instance(run, rated_instance(run, base, rating)).record()
            o = out[mode]
            o["fallbacks"] += bool(record["fallback"])
            o["cost"] += record["objective"]
            o["curtailed"] += record["curtailed_kw"] / 4
            o["import"] += record["p0_kw"] / 4
            o["binding"] += bool(record["binding_lines"])
    factor = np.array([r.dynamic_a[1:] / r.static_a[1:] for r in ratings])
    out["below_static"] = int((factor < 1).any(axis=1).sum())
    out["factor_min"] = float(factor.min())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", default="scenarios/dtr_case141_winter_day.toml")
    parser.add_argument("--dates", default="2016-01-15,2016-02-03,2016-07-20")
    parser.add_argument("--seeds", default="0,1")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    scenario = load_scenario(Path(args.scenario))
    feeder = load_feeder(scenario.case)
    print(f"{'date':10} {'seed':>4} {'binding s/d':>11} {'cost d-s (ct)':>13} {'curtailed d-s (kWh)':>19} "
          f"{'import d-s (kWh)':>16} {'dyn<static (qh)':>15} {'min factor':>10} {'wall_s':>6}")
    for date in args.dates.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            run = scenario.model_copy(update={"start": f"{date}T00:00", "seed": seed, "intervals": INTERVALS_PER_DAY})
            start = time.perf_counter()
            r = day(run, feeder)
            d, s = r["dynamic"], r["static"]
            print(f"{date:10} {seed:>4} {s['binding']:>5}/{d['binding']:<5} {d['cost'] - s['cost']:>13.1f} "
                  f"{d['curtailed'] - s['curtailed']:>19.1f} {d['import'] - s['import']:>16.1f} "
                  f"{r['below_static']:>15} {r['factor_min']:>10.3f} {time.perf_counter() - start:>6.0f}", flush=True)


if __name__ == "__main__":
    main()
