"""One quarter hour of a scenario: build its instance, clear it through the cyber layer, fall back if needed.

The market clears with the scenario's method; the ADMM runs over the scenario's network in simulated time
(:mod:`cyber.timing`), with its attacks and detector. A clearing without a dispatch -- not converged, past its
deadline, infeasible -- falls back to the defined safe result: *grid-only supply*, every prosumer at its
desired injection settled with the utility company, no P2P trades (what the agents would do without a
market). The AC check of either is the Grid simulator's job.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from cosim.clearing_run import ClearingRun, clear_market, metered, summary
from cosim.scenario import Scenario
from cyber.network import build_network
from cyber.privacy.pairs import SecurePairs
from cyber.privacy.setup import privacy_report, secure_pairs
from cyber.resilient_admm import CyberSetup
from market.admm.driver import AdmmRun
from market.instance import MarketInstance, build_instance
from market.line_limits import binding_lines, curtailed_kw, with_line_limits
from physical.feeder import Feeder
from physical.feeder_ratings import LineRatings, feeder_conductors, line_ratings
from physical.profiles import interval_start
from physical.weather import load_tmy


@dataclass(frozen=True)
class Dispatch:
    """What the grid is asked to carry: injections per bus (MW, Mvar; bus 0 is the substation), the SOCP
    voltages (p.u.; NaN for the fallback, which has none) and the SOCP losses (MW)."""

    p_mw: np.ndarray
    q_mvar: np.ndarray
    vm_socp_pu: np.ndarray
    losses_mw: float


@dataclass(frozen=True)
class IntervalClearing:
    """One quarter hour's clearing, and whether its dispatch is the grid-only fallback."""

    interval: int
    instance: MarketInstance
    run: ClearingRun
    fallback: bool
    clearing_ms: float  # simulated duration of the clearing (NaN for the centralized method)

    def dispatch(self) -> Dispatch:
        inst, base = self.instance, self.instance.feeder.base_mva
        if self.fallback:
            p = np.r_[0.0, [a.p_hat_kw for a in inst.agents]] / 1e3
            q = np.r_[0.0, [a.q_hat_kvar for a in inst.agents]] / 1e3
            p[0], q[0] = -p[1:].sum(), -q[1:].sum()
            return Dispatch(p, q, np.full(len(p), np.nan), float("nan"))
        res, socp = metered(self.run), self.run.result
        return Dispatch(res.p * base, res.q * base, np.sqrt(socp.v), res.losses * base)

    def record(self) -> dict:
        """The market's row of the per-interval table."""
        head = summary(self.run)
        limits = {"binding_lines": list(binding_lines(self.instance, self.run.result)),
                  "curtailed_kw": curtailed_kw(self.instance, self.run.result)}
        return {"interval": self.interval, "fallback": self.fallback, "clearing_ms": self.clearing_ms, **limits,
                "deadline_missed": bool(self.run.screening and self.run.screening.deadline_missed),
                **{f"messages_{k}": v for k, v in (self.run.screening.messages if self.run.screening else {}).items()},
                **{k: v for k, v in head.items() if k not in ("interval", "max_vm_mismatch_pu", "voltage_violations",
                                                                "cross_layer_checked", "suspected_agents")}}


def interval_instance(scenario: Scenario, feeder: Feeder, interval: int) -> MarketInstance:
    """The prosumers of quarter hour ``interval`` (index into the profile year): profiles, roles, costs."""
    return build_instance(feeder, interval=interval, seed=scenario.seed, options=scenario.instance_options())


def scenario_ratings(scenario: Scenario, feeder: Feeder, intervals: list[int]) -> tuple[LineRatings, ...]:
    """The dynamic and static ratings of every line of ``feeder`` in each of ``intervals`` under the scenario's
    ``[ratings]`` (conductor, station; azimuths drawn from its seed)."""
    spec = scenario.ratings
    conductors = feeder_conductors(feeder, scenario.seed, spec.conductor)
    return line_ratings(conductors, load_tmy(spec.station), intervals, [interval_start(k) for k in intervals])


def rated_instance(scenario: Scenario, instance: MarketInstance, ratings: LineRatings) -> MarketInstance:
    """The quarter hour's instance with the scenario's ratings (its ``mode``) as the market's line limits."""
    if ratings.interval != instance.interval:
        raise ValueError(f"ratings of interval {ratings.interval} given for interval {instance.interval}")
    return with_line_limits(instance, ratings.imax_pu(instance.feeder, scenario.ratings.mode))


def cyber_setup(scenario: Scenario, instance: MarketInstance) -> CyberSetup:
    """The scenario's network (its draws seeded per quarter hour), timing, attacks and detector."""
    network = build_network(instance, scenario.network.channel(), seed=scenario.seed * 100_003 + instance.interval)
    return CyberSetup(attacks=scenario.attack_specs(), detector=scenario.detector.name,
                      detector_options=scenario.detector.options(), network=network, timing=scenario.network.timing())


def interval_clearing(run: ClearingRun) -> IntervalClearing:
    """A quarter hour's clearing, falling back to grid-only supply when it has no dispatch."""
    clearing_ms = run.screening.clearing_ms if run.screening is not None else float("nan")
    return IntervalClearing(run.instance.interval, run.instance, run, not run.result.status.has_solution,
                            clearing_ms)


def clear_instance(scenario: Scenario, instance: MarketInstance,
                   previous: IntervalClearing | None = None) -> IntervalClearing:
    """Clear one quarter hour's instance in-process with the scenario's method, network, attacks and detector;
    the agents start from where ``previous`` ended if the scenario says so (:func:`warm_start_from`)."""
    cyber = cyber_setup(scenario, instance) if scenario.method == "admm" else None
    pairs = private_pairs(scenario, instance)
    run = clear_market(instance, scenario.method, scenario.admm_settings(), cyber,
                       warm_start_from(scenario, previous), pairs)
    return interval_clearing(with_privacy(run, scenario, pairs))


def private_pairs(scenario: Scenario, instance: MarketInstance) -> SecurePairs | None:
    """The scenario's private exchange for this quarter hour (keys and coefficients afresh), or None."""
    if scenario.privacy.mode == "none":
        return None
    return secure_pairs(instance, scenario.privacy.setup(), scenario.seed * 100_003 + instance.interval,
                        encrypted=scenario.privacy.encrypt)


def with_privacy(run: ClearingRun, scenario: Scenario, pairs: SecurePairs | None) -> ClearingRun:
    """A quarter hour's clearing with what its private exchange cost (crypto time, bytes); the plain run's
    objective is not known here (the centralized reference is: ``reference_objective``)."""
    return run if pairs is None else replace(run, privacy=privacy_report(scenario.privacy.setup(), pairs, None))


def warm_start_from(scenario: Scenario, previous: IntervalClearing | None) -> AdmmRun | None:
    """The last clearing the agents remember: the previous quarter hour's, if it converged and the scenario
    has ``[admm] warm_start``."""
    if previous is None or not scenario.admm.warm_start or previous.run.admm is None:
        return None
    return previous.run.admm if previous.run.admm.result.info.get("converged") else None


def clear_interval(scenario: Scenario, feeder: Feeder, interval: int,
                   previous: IntervalClearing | None = None) -> IntervalClearing:
    """Build and clear quarter hour ``interval`` in-process (the direct driver of sweeps and benchmarks), with the
    scenario's line ratings of that quarter hour if it has ``[ratings]``."""
    instance = interval_instance(scenario, feeder, interval)
    if scenario.ratings is not None:
        instance = rated_instance(scenario, instance, scenario_ratings(scenario, feeder, [interval])[0])
    return clear_instance(scenario, instance, previous)
