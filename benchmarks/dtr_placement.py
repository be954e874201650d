"""DTR placement: greedy against exhaustive search on case39 (time and risk reduction, several seeds), then
greedy alone on case118 as the number of states grows. One command; every ratio is measured in this run.

    python benchmarks/dtr_placement.py [--seeds 3] [--states39 40] [--budget39 4] [--states118 25,50,100,200]
                                       [--budget118 10]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from physical.cascade import build_study
from physical.dtr_placement import RiskOracle, check_submodularity, curvature, exhaustive, greedy, greedy_bound


def case39(seeds: int, states: int, budget: int) -> None:
    print(f"case39, {states} states, budget 1..{budget}, operate = budget")
    print("seed  k  greedy_red  exh_red  ratio  bound  greedy_s  exhaustive_s  violations/100")
    for seed in range(seeds):
        study = build_study("case39", states, seed)
        oracle = RiskOracle(study, budget)
        lines = list(range(study.n_lines))
        t0 = time.perf_counter()
        path = greedy(oracle, budget, lines)
        t_greedy = time.perf_counter() - t0
        t0 = time.perf_counter()
        best = exhaustive(oracle, budget)
        t_exh = time.perf_counter() - t0
        c = curvature(oracle, lines)
        check = check_submodularity(oracle, lines, 100, budget, np.random.default_rng(seed))
        for k in range(budget):
            g = path[min(k, len(path) - 1)].reduction_mw if path else 0.0
            e = best[k].reduction_mw
            ratio = g / e if e > 0 else float("nan")
            print(f"{seed:4d} {k + 1:2d} {g:11.2f} {e:8.2f} {ratio:6.3f} {greedy_bound(c):6.3f} {t_greedy:9.2f} "
                  f"{t_exh:13.2f} {check.violations:6d}")


def case118(states_list: list[int], budget: int) -> None:
    print(f"case118, budget {budget}, operate = budget, seed 0")
    print("states  risk_no_dtr  risk_greedy  build_s  greedy_s  cascades")
    for states in states_list:
        t0 = time.perf_counter()
        study = build_study("case118", states, 0)
        t_build = time.perf_counter() - t0
        oracle = RiskOracle(study, budget)
        t0 = time.perf_counter()
        path = greedy(oracle, budget, list(range(study.n_lines)))
        t_greedy = time.perf_counter() - t0
        risk = path[-1].risk_mw if path else oracle.risk_no_dtr
        print(f"{states:6d} {oracle.risk_no_dtr:12.2f} {risk:12.2f} {t_build:8.1f} {t_greedy:9.1f} "
              f"{oracle.cascade_runs:9d}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--states39", type=int, default=40)
    parser.add_argument("--budget39", type=int, default=4)
    parser.add_argument("--states118", default="25,50,100,200")
    parser.add_argument("--budget118", type=int, default=10)
    args = parser.parse_args()
    case39(args.seeds, args.states39, args.budget39)
    case118([int(s) for s in args.states118.split(",")], args.budget118)


if __name__ == "__main__":
    main()
