"""Online intervals by the distributed ADMM against the centralized solve of the same intervals, same run.

    python benchmarks/online_admm.py [--case case33bw] [--start 2016-06-20T00:00] [--days 7] [--seed 0]
        [--controller lyapunov] [--projection sweep] [--storage-share 0.5] [--tariff tou]

The controller runs the intervals twice, each interval cleared centrally (cvxpy + Clarabel) and by the ADMM
(every battery in its owner's local step, each interval warm-started from the last). Printed after every day
(``--report-every`` quarter hours): both runs' cost so far and their relative difference, the largest SoC
difference, the ADMM's iterations and the time per interval of each (wall, and CPU time of this process: on
a machine shared with other jobs the CPU time is what an idle machine's wall time would be, the code being
single-threaded), and their ratio. No offline optimum is solved here (``benchmarks/online_storage.py``
measures it).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from cosim.online_run import OnlineJob, job_instances
from market.admm.driver import AdmmSettings
from market.admm.prox import warm_up
from market.instance import InstanceOptions
from market.online.controllers import solve_slot
from market.online.distributed import AdmmSlots
from market.online.study import interval_controller
from market.problem.storage import storage_arrays
from physical.catalog import load_feeder
from physical.profiles import INTERVALS_PER_DAY, interval_index


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--case", default="case33bw")
    parser.add_argument("--start", default="2016-06-20T00:00")
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--controller", default="lyapunov")
    parser.add_argument("--projection", default="sweep")
    parser.add_argument("--storage-share", type=float, default=0.5)
    parser.add_argument("--tariff", default="tou")
    parser.add_argument("--report-every", type=int, default=INTERVALS_PER_DAY, help="quarter hours between lines")
    args = parser.parse_args()
    options = InstanceOptions(storage_share=args.storage_share, tariff=args.tariff)
    n = round(args.days * INTERVALS_PER_DAY)
    job = OnlineJob(load_feeder(args.case), args.seed, interval_index(args.start), n, args.controller, None, options)
    instances, _ = job_instances(job)
    arr = storage_arrays(instances[0])
    retail = [inst.retail_price for inst in instances]
    slots = AdmmSlots(AdmmSettings(projection=args.projection))
    central = interval_controller(arr, args.controller, None, retail, solve_slot)
    distributed = interval_controller(arr, args.controller, None, retail, slots)
    warm_up()
    soc = {"centralized": arr.soc0.copy(), "admm": arr.soc0.copy()}
    cost = {"centralized": 0.0, "admm": 0.0}
    wall = {"centralized": 0.0, "admm": 0.0}
    cpu = {"centralized": 0.0, "admm": 0.0}
    print(f"{args.case}, {args.controller}, {arr.n_units} units, from {args.start}, {n} intervals")
    print("day  cost_centralized_ct  cost_admm_ct  rel_diff  max_soc_diff_kwh  iterations_mean/max  "
          "s/interval_centralized (wall, cpu)  s/interval_admm (wall, cpu)  ratio (cpu)")
    for t, inst in enumerate(instances):
        for name, controller in (("centralized", central), ("admm", distributed)):
            start, start_cpu = time.perf_counter(), time.process_time()
            decision = controller.step(t, inst, soc[name])
            wall[name] += time.perf_counter() - start
            cpu[name] += time.process_time() - start_cpu
            soc[name] = soc[name] + arr.energy_step(decision.charge, decision.discharge)
            cost[name] += decision.clearing.objective
        if (t + 1) % args.report_every == 0 or t + 1 == n:
            its = np.array(slots.iterations_)
            rel = abs(cost["admm"] - cost["centralized"]) / abs(cost["centralized"])
            print(f"{(t + 1) / INTERVALS_PER_DAY:5.2f}  {cost['centralized']:19.1f}  {cost['admm']:12.1f}  {rel:8.1e}  "
                  f"{np.abs(soc['admm'] - soc['centralized']).max():16.3f}  {its.mean():9.0f}/{its.max():<9d}  "
                  f"{wall['centralized'] / (t + 1):15.3f} {cpu['centralized'] / (t + 1):6.3f}  "
                  f"{wall['admm'] / (t + 1):20.3f} {cpu['admm'] / (t + 1):6.3f}  "
                  f"{cpu['admm'] / cpu['centralized']:5.1f}", flush=True)


if __name__ == "__main__":
    main()
