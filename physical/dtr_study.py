"""The DTR placement study of one case: greedy against exhaustive search, random placement, two rankings and DTR
everywhere, with the greedy's curvature bound and an empirical submodularity check (one typed result)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from physical.cascade import CascadeStudy, StateSampling, build_study, intact_flows_mw, simulate_cascade
from physical.dtr_placement import (
    Placement,
    RiskOracle,
    SubmodularityCheck,
    check_submodularity,
    curvature,
    exhaustive,
    greedy,
    greedy_bound,
)
from physical.errors import FeederError

#: Exhaustive search runs by default only where it is affordable.
EXHAUSTIVE_MAX_BUDGET = 4
EXHAUSTIVE_MAX_LINES = 60


@dataclass(frozen=True)
class StudySettings:
    case: str
    budget: int
    states: int
    seed: int
    operate: int | None = None  # devices that may operate per state (default: budget)
    random_draws: int = 10
    submodularity_samples: int = 100
    exhaustive: bool | None = None  # None: where affordable (see EXHAUSTIVE_MAX_*)
    sampling: StateSampling = StateSampling()


@dataclass(frozen=True)
class DtrStudyResult:
    settings: StudySettings
    cascade: CascadeStudy
    risk_no_dtr: float
    risk_all_dtr: float
    curves: dict[str, tuple[float, ...]]  # method -> risk (MW) with 1..budget devices
    greedy_path: tuple[Placement, ...]
    exhaustive_best: tuple[Placement, ...] | None
    curvature: float
    bound: float
    submodularity: SubmodularityCheck
    state_shed_no_dtr: np.ndarray
    state_shed_greedy: np.ndarray
    state_operating: tuple[frozenset[int], ...]
    cascade_runs: int
    greedy_wall_s: float
    exhaustive_wall_s: float | None
    wall_s: float

    @property
    def placement(self) -> tuple[int, ...]:
        return self.greedy_path[-1].lines if self.greedy_path else ()

    def risk(self, method: str) -> float:
        return self.curves[method][-1]


def _prefix_curve(oracle: RiskOracle, order: list[int], budget: int) -> tuple[float, ...]:
    return tuple(oracle.risk_no_dtr - oracle.value(frozenset(order[:k])) for k in range(1, budget + 1))


def _greedy_curve(path: list[Placement], risk0: float, budget: int) -> tuple[float, ...]:
    """Greedy stops once no device helps: later budgets keep its last risk."""
    risks = [p.risk_mw for p in path]
    last = risks[-1] if risks else risk0
    return tuple(risks + [last] * (budget - len(risks)))


def run_dtr_study(settings: StudySettings) -> DtrStudyResult:
    """Build the states, then place devices by every method (all seeded by ``settings.seed``)."""
    start = time.perf_counter()
    if settings.budget < 1:
        raise FeederError(f"--budget {settings.budget}: expected at least 1")
    operate = settings.budget if settings.operate is None else settings.operate
    if operate < 1:
        raise FeederError(f"--operate {operate}: expected at least 1")
    study = build_study(settings.case, settings.states, settings.seed, settings.sampling)
    if settings.budget > study.n_lines:
        raise FeederError(f"--budget {settings.budget}: {settings.case} has only {study.n_lines} lines")
    oracle = RiskOracle(study, operate)
    lines = list(range(study.n_lines))
    rng = np.random.default_rng(settings.seed)
    k = settings.budget

    t0 = time.perf_counter()
    path = greedy(oracle, k, lines)
    greedy_wall = time.perf_counter() - t0
    curves = {"greedy": _greedy_curve(path, oracle.risk_no_dtr, k)}

    run_exhaustive = settings.exhaustive
    if run_exhaustive is None:
        run_exhaustive = k <= EXHAUSTIVE_MAX_BUDGET and study.n_lines <= EXHAUSTIVE_MAX_LINES
    best, exhaustive_wall = None, None
    if run_exhaustive:
        t0 = time.perf_counter()
        best = tuple(exhaustive(oracle, k))
        exhaustive_wall = time.perf_counter() - t0
        curves["exhaustive"] = tuple(p.risk_mw for p in best)

    draws = [rng.permutation(study.n_lines).tolist() for _ in range(settings.random_draws)]
    curves["random"] = tuple(np.mean([_prefix_curve(oracle, d, k) for d in draws], axis=0).tolist())
    loading = _static_loading(study)
    by_loading = sorted(lines, key=lambda e: (-loading[e], e))
    curves["rank_loading"] = _prefix_curve(oracle, by_loading, k)
    frequency = _overload_frequency(study)
    curves["rank_overload"] = _prefix_curve(oracle, sorted(lines, key=lambda e: (-frequency[e], -loading[e], e)), k)

    c = curvature(oracle, lines)
    touched = sorted(set().union(*(oracle.stage_two(s, frozenset()).touched for s in range(len(study.states)))))
    check = check_submodularity(oracle, touched or lines, settings.submodularity_samples, k, rng)
    everything = frozenset(lines)
    risk_all = oracle.risk_no_dtr - oracle.value(everything)
    placed = frozenset(path[-1].lines) if path else frozenset()
    decisions = [oracle.stage_two(s, placed) for s in range(len(study.states))]
    return DtrStudyResult(
        settings=settings, cascade=study, risk_no_dtr=oracle.risk_no_dtr, risk_all_dtr=risk_all, curves=curves,
        greedy_path=tuple(path), exhaustive_best=best, curvature=c, bound=greedy_bound(c), submodularity=check,
        state_shed_no_dtr=oracle.base_shed.copy(),
        state_shed_greedy=oracle.base_shed - np.array([d.value_mw for d in decisions]),
        state_operating=tuple(d.operating for d in decisions), cascade_runs=oracle.cascade_runs,
        greedy_wall_s=greedy_wall, exhaustive_wall_s=exhaustive_wall, wall_s=time.perf_counter() - start,
    )


def _static_loading(study: CascadeStudy) -> np.ndarray:
    """Each line's intact flow over its static rating at the states' mean load level."""
    level = float(np.mean([s.load_level for s in study.states]))
    nl = study.n_lines
    return level * np.abs(intact_flows_mw(study.grid))[:nl] / study.static_mw[:nl]


def _overload_frequency(study: CascadeStudy) -> np.ndarray:
    """How often (probability-weighted) each line trips by overload in the cascades without DTR."""
    counts = np.zeros(study.n_lines)
    for s, p in enumerate(study.probability):
        tripped = [b for b in simulate_cascade(study, s, frozenset()).tripped if b < study.n_lines]
        counts[tripped] += p
    return counts
