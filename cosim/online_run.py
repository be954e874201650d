"""An online storage study as a results folder: summary, SoC and interval tables, AC check, figures.

The market work is :func:`market.online.study.run_study`; this module builds the run's instances (the
profiles of consecutive quarter hours, one seed), checks every interval's dispatch -- batteries included in
the bus injections -- with pandapower's AC power flow, and turns the typed result into tables and figures.
:func:`run_job` is what ``cosim.api.run_online`` and ``cosim online`` run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd

from cosim import figures
from market.admm.driver import AdmmSettings
from market.instance import InstanceOptions, MarketInstance, build_instance
from market.online.study import OnlineStudy, run_study
from physical.ac_power_flow import to_pandapower, validate_dispatch
from physical.feeder import Feeder
from physical.profiles import INTERVALS_PER_DAY, interval_start


@dataclass(frozen=True)
class OnlineJob:
    """What ``cosim online`` was asked for."""

    feeder: Feeder
    seed: int
    start: int  # interval index of the first quarter hour
    intervals: int
    controller: str
    V: float | None
    options: InstanceOptions
    v_sweep: tuple[float, ...] = ()  # shares of v_max for the V sweep figure (Lyapunov controllers)
    admm: AdmmSettings | None = None  # clear every interval by the distributed ADMM with these settings

    @property
    def method(self) -> str:
        return "centralized" if self.admm is None else "admm"


def job_instances(job: OnlineJob) -> tuple[list[MarketInstance], Callable[[int], MarketInstance]]:
    """The run's instances and the MPC forecast (persistence: the same quarter hour one day earlier)."""

    @cache
    def instance(index: int) -> MarketInstance:
        return build_instance(job.feeder, interval=index, seed=job.seed, options=job.options)

    def forecast(index: int) -> MarketInstance:
        return instance(index - INTERVALS_PER_DAY if index >= INTERVALS_PER_DAY else index)

    return [instance(job.start + k) for k in range(job.intervals)], forecast


@dataclass(frozen=True)
class OnlineReport:
    """Headline figures of an online study (costs in cent over the run; ``None``: a Lyapunov figure of another
    controller); all of them, and more, are in :meth:`OnlineOutcome.summary`."""

    case: str
    controller: str
    method: str
    intervals: int
    cost_ct: float
    offline_cost_ct: float
    no_storage_cost_ct: float
    captured_value: float
    soc_violations: int
    voltage_violations: int
    max_vm_mismatch_pu: float
    wall_s: float
    V: float | None = None
    bound_ct: float | None = None


@dataclass(frozen=True, eq=False)
class OnlineOutcome:
    """An online study and its AC check: the typed study, the headline figures and the tables of
    ``cosim online`` (with a V sweep, one row per weight)."""

    job: OnlineJob
    study: OnlineStudy
    voltage_violations: int
    max_vm_mismatch_pu: float
    sweep: pd.DataFrame | None

    @property
    def report(self) -> OnlineReport:
        s = self.summary()
        return OnlineReport(case=s["case"], controller=s["controller"], method=s["method"], intervals=s["intervals"],
                            cost_ct=s["cost_ct"], offline_cost_ct=s["offline_cost_ct"],
                            no_storage_cost_ct=s["no_storage_cost_ct"], captured_value=s["captured_value"],
                            soc_violations=s["soc_violations"], voltage_violations=s["voltage_violations"],
                            max_vm_mismatch_pu=s["max_vm_mismatch_pu"], wall_s=s["wall_s"], V=s["V"],
                            bound_ct=s["bound_ct"])

    def summary(self) -> dict:
        """The ``summary.json`` of ``cosim online``."""
        return summary(self.job, self)

    def tables(self) -> dict[str, pd.DataFrame]:
        """The ``*.csv`` files of ``cosim online`` by name: soc (per unit and interval), intervals and, with a V
        sweep, v_sweep."""
        out = {"soc.csv": soc_table(self.job, self.study), "intervals.csv": interval_table(self.job, self.study)}
        return out if self.sweep is None else out | {"v_sweep.csv": self.sweep}


def run_job(job: OnlineJob) -> OnlineOutcome:
    instances, forecast = job_instances(job)
    study = run_study(instances, job.controller, job.V, forecast, method=job.method, admm=job.admm)
    violations, mismatch = ac_check(instances, study)
    sweep = None
    if job.v_sweep and study.params is not None:
        rows = []
        for share in job.v_sweep:
            s = run_study(instances, job.controller, share * study.params.v_max, forecast, study.offline,
                          study.no_storage_cost_ct, job.method, job.admm)
            rows.append({"V": s.params.V, "v_share": share, "cost_ct": s.run.cost_ct,
                         "captured_value": s.captured_value, "bound_ct": s.bound_ct,
                         "gate_binding": s.gate_binding, "soc_violations": s.soc_violations})
        sweep = pd.DataFrame(rows)
    return OnlineOutcome(job, study, violations, mismatch, sweep)


def ac_check(instances: list[MarketInstance], study: OnlineStudy) -> tuple[int, float]:
    """Bus-intervals whose AC voltage leaves the limits, and the largest SOCP-vs-AC voltage mismatch."""
    feeder = instances[0].feeder
    net = to_pandapower(feeder)
    violations, mismatch = 0, 0.0
    for inst, res in zip(instances, study.run.clearings, strict=True):
        base = feeder.base_mva
        val = validate_dispatch(feeder, res.p * base, res.q * base, np.sqrt(res.v), res.losses * base,
                                inst.vmin_pu, inst.vmax_pu, net=net)
        violations += len(val.voltage_violations)
        mismatch = max(mismatch, val.max_vm_mismatch_pu)
    return violations, mismatch


def summary(job: OnlineJob, out: OnlineOutcome) -> dict:
    s = out.study
    p = s.params
    return {
        "case": job.feeder.name,
        "seed": job.seed,
        "start": interval_start(job.start).isoformat(),
        "controller": s.controller,
        "method": s.method,
        "projection": job.admm.projection if job.admm else None,
        "admm_iterations_mean": float(np.mean(s.admm_iterations)) if s.admm_iterations else None,
        "admm_iterations_max": max(s.admm_iterations) if s.admm_iterations else None,
        "tariff": job.options.tariff,
        "storage_share": job.options.storage_share,
        "units": int(s.run.soc_kwh.shape[0]),
        "soc_window_kwh": float(s.soc_max_kwh.sum() - s.soc_min_kwh.sum()),
        "V": p.V if p else None,
        "v_max": p.v_max if p else None,
        "p_min": p.p_min if p else None,
        "p_max": p.p_max if p else None,
        "intervals": job.intervals,
        "cost_ct": s.run.cost_ct,
        "market_cost_ct": s.run.market_cost_ct,
        "terminal_ct": s.run.terminal_ct,
        "no_storage_cost_ct": s.no_storage_cost_ct,
        "offline_cost_ct": s.offline.cost_ct,
        "captured_value": s.captured_value,
        "bound_ct": s.bound_ct,
        "gate_binding": s.gate_binding if p else None,
        "soc_violations": s.soc_violations,
        "voltage_violations": out.voltage_violations,
        "max_vm_mismatch_pu": out.max_vm_mismatch_pu,
        "offline_wall_s": s.offline.wall_s,
        "wall_s": s.wall_s,
        "online_wall_s": s.run.wall_s,
        "online_wall_s_per_interval": s.run.wall_s / job.intervals,
    }


def soc_table(job: OnlineJob, s: OnlineStudy) -> pd.DataFrame:
    """interval, unit, bus, soc_kwh (at the interval's end), charge_kw, discharge_kw, queue (kWh, Lyapunov)."""
    run = s.run
    n_u, n_t = run.charge_kw.shape
    buses = s.bus
    queue = s.queue_kwh[:, 1:] if s.queue_kwh is not None else np.full((n_u, n_t), np.nan)
    return pd.DataFrame({
        "interval": np.tile(np.arange(job.start, job.start + n_t), n_u),
        "unit": np.repeat(np.arange(n_u), n_t),
        "bus": np.repeat(buses, n_t),
        "soc_kwh": run.soc_kwh[:, 1:].ravel(),
        "charge_kw": run.charge_kw.ravel(),
        "discharge_kw": run.discharge_kw.ravel(),
        "queue": queue.ravel(),
    })


def interval_table(job: OnlineJob, s: OnlineStudy) -> pd.DataFrame:
    kw = job.feeder.base_mva * 1e3
    return pd.DataFrame({
        "interval": np.arange(job.start, job.start + job.intervals),
        "start": [interval_start(job.start + k).isoformat() for k in range(job.intervals)],
        "cost_ct": s.run.slot_costs_ct,
        "offline_cost_ct": s.offline.slot_costs_ct,
        "charge_kw": s.run.charge_kw.sum(axis=0),
        "discharge_kw": s.run.discharge_kw.sum(axis=0),
        "stored_kwh": s.run.soc_kwh[:, 1:].sum(axis=0),
        "offline_stored_kwh": s.offline.soc_kwh[:, 1:].sum(axis=0),
        "p0_kw": [c.p[0] * kw for c in s.run.clearings],
        "losses_kw": [c.losses * kw for c in s.run.clearings],
    })


def result_files(out: OnlineOutcome) -> dict:
    """Every file of ``cosim online``'s results folder (name -> content)."""
    s = out.study
    tables = out.tables()
    files = {"summary.json": out.summary(), **tables,
             "figures/soc.png": figures.soc_trajectories(tables["soc.csv"], s.soc_min_kwh, s.soc_max_kwh),
             "figures/cumulative_cost.png": figures.cumulative_cost(tables["intervals.csv"], s.controller)}
    if out.sweep is not None:
        files["figures/v_sweep.png"] = figures.v_sweep(out.sweep)
    return files
