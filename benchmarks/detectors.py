"""Detectors against Byzantine agents, and what they cost, measured in the same run.

    python benchmarks/detectors.py [--cases case15da,case85] [--seeds 0] [--max-iter 3000]
    python benchmarks/detectors.py --cost [--cases case85] [--cost-iterations 1000] [--repeats 5]

Two tables (or, with ``--cost``, only the tensor detector's cost):

1. *overhead*: the same instance run for a fixed number of iterations (no attack, tolerances unreachable)
   without a detector and with each detector; wall-time ratio and detector time per agent and iteration;
2. *defence*: one Byzantine agent (the first prosumer with a parent and children) running static FDI and
   dynamic noise on P and Q; per detector: converged, iterations, optimality gap against the attack-free
   centralized optimum, TPR (overall, per message kind, and on the injections an oracle with the honest history
   flags: :mod:`cyber.detectability`) and FPR on the corrupted message fields, detector time.

``--cost``: the default ``tensor`` detector's ``detector_us_per_agent_iteration`` (what ``summary.json``
reports) under the first attack (static FDI at the middle agent) over a fixed number of iterations, the run
repeated; min, median and max over the repeats, and per run the ratio of the detector's time to the rest of the
same run (the ADMM steps, the network, the attack and the scoring), since this machine's speed varies by a third between
periods. The kernels are loaded before the first run.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from cyber.attacks import AttackSpec
from cyber.resilient_admm import DETECTORS, CyberSetup, default_relaxation, solve_resilient_admm, warm_up
from market.admm.driver import AdmmSettings
from market.instance import build_instance
from market.problem.clearing import solve_clearing
from physical.catalog import load_feeder

ATTACKS = (("static-fdi", {"delta": 0.05}), ("dynamic-noise", {"sigma": 0.01}))


def middle_agent(feeder) -> int:
    return next(j for j in range(1, feeder.n_buses) if feeder.parent[j] > 0 and feeder.children[j])


def overhead(instance, iterations: int) -> None:
    fixed = AdmmSettings(projection="local", max_iter=iterations, tol_primal=1e-30, tol_dual=1e-30)
    warm_up()  # compiled kernels load once per process, not inside a timed run
    base = None
    for name in DETECTORS:
        start = time.perf_counter()
        run = solve_resilient_admm(instance, fixed, CyberSetup(detector=name))
        wall = time.perf_counter() - start
        base = base or wall
        per_agent_us = 1e6 * run.detector_wall_s / iterations / len(instance.agents)
        print(f"  {name:18} wall {wall:7.3f} s  ratio {wall / base:5.2f}  detector {per_agent_us:7.2f} us/agent/iter")


def defence(instance, reference: float, max_iter: int) -> None:
    byzantine = middle_agent(instance.feeder)
    for kind, params in ATTACKS:
        attack = AttackSpec(kind, agents=(byzantine,), fields=("P", "Q"), seed=instance.seed, **params)
        for name in DETECTORS:
            settings = AdmmSettings(projection="local", max_iter=max_iter,
                                    relaxation=default_relaxation((attack,), name))
            run = solve_resilient_admm(instance, settings, CyberSetup(attacks=(attack,), detector=name))
            res, c = run.admm.result, run.confusion
            gap = abs(res.objective - reference) / abs(reference)
            by_kind = " ".join(f"{k} {v:5.3f}" for k, v in run.tpr_by_kind().items())
            caught, detectable = run.detectable_caught()
            print(f"  {kind:14} agent {byzantine:3} {name:18} conv {str(res.info['converged']):5} "
                  f"iters {res.info['iterations']:5}  gap {gap:8.1e}  TPR {c['tpr']:5.3f} ({by_kind})  "
                  f"TPR on detectable {caught / max(detectable, 1):5.3f} ({detectable} of {c['tp'] + c['fn']})  "
                  f"FPR {c['fpr']:6.4f}  detector {run.detector_wall_s:6.2f} s")


def cost(instance, iterations: int, repeats: int) -> None:
    kind, params = ATTACKS[0]
    attack = AttackSpec(kind, agents=(middle_agent(instance.feeder),), fields=("P", "Q"), seed=instance.seed,
                        **params)
    settings = AdmmSettings(projection="local", max_iter=iterations, tol_primal=1e-30, tol_dual=1e-30,
                            relaxation=default_relaxation((attack,), "tensor"))
    warm_up("tensor")
    figures, per_field, ratios = [], [], []
    for _ in range(repeats):
        start = time.perf_counter()
        run = solve_resilient_admm(instance, settings, CyberSetup(attacks=(attack,), detector="tensor"))
        wall = time.perf_counter() - start
        per_agent, field = run.detector_cost_us(len(instance.agents))
        figures.append(per_agent)
        per_field.append(field)
        # the rest of the same run (ADMM steps, network, attack, scoring) per agent and iteration: the machine's
        # speed at that moment. The ratio moves less than the microseconds, not nothing: 0.74-1.08 against
        # 11.0-25.0 us in session 16's idle runs
        rest = (wall - run.detector_wall_s) * 1e6 / (iterations * len(instance.agents))
        ratios.append(per_agent / rest)
    low, middle, high = (float(f) for f in np.percentile(figures, [0, 50, 100]))
    print(f"  tensor, {kind} at agent {attack.agents[0]}, {iterations} iterations, {repeats} runs: "
          f"detector_us_per_agent_iteration min {low:.2f} median {middle:.2f} max {high:.2f} "
          f"({' '.join(f'{f:.2f}' for f in figures)}); detector_us_per_field median {np.median(per_field):.3f}; "
          f"detector / rest of the run, same run: {' '.join(f'{r:.2f}' for r in ratios)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", default="case15da,case85")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--interval", default="2016-06-21T12:00")
    parser.add_argument("--max-iter", type=int, default=3000)
    parser.add_argument("--overhead-iterations", type=int, default=500)
    parser.add_argument("--cost", action="store_true", help="only the tensor detector's cost under static FDI")
    parser.add_argument("--cost-iterations", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    for case in args.cases.split(","):
        feeder = load_feeder(case)
        for seed in (int(s) for s in args.seeds.split(",")):
            instance = build_instance(feeder, interval=args.interval, seed=seed)
            if args.cost:
                print(f"{case} seed {seed}: tensor detector cost")
                cost(instance, args.cost_iterations, args.repeats)
                continue
            print(f"{case} seed {seed}: overhead over {args.overhead_iterations} attack-free iterations")
            overhead(instance, args.overhead_iterations)
            print(f"{case} seed {seed}: one Byzantine agent, at most {args.max_iter} iterations")
            defence(instance, solve_clearing(instance).objective, args.max_iter)


if __name__ == "__main__":
    main()
