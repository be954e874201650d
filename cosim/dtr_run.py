"""`cosim dtr`: the DTR placement study of one transmission case, written as a results folder."""

from __future__ import annotations

import argparse
import json
import sys

import networkx as nx
import numpy as np
import pandas as pd

from cosim import figures
from cosim.results import check_target, write_results
from physical.cascade import StateSampling
from physical.dtr_study import DtrStudyResult, StudySettings, run_dtr_study
from physical.errors import FeederError

METHOD_LABELS = {"greedy": "greedy", "exhaustive": "exhaustive", "random": "random (mean)",
                 "rank_loading": "rank by static loading", "rank_overload": "rank by overload frequency"}


def summary(result: DtrStudyResult) -> dict:
    s = result.settings
    exhaustive = result.risk("exhaustive") if result.exhaustive_best is not None else None
    greedy_reduction = result.risk_no_dtr - result.risk("greedy")
    best_reduction = None if exhaustive is None else result.risk_no_dtr - exhaustive
    return {
        "case": s.case, "budget": s.budget, "states": s.states, "seed": s.seed,
        "operate": s.budget if s.operate is None else s.operate, "device_outage": s.sampling.device_outage,
        "risk_no_dtr": result.risk_no_dtr, "risk_all_dtr": result.risk_all_dtr,
        "risk_greedy": result.risk("greedy"), "risk_exhaustive": exhaustive, "risk_random": result.risk("random"),
        "risk_rank_loading": result.risk("rank_loading"), "risk_rank_overload": result.risk("rank_overload"),
        "risk_unit": "MW of expected load shed",
        "curvature": result.curvature, "bound": result.bound,
        "greedy_over_exhaustive": (greedy_reduction / best_reduction) if best_reduction else None,
        "placement": list(result.placement),
        "placement_pandapower_lines": [int(result.cascade.grid.line_index[e]) for e in result.placement],
        "states_with_shed": int(np.sum(result.state_shed_no_dtr > 0)),
        "submodularity_samples": result.submodularity.samples,
        "submodularity_violations": result.submodularity.violations,
        "submodularity_max_violation_mw": result.submodularity.max_violation_mw,
        "cascade_runs": result.cascade_runs, "greedy_wall_s": result.greedy_wall_s,
        "exhaustive_wall_s": result.exhaustive_wall_s, "wall_s": result.wall_s,
    }


def tables(result: DtrStudyResult) -> dict[str, pd.DataFrame]:
    curve = pd.DataFrame([{"method": m, "budget": k + 1, "risk_mw": r}
                          for m, risks in result.curves.items() for k, r in enumerate(risks)])
    study = result.cascade
    states = pd.DataFrame({
        "state": range(len(study.states)),
        "outages": [" ".join(map(str, st.outages)) for st in study.states],
        "weather_hour": [st.hour for st in study.states],
        "load_level": [st.load_level for st in study.states],
        "shed_no_dtr_mw": result.state_shed_no_dtr,
        "shed_greedy_mw": result.state_shed_greedy,
        "operating": [" ".join(map(str, sorted(op))) for op in result.state_operating],
    })
    return {"budget_curve.csv": curve, "states.csv": states}


def risk_figure(result: DtrStudyResult) -> bytes:
    fig, ax = figures.plt.subplots(figsize=(6, 4))
    budgets = np.arange(1, result.settings.budget + 1)
    for method, risks in result.curves.items():
        ax.plot(budgets, risks, marker="o", label=METHOD_LABELS[method])
    ax.axhline(result.risk_no_dtr, color="grey", ls="--", label="no DTR")
    ax.axhline(result.risk_all_dtr, color="black", ls=":", label="DTR everywhere")
    ax.legend(fontsize=8)
    ax.set_xlabel("devices installed (budget)")
    ax.set_ylabel("risk: expected load shed (MW)")
    return figures.png(fig)


def grid_figure(result: DtrStudyResult) -> bytes:
    grid = result.cascade.grid
    graph = nx.MultiGraph()
    graph.add_nodes_from(range(grid.n_bus))
    graph.add_edges_from(zip(grid.from_bus.tolist(), grid.to_bus.tolist(), strict=True))
    pos = nx.kamada_kawai_layout(nx.Graph(graph))
    fig, ax = figures.plt.subplots(figsize=(7, 6))
    placed = set(result.placement)
    for b in range(grid.n_branch):
        f, t = pos[grid.from_bus[b]], pos[grid.to_bus[b]]
        on = b in placed
        ax.plot([f[0], t[0]], [f[1], t[1]], color="crimson" if on else "lightgrey", lw=3 if on else 1,
                ls="-" if b < grid.n_lines else "--", zorder=2 if on else 1)
    xy = np.array([pos[n] for n in range(grid.n_bus)])
    ax.scatter(xy[:, 0], xy[:, 1], s=12, color="black", zorder=3)
    ax.scatter(xy[grid.gen_bus, 0], xy[grid.gen_bus, 1], s=40, marker="s", color="tab:green", zorder=4)
    ax.set_title(f"{result.settings.case}: DTR on {len(placed)} lines (red); generators green, transformers dashed",
                 fontsize=9)
    ax.set_axis_off()
    return figures.png(fig)


def run(args: argparse.Namespace) -> int:
    """The handler of `cosim dtr`: run the study, write the folder whole, print the summary."""
    check_target(args.out, args.force)
    if not 0.0 <= args.device_outage < 1.0:
        raise FeederError(f"--device-outage {args.device_outage}: expected a probability in [0, 1)")
    settings = StudySettings(case=args.case, budget=args.budget, states=args.states, seed=args.seed,
                             operate=args.operate, sampling=StateSampling(device_outage=args.device_outage))
    result = run_dtr_study(settings)
    head = summary(result)
    files = {"summary.json": head, **tables(result), "figures/risk_vs_budget.png": risk_figure(result),
             "figures/grid_placement.png": grid_figure(result)}
    write_results(args.out, files, force=args.force)
    if not args.quiet:
        print(json.dumps(head, indent=2), file=sys.stdout)
        print(f"results in {args.out}")
    return 0
