"""Why the sweep ADMM takes thousands of iterations on some SimBench LV grids: the same grid on other power bases.

    python benchmarks/simbench_admm_base.py [--codes CODE ...] [--intervals 2016-06-21T12:00 2016-01-10T18:00]
                                            [--factors 1 10] [--voltage-weight 0.01] [--seed 0]

Per code and interval: buses, depth, the spread of the line impedances, the feeder's power base (chosen by its
total load, :func:`physical.feeder.working_base_mva`) and the largest line flow in p.u. of it; then the sweep
ADMM's iterations with the feeder re-expressed on ``factor`` times that base -- the same grid and the same
physical stopping tolerance (the p.u. tolerances divided by ``factor``), so only the scaling of the iterates
changes -- and the ratio of iterations to those on the feeder's own base; last, on the feeder's own base, the
iterations with the voltage family's ADMM weight multiplied by ``--voltage-weight`` (the same optimum: the
weights are a preconditioner), its relative optimality gap and max |V_admm - V_socp| against the centralized
SOCP, and the same for the default weights. A negative count did not converge within ``max_iter`` (10 000)."""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np

from market.admm.driver import DEFAULT_TOLERANCES, DEFAULT_WEIGHTS, AdmmSettings, solve_admm
from market.instance import build_instance
from market.problem.clearing import solve_clearing
from market.result import ClearingResult
from physical.feeder import Feeder
from physical.simbench_grid import load_simbench_grid

LV_CODES = ("1-LV-rural1--0-sw", "1-LV-rural2--0-sw", "1-LV-rural3--0-sw", "1-LV-semiurb4--0-sw",
            "1-LV-semiurb5--0-sw", "1-LV-urban6--0-sw", "1-MV-rural--0-sw")


def on_base(f: Feeder, factor: float) -> Feeder:
    """The same feeder with its power base ``factor`` times larger (impedances up, current limits down)."""
    return replace(f, base_mva=f.base_mva * factor, r_pu=f.r_pu * factor, x_pu=f.x_pu * factor,
                   imax_pu=f.imax_pu / factor)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--codes", nargs="*", default=list(LV_CODES))
    parser.add_argument("--intervals", nargs="*", default=["2016-06-21T12:00", "2016-01-10T18:00"])
    parser.add_argument("--factors", nargs="*", type=float, default=[1.0, 10.0])
    parser.add_argument("--voltage-weight", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    tol_p, tol_d = DEFAULT_TOLERANCES["sweep"]
    w = DEFAULT_WEIGHTS["sweep"]
    reweighted = replace(w, voltage=w.voltage * args.voltage_weight)
    print("code interval buses depth z_max/z_min base_mva max_flow_pu "
          + " ".join(f"iter@{k:g}x" for k in args.factors) + " " + " ".join(f"ratio@{k:g}x" for k in args.factors)
          + f" iter@voltage_weight*{args.voltage_weight:g} ratio gap dV_pu default_gap default_dV_pu", flush=True)
    for code in args.codes:
        f = load_simbench_grid(code).feeder
        z = np.hypot(f.r_pu[1:], f.x_pu[1:])
        z = z[z > 0]
        for when in args.intervals:
            iters: list[int] = []
            flow = float("nan")
            for k in args.factors:
                inst = build_instance(on_base(f, k), interval=when, seed=args.seed)
                run = solve_admm(inst, AdmmSettings(tol_primal=tol_p / k, tol_dual=tol_d / k)).result
                if k == args.factors[0]:
                    ref = solve_clearing(inst)
                    flow = float(np.max(np.hypot(ref.P[1:], ref.Q[1:])) * args.factors[0])
                    default = _error(run, ref)
                iters.append(run.info["iterations"] if run.info["converged"] else -run.info["iterations"])
            run = solve_admm(build_instance(f, interval=when, seed=args.seed), AdmmSettings(weights=reweighted)).result
            iters.append(run.info["iterations"] if run.info["converged"] else -run.info["iterations"])
            ratios = " ".join(f"{abs(i) / abs(iters[0]):.2f}" for i in iters[:-1])
            print(f"{code} {when} {f.n_buses} {f.depth.max()} {z.max() / z.min():.0f} {f.base_mva:g} {flow:.2f} "
                  + " ".join(map(str, iters[:-1])) + f" {ratios} {iters[-1]} {abs(iters[-1]) / abs(iters[0]):.2f} "
                  + _error(run, ref) + " " + default, flush=True)


def _error(run: ClearingResult, ref: ClearingResult) -> str:
    """Relative optimality gap and max voltage difference of an ADMM result against the centralized SOCP."""
    gap = abs(run.objective - ref.objective) / abs(ref.objective)
    return f"{gap:.1e} {np.max(np.abs(np.sqrt(run.v) - np.sqrt(ref.v))):.1e}"


if __name__ == "__main__":
    main()
