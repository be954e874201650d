"""The distributed stopping rule under a Byzantine agent falsifying its residual share.

For each case and seed: the central test's stop (the paper's), then one Byzantine agent (drawn with the
seed) claiming a huge share (never stopping), a negative one (stopping early) and zero (hiding its own
residuals), each against the plain distributed test (no detector) and the defended market (tensor detector,
resilient test disregarding one share). Prints iterations, status and the optimality gap against the
centralized optimum.

    python -m benchmarks.stopping [--cases case15da,case85] [--seeds 0,1,2] [--max-iter 8000]
"""

from __future__ import annotations

import argparse

import numpy as np

from cyber.attacks import AttackSpec, byzantine_agents
from cyber.resilient_admm import CyberSetup, solve_resilient_admm
from market.admm.driver import AdmmSettings, solve_admm
from market.instance import build_instance
from market.problem.clearing import solve_clearing
from physical.catalog import load_feeder

CLAIMS = {"never (1e6)": 1e6, "early (-1e6)": -1e6, "hide (0)": 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="case15da,case85")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--max-iter", type=int, default=8000)
    args = parser.parse_args()
    print("case      seed agent  claim          market     iterations status         gap")
    worst = 0.0
    for case in args.cases.split(","):
        feeder = load_feeder(case)
        for seed in (int(s) for s in args.seeds.split(",")):
            inst = build_instance(feeder, interval="2016-06-21T12:00", seed=seed)
            ref = solve_clearing(inst).objective
            base = AdmmSettings(projection="local", relaxation=1.0, max_iter=args.max_iter)
            central = solve_admm(inst, base).result
            agent = byzantine_agents(seed, feeder.n_buses, 1e-9)[0]
            _row(case, seed, "-", "none", "central", central, ref)
            for label, claim in CLAIMS.items():
                attack = (AttackSpec("residual", agents=(agent,), claim=claim),)
                for market, trim, detector in (("plain", 0, "none"), ("defended", 1, "tensor")):
                    settings = AdmmSettings(projection="local", relaxation=1.0, max_iter=args.max_iter,
                                            stopping="distributed", stop_trim=trim)
                    res = solve_resilient_admm(inst, settings, CyberSetup(attacks=attack, detector=detector))
                    gap = _row(case, seed, agent, label, market, res.admm.result, ref)
                    if market == "defended":
                        worst = max(worst, gap if res.admm.result.status.has_solution else np.inf)
    print(f"largest gap of a defended market: {worst:.2e} (target <= 1e-3)")


def _row(case: str, seed: int, agent, claim: str, market: str, result, ref: float) -> float:
    gap = abs(result.objective - ref) / abs(ref)
    print(f"{case:9} {seed:4} {agent!s:5}  {claim:14} {market:10} {result.info['iterations']:10} "
          f"{result.status!s:14} {gap:.2e}")
    return gap


if __name__ == "__main__":
    main()
