"""DTR placement: greedy against exhaustive search on case39 (time and risk reduction, several seeds); the
compiled cascade stage against the numpy/scipy one on case118 (same placement, time ratio); then the whole study
on case118 (what `cosim dtr` runs: greedy, curvature, submodularity check, comparisons) as the states grow.
One command; every ratio is measured in this run.

    python benchmarks/dtr_placement.py [--seeds 3] [--states39 40] [--budget39 4] [--stage-states 5]
                                       [--states118 25,50,100,200] [--budget118 10]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from physical.cascade import build_study, numpy_stage
from physical.dtr_placement import RiskOracle, check_submodularity, curvature, exhaustive, greedy, greedy_bound
from physical.dtr_study import StudySettings, run_dtr_study


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


def stage_ratio(states: int, budget: int) -> None:
    """Greedy on case118 with each cascade stage solved by numpy/scipy and by the compiled kernel (same memos)."""
    study = build_study("case118", states, 0)
    lines = list(range(study.n_lines))
    times, paths = {}, {}
    for name, stage in (("numpy", numpy_stage(study.grid)), ("compiled", None)):
        t0 = time.perf_counter()
        oracle = RiskOracle(study, budget, stage=stage)
        paths[name] = [(p.lines, p.risk_mw) for p in greedy(oracle, budget, lines)]
        times[name] = time.perf_counter() - t0
    print(f"case118, {states} states, budget {budget}: greedy with the numpy stage {times['numpy']:.1f} s, compiled "
          f"{times['compiled']:.1f} s, ratio {times['numpy'] / times['compiled']:.1f}x; same placement and risk: "
          f"{paths['numpy'] == paths['compiled']} ({oracle.stages_solved} stages solved)")


def case118(states_list: list[int], budget: int) -> None:
    print(f"case118, budget {budget}, operate = budget, seed 0: the whole study (as `cosim dtr` runs it)")
    print("states  risk_no_dtr  risk_greedy  greedy_s  total_s  cascades_solved")
    for states in states_list:
        result = run_dtr_study(StudySettings("case118", budget, states, 0))
        print(f"{states:6d} {result.risk_no_dtr:12.2f} {result.risk('greedy'):12.2f} {result.greedy_wall_s:9.1f} "
              f"{result.wall_s:8.1f} {result.cascade_runs:16d}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--states39", type=int, default=40)
    parser.add_argument("--budget39", type=int, default=4)
    parser.add_argument("--stage-states", type=int, default=5)
    parser.add_argument("--states118", default="25,50,100,200")
    parser.add_argument("--budget118", type=int, default=10)
    args = parser.parse_args()
    case39(args.seeds, args.states39, args.budget39)
    stage_ratio(args.stage_states, args.budget118)
    case118([int(s) for s in args.states118.split(",")], args.budget118)


if __name__ == "__main__":
    main()
