"""Distributed ADMM against the centralized SOCP, measured in the same run.

    python benchmarks/admm_vs_centralized.py [--cases case15da,case85] [--seeds 0,1,2] [--projections sweep,local]

Prints per instance and ADMM splitting the iterations, both wall times (the centralized time includes building
the cvxpy model, as a user pays it) and their ratio, the optimality gap of the ADMM result and the message
hops the clearing needs (the sweep takes 2 x (depth - 1) hops per y-update, the local splitting one).
"""

from __future__ import annotations

import argparse
import time
import warnings

from market.admm import prox
from market.admm.driver import AdmmSettings, solve_admm
from market.instance import build_instance
from market.problem.clearing import solve_clearing
from physical.catalog import load_feeder


def hops(projection: str, iterations: int, depth: int) -> int:
    """Sequential message hops of a clearing (what a network's latency multiplies)."""
    return 2 * iterations if projection == "local" else iterations * (1 + 2 * (depth - 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", default="case15da,case85")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--projections", default="sweep,local")
    parser.add_argument("--interval", default="2016-06-21T12:00")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    prox.warm_up()  # the compiled market step loads once per process, not inside a timed run
    print(f"{'case':10} {'seed':>4} {'split':>6} {'iters':>6} {'conv':>5} {'admm_s':>8} {'central_s':>9} "
          f"{'ratio':>7} {'gap':>9} {'hops':>7}")
    for case in args.cases.split(","):
        feeder = load_feeder(case)
        depth = int(feeder.depth.max())
        for seed in (int(s) for s in args.seeds.split(",")):
            instance = build_instance(feeder, interval=args.interval, seed=seed)
            start = time.perf_counter()
            reference = solve_clearing(instance)
            central_s = time.perf_counter() - start
            for projection in args.projections.split(","):
                start = time.perf_counter()
                admm = solve_admm(instance, AdmmSettings(projection=projection)).result
                admm_s = time.perf_counter() - start
                gap = abs(admm.objective - reference.objective) / abs(reference.objective)
                k = admm.info["iterations"]
                print(f"{case:10} {seed:>4} {projection:>6} {k:>6} {str(admm.info['converged']):>5} "
                      f"{admm_s:>8.3f} {central_s:>9.3f} {admm_s / central_s:>7.1f} {gap:>9.1e} "
                      f"{hops(projection, k, depth):>7}")


if __name__ == "__main__":
    main()
