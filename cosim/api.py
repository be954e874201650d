"""The Python API for notebooks: feeders, instances, clearings (centralized, ADMM, attacked and defended),
AC validation and scenarios, with results as typed objects and pandas DataFrames.

    from cosim import api
    inst = api.build_instance("1-LV-rural1--0-sw", interval="2016-06-21T12:00", seed=0)
    cleared = api.clear(inst)
    cleared.report.objective_ct, cleared.buses.head()

The functions compose the libraries (``physical.catalog``, ``market.instance``, ``cosim.clearing_run``,
``cosim.scenario_run``, ``cosim.online_run``); they take typed arguments and return frozen dataclasses. The CLI
is a layer over them: ``cosim clear`` over :func:`clear`, ``cosim run`` over :func:`run_scenario` and
:func:`run_study`, ``cosim online`` over :func:`run_online` -- each turns its options into these arguments and
writes the outcome's ``tables()`` (and its figures) to the results folder.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cosim.clearing_run import ClearingRun, iteration_table, summary, tables
from cosim.clearing_run import clear as _clear
from cosim.online_run import OnlineJob, OnlineOutcome, OnlineReport, run_job
from cosim.scenario import Scenario, load_scenario
from cosim.scenario_run import ScenarioOutcome, ScenarioReport, StudyOutcome
from cosim.scenario_run import run_scenario as _run_scenario
from cosim.scenario_run import run_study as _run_study
from cyber.attacks import AttackSpec
from cyber.resilient_admm import CyberSetup, check_projection, default_projection, default_relaxation
from market.admm.driver import AdmmSettings
from market.admm.pairs import PairExchange
from market.errors import InstanceError
from market.instance import InstanceOptions, MarketInstance
from market.instance import build_instance as _build_instance
from market.result import ClearingResult
from physical.ac_power_flow import AcValidation, validate_dispatch
from physical.catalog import RADIAL_CASES, load_feeder
from physical.feeder import Feeder
from physical.profiles import DEFAULT_INTERVAL, INTERVALS_PER_DAY, interval_index
from physical.simbench_grid import is_simbench_code, load_simbench_grid, simbench_codes, validate_on_simbench_net

__all__ = ["AttackSpec", "AdmmSettings", "Clearing", "ClearingReport", "InstanceOptions", "OnlineOutcome",
           "OnlineReport", "ScenarioOutcome", "ScenarioReport", "StudyOutcome", "build_instance", "cases", "clear",
           "load_feeder", "run_online", "run_scenario", "run_study", "validate"]


def cases() -> tuple[str, ...]:
    """Every feeder name ``load_feeder`` takes besides ``.m`` paths: radial MATPOWER cases, SimBench codes."""
    return (*RADIAL_CASES, *simbench_codes())


def build_instance(feeder: Feeder | str, *, interval: int | str = DEFAULT_INTERVAL, seed: int = 0,
                   options: InstanceOptions | None = None) -> MarketInstance:
    """The market of one quarter hour of ``feeder`` (a :class:`Feeder` or any name ``load_feeder`` takes)."""
    return _build_instance(load_feeder(feeder) if isinstance(feeder, str) else feeder, interval=interval,
                           seed=seed, options=options)


@dataclass(frozen=True)
class ClearingReport:
    """Headline figures of a clearing (powers in kW, costs in cent per interval); ``None`` where a figure does
    not apply (ADMM figures of a centralized clearing, detection rates without an attack)."""

    case: str
    seed: int
    interval_start: str
    method: str
    status: str
    objective_ct: float
    traded_kw: float
    p0_kw: float
    losses_kw: float
    max_relaxation_gap: float
    max_vm_mismatch_pu: float
    voltage_violations: int | None
    wall_s: float
    iterations: int | None = None
    converged: bool | None = None
    optimality_gap: float | None = None
    tpr: float | None = None
    fpr: float | None = None

    @classmethod
    def of(cls, run: ClearingRun) -> ClearingReport:
        s = summary(run)
        return cls(case=s["case"], seed=s["seed"], interval_start=s["interval_start"], method=s["method"],
                   status=s["status"], objective_ct=s["objective"], traded_kw=s.get("traded_kw", math.nan),
                   p0_kw=s.get("p0_kw", math.nan), losses_kw=s.get("losses_kw", math.nan),
                   max_relaxation_gap=s["max_relaxation_gap"], max_vm_mismatch_pu=s.get("max_vm_mismatch_pu", math.nan),
                   voltage_violations=s.get("voltage_violations"), wall_s=s["wall_s"],
                   iterations=s.get("iterations"), converged=s.get("converged"),
                   optimality_gap=s.get("optimality_gap"), tpr=s.get("tpr"), fpr=s.get("fpr"))


@dataclass(frozen=True, eq=False)
class Clearing:
    """One clearing: the typed run, its report and its tables (the ``*.csv`` files of ``cosim clear``)."""

    run: ClearingRun
    report: ClearingReport
    buses: pd.DataFrame
    lines: pd.DataFrame
    trades: pd.DataFrame
    iterations: pd.DataFrame | None

    @property
    def instance(self) -> MarketInstance:
        return self.run.instance

    @property
    def validation(self) -> AcValidation | None:
        """The AC check of the dispatch (on the feeder's pandapower net), ``None`` without a dispatch."""
        return self.run.validation

    def tables(self) -> dict[str, pd.DataFrame]:
        """The ``*.csv`` files of ``cosim clear`` by name: iterations (ADMM), buses, lines and trades (with a
        dispatch)."""
        out = {} if self.iterations is None else {"iterations.csv": self.iterations}
        if self.run.result.status.has_solution:
            out |= {"buses.csv": self.buses, "lines.csv": self.lines, "trades.csv": self.trades}
        return out


def clear(instance: MarketInstance, method: str = "centralized", *, attacks: tuple[AttackSpec, ...] = (),
          detector: str = "none", admm: AdmmSettings | None = None, cyber: CyberSetup | None = None,
          pairs: PairExchange | None = None) -> Clearing:
    """Clear ``instance`` centrally (``"centralized"``) or by the distributed ADMM (``"admm"``), with Byzantine
    ``attacks`` and every agent screening with ``detector``; validate its dispatch with the AC power flow.

    With attacks or a detector the ADMM defaults to the splitting and relaxation they need, as the CLI does.
    ``cyber``: a whole cyber layer instead (detector options, network, timing; then without ``attacks`` and
    ``detector``); ``pairs``: the trade pairs' exchange of a private clearing (:mod:`cyber.privacy`). This is
    what ``cosim clear`` runs.
    """
    if cyber is not None and (attacks or detector != "none"):
        raise ValueError("clear: give attacks and detector, or a whole cyber setup, not both")
    if cyber is None and (attacks or detector != "none"):
        cyber = CyberSetup(attacks=tuple(attacks), detector=detector)
    if method == "admm" and admm is None:
        admm = AdmmSettings(projection=default_projection(cyber.attacks, cyber.detector),
                            relaxation=default_relaxation(cyber.attacks, cyber.detector)) if cyber else AdmmSettings()
    if cyber is not None and admm is not None:
        check_projection(admm.projection, cyber)
    run = _clear(instance, method, admm, cyber, pairs)
    frames = tables(run) if run.result.status.has_solution else {}
    empty = pd.DataFrame()
    return Clearing(run, ClearingReport.of(run), frames.get("buses.csv", empty), frames.get("lines.csv", empty),
                    frames.get("trades.csv", empty), iteration_table(run) if run.history is not None else None)


def validate(clearing: Clearing) -> AcValidation:
    """The AC check of a clearing's dispatch on the grid it came from: the SimBench net itself for a SimBench
    feeder (with the model's simplifications, see :mod:`physical.simbench_grid`), else the feeder's net."""
    return validate_result(clearing.instance, clearing.run.result)


def validate_result(inst: MarketInstance, res: ClearingResult) -> AcValidation:
    """:func:`validate` for a bare clearing result of ``inst`` (e.g. from
    :func:`market.admm.driver.solve_admm`)."""
    if not res.status.has_solution:
        raise ValueError(f"the {res.method} clearing of {inst.case} has no dispatch ({res.status})")
    base = inst.feeder.base_mva
    args = (res.p * base, res.q * base, np.sqrt(res.v), res.losses * base, inst.vmin_pu, inst.vmax_pu)
    if is_simbench_code(inst.case):
        return validate_on_simbench_net(load_simbench_grid(inst.case), *args)
    return validate_dispatch(inst.feeder, *args)


def _scenario(scenario: Scenario | str | Path) -> Scenario:
    return scenario if isinstance(scenario, Scenario) else load_scenario(Path(scenario))


def run_scenario(scenario: Scenario | str | Path, *, progress: bool = False) -> ScenarioOutcome:
    """Co-simulate a scenario (a :class:`Scenario` or a scenario file) in mosaik, as ``cosim run`` does: its
    tables (:meth:`ScenarioOutcome.tables`), headline figures (``report``, ``summary``) and, with
    ``[ratings] compare``, the other rating mode's run. A delay study (``[study]``) is :func:`run_study`'s."""
    return _run_scenario(_scenario(scenario), progress)


def run_study(scenario: Scenario | str | Path, *, progress: bool = False) -> StudyOutcome:
    """A scenario's delay study (``[study]``): its first quarter hour co-simulated once per splitting, loss and
    latency, one row each in ``table``."""
    return _run_study(_scenario(scenario), progress)


def run_online(feeder: Feeder | str, controller: str, *, seed: int = 0, start: int | str = "2016-06-21T00:00",
               intervals: int = INTERVALS_PER_DAY, V: float | None = None, options: InstanceOptions | None = None,
               v_sweep: tuple[float, ...] = (), admm: AdmmSettings | None = None) -> OnlineOutcome:
    """An online storage controller (``market.online.study.CONTROLLERS``) over ``intervals`` consecutive quarter
    hours from ``start``, against the offline optimum with perfect foresight and the run without storage, as
    ``cosim online`` does: batteries on a share of the loaded buses (``options``: ``storage_share``,
    ``storage_hours``, ``tariff``), Lyapunov weight ``V`` (default ``v_max``), a sweep of shares of ``v_max``,
    every interval cleared centrally or (``admm``) by the distributed ADMM; every dispatch AC-checked."""
    if v_sweep and not controller.startswith("lyapunov"):
        raise InstanceError(f"v_sweep (--V-sweep) with controller {controller}: only the Lyapunov controllers have "
                            "a weight V")
    job = OnlineJob(load_feeder(feeder) if isinstance(feeder, str) else feeder, seed, interval_index(start),
                    intervals, controller, V, options or InstanceOptions(), tuple(v_sweep), admm)
    return run_job(job)
