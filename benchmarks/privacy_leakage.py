"""A curious parent's reconstruction of its leaf children's net loads over a day of clearings.

One command: ``python benchmarks/privacy_leakage.py [--case case15da] [--seed 0] [--step 4]`` clears every
``step``-th quarter hour of 21 June 2016 with the plain ADMM (both splittings) and prints, per splitting, the
parent's error in kW against the cleared injection, the correlation of its guesses with the cleared
injection and with the desired net load, and the error of the best guess from public data (the nominal load).
"""

from __future__ import annotations

import argparse
import time

from cyber.privacy.leakage import measure_flow_leak
from market.admm.driver import AdmmSettings, solve_admm
from market.instance import build_instance
from physical.catalog import load_feeder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", default="case15da")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--step", type=int, default=4, help="every step-th quarter hour of the day (4: hourly)")
    args = parser.parse_args()
    feeder = load_feeder(args.case)
    day = 96 * 172  # 21 June 2016, the profile year's index of its first quarter hour
    instances = [build_instance(feeder, interval=day + k, seed=args.seed) for k in range(0, 96, args.step)]
    print(f"{args.case}, seed {args.seed}, {len(instances)} clearings of 21 June 2016")
    print(f"{'splitting':<9} {'samples':>7} {'MAE kW':>9} {'max kW':>8} {'corr cleared':>12} {'corr desired':>12} "
          f"{'public MAE kW':>13} {'mean |p| kW':>11} {'wall s':>7}")
    for projection in ("local", "sweep"):
        start = time.perf_counter()
        report = measure_flow_leak(instances, lambda i, t, p=projection: solve_admm(
            i, AdmmSettings(projection=p), t).result)
        print(f"{projection:<9} {report.samples:>7} {report.mae_kw:>9.4f} {report.max_error_kw:>8.4f} "
              f"{report.corr_cleared:>12.6f} {report.corr_desired:>12.6f} {report.baseline_mae_kw:>13.2f} "
              f"{report.scale_kw:>11.2f} {time.perf_counter() - start:>7.1f}")


if __name__ == "__main__":
    main()
