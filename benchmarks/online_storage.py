"""Online storage controllers against the perfect-foresight optimum, measured in the same run.

    python benchmarks/online_storage.py [--cases case33bw] [--starts 2016-06-21T00:00,2016-12-20T00:00] [--days 1]
        [--controllers lyapunov,lyapunov-standard,myopic,mpc] [--tariff tou] [--storage-share 0.5] [--seed 0]

Per case and start: the storage value (no-storage cost minus the offline optimum, cent) and the offline
solve's wall time; per controller its captured value, the bound and whether it held, threshold bindings, SoC
violations and wall time per interval. The no-storage and offline solves are shared by the controllers.
"""

from __future__ import annotations

import argparse

from cosim.online_run import OnlineJob, job_instances
from market.instance import InstanceOptions
from market.online.study import no_storage_cost, run_study, terminal_value
from market.problem.horizon import solve_horizon
from market.problem.storage import storage_arrays
from physical.catalog import load_feeder
from physical.profiles import INTERVALS_PER_DAY, interval_index


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", default="case33bw")
    parser.add_argument("--starts", default="2016-06-21T00:00,2016-12-20T00:00")
    parser.add_argument("--days", type=float, default=1.0)
    parser.add_argument("--controllers", default="lyapunov,lyapunov-standard,myopic,mpc")
    parser.add_argument("--tariff", default="tou")
    parser.add_argument("--storage-share", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    options = InstanceOptions(storage_share=args.storage_share, tariff=args.tariff)
    intervals = round(args.days * INTERVALS_PER_DAY)
    print("case      start             controller          captured  cost_ct      bound_ok  gates  soc_viol  "
          "s/interval")
    for case in args.cases.split(","):
        for start in args.starts.split(","):
            job = OnlineJob(load_feeder(case), args.seed, interval_index(start), intervals, "offline", None, options)
            instances, forecast = job_instances(job)
            arr = storage_arrays(instances[0])
            no_storage = no_storage_cost(instances)
            offline = solve_horizon(instances, arr.soc0, terminal_value(instances))
            print(f"{case:9s} {start:17s} {'(no storage)':19s} {'':8s}  {no_storage:11.0f}")
            print(f"{case:9s} {start:17s} {'offline':19s} {1.0:8.3f}  {offline.cost_ct:11.0f}  "
                  f"{'':8s}  {'':5s}  {'':8s}  {offline.wall_s / intervals:.3f} (whole horizon {offline.wall_s:.1f} s; "
                  f"storage value {no_storage - offline.cost_ct:.0f} ct, {arr.n_units} units)")
            for controller in args.controllers.split(","):
                s = run_study(instances, controller, forecast=forecast, offline=offline, no_storage_cost_ct=no_storage)
                held = "-" if s.bound_ct is None else str(s.run.cost_ct <= offline.cost_ct + s.bound_ct)
                captured = "null" if s.captured_value is None else f"{s.captured_value:.3f}"
                print(f"{case:9s} {start:17s} {controller:19s} {captured:>8s}  {s.run.cost_ct:11.0f}  {held:8s}  "
                      f"{s.gate_binding:5d}  {s.soc_violations:8d}  {s.run.wall_s / intervals:.3f}", flush=True)


if __name__ == "__main__":
    main()
