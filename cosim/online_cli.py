"""``cosim online``: an online storage controller over consecutive quarter hours, against the offline optimum.

Kept apart from :mod:`cosim.cli`, which only registers the subcommand (:func:`add_parser`) and dispatches to
:func:`run`, a layer over :func:`cosim.api.run_online`; errors follow the CLI's pattern (bad input: a message
naming the option, exit 1, nothing written; an interval, or the offline horizon, without a solution: exit 2,
nothing written).
"""

from __future__ import annotations

import argparse
import json
import sys

from market.admm.splittings import PROJECTIONS
from market.errors import InstanceError
from market.online.study import CONTROLLERS, METHODS
from market.tariff import TARIFFS


def add_parser(sub: argparse._SubParsersAction) -> None:
    from cosim.cli import _add_output_arguments, _count, _number

    online = sub.add_parser("online", help="online storage control over days of quarter hours, against the offline "
                                            "optimum with perfect foresight")
    online.add_argument("--case", required=True, help="MATPOWER feeder name (e.g. case33bw) or path to a .m file")
    online.add_argument("--seed", type=_count(0), default=0, help="seed of every random draw (default 0)")
    online.add_argument("--start", default="2016-06-21T00:00", help="first quarter hour (ISO time in 2016 or index)")
    online.add_argument("--days", type=_number, default=1.0,
                        help="length of the run in days of 96 quarter hours (fractions allowed; default 1)")
    online.add_argument("--controller", required=True, choices=CONTROLLERS, help="storage controller")
    online.add_argument("--V", type=_number, help="Lyapunov weight (kWh^2/ct; default and upper limit: v_max, the "
                                                 "largest that keeps every SoC in bounds by construction)")
    online.add_argument("--V-sweep", dest="v_sweep", type=_shares, default=(),
                        help="also run these shares of v_max (e.g. 0.1,0.3,1) and plot captured value and bound")
    online.add_argument("--storage-share", type=_number, default=0.5, help="share of loaded buses with a battery")
    online.add_argument("--storage-hours", type=_number, default=2.0, help="battery capacity / rated power, h")
    online.add_argument("--tariff", choices=TARIFFS, default="tou", help="retail tariff (default tou)")
    online.add_argument("--method", choices=METHODS, default="centralized",
                        help="how each interval of a per-interval controller (lyapunov, lyapunov-standard, myopic) "
                             "is cleared: centralized SOCP, or the distributed consensus ADMM with every battery in "
                             "its owner's local step (the offline optimum and the no-storage cost stay centralized)")
    online.add_argument("--projection", choices=PROJECTIONS,
                        help="ADMM splitting with --method admm (default sweep; see cosim clear)")
    _add_output_arguments(online, "do not print the summary")


def _shares(text: str) -> tuple[float, ...]:
    from cosim.cli import _floats

    values = _floats(text)
    if not all(0 < v <= 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected shares of v_max in (0, 1], got {text!r}")
    return values


def run(args: argparse.Namespace) -> int:
    from cosim import api
    from cosim.cli import EXIT_NO_SOLUTION, EXIT_NOT_CONVERGED, EXIT_OK
    from cosim.online_run import result_files
    from cosim.results import check_target, write_results
    from market.online.controllers import SlotError
    from market.online.distributed import SlotNotConverged
    from physical.profiles import INTERVALS_PER_DAY, YEAR_INTERVALS, interval_index

    check_target(args.out, args.force)
    intervals = round(args.days * INTERVALS_PER_DAY)
    start = interval_index(args.start)
    if intervals < 1 or start + intervals > YEAR_INTERVALS:
        raise InstanceError(f"--days {args.days:g}: expected at least one quarter hour within the profile year 2016")
    if args.projection is not None and args.method != "admm":
        raise InstanceError("--projection: the ADMM's splitting, only with --method admm")
    admm = api.AdmmSettings(projection=args.projection or "sweep") if args.method == "admm" else None
    options = api.InstanceOptions(storage_share=args.storage_share, storage_hours=args.storage_hours,
                                  tariff=args.tariff)
    try:
        outcome = api.run_online(args.case, args.controller, seed=args.seed, start=start, intervals=intervals,
                                 V=args.V, options=options, v_sweep=args.v_sweep, admm=admm)
    except SlotNotConverged as exc:
        print(f"cosim: error: {exc}", file=sys.stderr)
        return EXIT_NOT_CONVERGED
    except SlotError as exc:
        print(f"cosim: error: {exc}", file=sys.stderr)
        return EXIT_NO_SOLUTION
    files = result_files(outcome)
    write_results(args.out, files, force=args.force)
    if not args.quiet:
        print(json.dumps(files["summary.json"], indent=2, default=str))
        print(f"results in {args.out}")
    return EXIT_OK
