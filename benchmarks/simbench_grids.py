"""Every SimBench LV and MV grid code as a feeder: clear it centrally, validate it on the SimBench net itself.

    python benchmarks/simbench_grids.py [--admm] [--codes CODE ...] [--interval 2016-06-21T12:00] [--seed 0]

Per code: buses, depth, relaxation gap, max |V_socp - V_ac| with the AC power flow on the SimBench net, wall
times, and with ``--admm`` the sweep ADMM's iterations and relative gap to the centralized optimum. A code
passes when the gap is <= 1e-6 and the voltage mismatch <= 1e-3 p.u. (and the ADMM within 1e-4). A grid that
does not load as a radial feeder is listed with the reason. The first run builds every SimBench net (15-20 s
each) and caches it.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from market.admm.driver import solve_admm
from market.instance import build_instance
from market.problem.clearing import solve_clearing
from physical.errors import FeederError
from physical.simbench_grid import load_simbench_grid, simbench_ac_power_flow, simbench_codes

GAP, VM, ADMM_GAP = 1e-6, 1e-3, 1e-4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--codes", nargs="*", help="default: every LV and MV code (no MVLV)")
    parser.add_argument("--interval", default="2016-06-21T12:00")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--admm", action="store_true", help="also run the sweep ADMM")
    args = parser.parse_args()
    codes = args.codes or [c for c in simbench_codes() if c.split("-")[1] in ("LV", "MV")]
    print("code buses depth gap vm_mismatch_pu load_s clear_s ac_s admm_iter admm_gap admm_s verdict", flush=True)
    passed = 0
    for code in codes:
        start = time.perf_counter()
        try:
            grid = load_simbench_grid(code)
        except FeederError as exc:
            print(f"{code} refused: {exc}", flush=True)
            continue
        load_s = time.perf_counter() - start
        f = grid.feeder
        inst = build_instance(f, interval=args.interval, seed=args.seed)
        res = solve_clearing(inst)
        if not res.status.has_solution:
            print(f"{code} {f.n_buses} {f.depth.max()} status {res.status} FAIL", flush=True)
            continue
        start = time.perf_counter()
        ac = simbench_ac_power_flow(grid, res.p * f.base_mva, res.q * f.base_mva)
        ac_s = time.perf_counter() - start
        vm = float(np.max(np.abs(ac.vm_pu - f.nominal_vm(np.sqrt(res.v)))))
        ok = res.max_relaxation_gap <= GAP and vm <= VM
        admm = "- - -"
        if args.admm:
            start = time.perf_counter()
            run = solve_admm(inst).result
            admm_gap = abs(run.objective - res.objective) / abs(res.objective)
            ok = ok and run.info["converged"] and admm_gap <= ADMM_GAP
            admm = f"{run.info['iterations']} {admm_gap:.1e} {time.perf_counter() - start:.1f}"
        passed += ok
        print(f"{code} {f.n_buses} {f.depth.max()} {res.max_relaxation_gap:.1e} {vm:.1e} {load_s:.1f} "
              f"{res.wall_s:.2f} {ac_s:.2f} {admm} {'pass' if ok else 'FAIL'}", flush=True)
    print(f"{passed} of {len(codes)} codes pass", flush=True)


if __name__ == "__main__":
    main()
