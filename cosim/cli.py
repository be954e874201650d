"""``cosim`` command line.

Exit codes: 0 a clearing with a dispatch was written; 1 bad input (message on stderr, nothing written);
2 the clearing has no dispatch (infeasible or solver failure): the folder holds instance.json and a
summary.json that says why -- for ``cosim run``, an interval still clearing a quarter hour after the last
tick (nothing written); 3 the ADMM did not converge within --max-iter: the folder holds instance.json,
summary.json (converged false) and iterations.csv, but no dispatch.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from market.errors import InstanceError

EXIT_OK, EXIT_INPUT, EXIT_NO_SOLUTION, EXIT_NOT_CONVERGED = 0, 1, 2, 3


def _range(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH, got {text!r}") from exc
    return lo, hi


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from exc


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cosim", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    clear = sub.add_parser("clear", help="clear one 15-minute P2P market and validate it with AC power flow")
    source = clear.add_mutually_exclusive_group(required=True)
    source.add_argument("--case", help="MATPOWER feeder name (e.g. case15da) or path to a .m file")
    source.add_argument("--instance", type=Path, help="re-solve a saved instance.json")
    clear.add_argument("--seed", type=int, default=0, help="seed of every random draw (default 0)")
    clear.add_argument("--interval", default="2016-06-21T12:00",
                       help="quarter hour of the 2016 profile year: ISO time or index (default summer noon)")
    clear.add_argument("--method", default="centralized", choices=["centralized", "admm"],
                       help="centralized SOCP (cvxpy + Clarabel) or the fully distributed ADMM")
    admm = clear.add_argument_group("ADMM (with --method admm)")
    defaults, tolerances = _admm_defaults()
    admm.add_argument("--projection", choices=["sweep", "local"],
                      help="y-update: sweep (the whole feeder per iteration, 2 x (depth - 1) hops) or local "
                           "(the paper's one-hop groups); default sweep, or local with --attack or --detector")
    admm.add_argument("--rho", type=float, default=defaults.rho, help=f"penalty (default {defaults.rho:g})")
    admm.add_argument("--tol-primal", type=float, help="primal residual tolerance (default {:g} with the sweep, "
                      "{:g} with the local splitting)".format(tolerances["sweep"][0], tolerances["local"][0]))
    admm.add_argument("--tol-dual", type=float, help="dual residual tolerance (default {:g} with the sweep, "
                      "{:g} with the local splitting)".format(tolerances["sweep"][1], tolerances["local"][1]))
    admm.add_argument("--max-iter", type=int, default=defaults.max_iter,
                      help=f"iteration limit (default {defaults.max_iter})")
    admm.add_argument("--residual-balancing", action="store_true", help="adapt rho to balance the residuals")
    admm.add_argument("--relaxation", type=float, help=f"over-relaxation in (0, 2) (default {defaults.relaxation:g}, "
                      "or 1 with --attack or --detector: forecasts and missed injections are not extrapolated)")
    _add_cyber_arguments(clear)
    clear.add_argument("--partners", choices=["all", "nearest"], default="all",
                       help="trading partners: all buyers x all sellers, or the k electrically nearest")
    clear.add_argument("--k", type=int, default=3, help="partners per buyer with --partners nearest")
    clear.add_argument("--vmin", type=float, default=0.9, help="lower voltage limit, p.u. (default 0.9)")
    clear.add_argument("--vmax", type=float, default=1.1, help="upper voltage limit, p.u. (default 1.1)")
    clear.add_argument("--pv-share", type=float, default=0.5, help="share of loaded buses with PV")
    clear.add_argument("--pv-ratio", type=_range, default=(0.5, 2.0), help="PV capacity / nominal load range")
    clear.add_argument("--wind-share", type=float, default=0.15, help="share of loaded buses with wind")
    clear.add_argument("--out", type=Path, required=True, help="results folder (written whole or not at all)")
    clear.add_argument("--force", action="store_true", help="replace a non-empty results folder")
    clear.add_argument("--quiet", action="store_true", help="do not print the summary")

    run = sub.add_parser("run", help="co-simulate a scenario file (mosaik: profiles, market, grid)")
    run.add_argument("scenario", type=Path, help="scenario TOML file (see scenarios/)")
    run.add_argument("--out", type=Path, required=True, help="results folder (written whole or not at all)")
    run.add_argument("--force", action="store_true", help="replace a non-empty results folder")
    run.add_argument("--quiet", action="store_true", help="no progress bar, no summary")

    sweep = sub.add_parser("sweep", help="sweep latency x loss x attack x Byzantine share on Dask")
    sweep.add_argument("scenario", type=Path, help="scenario TOML file: the base of every point")
    sweep.add_argument("--latency-ms", type=_floats, default=(1.0, 10.0, 50.0), help="e.g. 1,10,50")
    sweep.add_argument("--loss", type=_floats, default=(0.0, 0.02), help="e.g. 0,0.02")
    sweep.add_argument("--attacks", default="none,static-fdi", help="e.g. none,static-fdi,dynamic-noise")
    sweep.add_argument("--byzantine-share", type=_floats, default=(0.1,),
                       help="share of prosumers that are Byzantine in attacked points, e.g. 0.1,0.2")
    sweep.add_argument("--scheduler", help="address of a Dask scheduler (default: a local cluster)")
    sweep.add_argument("--workers", type=int, default=2, help="workers of the local cluster (default 2)")
    sweep.add_argument("--out", type=Path, required=True, help="results folder (written whole or not at all)")
    sweep.add_argument("--force", action="store_true", help="replace a non-empty results folder")
    sweep.add_argument("--quiet", action="store_true", help="do not print the table")

    reproduce = sub.add_parser("reproduce", help="regenerate docs/reproduction.md (seed 001's tables, figures)")
    reproduce.add_argument("--out", type=Path, default=Path("docs"), help="folder of the report (default docs)")

    sub.add_parser("cases", help="list the radial MATPOWER feeders that load")
    return parser


def _add_cyber_arguments(clear: argparse.ArgumentParser) -> None:
    from cyber.attacks import ATTACK_KINDS, AttackSpec
    from cyber.resilient_admm import DETECTORS

    spec = AttackSpec("scale", agents=(1,))
    cyber = clear.add_argument_group("cyber layer (with --method admm)")
    cyber.add_argument("--attack", choices=ATTACK_KINDS, help="Byzantine behaviour of the --byzantine agents")
    cyber.add_argument("--byzantine", type=int, nargs="+", metavar="BUS", help="bus numbers of Byzantine agents")
    cyber.add_argument("--byzantine-share", type=float, metavar="SHARE",
                       help="share of the prosumers that collude, drawn with --seed (instead of --byzantine)")
    cyber.add_argument("--attack-start", type=int, default=spec.start, help="first attacked iteration")
    cyber.add_argument("--attack-period", type=int,
                       help="iterations between injections (default 5; stealthy drifts in every one)")
    cyber.add_argument("--attack-fields", default="P",
                       help="comma-separated message fields to falsify: P, Q, v, t (default P)")
    cyber.add_argument("--delta", type=float, default=spec.delta, help="static-fdi deviation, p.u.")
    cyber.add_argument("--sigma", type=float, default=spec.sigma, help="dynamic-noise standard deviation, p.u.")
    cyber.add_argument("--factor", type=float, default=spec.factor, help="scale attack factor")
    cyber.add_argument("--lag", type=int, default=spec.lag, help="replay attack lag, iterations")
    cyber.add_argument("--drift", type=float, default=spec.drift,
                       help="stealthy: share of the receiver's acceptance band moved per iteration (up to --delta)")
    cyber.add_argument("--detector", choices=DETECTORS, default="none", help="detector every agent runs")
    cyber.add_argument("--alpha", type=float, help="detector's nominal false-alarm rate (default 0.1)")


def _cyber_setup(args: argparse.Namespace):
    """The attack and detector the options ask for, or None when they ask for neither."""
    from cyber.attacks import AttackSpec, byzantine_agents
    from cyber.errors import CyberError
    from cyber.resilient_admm import CyberSetup

    if args.byzantine is not None and args.byzantine_share is not None:
        raise CyberError("--byzantine and --byzantine-share: name the agents or draw a share of them, not both")
    chosen = args.byzantine is not None or args.byzantine_share is not None
    if args.attack is None and not chosen and args.detector == "none":
        return None
    if args.method != "admm":
        raise CyberError("--attack, --byzantine and --detector act on the distributed market: use --method admm")
    if (args.attack is None) == chosen:
        raise CyberError("--attack and --byzantine (or --byzantine-share) go together: which behaviour, and which "
                         "agents")
    attacks = ()
    if args.attack is not None:
        agents = args.byzantine
        if args.byzantine_share is not None:
            from market.instance import load_instance
            from physical.catalog import load_feeder

            feeder = load_feeder(args.case) if args.instance is None else load_instance(args.instance).feeder
            try:
                agents = byzantine_agents(args.seed, feeder.n_buses, args.byzantine_share)
            except CyberError as exc:
                raise CyberError(f"--byzantine-share {args.byzantine_share}: expected a share in (0, 1]") from exc
        attacks = (AttackSpec(args.attack, agents=tuple(agents), start=args.attack_start,
                              period=args.attack_period, fields=tuple(f.strip() for f in args.attack_fields.split(",")),
                              delta=args.delta, sigma=args.sigma, factor=args.factor, lag=args.lag, seed=args.seed,
                              drift=args.drift, **({} if args.alpha is None else {"alpha": args.alpha})),)
    options = {} if args.alpha is None else {"alpha": args.alpha}
    return CyberSetup(attacks=attacks, detector=args.detector, detector_options=options)


def _admm_defaults():
    """The ADMM's default settings and the default tolerances of each splitting (imported late: the CLI
    starts without the market's dependencies until it needs them)."""
    from market.admm.driver import DEFAULT_TOLERANCES, AdmmSettings

    return AdmmSettings(), DEFAULT_TOLERANCES


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from cosim.results import ResultsError
    from cosim.scenario import ScenarioError
    from cosim.sweep import SweepError
    from cyber.errors import CyberError
    from physical.errors import FeederError

    try:
        if args.command == "cases":
            return _cases()
        if args.command == "run":
            return _run(args)
        if args.command == "sweep":
            return _sweep(args)
        if args.command == "reproduce":
            from cosim.reproduction import write_report

            print(f"report in {write_report(args.out)}")
            return EXIT_OK
        return _clear(args)
    except (FeederError, InstanceError, ResultsError, CyberError, ScenarioError, SweepError) as exc:
        print(f"cosim: error: {exc}", file=sys.stderr)
        return EXIT_INPUT


def _cases() -> int:
    from physical.catalog import RADIAL_CASES

    print("\n".join(RADIAL_CASES))
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    import json

    from cosim.results import check_target, write_results
    from cosim.scenario import load_scenario
    from cosim.scenario_run import run_scenario
    from cosim.world import CosimError

    check_target(args.out, args.force)
    scenario = load_scenario(args.scenario)
    try:
        files = run_scenario(scenario, args.scenario.read_text(), progress=not args.quiet)
    except CosimError as exc:
        print(f"cosim: error: {exc}", file=sys.stderr)
        return EXIT_NO_SOLUTION
    write_results(args.out, files, force=args.force)
    if not args.quiet:
        print(json.dumps(files["summary.json"], indent=2, default=str))
        print(f"results in {args.out}")
    return EXIT_OK


def _sweep(args: argparse.Namespace) -> int:
    from cosim import figures
    from cosim.results import check_target, write_results
    from cosim.scenario import ScenarioError, load_scenario
    from cosim.scenario_run import flat_table
    from cosim.sweep import SweepGrid, run_sweep
    from cyber.attacks import ATTACK_KINDS

    check_target(args.out, args.force)
    scenario = load_scenario(args.scenario)
    attacks = tuple(a.strip() for a in args.attacks.split(","))
    bad = [a for a in attacks if a != "none" and a not in ATTACK_KINDS]
    if bad or scenario.method != "admm":
        raise ScenarioError(f"--attacks {bad}: expected none or {ATTACK_KINDS}" if bad else
                            f"{args.scenario}: a sweep varies the network of the ADMM: method must be admm")
    grid = SweepGrid(args.latency_ms, args.loss, attacks, (0.0, *args.byzantine_share))
    table = flat_table(run_sweep(scenario, grid, args.scheduler, args.workers))
    table["setting"] = table["attack"] + " x" + table["byzantine_share"].astype(str)
    files = {"sweep.csv": table, "scenario.toml": args.scenario.read_text(),
             "figures/sweep.png": figures.clearing_time(table, "latency_ms", "latency (ms)", ("loss", "setting"))}
    write_results(args.out, files, force=args.force)
    if not args.quiet:
        cols = ["latency_ms", "loss", "attack", "byzantine_share", "converged", "iterations", "clearing_ms",
                "optimality_gap", "fallback"]
        print(table[cols].to_string(index=False))
        print(f"results in {args.out}")
    return EXIT_OK


def _clear(args: argparse.Namespace) -> int:
    from cosim.clearing_run import clear, iteration_table, summary, tables
    from cosim.results import check_target, write_results
    from cyber.resilient_admm import default_projection, default_relaxation
    from market.admm.driver import AdmmSettings
    from market.instance import InstanceOptions, build_instance, load_instance
    from market.result import Status
    from physical.catalog import load_feeder

    check_target(args.out, args.force)
    cyber = _cyber_setup(args)
    projection = args.projection or (default_projection(cyber.attacks, cyber.detector) if cyber else "sweep")
    relaxation = default_relaxation(cyber.attacks, cyber.detector) if cyber else AdmmSettings.relaxation
    try:
        admm = AdmmSettings(projection=projection, rho=args.rho, tol_primal=args.tol_primal, tol_dual=args.tol_dual,
                            max_iter=args.max_iter, residual_balancing=args.residual_balancing,
                            relaxation=args.relaxation or relaxation)
    except ValueError as exc:
        raise InstanceError(f"ADMM options: {exc}") from exc
    if args.instance is not None:
        instance = load_instance(args.instance)
    else:
        options = InstanceOptions(partners=args.partners, k_nearest=args.k, vmin_pu=args.vmin,
                                  vmax_pu=args.vmax, pv_share=args.pv_share, pv_ratio=args.pv_ratio,
                                  wind_share=args.wind_share)
        instance = build_instance(load_feeder(args.case), interval=args.interval, seed=args.seed,
                                  options=options)
    run = clear(instance, args.method, admm, cyber)
    head = summary(run)
    files: dict = {"instance.json": instance.to_json(), "summary.json": head}
    if run.history is not None:
        files["iterations.csv"] = iteration_table(run)
    if run.result.status.has_solution:
        files.update(tables(run))
    write_results(args.out, files, force=args.force)
    if not args.quiet:
        _print_summary(head, args.out)
    if run.result.status.has_solution:
        return EXIT_OK
    return EXIT_NOT_CONVERGED if run.result.status is Status.NOT_CONVERGED else EXIT_NO_SOLUTION


def _print_summary(s: dict, out: Path) -> None:
    print(f"{s['case']} seed {s['seed']} at {s['interval_start']}: {s['method']} clearing {s['status']}"
          f" in {s['wall_s']:.3f} s")
    if s["message"]:
        print(f"  {s['message']}")
    if "iterations" in s:
        print(f"  {s['iterations']} iterations (converged: {s['converged']}); primal residual "
              f"{s['primal_residual']:.1e}, dual residual {s['dual_residual']:.1e}; optimality gap "
              f"{s['optimality_gap']:.1e} against the centralized optimum")
    if s["status"] in ("optimal", "inaccurate"):
        print(f"  {s['n_buyers']} buyers, {s['n_sellers']} sellers, {s['n_trades']} partner pairs; "
              f"P2P traded {s['traded_kw']:.1f} kW, substation P0 {s['p0_kw']:.1f} kW, "
              f"losses {s['losses_kw']:.2f} kW")
        print(f"  objective {s['objective']:.2f} ct; relaxation gap {s['max_relaxation_gap']:.1e}; "
              f"AC check: max |V_socp - V_ac| {s['max_vm_mismatch_pu']:.1e} p.u., "
              f"{s['voltage_violations']} voltage violations")
    if "detector" in s:
        print(f"  attack {s['attack']} by agents {s['byzantine']}, detector {s['detector']}: TPR {s['tpr']:.3f}, "
              f"FPR {s['fpr']:.4f} ({s['tp']} of {s['tp'] + s['fn']} corrupted fields flagged), "
              f"detector time {s['detector_wall_s']:.2f} s")
    if s["cross_layer_checked"]:
        print(f"  cross-layer check against the metered AC state: suspected agents {s['suspected_agents'] or 'none'}"
              f" (largest estimated misreport {s['max_misreport_kw']:.2f} kW, {s['max_misreport_ratio']:.2f} of its "
              "threshold)")
    print(f"  results in {out}")


if __name__ == "__main__":
    sys.exit(main())
