"""How the clearing scales with the feeder: wall time, iterations and peak memory against bus count.

    python benchmarks/scaling.py [--cases case15da,...,1-MVLV-semiurb-all-0-sw]
                                 [--methods central,sweep,local,defended]
                                 [--repeats 1] [--local-max-buses 141] [--max-iter 15000]
                                 [--table docs/figures/scaling.csv] [--figure docs/figures/scaling.png]

Methods: ``central`` the SOCP (cvxpy + Clarabel; iterations are Clarabel's), ``sweep`` and ``local`` the ADMM
on its two splittings, ``defended`` the ADMM with every agent screening with the tensor detector (attack-free:
the cost of the defence) on the splitting the defence runs on (:func:`cyber.resilient_admm.default_projection`).
The one-hop ``local`` splitting and the defended run stop at ``--local-max-buses``: their information travels
one line per iteration, and on 5 476 buses the local splitting had not converged after 8 000 iterations (measure
it with ``--cases 1-MVLV-rural-all-0-sw --methods local --local-max-buses 10000 --max-iter 8000``); ``--max-iter``
caps every ADMM run.

Every (case, method) runs in a fresh process, so its peak memory (maximum resident set size: imports, feeder,
instance and solve) is its own; wall times are of the solve alone. The ADMM's optimality gap is against the
same case's central objective; ``dv_ac`` is max |V_socp - V_ac| of the dispatch on the grid's own net
(SimBench's net for a SimBench code). Trading partners: the ``--k`` electrically nearest sellers per buyer on
every feeder, so the trades grow linearly with the buyers. The fitted exponent is the least-squares slope of
log(wall time) on log(buses) over the converged runs. The load average is printed with every run: the machine
is shared, so wall times are upper bounds.

Rows are merged into ``--table`` (a case and method measured again replace their row), and the exponents and
the figure are of the whole table, so a slow part can be re-measured alone; ``--methods ''`` only redraws.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import resource
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from market.instance import MarketInstance
from market.result import ClearingResult

CASES = (  # MATPOWER cases and SimBench LV, MV and MV+LV grids, 15 to 9 096 buses
    "case15da,1-LV-rural1--0-sw,case33bw,1-LV-semiurb4--0-sw,case85,1-MV-rural--0-sw,1-LV-semiurb5--0-sw,"
         "1-MV-urban--0-sw,case141,1-MVLV-rural-all-0-sw,1-MVLV-semiurb-all-0-sw")
METHODS = ("central", "sweep", "local", "defended")


@dataclass(frozen=True)
class Measurement:
    """One solve of one case by one method, measured in its own process."""

    case: str
    method: str
    buses: int
    depth: int
    trades: int
    wall_s: float
    iterations: int
    converged: bool
    objective: float
    relaxation_gap: float
    dv_ac: float
    peak_mb: float
    load: float  # 1-minute load average at the end of the solve
    splitting: str = ""
    primal: float = math.nan  # the ADMM's last primal residual (what a capped run reached)
    gap: float = math.nan  # relative to the central objective


def measure(case: str, method: str, k: int, interval: str, seed: int, max_iter: int, ac: bool) -> Measurement:
    """Build ``case``'s instance and solve it by ``method`` (runs in a child process)."""
    warnings.simplefilter("ignore")
    from cosim.api import validate_result
    from cyber.resilient_admm import CyberSetup, default_projection, default_relaxation, solve_resilient_admm
    from market.admm.driver import AdmmSettings, solve_admm
    from market.instance import InstanceOptions, build_instance
    from market.problem.clearing import solve_clearing
    from physical.catalog import load_feeder

    def solve(inst: MarketInstance, cap: int) -> ClearingResult:
        if method == "central":
            return solve_clearing(inst)
        if method == "defended":
            settings = AdmmSettings(projection=splitting, relaxation=default_relaxation((), "tensor"), max_iter=cap)
            return solve_resilient_admm(inst, settings, CyberSetup(detector="tensor")).admm.result
        return solve_admm(inst, AdmmSettings(projection=method, max_iter=cap)).result

    options = InstanceOptions(partners="nearest", k_nearest=k)
    splitting = {"central": "", "defended": default_projection((), "tensor")}.get(method, method)
    solve(build_instance(load_feeder("case15da"), interval=interval, seed=seed, options=options), 5)  # warm up
    feeder = load_feeder(case)
    inst = build_instance(feeder, interval=interval, seed=seed, options=options)
    start = time.perf_counter()
    res = solve(inst, max_iter)
    wall = time.perf_counter() - start
    load = os.getloadavg()[0]
    if method == "central":
        iterations, converged, primal = int(res.info.get("solver_iterations", 0)), res.status.has_solution, math.nan
    else:
        iterations, converged = int(res.info["iterations"]), bool(res.info["converged"])
        primal = float(res.info["primal_residual"])
    dv = math.nan
    if ac and res.status.has_solution:
        check = validate_result(inst, res)
        dv = check.max_vm_mismatch_pu
    return Measurement(case, method, feeder.n_buses, int(feeder.depth.max()), len(inst.trades), wall, iterations,
                       converged, float(res.objective), float(res.max_relaxation_gap), dv,
                       resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, load, splitting, primal)


def in_child(*args) -> Measurement:
    """:func:`measure` in a fresh process (its own peak memory), at low priority."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=os.nice, initargs=(5,)) as pool:
        return pool.submit(measure, *args).result()


def merged(path: Path, new: list[Measurement]) -> list[Measurement]:
    """The rows of ``path`` (a CSV of earlier runs) with ``new`` in place of the same (case, method); written
    back, so a slow part can be re-measured alone and the figure still shows every case."""
    import pandas as pd

    table = pd.read_csv(path).fillna({"splitting": ""}) if path.exists() else pd.DataFrame()
    kept = [Measurement(**row) for row in table.to_dict("records")]
    fresh = {(r.case, r.method) for r in new}
    rows = [r for r in kept if (r.case, r.method) not in fresh] + new
    central = {r.case: r.objective for r in rows if r.method == "central"}
    rows = [replace(r, gap=abs(r.objective - central[r.case]) / max(abs(central[r.case]), 1e-12))
            if r.method != "central" and math.isnan(r.gap) and r.case in central else r for r in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame([asdict(r) for r in rows]).to_csv(path, index=False)
    return rows


def exponent(rows: list[Measurement], value) -> float:
    """Least-squares slope of log(value) on log(buses) over the converged rows (NaN with fewer than 3)."""
    ok = [r for r in rows if r.converged and value(r) > 0]
    if len(ok) < 3:
        return math.nan
    return float(np.polyfit(np.log([r.buses for r in ok]), np.log([value(r) for r in ok]), 1)[0])


def figure(rows: list[Measurement], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = (("wall_s", "wall time of the solve [s]"), ("iterations", "iterations"), ("peak_mb", "peak memory [MB]"))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for ax, (field, label) in zip(axes, panels, strict=True):
        for method in METHODS:
            mine = sorted((r for r in rows if r.method == method), key=lambda r: r.buses)
            if not mine:
                continue
            slope = exponent(mine, lambda r, f=field: getattr(r, f))
            done = [r for r in mine if r.converged]
            x, y = np.array([r.buses for r in done], dtype=float), np.array([getattr(r, field) for r in done])
            line, = ax.plot(x, y, "o", label=f"{method} (slope {slope:.2f})" if math.isfinite(slope) else method)
            if math.isfinite(slope):  # the fitted power law over the converged runs' range
                ends = np.array([x.min(), x.max()])
                offset = np.mean(np.log(y[y > 0]) - slope * np.log(x[y > 0]))
                ax.plot(ends, np.exp(offset) * ends**slope, "--", color=line.get_color(), alpha=0.6)
            capped = [r for r in mine if not r.converged]
            if capped:
                ax.plot([r.buses for r in capped], [getattr(r, field) for r in capped], "x", color=line.get_color(),
                        markersize=9)
        ax.set(xscale="log", yscale="log", xlabel="buses", ylabel=label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Clearing one quarter hour (dashed: fitted power law; x: not converged within the iteration cap)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", default=CASES)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--k", type=int, default=3, help="trading partners per buyer (nearest)")
    parser.add_argument("--interval", default="2016-06-21T12:00")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=1, help="solves per (case, method); wall time as a range")
    parser.add_argument("--local-max-buses", type=int, default=141,
                        help="largest feeder for the one-hop splitting and the defended run")
    parser.add_argument("--max-iter", type=int, default=15000)
    parser.add_argument("--no-ac", action="store_true", help="skip the AC check of every dispatch")
    parser.add_argument("--figure", type=Path, default=Path("docs/figures/scaling.png"))
    parser.add_argument("--table", type=Path, default=Path("docs/figures/scaling.csv"),
                        help="CSV the rows are merged into; the exponents and the figure are of all its rows")
    args = parser.parse_args()
    methods = [m for m in args.methods.split(",") if m]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown or args.repeats < 1:
        parser.error(f"--methods: expected some of {','.join(METHODS)}, got {','.join(unknown)}; --repeats >= 1")
    print(f"{'case':26} {'method':8} {'split':6} {'buses':>6} {'depth':>5} {'trades':>6} {'wall_s':>15} {'iters':>6} "
          f"{'conv':>5} {'primal':>8} {'gap':>8} {'relax':>8} {'dv_ac':>8} {'peak_MB':>8} {'load':>5}", flush=True)
    rows: list[Measurement] = []
    for case in args.cases.split(","):
        central, buses = None, None
        for method in methods:
            if method in ("local", "defended") and buses is not None and buses > args.local_max_buses:
                print(f"{case:26} {method:8} skipped: {buses} buses > --local-max-buses", flush=True)
                continue
            runs = [in_child(case, method, args.k, args.interval, args.seed, args.max_iter, not args.no_ac)
                    for _ in range(args.repeats)]
            best = min(runs, key=lambda r: r.wall_s)
            buses = best.buses
            if method == "central":
                central = best
            elif central is not None:
                best = replace(best, gap=abs(best.objective - central.objective) / max(abs(central.objective), 1e-12))
            rows.append(best)
            walls = [r.wall_s for r in runs]
            wall = f"{min(walls):.2f}" if len(runs) == 1 else f"{min(walls):.2f}-{max(walls):.2f}"
            print(f"{case:26} {method:8} {best.splitting:6} {best.buses:>6} {best.depth:>5} {best.trades:>6} "
                  f"{wall:>15} {best.iterations:>6} {str(best.converged):>5} {best.primal:>8.1e} {best.gap:>8.1e} "
                  f"{best.relaxation_gap:>8.1e} {best.dv_ac:>8.1e} {best.peak_mb:>8.0f} {best.load:>5.1f}", flush=True)
    rows = merged(args.table, rows)
    print(f"\nfitted exponent of wall time (and of iterations, peak memory) against buses, converged runs of "
          f"{args.table}:")
    for method in METHODS:
        mine = [r for r in rows if r.method == method]
        print(f"  {method:8} time {exponent(mine, lambda r: r.wall_s):5.2f}   iterations "
              f"{exponent(mine, lambda r: r.iterations):5.2f}   memory {exponent(mine, lambda r: r.peak_mb):5.2f}   "
              f"time per iteration {exponent(mine, lambda r: r.wall_s / max(r.iterations, 1)):5.2f}")
    figure(rows, args.figure)
    print(f"figure: {args.figure}")


if __name__ == "__main__":
    main()
