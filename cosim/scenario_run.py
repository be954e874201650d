"""A scenario run from start to results folder: the co-simulation, its tables, headline figures and plots.

:func:`run_scenario` and :func:`run_study` return typed outcomes (what ``cosim.api`` hands a notebook);
:func:`result_files` turns either into the files of ``cosim run``'s results folder.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cosim import figures
from cosim.ratings_run import other_mode, ratings_summary, ratings_table
from cosim.scenario import Scenario, storage_plan
from cosim.world import CosimRun, run_world
from market.online.study import SOC_TOL_KWH


@dataclass(frozen=True)
class ScenarioReport:
    """Headline figures of a co-simulated scenario (``None``: an ADMM figure of a centralized run, a rate
    without the cases it counts); all of them, and more, are in :attr:`ScenarioOutcome.summary`."""

    scenario: str
    case: str
    intervals: int
    method: str
    voltage_violations: int
    max_vm_mismatch_pu: float | None
    traded_kwh: float
    fallbacks: int
    wall_s: float
    converged: int | None = None
    mean_iterations: float | None = None
    max_optimality_gap: float | None = None
    tpr: float | None = None
    fpr: float | None = None

    @classmethod
    def of(cls, summary: dict) -> ScenarioReport:
        return cls(scenario=summary["scenario"], case=summary["case"], intervals=summary["intervals"],
                   method=summary["method"], voltage_violations=summary["voltage_violations"],
                   max_vm_mismatch_pu=summary["max_vm_mismatch_pu"], traded_kwh=summary["traded_kwh"],
                   fallbacks=summary["fallbacks"], wall_s=summary["wall_s"], converged=summary.get("converged"),
                   mean_iterations=summary.get("mean_iterations"),
                   max_optimality_gap=summary.get("max_optimality_gap"), tpr=summary.get("tpr"),
                   fpr=summary.get("fpr"))


@dataclass(frozen=True, eq=False)
class ScenarioOutcome:
    """A scenario co-simulated through mosaik: the run's tables, its headline figures (``summary``, the
    ``summary.json`` of ``cosim run``; ``report``, the typed excerpt) and, with ``[ratings]``, every line's
    ratings and (``compare``) the interval table of the same quarter hours in the other rating mode."""

    scenario: Scenario
    run: CosimRun
    summary: dict[str, object]
    report: ScenarioReport
    ratings: pd.DataFrame | None = None
    other_mode_intervals: pd.DataFrame | None = None

    @property
    def intervals(self) -> pd.DataFrame:
        """One row per quarter hour: the market's record and the AC check (lists and dicts as they are)."""
        return self.run.intervals

    @property
    def iterations(self) -> pd.DataFrame:
        """One row per ADMM iteration and quarter hour (empty for a centralized run)."""
        return self.run.iterations

    @property
    def voltages(self) -> pd.DataFrame:
        """SOCP and AC voltage per bus and quarter hour."""
        return self.run.voltages

    @property
    def storage(self) -> pd.DataFrame:
        """Every battery after every quarter hour (empty without ``[storage]``)."""
        return self.run.storage

    def tables(self) -> dict[str, pd.DataFrame]:
        """The ``*.csv`` files of ``cosim run`` by name (lists and dicts of a cell as JSON text)."""
        out = {"intervals.csv": flat_table(self.run.intervals)}
        for name, table in (("storage.csv", self.run.storage), ("voltages.csv", self.run.voltages),
                            ("iterations.csv", self.run.iterations)):
            if len(table):
                out[name] = table
        if self.ratings is not None:
            out["ratings.csv"] = self.ratings
        if self.other_mode_intervals is not None:
            out[f"intervals_{other_mode(self.scenario).ratings.mode}.csv"] = flat_table(self.other_mode_intervals)
        return out


@dataclass(frozen=True, eq=False)
class StudyOutcome:
    """A delay study (``[study]``): the first quarter hour cleared once per splitting, loss and latency
    (``table``, one row each) and its headline figures (``summary``, the ``summary.json`` of ``cosim run``)."""

    scenario: Scenario
    table: pd.DataFrame
    summary: dict[str, object]

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"study.csv": self.table}


def run_scenario(scenario: Scenario, progress: bool = False) -> ScenarioOutcome:
    """Co-simulate ``scenario`` (not a ``[study]``: :func:`run_study`) and, with ``[ratings] compare``, the
    same quarter hours in the other rating mode."""
    if scenario.study is not None:
        raise ValueError(f"scenario {scenario.name!r} is a delay study ([study]); run it with run_study")
    start = time.perf_counter()
    run = run_world(scenario, progress)
    summary = summarize(scenario, run, time.perf_counter() - start)
    ratings = other = None
    if scenario.ratings is not None:
        ratings = ratings_table(scenario)
        runs = {scenario.ratings.mode: run.intervals}
        if scenario.ratings.compare:
            second = other_mode(scenario)
            other = runs[second.ratings.mode] = run_world(second, progress).intervals
        summary["ratings"] = ratings_summary(scenario, runs, ratings)
        summary["wall_s"] = time.perf_counter() - start
    return ScenarioOutcome(scenario, run, summary, ScenarioReport.of(summary), ratings, other)


def result_files(outcome: ScenarioOutcome | StudyOutcome, source: str) -> dict[str, object]:
    """Every file of the results folder (name -> content) of a run of the scenario file text ``source``, for
    :func:`cosim.results.write_results`."""
    scenario = outcome.scenario
    files: dict[str, object] = {"scenario.toml": source, "scenario.json": scenario.model_dump(),
                                "summary.json": outcome.summary, **outcome.tables()}
    if isinstance(outcome, StudyOutcome):
        files["figures/clearing_time_vs_latency.png"] = figures.clearing_time(
            outcome.table, "latency_ms", "latency (ms)", by=("projection", "loss"))
        return files
    run = outcome.run
    files |= {f"instances/interval_{k:05d}.json": text for k, text in run.instances.items()}
    if len(run.voltages):
        files["figures/voltages_socp_vs_ac.png"] = figures.voltage_profile(run.voltages)
    if len(run.iterations):
        files["figures/residuals.png"] = figures.residuals(run.iterations)
        if "attacked" in run.iterations:
            files["figures/attacks_and_detections.png"] = figures.detections(run.iterations)
    if scenario.intervals > 1 and scenario.method == "admm":
        files["figures/clearing_time.png"] = figures.clearing_time(run.intervals, "interval", "interval")
    if outcome.other_mode_intervals is not None:
        runs = {scenario.ratings.mode: run.intervals,
                other_mode(scenario).ratings.mode: outcome.other_mode_intervals}
        files["figures/ratings_dynamic_vs_static.png"] = figures.ratings_comparison(outcome.ratings, runs)
    return files


def summarize(scenario: Scenario, run: CosimRun, wall_s: float) -> dict:
    """Headline figures of the whole run."""
    t = run.intervals
    out = {"scenario": scenario.name, "case": scenario.case, "seed": scenario.seed, "start": scenario.start,
           "intervals": len(t), "method": scenario.method, "wall_s": wall_s,
           "fallbacks": int(t["fallback"].sum()),
           "voltage_violations": int(pd.to_numeric(t["voltage_violations"]).sum()),
           "ac_not_converged": int(t["ac_converged"].eq(False).sum()) if "ac_converged" in t else 0,
           "max_vm_mismatch_pu": _max(t, "max_vm_mismatch_pu"), "traded_kwh": float(t["traded_kw"].sum() / 4)}
    if scenario.storage is not None:
        out |= storage_summary(scenario, run)
    if scenario.privacy.mode != "none":
        out |= privacy_summary(scenario, t)
    if scenario.method == "admm":
        out |= {"converged": int(t["converged"].sum()), "deadline_missed": int(t["deadline_missed"].sum()),
                "mean_iterations": float(t["iterations"].mean()), "max_iterations": int(t["iterations"].max()),
                "mean_clearing_s": float(t["clearing_ms"].mean() / 1e3),
                "max_clearing_s": float(t["clearing_ms"].max() / 1e3),
                "max_optimality_gap": _max(t[~t["fallback"]], "optimality_gap"),
                "attack": scenario.attacks[0].kind if scenario.attacks else "none",
                "detector": scenario.detector.name}
        tp, fp, fn, tn = (int(t[k].sum()) for k in ("tp", "fp", "fn", "tn"))
        seen, caught = int(t["detectable"].sum()), int(t["tp_detectable"].sum())
        suspected = sorted({b for agents in t.get("suspected_agents", []) for b in agents})
        out |= {"suspected_agents": suspected,
                "intervals_with_suspects": int(t["suspected_agents"].map(bool).sum()) if suspected else 0}
        out |= {"tp": tp, "fp": fp, "fn": fn, "tn": tn, "tpr": tp / (tp + fn) if tp + fn else None,
                "detectable": seen, "tpr_detectable": caught / seen if seen else None,
                "fpr": fp / (fp + tn) if fp + tn else None, "detector_wall_s": float(t["detector_wall_s"].sum()),
                "detector_us_per_agent_iteration": _per_agent_iteration(t, "detector_wall_s")}
    return out


def privacy_summary(scenario: Scenario, t: pd.DataFrame) -> dict:
    """A private run's cost over its quarter hours: crypto time as charged in simulated time (the per-operation
    model) and as measured, per agent at most (the largest of any quarter hour) and in total, the protocol's
    bytes and all bytes on the wire. The plain run's objective is not known in a co-simulation (null); the
    centralized reference of every quarter hour is in intervals.csv."""
    total = {col: float(t[col].sum()) if col in t else None
             for col in ("crypto_model_s_total", "crypto_s_total", "bytes_sent", "messages_bytes")}
    return {"privacy": scenario.privacy.mode, "key_bits": scenario.privacy.key_bits,
            "crypto_model_s_max": _max(t, "crypto_model_s_max"), "crypto_model_s_total": total["crypto_model_s_total"],
            "crypto_s_max": _max(t, "crypto_s_max"), "crypto_s_total": total["crypto_s_total"],
            "bytes_sent": None if total["bytes_sent"] is None else int(total["bytes_sent"]),
            "network_bytes": None if total["messages_bytes"] is None else int(total["messages_bytes"]),
            "plain_objective": None}


def storage_summary(scenario: Scenario, run: CosimRun) -> dict:
    """The batteries' headline figures: controller, units, the run's market cost (the sum of the intervals'
    recorded welfare costs, batteries included) and the unit-intervals outside their SoC window."""
    arr = storage_plan(scenario).arrays
    soc = run.storage.pivot(index="unit", columns="interval", values="soc_kwh").to_numpy()
    outside = (soc < arr.soc_min[:, None] - SOC_TOL_KWH) | (soc > arr.soc_max[:, None] + SOC_TOL_KWH)
    return {"storage_controller": scenario.storage.controller, "units": arr.n_units,
            "market_cost_ct": float(run.intervals["objective"].sum()), "soc_violations": int(outside.sum()),
            "stored_kwh_end": float(soc[:, -1].sum())}


def run_study(scenario: Scenario, progress: bool = False) -> StudyOutcome:
    """The delay study: the first interval cleared once per (splitting, loss, latency) of ``scenario.study``."""
    if scenario.study is None:
        raise ValueError(f"scenario {scenario.name!r} has no [study]; run it with run_scenario")
    start = time.perf_counter()
    rows = []
    for projection in scenario.study.projections or [scenario.admm.projection]:
        admm = scenario.admm.model_copy(update={"projection": projection})
        for loss in scenario.study.loss:
            for latency in scenario.study.latency_ms:
                point = scenario.model_copy(update={
                    "intervals": 1, "study": None, "admm": admm,
                    "network": scenario.network.model_copy(update={"mean_ms": latency, "loss": loss})})
                row = run_world(point, progress).intervals.iloc[0].to_dict()
                rows.append({"projection": projection, "latency_ms": latency, "loss": loss, **row})
    table = flat_table(pd.DataFrame(rows))
    columns = ["projection", "latency_ms", "loss", "clearing_ms", "iterations", "converged", "optimality_gap",
               "deadline_missed", "messages_lost", "messages_late"]
    summary = {"scenario": scenario.name, "case": scenario.case, "points": len(table),
               "wall_s": time.perf_counter() - start, "study": table[columns].to_dict("records")}
    return StudyOutcome(scenario, table, summary)


def flat_table(table: pd.DataFrame) -> pd.DataFrame:
    """Lists and dicts (Byzantine agents, TPR per kind) as JSON text, so the table is one CSV."""
    out = table.copy()
    for col in out.columns:
        if out[col].map(lambda v: isinstance(v, list | dict)).any():
            out[col] = out[col].map(json.dumps)
    return out


def _per_agent_iteration(table: pd.DataFrame, col: str) -> float | None:
    """Microseconds of ``col`` (seconds per interval) per agent and ADMM iteration over the whole run."""
    steps = float((table["iterations"] * table["n_agents"]).sum()) if len(table) else 0.0
    return float(table[col].sum()) * 1e6 / steps if steps else None


def _max(table: pd.DataFrame, col: str) -> float | None:
    values = table[col].to_numpy(dtype=float) if col in table and len(table) else np.array([])
    values = values[np.isfinite(values)]
    return float(values.max()) if values.size else None
