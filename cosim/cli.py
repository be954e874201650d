"""``cosim`` command line.

Exit codes: 0 a clearing with a dispatch was written; 1 bad input (a one-line message on stderr names the option,
file or field; nothing is written); 2 the clearing has no dispatch (infeasible or solver failure): the folder
holds instance.json and a summary.json that says why -- for ``cosim run``, an interval still clearing a quarter
hour after the last tick (nothing written); 3 the ADMM did not converge within --max-iter: the folder holds
instance.json, summary.json (converged false) and iterations.csv, but no dispatch; 4 the AC power flow of the
dispatch did not converge: the clearing is written whole, without AC figures (summary.json: ac_converged false);
70 an internal error (a bug: the message says so; ``COSIM_DEBUG=1`` shows the traceback); 130 interrupted.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from market.errors import InstanceError

EXIT_OK, EXIT_INPUT, EXIT_NO_SOLUTION, EXIT_NOT_CONVERGED, EXIT_AC_DIVERGED = 0, 1, 2, 3, 4
EXIT_INTERNAL, EXIT_INTERRUPTED = 70, 130
#: Every exit code ``cosim`` documents (the fuzz tests hold it to these).
EXIT_CODES = (EXIT_OK, EXIT_INPUT, EXIT_NO_SOLUTION, EXIT_NOT_CONVERGED, EXIT_AC_DIVERGED)


class UsageError(ValueError):
    """Options that contradict each other or would be silently ignored."""


class _Parser(argparse.ArgumentParser):
    """argparse with bad usage as bad input (exit 1), not argparse's own exit 2 (our "no dispatch")."""

    def error(self, message: str):
        self.exit(EXIT_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from exc
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _count(minimum: int):
    """An argparse type: an integer >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from exc
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value

    return parse


def _range(text: str) -> tuple[float, float]:
    values = _floats(text)
    if len(values) != 2:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH, got {text!r}")
    return values[0], values[1]


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(_number(v) for v in text.split(","))
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated finite numbers, got {text!r}") from exc


def build_parser() -> argparse.ArgumentParser:
    from physical.profiles import DEFAULT_INTERVAL

    parser = _Parser(prog="cosim", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    clear = sub.add_parser("clear", help="clear one 15-minute P2P market and validate it with AC power flow")
    source = clear.add_mutually_exclusive_group(required=True)
    source.add_argument("--case", help="MATPOWER feeder name (e.g. case15da), path to a .m file or SimBench grid "
                        "code (e.g. 1-LV-rural1--0-sw)")
    source.add_argument("--instance", type=Path, help="re-solve a saved instance.json")
    # instance options default to None so that an option --instance would ignore can be refused
    clear.add_argument("--seed", type=_count(0), help="seed of every random draw (default 0; with --instance, the "
                       "seed of the attacks, the instance's own by default)")
    clear.add_argument("--interval", help="quarter hour of the 2016 profile year: ISO time (local, no time zone) or "
                       f"index (default {DEFAULT_INTERVAL})")
    clear.add_argument("--method", default="centralized", choices=["centralized", "admm"],
                       help="centralized SOCP (cvxpy + Clarabel) or the fully distributed ADMM")
    admm = clear.add_argument_group("ADMM (with --method admm)")
    defaults, tolerances = _admm_defaults()
    admm.add_argument("--projection", choices=["sweep", "local"],
                      help="y-update: sweep (the whole feeder per iteration, 2 x (depth - 1) hops) or local "
                           "(the paper's one-hop groups); default sweep, or local with --attack or --detector")
    admm.add_argument("--rho", type=_number, help=f"penalty (default {defaults.rho:g})")
    admm.add_argument("--tol-primal", type=_number, help="primal residual tolerance (default {:g} with the sweep, "
                      "{:g} with the local splitting)".format(tolerances["sweep"][0], tolerances["local"][0]))
    admm.add_argument("--tol-dual", type=_number, help="dual residual tolerance (default {:g} with the sweep, "
                      "{:g} with the local splitting)".format(tolerances["sweep"][1], tolerances["local"][1]))
    admm.add_argument("--max-iter", type=_count(1), help=f"iteration limit (default {defaults.max_iter})")
    admm.add_argument("--residual-balancing", action="store_true", help="adapt rho to balance the residuals")
    admm.add_argument("--relaxation", type=_number, help=f"over-relaxation in (0, 2) (default "
                      f"{defaults.relaxation:g}, or 1 with --attack or --detector: forecasts and missed injections "
                      "are not extrapolated)")
    admm.add_argument("--stopping", choices=["central", "distributed"],
                      help="stopping test: central (default; the paper's global residuals) or distributed (the "
                           "agents' own test on residual shares flooded through the network, docs/stopping.md)")
    admm.add_argument("--stop-trim", type=_count(0), help="shares the distributed test disregards: missing, "
                      "invalid, then the largest (default 1 with --detector, else 0)")
    _add_cyber_arguments(clear)
    _add_privacy_arguments(clear)
    clear.add_argument("--partners", choices=["auto", "all", "nearest"],
                       help="trading partners: all buyers x all sellers, the k electrically nearest, or auto "
                            "(default: all up to 10 000 pairs, else nearest)")
    clear.add_argument("--k", type=_count(1), help="partners per buyer with --partners nearest or auto (default 3)")
    clear.add_argument("--vmin", type=_number, help="lower voltage limit, p.u. (default 0.9)")
    clear.add_argument("--vmax", type=_number, help="upper voltage limit, p.u. (default 1.1)")
    clear.add_argument("--pv-share", type=_number, help="share of loaded buses with PV (default 0.5)")
    clear.add_argument("--pv-ratio", type=_range, help="PV capacity / nominal load range (default 0.5,2)")
    clear.add_argument("--wind-share", type=_number, help="share of loaded buses with wind (default 0.15)")
    _add_output_arguments(clear, "do not print the summary")

    run = sub.add_parser("run", help="co-simulate a scenario file (mosaik: profiles, market, grid)")
    run.add_argument("scenario", type=Path, help="scenario TOML file (see scenarios/)")
    _add_output_arguments(run, "no progress bar, no summary")

    sweep = sub.add_parser("sweep", help="sweep latency x loss x attack x Byzantine share on Dask")
    sweep.add_argument("scenario", type=Path, help="scenario TOML file: the base of every point")
    sweep.add_argument("--latency-ms", type=_floats, default=(1.0, 10.0, 50.0), help="e.g. 1,10,50")
    sweep.add_argument("--loss", type=_floats, default=(0.0, 0.02), help="e.g. 0,0.02")
    sweep.add_argument("--attacks", default="none,static-fdi", help="e.g. none,static-fdi,dynamic-noise")
    sweep.add_argument("--byzantine-share", type=_floats, default=(0.1,),
                       help="share of prosumers that are Byzantine in attacked points, e.g. 0.1,0.2")
    sweep.add_argument("--scheduler", help="address of a Dask scheduler (default: a local cluster)")
    sweep.add_argument("--workers", type=_count(1), default=2, help="workers of the local cluster (default 2)")
    _add_output_arguments(sweep, "do not print the table")

    dtr = sub.add_parser("dtr", help="place DTR devices against cascading-failure risk on a transmission case")
    dtr.add_argument("--case", required=True, help="pandapower transmission case (e.g. case39, case118)")
    dtr.add_argument("--budget", type=_count(1), required=True, help="DTR devices to install (stage 1)")
    dtr.add_argument("--states", type=_count(1), required=True, help="system states to sample")
    dtr.add_argument("--seed", type=_count(0), default=0, help="seed of every random draw (default 0)")
    dtr.add_argument("--operate", type=_count(1), help="devices that may operate per state (default: budget)")
    dtr.add_argument("--device-outage", type=_number, default=0.0,
                     help="probability that an installed device is out of service in a state, in [0, 1) (default "
                          "0); above 0 the placement values redundancy (more devices than --operate)")
    _add_output_arguments(dtr, "do not print the summary")

    reproduce = sub.add_parser("reproduce", help="regenerate docs/reproduction.md (seed 001's tables, figures)")
    reproduce.add_argument("--out", type=Path, default=Path("docs"), help="folder of the report (default docs)")
    reproduce.add_argument("--detector", choices=("tensor", "tensor-paper"), default="tensor",
                           help="the defence of Tables I-III: tensor (default, docs/reproduction.md) or the paper's "
                                "detector as written (docs/reproduction_tensor-paper.md, with the screening variant "
                                "beside it); a few minutes each")

    sub.add_parser("cases", help="list the radial MATPOWER feeders that load and the SimBench grid codes")
    _add_online_parser(sub)
    return parser


def _add_output_arguments(command: argparse.ArgumentParser, quiet: str) -> None:
    command.add_argument("--out", type=Path, required=True, help="results folder (written whole or not at all)")
    command.add_argument("--force", action="store_true",
                         help="replace a results folder that cosim wrote (nothing else is ever replaced)")
    command.add_argument("--quiet", action="store_true", help=quiet)


def _add_online_parser(sub) -> None:
    from cosim.online_cli import add_parser

    add_parser(sub)


def _add_cyber_arguments(clear: argparse.ArgumentParser) -> None:
    from cyber.attacks import ATTACK_KINDS, AttackSpec
    from cyber.resilient_admm import DETECTORS

    spec = AttackSpec("scale", agents=(1,))
    cyber = clear.add_argument_group("cyber layer (with --method admm)")
    cyber.add_argument("--attack", choices=ATTACK_KINDS, help="Byzantine behaviour of the --byzantine agents")
    cyber.add_argument("--byzantine", type=_count(1), nargs="+", metavar="BUS",
                       help="bus numbers of Byzantine agents")
    cyber.add_argument("--byzantine-share", type=_number, metavar="SHARE",
                       help="share of the prosumers that collude, drawn with --seed (instead of --byzantine)")
    # attack parameters default to None so that one given without --attack is refused, not ignored
    cyber.add_argument("--attack-start", type=_count(1), help=f"first attacked iteration (default {spec.start})")
    cyber.add_argument("--attack-period", type=_count(1),
                       help=f"iterations between injections (default {spec.period}; stealthy drifts in every one)")
    cyber.add_argument("--attack-fields", help="comma-separated message fields to falsify: P, Q, v, t (default P)")
    cyber.add_argument("--delta", type=_number, help=f"static-fdi deviation, p.u. (default {spec.delta:g})")
    cyber.add_argument("--sigma", type=_number,
                       help=f"dynamic-noise standard deviation, p.u. (default {spec.sigma:g})")
    cyber.add_argument("--factor", type=_number, help=f"scale attack factor (default {spec.factor:g})")
    cyber.add_argument("--lag", type=_count(1), help=f"replay attack lag, iterations (default {spec.lag})")
    cyber.add_argument("--claim", type=_number, help="residual attack: the share the agent claims for its residuals, "
                       f"in units of the stopping threshold (default {spec.claim:g}: never stopping; negative: "
                       "stopping early)")
    cyber.add_argument("--drift", type=_number, help="stealthy: share of the receiver's acceptance band moved per "
                       f"iteration, up to --delta (default {spec.drift:g})")
    cyber.add_argument("--detector", choices=DETECTORS, default="none", help="detector every agent runs")
    cyber.add_argument("--alpha", type=_number, help="detector's nominal false-alarm rate (default 0.1)")


def _add_privacy_arguments(clear: argparse.ArgumentParser) -> None:
    from cyber.privacy.setup import MODES

    privacy = clear.add_argument_group("privacy (with --method admm)")
    privacy.add_argument("--privacy", choices=MODES, default="none",
                         help="paillier: every trade pair by secure two-party computation; hybrid: also the sweep's "
                              "subtree flows as additive shares of each parent's sum (docs/privacy.md)")
    privacy.add_argument("--key-bits", type=_count(1), help="Paillier modulus bits, at least 1024 (default 2048)")


def _given(args: argparse.Namespace, *names: str) -> list[str]:
    """The options among ``names`` (dest names) that the command line set."""
    return ["--" + n.replace("_", "-") for n in names if getattr(args, n) not in (None, False)]


def _refuse(given: list[str], why: str) -> None:
    if given:
        raise UsageError(f"{', '.join(given)}: {why}")


def _cyber_setup(args: argparse.Namespace, seed: int, n_buses: int):
    """The attack and detector the options ask for, or None when they ask for neither (``seed`` draws the
    attacks and a --byzantine-share of the ``n_buses - 1`` prosumers)."""
    from cyber.attacks import AttackSpec, byzantine_agents
    from cyber.resilient_admm import CyberSetup

    parameters = _given(args, "attack_start", "attack_period", "attack_fields", "delta", "sigma", "factor", "lag",
                        "drift", "claim")
    if args.attack is None:
        _refuse(parameters, "attack parameters need --attack")
    elif args.attack != "residual":
        _refuse(_given(args, "claim"), "the claimed share is the residual attack's")
    if args.detector == "none":
        _refuse(_given(args, "alpha"), "the detector's false-alarm rate needs --detector")
    if args.byzantine is not None and args.byzantine_share is not None:
        raise UsageError("--byzantine and --byzantine-share: name the agents or draw a share of them, not both")
    chosen = args.byzantine is not None or args.byzantine_share is not None
    if args.attack is None and not chosen and args.detector == "none":
        return None
    if args.method != "admm":
        raise UsageError("--attack, --byzantine and --detector act on the distributed market: use --method admm")
    if (args.attack is None) == chosen:
        raise UsageError("--attack and --byzantine (or --byzantine-share) go together: which behaviour, and which "
                         "agents")
    attacks = ()
    if args.attack is not None:
        if args.byzantine_share is not None and not 0 < args.byzantine_share <= 1:
            raise UsageError(f"--byzantine-share {args.byzantine_share:g}: expected a share in (0, 1]")
        agents = (args.byzantine if args.byzantine_share is None
                  else byzantine_agents(seed, n_buses, args.byzantine_share))
        spec = AttackSpec(args.attack, agents=tuple(agents), seed=seed)
        fields = spec.fields if args.attack_fields is None else tuple(f.strip() for f in args.attack_fields.split(","))
        attacks = (AttackSpec(args.attack, agents=spec.agents, start=_or(args.attack_start, spec.start),
                              period=_or(args.attack_period, spec.period), fields=fields,
                              delta=_or(args.delta, spec.delta), sigma=_or(args.sigma, spec.sigma),
                              factor=_or(args.factor, spec.factor), lag=_or(args.lag, spec.lag), seed=seed,
                              drift=_or(args.drift, spec.drift), alpha=_or(args.alpha, spec.alpha),
                              claim=_or(args.claim, spec.claim)),)
    options = {} if args.alpha is None else {"alpha": args.alpha}
    return CyberSetup(attacks=attacks, detector=args.detector, detector_options=options)


def _or(value, default):
    return default if value is None else value


def _admm_defaults():
    """The ADMM's default settings and the default tolerances of each splitting (imported late: the CLI
    starts without the market's dependencies until it needs them)."""
    from market.admm.driver import DEFAULT_TOLERANCES, AdmmSettings

    return AdmmSettings(), DEFAULT_TOLERANCES


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or bad usage (1, see _Parser)
        return exc.code
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        print("cosim: interrupted; nothing was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        if isinstance(exc, _input_errors()):
            print(f"cosim: error: {exc}", file=sys.stderr)
            return EXIT_INPUT
        if os.environ.get("COSIM_DEBUG"):
            raise
        print(f"cosim: internal error ({type(exc).__name__}: {exc}); this is a bug in cosim, nothing was written. "
              "Run again with COSIM_DEBUG=1 for the traceback and please report it.", file=sys.stderr)
        return EXIT_INTERNAL


def _input_errors() -> tuple[type[Exception], ...]:
    """Every error type that means bad input (imported late: the CLI starts before the libraries load)."""
    from cosim.results import ResultsError
    from cosim.scenario import ScenarioError
    from cosim.simulators.grid_entities import ExternalInputError
    from cosim.sweep import SweepError
    from cyber.errors import CyberError
    from market.admm.stopping import StoppingError
    from physical.errors import FeederError

    return (FeederError, InstanceError, ResultsError, CyberError, ScenarioError, StoppingError, SweepError,
            UsageError, ExternalInputError)


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "cases":
        return _cases()
    if args.command == "run":
        return _run(args)
    if args.command == "sweep":
        return _sweep(args)
    if args.command == "online":
        from cosim.online_cli import run

        return run(args)
    if args.command == "dtr":
        from cosim.dtr_run import run

        return run(args)
    if args.command == "reproduce":
        if args.detector == "tensor":
            from cosim.reproduction import write_report
        else:
            from cosim.reproduction_paper import write_report
        print(f"report in {write_report(args.out)}")
        return EXIT_OK
    return _clear(args)


def _cases() -> int:
    from physical.catalog import RADIAL_CASES
    from physical.simbench_grid import simbench_codes

    print("\n".join((*RADIAL_CASES, *simbench_codes())))
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    import json

    from cosim import api
    from cosim.results import check_target, write_results
    from cosim.scenario import load_scenario
    from cosim.scenario_run import result_files
    from cosim.world import CosimError

    check_target(args.out, args.force)
    scenario = load_scenario(args.scenario)
    run = api.run_study if scenario.study is not None else api.run_scenario
    try:
        outcome = run(scenario, progress=not args.quiet)
    except CosimError as exc:
        print(f"cosim: error: {exc}", file=sys.stderr)
        return EXIT_NO_SOLUTION
    files = result_files(outcome, args.scenario.read_text())
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
    from cosim.sweep import SweepError, SweepGrid, run_sweep

    check_target(args.out, args.force)
    if not all(0 < share <= 1 for share in args.byzantine_share):
        raise SweepError(f"--byzantine-share {','.join(map(str, args.byzantine_share))}: expected shares in (0, 1] "
                         "(the attack-free points are in the sweep anyway)")
    grid = SweepGrid(args.latency_ms, args.loss, tuple(a.strip() for a in args.attacks.split(",")),
                     (0.0, *args.byzantine_share))
    scenario = load_scenario(args.scenario)
    if scenario.method != "admm":
        raise ScenarioError(f"{args.scenario}: field method: a sweep varies the network of the ADMM, expected admm")
    if scenario.external:
        raise ScenarioError(f"{args.scenario}: field external: a sweep clears the market on Dask, outside the mosaik "
                            "world the external simulators attach to; run the scenario with cosim run")
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
    from cosim import api
    from cosim.clearing_run import summary
    from cosim.results import check_target, write_results
    from market.instance import InstanceOptions, build_instance, load_instance
    from market.result import Status
    from physical.catalog import load_feeder
    from physical.profiles import DEFAULT_INTERVAL

    check_target(args.out, args.force)
    options = ("interval", "partners", "k", "vmin", "vmax", "pv_share", "pv_ratio", "wind_share")
    if args.instance is not None:
        _refuse(_given(args, *options), "--instance re-solves a saved instance: its interval and options are in "
                                        "the file")
        _refuse(_given(args, "seed") if args.attack is None else [],
                "--instance re-solves a saved instance: its seed is in the file (--seed seeds only attacks)")
    if args.case is not None:
        from physical.simbench_grid import is_simbench_code
        if is_simbench_code(args.case):
            _refuse(_given(args, "pv_share", "pv_ratio", "wind_share"), "a SimBench grid's prosumers follow the "
                    "grid's own load, generator and storage profiles")
    if args.partners == "all":
        _refuse(_given(args, "k"), "the number of partners per buyer needs --partners nearest or auto")
    if args.method != "admm":
        _refuse(_given(args, "projection", "rho", "tol_primal", "tol_dual", "max_iter", "residual_balancing",
                       "relaxation", "stopping", "stop_trim"),
                "ADMM options act on the distributed market: use --method admm")
    if args.instance is not None:
        instance = load_instance(args.instance)
    else:
        defaults = InstanceOptions()
        options = InstanceOptions(partners=_or(args.partners, defaults.partners),
                                  k_nearest=_or(args.k, defaults.k_nearest), vmin_pu=_or(args.vmin, defaults.vmin_pu),
                                  vmax_pu=_or(args.vmax, defaults.vmax_pu),
                                  pv_share=_or(args.pv_share, defaults.pv_share),
                                  pv_ratio=_or(args.pv_ratio, defaults.pv_ratio),
                                  wind_share=_or(args.wind_share, defaults.wind_share))
        instance = build_instance(load_feeder(args.case), interval=_or(args.interval, DEFAULT_INTERVAL),
                                  seed=_or(args.seed, 0), options=options)
    cyber = _cyber_setup(args, _or(args.seed, instance.seed), instance.feeder.n_buses)
    privacy = _privacy_setup(args, cyber)
    settings = _admm_settings(args, cyber, privacy)
    pairs = None if privacy is None else privacy.pairs(instance, settings, _or(args.seed, instance.seed))
    cleared = api.clear(instance, args.method, admm=settings, cyber=cyber, pairs=pairs)
    run = cleared.run
    head = summary(run)
    if privacy is not None:
        head.update(privacy.summary(instance, pairs))
    files: dict = {"instance.json": instance.to_json(), "summary.json": head, **cleared.tables()}
    write_results(args.out, files, force=args.force)
    if not args.quiet:
        _print_summary(head, args.out)
    if not run.result.status.has_solution:
        return EXIT_NOT_CONVERGED if run.result.status is Status.NOT_CONVERGED else EXIT_NO_SOLUTION
    return EXIT_OK if run.validation.converged else EXIT_AC_DIVERGED


def _privacy_setup(args: argparse.Namespace, cyber):
    """The private clearing the options ask for (:class:`cyber.privacy.run.PrivateClearing`), or None."""
    from cyber.privacy.run import PrivateClearing

    if args.privacy == "none":
        _refuse(_given(args, "key_bits"), "--key-bits sets the keys of --privacy paillier or hybrid")
        return None
    if args.method != "admm":
        raise UsageError("--privacy protects the exchanges of the distributed market: use --method admm")
    if cyber is not None:
        raise UsageError("--privacy with --attack or --detector: detectors screen values in the clear, and the "
                         "private trade exchange sends none -- not combined (yet)")
    return PrivateClearing.from_options(args.privacy, args.key_bits)


def _admm_settings(args: argparse.Namespace, cyber, privacy=None):
    """The ADMM settings the options ask for, the splitting and relaxation by default after the cyber setup
    (and the private clearing's, with ``privacy``)."""
    from cyber.resilient_admm import default_projection, default_relaxation
    from market.admm.driver import AdmmSettings

    defaults = AdmmSettings()
    projection = args.projection or (default_projection(cyber.attacks, cyber.detector) if cyber else "sweep")
    relaxation = default_relaxation(cyber.attacks, cyber.detector) if cyber else defaults.relaxation
    stopping = args.stopping or defaults.stopping
    defended = stopping == "distributed" and cyber is not None and cyber.detector != "none"
    try:
        settings = AdmmSettings(projection=projection, rho=_or(args.rho, defaults.rho), tol_primal=args.tol_primal,
                                tol_dual=args.tol_dual, max_iter=_or(args.max_iter, defaults.max_iter),
                                residual_balancing=args.residual_balancing,
                                relaxation=_or(args.relaxation, relaxation if privacy is None else 1.0),
                                stopping=stopping, stop_trim=_or(args.stop_trim, 1 if defended else 0))
    except ValueError as exc:
        raise UsageError(f"ADMM options: {exc}") from exc
    return settings if privacy is None else privacy.settings(settings)


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
        ac = (f"max |V_socp - V_ac| {s['max_vm_mismatch_pu']:.1e} p.u., {s['voltage_violations']} voltage "
              "violations" if s.get("ac_converged") else "the AC power flow of this dispatch did not converge")
        print(f"  objective {s['objective']:.2f} ct; relaxation gap {s['max_relaxation_gap']:.1e}; AC check: {ac}")
    if "detector" in s:
        print(f"  attack {s['attack']} by agents {s['byzantine']}, detector {s['detector']}: TPR {s['tpr']:.3f}, "
              f"FPR {s['fpr']:.4f} ({s['tp']} of {s['tp'] + s['fn']} corrupted fields flagged), "
              f"detector time {s['detector_wall_s']:.2f} s ({s['detector_us_per_agent_iteration']:.1f} us per agent "
              "and iteration)")
    if s["cross_layer_checked"]:
        print(f"  cross-layer check against the metered AC state: suspected agents {s['suspected_agents'] or 'none'}"
              f" (largest estimated misreport {s['max_misreport_kw']:.2f} kW, {s['max_misreport_ratio']:.2f} of its "
              "threshold)")
    print(f"  results in {out}")


if __name__ == "__main__":
    sys.exit(main())
