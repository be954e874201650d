"""A curious parent's reconstruction of its leaf children's net loads over a day of clearings.

One command: ``python benchmarks/privacy_leakage.py [--case case15da] [--seed 0] [--step 4]`` clears every
``step``-th quarter hour of 21 June 2016 with the plain ADMM (both splittings) and prints, per splitting, the
parent's error in kW against the cleared injection, the correlation of its guesses with the cleared
injection and with the desired net load, and the error of the best guess from public data (the nominal load).
Then the private clearings (sweep, the protocol's clear arithmetic, which sends the same values): ``paillier``
(the flows still in the clear) and ``hybrid`` (the flows as shares, read by the parent as the fixed point they
would be unmasked), apart for the leaves that have siblings and the lone ones (a single child's share is its
flow).
"""

from __future__ import annotations

import argparse
import time

from cyber.privacy.leakage import leaf_children, leaves_with_siblings, measure_flow_leak
from cyber.privacy.setup import PrivacySetup, private_settings, secure_pairs
from cyber.privacy.sums import decode_share
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
    print(f"{'splitting / mode':<18} {'samples':>7} {'MAE kW':>11} {'max kW':>10} {'corr cleared':>12} "
          f"{'corr desired':>12} {'public MAE kW':>13} {'mean |p| kW':>11} {'wall s':>7}")
    for projection in ("local", "sweep"):
        start = time.perf_counter()
        report = measure_flow_leak(instances, lambda i, t, p=projection: solve_admm(
            i, AdmmSettings(projection=p), t).result)
        _row(projection, report, start)
    private = private_settings(AdmmSettings(relaxation=1.0))

    def lone(instance):
        return {int(b) for b in leaf_children(instance)} - leaves_with_siblings(instance)

    for mode in ("paillier", "hybrid"):
        for group, keep in (("siblings", leaves_with_siblings), ("lone", lone)):
            start = time.perf_counter()
            report = measure_flow_leak(instances, lambda i, t, m=mode: solve_admm(
                i, private, t, pairs=secure_pairs(i, PrivacySetup(m), args.seed, encrypted=False)).result,
                decode=decode_share if mode == "hybrid" else None, keep=keep)
            _row(f"{mode}, {group}", report, start)


def _row(name: str, report, start: float) -> None:
    print(f"{name:<18} {report.samples:>7} {report.mae_kw:>11.4g} {report.max_error_kw:>10.4g} "
          f"{report.corr_cleared:>12.6f} {report.corr_desired:>12.6f} {report.baseline_mae_kw:>13.2f} "
          f"{report.scale_kw:>11.2f} {time.perf_counter() - start:>7.1f}")


if __name__ == "__main__":
    main()
