"""The physics term of the paper's detector, and its calibration, measured on the same runs.

    python benchmarks/physics_ablation.py ablation [--cases case15da,case85] [--seeds 0,1,2] [--max-iter 3000]
        [--attacks static-fdi/5,dynamic-noise/5,consistent/1@40]
    python benchmarks/physics_ablation.py calibration [--cases case15da,case33bw,case85] [--alphas 0.01,0.05,0.1]
        [--seeds 0] [--interval 2016-06-21T12:00]

``ablation``: one Byzantine agent (the first prosumer with a parent and children) runs static FDI and dynamic
noise every 5 iterations, and a consistent attack -- the same static deviation at *every* iteration from
iteration 40 on; each against ``tensor-paper`` and ``tensor-paper-no-physics`` on the same instance, per seed; then mean
and spread (min..max) over the seeds of: converged, iterations, optimality gap against the centralized optimum,
TPR on flows and on voltages, FPR on the attackable fields (flows and voltages), and, per seed, how far the
falsified values violate each equality of the receivers' ``Phi`` (E1 of the parent, E4 of the children: the
attack keeps E3, the voltage drop, by construction).

``calibration``: attack-free runs; per nominal alpha, the share of honest fields flagged per message kind, then
the same among the decisions the multiplier could turn (error above the floor: what the own-score quantiles calibrate;
``above floor`` is their share of the decisions), and the median over agents of the multipliers reached (powers,
voltages; they start at the multiplier exact for Gaussian errors).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from cyber import resilient_admm
from cyber.attacks import AttackSpec
from cyber.resilient_admm import CyberSetup, default_relaxation, solve_resilient_admm, warm_up
from cyber.screening import score
from market.admm.driver import AdmmSettings
from market.instance import build_instance
from market.problem.clearing import solve_clearing
from physical.catalog import load_feeder

INTERVAL = "2016-06-21T12:00"
ATTACKS = {"static-fdi/5": dict(kind="static-fdi", delta=0.05),
           "dynamic-noise/5": dict(kind="dynamic-noise", sigma=0.01),
           "consistent/1@40": dict(kind="static-fdi", delta=0.05, period=1, start=40)}
ATTACKABLE = ("flow", "voltage")


def middle_agent(feeder) -> int:
    return next(j for j in range(1, feeder.n_buses) if feeder.parent[j] > 0 and feeder.children[j])


def _run(instance, attacks, detector, max_iter, options=None):
    settings = AdmmSettings(projection="local", max_iter=max_iter, relaxation=default_relaxation(attacks, detector))
    return solve_resilient_admm(instance, settings, CyberSetup(attacks=attacks, detector=detector,
                                                              detector_options=options or {}))


def _attackable_fpr(run) -> float:
    """Share of the honest flow and voltage fields flagged (the fields a correlated attack can touch)."""
    flagged = run.flags[run.flags["kind"].isin(ATTACKABLE)]
    truth = run.truth[run.truth["kind"].isin(ATTACKABLE)] if len(run.truth) else run.truth
    return score(flagged, truth, sum(run.screened_by_kind.get(k, 0) for k in ATTACKABLE))["fpr"]


def ablation(cases, seeds, max_iter, attacks, interval) -> None:
    for case in cases:
        feeder = load_feeder(case)
        byzantine = middle_agent(feeder)
        for label in attacks:
            params = ATTACKS[label]
            rows = {"tensor-paper": [], "tensor-paper-no-physics": []}
            for seed in seeds:
                instance = build_instance(feeder, interval=interval, seed=seed)
                reference = solve_clearing(instance).objective
                attack = AttackSpec(agents=(byzantine,), fields=("P", "Q"), seed=seed, **params)
                for detector in rows:
                    start = time.perf_counter()
                    run = _run(instance, (attack,), detector, max_iter)
                    res = run.admm.result
                    tpr = run.tpr_by_kind()
                    rows[detector].append(dict(
                        converged=float(res.info["converged"]), iterations=res.info["iterations"],
                        gap=abs(res.objective - reference) / abs(reference), tpr_flow=tpr.get("flow", np.nan),
                        tpr_voltage=tpr.get("voltage", np.nan), fpr=_attackable_fpr(run),
                        us=1e6 * run.detector_wall_s / res.info["iterations"] / len(instance.agents),
                        wall=time.perf_counter() - start))
                    print(f"    {case} {label} seed {seed} {detector}: "
                          + " ".join(f"{k} {v:.4g}" for k, v in rows[detector][-1].items()), flush=True)
            for detector, runs in rows.items():
                cells = []
                for key in ("converged", "iterations", "gap", "tpr_flow", "tpr_voltage", "fpr", "us"):
                    values = np.array([r[key] for r in runs], dtype=float)
                    cells.append(f"{key} {np.nanmean(values):.4g} [{np.nanmin(values):.3g}..{np.nanmax(values):.3g}]")
                print(f"  {case:9} {label:16} {detector:18} " + "  ".join(cells), flush=True)


def _capture_detectors() -> list:
    """Every detector the clearings build from now on, appended to the returned list (to read its state)."""
    built, build = [], resilient_admm.build_detector

    def capturing(*args, **kwargs):
        built.append(build(*args, **kwargs))
        return built[-1]

    resilient_admm.build_detector = capturing
    return built


def calibration(cases, alphas, max_iter, seeds, interval) -> None:
    built = _capture_detectors()
    for case in cases:
        for seed in seeds:
            instance = build_instance(load_feeder(case), interval=interval, seed=seed)
            for alpha in alphas:
                run = _run(instance, (), "tensor-paper", max_iter, {"alpha": alpha})
                by_kind = " ".join(f"{k} {v:.4f} ({v / alpha:.2f}x)" for k, v in run.fpr_by_kind().items())
                print(f"  {case:9} {interval} seed {seed} alpha {alpha:5.3f}  attackable {_attackable_fpr(run):.4f}  "
                      f"{by_kind}  converged {run.admm.result.info['converged']} iterations "
                      f"{run.admm.result.info['iterations']}", flush=True)
                counts = built[-1].above_floor
                decided = {k: f"{f / d:.4f} ({f / d / alpha:.2f}x, above floor {d / run.screened_by_kind[k]:.2f})"
                           for k, (f, d) in counts.items() if d}
                c = np.median(built[-1].rate.c(slice(None)), axis=0)
                print(f"      above the floor: {' '.join(f'{k} {v}' for k, v in decided.items())}  "
                      f"multipliers (median) powers {c[0]:.2f} voltages {c[1]:.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", choices=("ablation", "calibration"))
    parser.add_argument("--cases")
    parser.add_argument("--seeds", help="default 0,1,2 (ablation), 0 (calibration)")
    parser.add_argument("--interval", default=INTERVAL)
    parser.add_argument("--alphas", default="0.01,0.05,0.1")
    parser.add_argument("--max-iter", type=int, default=3000)
    parser.add_argument("--attacks", default=",".join(ATTACKS), help=f"some of {', '.join(ATTACKS)}")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    warm_up()
    if args.study == "ablation":
        ablation((args.cases or "case15da,case85").split(","), [int(s) for s in (args.seeds or "0,1,2").split(",")],
                 args.max_iter, args.attacks.split(","), args.interval)
    else:
        calibration((args.cases or "case15da,case33bw,case85").split(","),
                    [float(a) for a in args.alphas.split(",")], args.max_iter,
                    [int(s) for s in (args.seeds or "0").split(",")], args.interval)


if __name__ == "__main__":
    main()
