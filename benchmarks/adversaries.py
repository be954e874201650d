"""Adversaries that know the defence, against the tensor detector plus the cross-layer check, in one run.

    python benchmarks/adversaries.py [--cases case15da,case33bw,case85] [--dates 2016-06-21T12:00,2016-03-10T09:00]
                                     [--seeds 0,1] [--out table.csv]

For every case, date and seed (every agent runs the tensor detector; local splitting, no over-relaxation,
as ``cosim clear --method admm --detector tensor`` does), one clearing per row:

- ``none``: attack-free (the cross-layer check must accuse nobody);
- ``period-1``: one seeded agent misreports consistently from the first iteration (static FDI on P and Q in
  every iteration), ``delta`` p.u.;
- ``stealthy``: one seeded agent drifts by ``drift`` times the acceptance band per iteration, up to 1 p.u.
  (the feeders' base is 1 MVA: practically uncapped);
- ``collude-p1`` / ``collude-stealthy``: a seeded share of the prosumers colluding, each with the period-1
  misreport (delta 0.01) or the stealthy drift (0.03 of the band, up to 1 p.u.), none screening the others;
- as hard as the paper's (issue 22): ``targets`` (every flow, voltage *and target* the agent sends scaled by
  ``strength``, every 5th iteration), ``trades`` (a seeded buyer's trade offers replaced by uniform values
  within ``+-strength`` p.u., every 5th), ``period-1-late`` (the period-1 misreport of ``strength`` p.u. from
  iteration 300, after the detectors have learned the honest trajectory) and ``false-load`` (a seeded buyer runs
  its ADMM step on a load ``strength`` p.u. above its own, :mod:`cyber.false_load`).

``--detector`` chooses the detector every agent runs (``tensor-paper``: the paper's); ``--families`` a subset.

A clearing that does not converge has no dispatch (a scenario falls back to grid-only supply); the
cross-layer check then runs on its last iterate (:func:`cosim.clearing_run.last_iterate_check`).

Columns: converged, iterations, the market's optimality gap against the attack-free centralized optimum of
the same instance, the lowest AC voltage and the largest SOCP-AC voltage mismatch, the detector's TPR, the
Byzantine agents, those the cross-layer check names and those it names wrongly. A second table gives, per
case and attack family, the largest gap over dates and seeds at each strength -- what breaks first -- and how
many runs *held*: the market within 0.1 % of the optimum, or every Byzantine agent that reports a flow named
(:func:`held`), nobody wrongly. ``--summarize CSV...`` prints that table from tables written with ``--out``
(a long run split over several processes).
"""

from __future__ import annotations

import argparse
import ast
import time
import warnings

import numpy as np
import pandas as pd

from cosim.clearing_run import ClearingRun, last_iterate_check, validate
from cyber.attacks import AttackSpec, byzantine_agents
from cyber.cross_layer import cross_layer_check
from cyber.errors import CyberError
from cyber.false_load import true_injections
from cyber.resilient_admm import CyberSetup, solve_resilient_admm, warm_up
from market.admm.driver import AdmmSettings
from market.instance import build_instance
from market.problem.clearing import solve_clearing
from physical.catalog import load_feeder

GAP = 1e-3


def attacks(seed: int, n_buses: int, buyers: list[int]) -> list[tuple[str, float, tuple[AttackSpec, ...]]]:
    """(family, strength, attacks) of every row of one instance; ``buyers``: its buyers' buses, among which
    the trade and false-load attackers are drawn (a passive agent has no trade to falsify and no load to
    invent)."""
    one = tuple(byzantine_agents(seed, n_buses, 1 / (n_buses - 1)))
    buyer = (int(np.random.default_rng(seed).choice(buyers)),) if buyers else one
    rows: list[tuple[str, float, tuple[AttackSpec, ...]]] = [("none", 0.0, ())]
    for delta in (0.001, 0.003, 0.01):
        rows.append(("period-1", delta, (AttackSpec("static-fdi", one, period=1, fields=("P", "Q"), delta=delta,
                                                    seed=seed),)))
    for drift in (0.01, 0.03, 0.1):
        rows.append(("stealthy", drift, (AttackSpec("stealthy", one, fields=("P", "Q"), delta=1.0, drift=drift,
                                                    seed=seed),)))
    for share in (0.1, 0.2, 0.3):
        group = tuple(byzantine_agents(seed, n_buses, share))
        rows.append(("collude-p1", share, (AttackSpec("static-fdi", group, period=1, fields=("P", "Q"),
                                                      delta=0.01, seed=seed),)))
        rows.append(("collude-stealthy", share, (AttackSpec("stealthy", group, fields=("P", "Q"), delta=1.0,
                                                            drift=0.03, seed=seed),)))
    for factor in (-3.0, 1.5):
        rows.append(("targets", factor, (AttackSpec("scale", one, fields=("P", "Q", "v"), factor=factor,
                                                    seed=seed),)))
    for bound in (0.01, 0.05):
        rows.append(("trades", bound, (AttackSpec("random", buyer, fields=("t",), low=-bound, high=bound,
                                                  seed=seed),)))
    for delta in (0.003, 0.01):
        rows.append(("period-1-late", delta, (AttackSpec("static-fdi", one, start=300, period=1, fields=("P", "Q"),
                                                         delta=delta, seed=seed),)))
    for delta in (0.003, 0.01):
        rows.append(("false-load", delta, (AttackSpec("false-load", buyer, delta=delta, seed=seed),)))
    return rows


def measure(case: str, date: str, seed: int, max_iter: int, detector: str = "tensor",
            families: set[str] | None = None) -> list[dict]:
    feeder = load_feeder(case)
    instance = build_instance(feeder, interval=date, seed=seed)
    reference = solve_clearing(instance).objective
    settings = AdmmSettings(projection="local", relaxation=1.0, max_iter=max_iter)
    rows = []
    buyers = [a.bus for a in instance.agents if a.role == "buyer"]
    for family, strength, specs in attacks(seed, feeder.n_buses, buyers):
        if families is not None and family not in families:
            continue
        start = time.perf_counter()
        try:
            run = solve_resilient_admm(instance, settings, CyberSetup(attacks=specs, detector=detector))
        except CyberError as exc:  # e.g. a false load that would turn a seller into a buyer
            print(f"{case:8} {date} s{seed} {family:16} {strength:6g} refused: {exc}", flush=True)
            continue
        res = run.admm.result
        byzantine = sorted({a for s in specs for a in s.agents})
        row = {"case": case, "date": date, "seed": seed, "detector": detector, "attack": family, "strength": strength,
               "byzantine": byzantine, "converged": bool(res.info["converged"]), "iterations": res.info["iterations"],
               "gap": float("nan"), "min_vm_ac": float("nan"), "vm_mismatch": float("nan"),
               "tpr": run.confusion["tpr"], "named": [], "wrongly": []}
        if res.status.has_solution:
            validation, _ = validate(instance, true_injections(res, instance, specs))
            check = cross_layer_check(instance, run.admm, validation.ac)
            row |= {"gap": abs(res.objective - reference) / abs(reference),
                    "min_vm_ac": float(validation.ac.vm_pu.min()), "vm_mismatch": validation.max_vm_mismatch_pu}
        else:  # no dispatch (in a scenario: the grid-only fallback); the check runs on the last iterate
            check = last_iterate_check(ClearingRun(instance, res, None, 0.0, admm=run.admm,
                                                   cyber=CyberSetup(attacks=specs)))
        if check is not None:
            row |= {"named": sorted(set(check.suspected) & set(byzantine)),
                    "wrongly": sorted(set(check.suspected) - set(byzantine))}
        row["wall_s"] = time.perf_counter() - start
        rows.append(row)
        print(f"{case:8} {date} s{seed} {family:16} {strength:6g} conv {row['converged']!s:5} it {row['iterations']:5} "
              f"gap {row['gap']:8.1e} Vmin {row['min_vm_ac']:.4f} dV {row['vm_mismatch']:.1e} "
              f"TPR {row['tpr']:.3f} byz {len(byzantine):2} named {len(row['named']):2} wrongly {row['wrongly']} "
              f"({row['wall_s']:.1f} s)", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", default="case15da,case33bw,case85")
    parser.add_argument("--dates", default="2016-06-21T12:00,2016-03-10T09:00")
    parser.add_argument("--seeds", default="0,1")
    # the CLI's default: case69 at noon needs 6042-9252 attack-free iterations (seeds 0-4), and a clearing cut
    # short of its convergence would count as an attack that was not held
    parser.add_argument("--max-iter", type=int, default=AdmmSettings.max_iter)
    parser.add_argument("--out", help="also write the table as CSV here (as it goes)")
    parser.add_argument("--detector", default="tensor", help="every agent's detector (tensor-paper: the paper's)")
    parser.add_argument("--families", help="comma-separated attack families (default: all)")
    parser.add_argument("--summarize", nargs="+", metavar="CSV", help="only summarize tables written with --out")
    args = parser.parse_args()
    if args.summarize:
        summarize(load_tables(args.summarize))
        return
    warnings.simplefilter("ignore")
    warm_up()
    rows = []
    for case in args.cases.split(","):
        for date in args.dates.split(","):
            for seed in (int(s) for s in args.seeds.split(",")):
                rows += measure(case, date, seed, args.max_iter, args.detector,
                                set(args.families.split(",")) if args.families else None)
                if args.out:  # as it goes: a long run leaves what it measured
                    pd.DataFrame(rows).to_csv(args.out, index=False)
    summarize(pd.DataFrame(rows))


def held(row: pd.Series) -> bool:
    """The market within 0.1 % of the optimum without a wrong accusation, or every Byzantine agent that
    reports a flow named without one. An agent fed straight from the substation reports no flow (its line is
    the feeder head, metered by the utility): its only falsified message is the voltage it sends its
    children, shifted by ``2 (r + x) delta``, which no meter resolves."""
    if row["wrongly"]:
        return False
    feeder = load_feeder(row["case"])
    reporting = {a for a in row["byzantine"] if feeder.parent[a] > 0}
    return bool(row["gap"] <= GAP) or (bool(reporting) and reporting <= set(row["named"]))


def summarize(table: pd.DataFrame) -> None:
    """What breaks first, per case, attack family and strength, over dates and seeds."""
    table = table.assign(held=table.apply(held, axis=1))
    pd.set_option("display.width", 250)
    print("\nwhat breaks first: largest gap over dates and seeds (held: runs within 0.1 % of the optimum, or with "
          "every flow-reporting Byzantine agent named; no wrong accusation)")
    worst = table.groupby(["case", "attack", "strength"]).agg(
        max_gap=("gap", "max"), min_vm_ac=("min_vm_ac", "min"), max_vm_mismatch=("vm_mismatch", "max"),
        max_tpr=("tpr", "max"), runs=("held", "size"), held=("held", "sum"),
        unconverged=("converged", lambda c: int((~c.astype(bool)).sum())),
        named=("named", lambda n: int(sum(len(x) for x in n))),
        byzantine=("byzantine", lambda b: int(sum(len(x) for x in b))),
        wrongly=("wrongly", lambda w: int(sum(len(x) for x in w))))
    print(worst.to_string(float_format=lambda v: f"{v:.3g}"))
    print(f"\nheld in {int(table['held'].sum())} of {len(table)} runs; attack-free runs with an accusation: "
          f"{int(table[table['attack'] == 'none']['wrongly'].map(bool).sum())}")


def load_tables(paths: list[str]) -> pd.DataFrame:
    """Tables this benchmark wrote with --out (lists back from their text)."""
    table = pd.concat([pd.read_csv(p) for p in paths], ignore_index=True)
    for col in ("byzantine", "named", "wrongly"):
        table[col] = table[col].map(ast.literal_eval)
    return table


if __name__ == "__main__":
    main()
