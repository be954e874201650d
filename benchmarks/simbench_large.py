"""One large SimBench grid cleared centrally: wall time per stage, peak memory, relaxation gap, AC check.

    python benchmarks/simbench_large.py [--code 1-MVLV-rural-all-0-sw] [--partners nearest] [--k 3]
                                        [--interval 2016-06-21T12:00] [--seed 0]

Stages: building SimBench's net (cached after the first run), converting it to a feeder, building the market
instance, the centralized SOCP (cvxpy + Clarabel) and the AC power flow on the SimBench net itself and on the
feeder's own pandapower net. Peak memory is the process's maximum resident set size.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from market.instance import InstanceOptions, build_instance
from market.problem.clearing import solve_clearing
from physical.ac_power_flow import run_ac_power_flow
from physical.simbench_grid import grid_from_net, simbench_ac_power_flow, simbench_net


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--code", default="1-MVLV-rural-all-0-sw")
    parser.add_argument("--partners", default="nearest", choices=("all", "nearest"))
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--interval", default="2016-06-21T12:00")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    def stage(name: str, fn):
        start = time.perf_counter()
        out = fn()
        print(f"{name}: {time.perf_counter() - start:.1f} s, peak {peak_mb():.0f} MB", flush=True)
        return out

    net = stage("SimBench net", lambda: simbench_net(args.code))
    grid = stage("feeder", lambda: grid_from_net(net, args.code))
    f = grid.feeder
    print(f"  {f.n_buses} buses, depth {f.depth.max()}, base {f.base_mva:g} MVA / {f.base_kv:g} kV", flush=True)
    opts = InstanceOptions(partners=args.partners, k_nearest=args.k)
    inst = stage("instance", lambda: build_instance(f, interval=args.interval, seed=args.seed, options=opts))
    roles = [a.role for a in inst.agents]
    print(f"  {roles.count('buyer')} buyers, {roles.count('seller')} sellers, {len(inst.trades)} trades",
          flush=True)
    res = stage("centralized", lambda: solve_clearing(inst))
    print(f"  status {res.status}, objective {res.objective:.6g} ct, relaxation gap {res.max_relaxation_gap:.2e}",
          flush=True)
    if not res.status.has_solution:
        return
    p, q = res.p * f.base_mva, res.q * f.base_mva
    on_simbench = stage("AC on the SimBench net", lambda: simbench_ac_power_flow(grid, p, q))
    on_feeder = stage("AC on the feeder's net", lambda: run_ac_power_flow(f, p, q))
    vm = f.nominal_vm(np.sqrt(res.v))
    print(f"  max |V_socp - V_ac| {np.max(np.abs(on_simbench.vm_pu - vm)):.2e} p.u. (SimBench net), "
          f"{np.max(np.abs(on_feeder.vm_pu - vm)):.2e} (feeder net); losses SOCP "
          f"{res.losses * f.base_mva * 1e3:.3f} kW, AC {on_simbench.losses_mw * 1e3:.3f} kW; "
          f"V {on_simbench.vm_pu.min():.4f}..{on_simbench.vm_pu.max():.4f}", flush=True)


if __name__ == "__main__":
    main()
