"""One market clearing followed by its AC check, and the tidy tables a results folder holds."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from cyber.cross_layer import CrossLayerCheck, cross_layer_check
from cyber.false_load import true_injections
from cyber.privacy.setup import PrivacyReport
from cyber.resilient_admm import CyberSetup, ResilientRun, solve_resilient_admm
from market.admm.driver import AdmmRun, AdmmSettings, solve_admm
from market.admm.pairs import PairExchange
from market.instance import MarketInstance
from market.problem.clearing import solve_clearing
from market.result import ClearingResult, Status
from physical.ac_power_flow import AcValidation, validate_dispatch
from physical.errors import FeederError
from physical.profiles import interval_start

if TYPE_CHECKING:
    import pandapower as pp

METHODS = ("centralized", "admm")


@dataclass(frozen=True)
class ClearingRun:
    """A clearing, the centralized reference it is compared with (ADMM only) and its AC validation."""

    instance: MarketInstance
    result: ClearingResult
    validation: AcValidation | None
    ac_wall_s: float
    reference: ClearingResult | None = None
    history: pd.DataFrame | None = None
    cyber: CyberSetup | None = None
    screening: ResilientRun | None = None
    admm: AdmmRun | None = None  # the distributed run itself (its final states start the next clearing)
    cross_layer: CrossLayerCheck | None = None  # the reports against the metered AC state (local splitting)
    privacy: PrivacyReport | None = None  # a private clearing's crypto time and bytes (cyber.privacy)


def clear(instance: MarketInstance, method: str = "centralized", admm: AdmmSettings | None = None,
          cyber: CyberSetup | None = None, pairs: PairExchange | None = None) -> ClearingRun:
    """Clear the market and, when it has a dispatch, validate it with pandapower's AC power flow and check the
    distributed market's reports against that metered state (:mod:`cyber.cross_layer`); ``pairs``: the trade
    pairs' exchange of a private clearing (:mod:`cyber.privacy`)."""
    run = clear_market(instance, method, admm, cyber, pairs=pairs)
    if not run.result.status.has_solution:
        return replace(run, cross_layer=last_iterate_check(run))
    validation, wall = validate(instance, metered(run))
    checked = cross_layer_check(instance, run.admm, validation.ac) if run.admm is not None else None
    return replace(run, validation=validation, ac_wall_s=wall, cross_layer=checked)


def last_iterate_check(run: ClearingRun) -> CrossLayerCheck | None:
    """The cross-layer check of a distributed clearing that did not converge, on its last iterate: what the
    agents would have done against what they reported -- an attacker whose misreport keeps the market from
    clearing is still named. None without an iterate, or when the AC power flow of that iterate diverges."""
    if run.admm is None or run.result.status is not Status.NOT_CONVERGED:
        return None
    try:
        validation, _ = validate(run.instance, metered(run))
    except FeederError:
        return None
    return cross_layer_check(run.instance, run.admm, validation.ac)


def metered(run: ClearingRun) -> ClearingResult:
    """The clearing's dispatch as the agents carry it out: a false-load agent's injection differs from its
    dispatch by the load it invented (:mod:`cyber.false_load`)."""
    return true_injections(run.result, run.instance, run.cyber.attacks if run.cyber is not None else ())


def clear_market(instance: MarketInstance, method: str = "centralized", admm: AdmmSettings | None = None,
                 cyber: CyberSetup | None = None, warm: AdmmRun | None = None,
                 pairs: PairExchange | None = None) -> ClearingRun:
    """Clear the market (no AC check yet).

    The distributed ADMM is compared with the centralized SOCP of the same instance (its reference optimum);
    with ``cyber`` it runs through attackers, network and detectors (the Byzantine-resilient ADMM); with
    ``warm`` its agents start from where that clearing ended.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
    if cyber is not None and method != "admm":
        raise ValueError("attacks and detectors act on the messages of the distributed ADMM (--method admm)")
    if method == "centralized":
        return ClearingRun(instance, solve_clearing(instance), None, 0.0)
    if cyber is not None:
        screening = solve_resilient_admm(instance, admm, cyber, warm, pairs)
        return admm_clearing(instance, screening.admm, cyber, screening)
    return admm_clearing(instance, solve_admm(instance, admm, warm=warm, pairs=pairs))


def admm_clearing(instance: MarketInstance, run: AdmmRun, cyber: CyberSetup | None = None,
                  screening: ResilientRun | None = None, reference: ClearingResult | None = None) -> ClearingRun:
    """A distributed clearing with the centralized SOCP of the same instance (its reference optimum; ``reference``
    when the caller has it, e.g. the interval with its batteries)."""
    return ClearingRun(instance, run.result, None, 0.0, reference or solve_clearing(instance), run.history, cyber,
                       screening, run)


def validate(instance: MarketInstance, result: ClearingResult,
             net: pp.pandapowerNet | None = None) -> tuple[AcValidation, float]:
    """pandapower's AC power flow on the dispatch of ``result``, and its wall time (``net``: see
    :func:`physical.ac_power_flow.run_ac_power_flow`)."""
    base = instance.feeder.base_mva
    start = time.perf_counter()
    validation = validate_dispatch(instance.feeder, result.p * base, result.q * base, np.sqrt(result.v),
                                   result.losses * base, instance.vmin_pu, instance.vmax_pu, net=net)
    return validation, time.perf_counter() - start


def summary(run: ClearingRun) -> dict:
    """Headline figures of one clearing (powers in kW, costs in cent per interval)."""
    inst, res = run.instance, run.result
    kw = inst.feeder.base_mva * 1e3
    out = {
        "case": inst.case,
        "seed": inst.seed,
        "interval": inst.interval,
        "interval_start": interval_start(inst.interval).isoformat(),
        "method": res.method,
        "status": str(res.status),
        "message": res.message,
        "n_agents": len(inst.agents),
        "n_buyers": int(inst.role_mask("buyer").sum()),
        "n_sellers": int(inst.role_mask("seller").sum()),
        "n_trades": len(inst.trades),
        "objective": res.objective,
        "traded_kw": float(res.t.sum() * kw) if res.status.has_solution else float("nan"),
        "p0_kw": float(res.p[0] * kw) if res.status.has_solution else float("nan"),
        "q0_kvar": float(res.q[0] * kw) if res.status.has_solution else float("nan"),
        "losses_kw": res.losses * kw,
        "max_relaxation_gap": res.max_relaxation_gap,
        "min_v_socp_pu": (float(inst.feeder.nominal_vm(np.sqrt(res.v)).min()) if res.status.has_solution
                          else float("nan")),
        "wall_s": res.wall_s,
        "max_vm_mismatch_pu": float("nan"),
        "voltage_violations": None,
        **res.info,
    }
    if run.reference is not None:
        ref = run.reference.objective
        out["reference_objective"] = ref
        out["reference_wall_s"] = run.reference.wall_s
        out["optimality_gap"] = abs(res.objective - ref) / max(abs(ref), 1e-12)
    if run.validation is not None:
        out.update(run.validation.summary())
        out["ac_wall_s"] = run.ac_wall_s
    if run.cyber is not None and run.screening is not None:
        out.update(cyber_summary(run.cyber, run.screening, len(inst.agents)))
    if run.privacy is not None:
        out.update(run.privacy.summary())
    out["cross_layer_checked"] = run.cross_layer is not None
    out["suspected_agents"] = []
    if run.cross_layer is not None:
        out.update(run.cross_layer.summary(inst.feeder.base_mva))
    return out


def cyber_summary(setup: CyberSetup, screened: ResilientRun, n_agents: int) -> dict:
    """Attack, detector, the detector's score on the corrupted message fields and its cost."""
    per_agent_iteration, per_field = screened.detector_cost_us(n_agents)
    caught, detectable = screened.detectable_caught()
    return {
        "attack": ",".join(a.kind for a in setup.attacks) or "none",
        "byzantine": sorted({b for a in setup.attacks for b in a.agents}),
        "detector": setup.detector,
        **{k: (int(v) if k in ("tp", "fp", "fn", "tn") else float(v)) for k, v in screened.confusion.items()},
        "tpr_by_kind": screened.tpr_by_kind(),
        "detectable": detectable,
        "tp_detectable": caught,
        "tpr_detectable": caught / detectable if detectable else float("nan"),
        "fpr_by_kind": screened.fpr_by_kind(),
        "detector_wall_s": screened.detector_wall_s,
        "detector_us_per_agent_iteration": per_agent_iteration,
        "detector_us_per_field": per_field,
        "false_shares": screened.false_shares,
    }


def tables(run: ClearingRun) -> dict[str, pd.DataFrame]:
    """buses.csv, lines.csv and trades.csv of a clearing that has a dispatch."""
    inst, res, val = run.instance, run.result, run.validation
    f = inst.feeder
    kw = f.base_mva * 1e3
    roles = ["substation"] + [a.role for a in inst.agents]
    buses = pd.DataFrame({
        "bus": np.arange(f.n_buses),
        "label": f.labels,
        "role": roles,
        "p_hat_kw": np.r_[np.nan, [a.p_hat_kw for a in inst.agents]],
        "p_kw": res.p * kw,
        "q_kvar": res.q * kw,
        "v_socp_pu": f.nominal_vm(np.sqrt(res.v)),  # p.u. of each bus's nominal voltage, like vm_ac_pu
        "vm_ac_pu": val.ac.vm_pu,
    })
    lines = np.arange(1, f.n_buses)
    line_table = pd.DataFrame({
        "line": lines,
        "from_bus": f.parent[lines],
        "to_bus": lines,
        "p_kw": res.P[lines] * kw,
        "q_kvar": res.Q[lines] * kw,
        "l_pu": res.l[lines],
        "p_ac_kw": val.ac.line_p_from_mw[lines] * 1e3,
        "q_ac_kvar": val.ac.line_q_from_mvar[lines] * 1e3,
        "loading_percent": val.ac.loading_percent[lines],
    })
    # bilateral trades, then trades with the utility company (bus 0) as the other party
    buyer_uc = inst.role_mask("buyer")
    seller_uc = inst.role_mask("seller")
    agents = np.arange(1, f.n_buses)
    trades = pd.DataFrame({
        "buyer": [t.buyer for t in inst.trades] + list(agents[buyer_uc]) + [0] * int(seller_uc.sum()),
        "seller": [t.seller for t in inst.trades] + [0] * int(buyer_uc.sum()) + list(agents[seller_uc]),
        "kw": np.r_[res.t, res.t0[buyer_uc], res.t0[seller_uc]] * kw,
        "fee_ct_per_kwh": [t.fee for t in inst.trades] + [0.0] * int(buyer_uc.sum() + seller_uc.sum()),
    })
    return {"buses.csv": buses, "lines.csv": line_table, "trades.csv": trades}


def iteration_table(run: ClearingRun) -> pd.DataFrame:
    """iterations.csv: residuals and market figures per ADMM iteration (with attacks: corrupted and flagged
    message fields)."""
    cols = ["iteration", "primal_residual", "dual_residual", "objective", "traded_kw", "p0_kw", "rho"]
    table = run.history[cols]
    if run.screening is not None:
        table = table.merge(run.screening.iteration_counts(), on="iteration")
    return table
