"""Two-stage placement of DTR devices against cascading-failure risk (after arXiv 2209.09708).

Stage 1 installs devices on a set S of at most ``budget`` lines; stage 2 decides in every system state s which
installed (and available) devices operate, at most ``operate`` of them: T_s subset of S. The objective is the
risk reduction

    F(S) = sum_s p_s g_s(S),   g_s(S) = f_s(T_s(S)),   f_s(T) = shed_s(no DTR) - shed_s(DTR on T).

Operating DTR on a line does not always help (its dynamic rating can be below the static one in hot calm hours,
and a line kept in service can steer the cascade elsewhere), which is why stage 2 chooses. Stage 2 here is the
greedy rule (add the device with the largest gain while it is positive, up to ``operate``); stage 1 is greedy
too, and its guarantee for a monotone submodular F with total curvature c is (1 - e^-c)/c of the optimum
(Conforti & Cornuejols). Whether F is submodular on a given case is checked on sampled nested sets.

Cascades are memoised per state by their stages (``physical/cascade_tree.py``): a cascade run with DTR on T also
reports D, the lines whose DTR state decided a trip along it; any T' with T' & D == T & D runs the identical
cascade. The same fact prunes the greedy: a line outside every D on a state's stage-2 path (its ``touched`` lines)
cannot change that state's value. Stage-2 decisions are memoised by the same argument: the greedy path for the
usable devices U depends on U only through U & touched, each step's candidates being U & D of that step; a U'
with the same U' & touched needs no cascade look-up at all. Both memos return what a fresh evaluation would
(tested).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from physical.cascade import CascadeStudy, StageFlows
from physical.cascade_tree import CascadeTree

EPS_MW = 1e-6


@dataclass(frozen=True)
class StageTwo:
    """One state's stage-2 decision for an installed set."""

    value_mw: float  # g_s(S): shed avoided
    operating: frozenset[int]
    touched: frozenset[int]  # lines whose devices could change this decision (union of D along the path)


class RiskOracle:
    """Evaluates F(S) for one cascade study with memoised cascades and stage-2 decisions."""

    def __init__(self, study: CascadeStudy, operate: int, stage: StageFlows | None = None):
        """``stage``: how a cascade stage is solved (compiled unless given; the numpy one is the reference)."""
        self.study = study
        self.operate = operate
        self.p = study.probability
        self._cascades = [CascadeTree(study, s, stage) for s in range(len(study.states))]
        self._stage2: list[dict[frozenset[int], StageTwo]] = [{} for _ in study.states]  # by usable devices
        # by touched lines, then by the usable devices among them
        self._stage2_paths: list[dict[frozenset[int], dict[frozenset[int], StageTwo]]] = [{} for _ in study.states]
        self.base_shed = np.array([self._shed(s, frozenset())[0] for s in range(len(study.states))])

    @property
    def cascade_runs(self) -> int:
        """Cascades that needed at least one stage solved (the others were memo look-ups)."""
        return sum(tree.cascades_solved for tree in self._cascades)

    @property
    def stages_solved(self) -> int:
        return sum(tree.stages_solved for tree in self._cascades)

    @property
    def risk_no_dtr(self) -> float:
        return float(self.p @ self.base_shed)

    def _shed(self, s: int, operating: frozenset[int]) -> tuple[float, frozenset[int]]:
        outcome = self._cascades[s].run(operating)
        return outcome.shed_mw, outcome.decisive

    def stage_two(self, s: int, installed: frozenset[int]) -> StageTwo:
        """Greedy choice of the devices to operate in state s."""
        usable = frozenset(e for e in installed if self.study.device_available[s, e])
        memo = self._stage2[s]
        if usable in memo:
            return memo[usable]
        for touched, decisions in self._stage2_paths[s].items():
            decision = decisions.get(usable & touched)
            if decision is not None:
                memo[usable] = decision
                return decision
        chosen: frozenset[int] = frozenset()
        shed, decisive = self._shed(s, chosen)
        touched = set(decisive)
        while len(chosen) < self.operate:
            best, best_shed, best_decisive = None, shed - EPS_MW, decisive
            for e in sorted((usable - chosen) & decisive):
                trial_shed, trial_decisive = self._shed(s, chosen | {e})
                if trial_shed < best_shed:
                    best, best_shed, best_decisive = e, trial_shed, trial_decisive
            if best is None:
                break
            chosen, shed, decisive = chosen | {best}, best_shed, best_decisive
            touched |= decisive
        result = StageTwo(float(self.base_shed[s] - shed), chosen, frozenset(touched))
        memo[usable] = result
        self._stage2_paths[s].setdefault(result.touched, {})[usable & result.touched] = result
        return result

    def value(self, installed: frozenset[int]) -> float:
        """F(S): expected shed avoided (MW)."""
        return float(sum(self.p[s] * self.stage_two(s, installed).value_mw for s in range(len(self.p))))

    def gains(self, installed: frozenset[int], candidates: list[int]) -> dict[int, float]:
        """F(S + e) - F(S) for every candidate, evaluating only the states where e can matter."""
        gains = dict.fromkeys(candidates, 0.0)
        for s in range(len(self.p)):
            here = self.stage_two(s, installed)
            for e in here.touched - installed:
                if e in gains:
                    gains[e] += self.p[s] * (self.stage_two(s, installed | {e}).value_mw - here.value_mw)
        return gains


@dataclass(frozen=True)
class Placement:
    lines: tuple[int, ...]  # in the order chosen (greedy) or ascending
    reduction_mw: float
    risk_mw: float


def greedy(oracle: RiskOracle, budget: int, ground: list[int]) -> list[Placement]:
    """Stage-1 greedy; the placement after each added device (stops early when no device adds anything)."""
    chosen: list[int] = []
    value = 0.0
    path = []
    for _ in range(budget):
        gains = oracle.gains(frozenset(chosen), [e for e in ground if e not in chosen])
        if not gains:
            break
        best = min(gains, key=lambda e: (-gains[e], e))
        if gains[best] <= EPS_MW:
            break
        chosen.append(best)
        value = oracle.value(frozenset(chosen))
        path.append(Placement(tuple(chosen), value, oracle.risk_no_dtr - value))
    return path


def relevant_lines(oracle: RiskOracle, budget: int) -> list[frozenset[int]]:
    """Per state, the lines that can change its value with at most ``budget`` devices: grown from the no-DTR
    cascade until every set of at most ``budget`` of them touches no line outside (other lines add nothing)."""
    per_state = []
    for s in range(len(oracle.p)):
        local = set(oracle.stage_two(s, frozenset()).touched)
        done: set[frozenset[int]] = set()
        grown = True
        while grown:
            grown = False
            for size in range(1, min(budget, len(local)) + 1):
                for subset in itertools.combinations(sorted(local), size):
                    key = frozenset(subset)
                    if key in done:
                        continue
                    done.add(key)
                    extra = oracle.stage_two(s, key).touched - local
                    if extra:
                        local |= extra
                        grown = True
        per_state.append(frozenset(local))
    return per_state


def exhaustive(oracle: RiskOracle, budget: int) -> list[Placement]:
    """The best placement of each size 1..budget, every subset of the relevant lines enumerated (a state's value
    depends only on the installed lines relevant to it, so each subset costs a few memo look-ups)."""
    per_state = relevant_lines(oracle, budget)
    ground = sorted(set().union(*per_state))
    states_of = {e: [s for s, rel in enumerate(per_state) if e in rel] for e in ground}
    best = []
    for size in range(1, budget + 1):
        top = best[-1] if best else Placement((), 0.0, oracle.risk_no_dtr)  # at most `size` devices
        for subset in itertools.combinations(ground, min(size, len(ground))):
            installed = frozenset(subset)
            states = set().union(*(states_of[e] for e in subset))
            value = sum(oracle.p[s] * oracle.stage_two(s, installed & per_state[s]).value_mw for s in states)
            if value > top.reduction_mw + EPS_MW:
                top = Placement(subset, float(value), oracle.risk_no_dtr - float(value))
        best.append(top)
    return best


def curvature(oracle: RiskOracle, ground: list[int]) -> float:
    """Total curvature c = 1 - min_e (F(V) - F(V - e)) / F({e}) over the lines with F({e}) > 0."""
    everything = frozenset(ground)
    full = oracle.value(everything)
    singles = {e: gain for e, gain in oracle.gains(frozenset(), ground).items() if gain > EPS_MW}
    if not singles:
        return 0.0
    # A line operating in no state under V leaves F(V - e) = F(V) (same stage-2 paths): ratio 0 and c = 1. Those
    # come first, and once a ratio is <= 0 the clipped c is 1 whatever the others are.
    operated = set().union(*(oracle.stage_two(s, everything).operating for s in range(len(oracle.p))))
    lowest = np.inf
    for e in sorted(singles, key=lambda e: (e in operated, e)):
        lowest = min(lowest, (full - oracle.value(everything - {e})) / singles[e])
        if lowest <= 0.0:
            break
    return float(min(max(1.0 - lowest, 0.0), 1.0))


def greedy_bound(c: float) -> float:
    """(1 - e^-c)/c, the fraction of the optimum greedy reaches on a monotone submodular F of curvature c."""
    return 1.0 if c <= 1e-12 else float((1.0 - np.exp(-c)) / c)


@dataclass(frozen=True)
class SubmodularityCheck:
    samples: int
    violations: int
    max_violation_mw: float


def check_submodularity(oracle: RiskOracle, ground: list[int], samples: int, max_size: int,
                        rng: np.random.Generator) -> SubmodularityCheck:
    """Diminishing returns F(A+e) - F(A) >= F(B+e) - F(B) on random nested A within B, e outside B."""
    violations, worst = 0, 0.0
    if len(ground) < 2:
        return SubmodularityCheck(0, 0, 0.0)
    for _ in range(samples):
        size_b = int(rng.integers(1, min(max_size, len(ground) - 1) + 1))
        picked = rng.choice(ground, size_b + 1, replace=False).tolist()
        e, b = picked[0], picked[1:]
        a = b[: int(rng.integers(0, size_b))]
        fa, fb = oracle.value(frozenset(a)), oracle.value(frozenset(b))
        excess = (oracle.value(frozenset(b) | {e}) - fb) - (oracle.value(frozenset(a) | {e}) - fa)
        if excess > 1e-6:
            violations += 1
            worst = max(worst, excess)
    return SubmodularityCheck(samples, violations, worst)
