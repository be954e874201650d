"""Cascading line failures by DC power flow, over sampled system states (contingency x weather x load level).

A state starts from the case's loads scaled by a load level, with its initial contingency (one or two lines out).
Each cascade stage:

1. islands are found over the branches in service, and each island is rebalanced: with no generator it loses all
   its load; if its demand exceeds its generators' capacity, every load in it is shed by the same fraction down
   to that capacity; otherwise its generators move in proportion to their dispatch (then to their headroom)
   until they meet its demand. Generators are assumed able to move that far; an island whose fixed injections
   (negative demands) exceed its load spills the surplus at its reference bus (its largest generator's bus).
2. DC power flow; every branch whose flow exceeds its rating trips at once (protection with equal delays).

The cascade ends when nothing is overloaded; its cost is the load shed (MW). Ratings: the case's own where it
has them (MATPOWER's RATE_A); a case without ratings (pandapower's case118 has 9900 MVA) gets
``rating_margin`` x the branch's intact flow at load level 1, at least ``rating_floor`` x the largest such flow.
Lines with an operating DTR device take their dynamic rating of that state's weather hour instead.

Besides the shed, a cascade reports the lines whose DTR state mattered anywhere along it: lines whose flow fell
overloaded under the lower of their static and dynamic ratings but not under the higher, at some stage. A device on
any other line would have left every trip decision, hence the whole cascade, unchanged -- the placement search
uses this to skip evaluations and ``physical/cascade_tree.py`` to share cascades' common stages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, partial

import numpy as np
import pandapower.networks as pn

from physical.cascade_kernels import KernelGrid, kernel_grid, stage_flows
from physical.dc_power_flow import DCGrid, dc_grid
from physical.errors import FeederError
from physical.thermal_rating import conductor_for_voltage, rating_factors
from physical.weather import DEFAULT_STATION, load_tmy

#: Transmission cases shipped by pandapower that the cascade study accepts.
CASES = ("case9", "case14", "case24_ieee_rts", "case30", "case39", "case57", "case118", "case300")
NO_RATING_MVA = 9900.0
TRIP_TOLERANCE = 1e-9  # a branch trips above (1 + this) x its rating


@dataclass(frozen=True)
class StateSampling:
    """How system states are drawn (every draw from the study's seed)."""

    n2_share: float = 0.5  # share of states whose initial contingency is two lines (else one)
    load_min: float = 0.8  # load level drawn uniformly in [load_min, load_max] x the case's loads
    load_max: float = 1.1
    rating_margin: float = 1.2  # for cases without ratings: rating = margin x intact flow ...
    rating_floor: float = 0.1  # ... but at least floor x the largest intact flow
    device_outage: float = 0.0  # probability that an installed DTR device is out of service in a state
    station: str = DEFAULT_STATION


@dataclass(frozen=True)
class SystemState:
    outages: tuple[int, ...]  # initial contingency: line positions (0 .. n_lines-1)
    hour: int  # hour of the TMY year whose weather the state has
    load_level: float


@dataclass(frozen=True, eq=False)
class CascadeStudy:
    """Everything the risk of a case depends on: grid, ratings, states and their dynamic ratings."""

    case: str
    grid: DCGrid
    static_mw: np.ndarray  # per branch
    azimuth_deg: np.ndarray  # per line
    states: tuple[SystemState, ...]
    dynamic_mw: np.ndarray  # (states, lines): each line's rating under its state's weather
    device_available: np.ndarray  # (states, lines)

    @property
    def n_lines(self) -> int:
        return self.grid.n_lines

    @property
    def probability(self) -> np.ndarray:
        """States are Monte-Carlo draws: equal weight."""
        return np.full(len(self.states), 1.0 / len(self.states))


@dataclass(frozen=True)
class CascadeOutcome:
    shed_mw: float
    tripped: tuple[int, ...]  # branches tripped by overload, in stage order
    sensitive: frozenset[int]  # lines whose DTR state decided some trip along the way
    stages: int


def intact_flows_mw(grid: DCGrid) -> np.ndarray:
    injection = np.zeros(grid.n_bus)
    np.add.at(injection, grid.gen_bus, grid.gen_p_mw)
    injection -= grid.demand_mw
    return grid.flows_mw(np.ones(grid.n_branch, bool), injection, _reference_buses(grid, np.zeros(grid.n_bus, int)))


def static_ratings_mw(grid: DCGrid, sampling: StateSampling) -> np.ndarray:
    """The case's ratings, or the margin rule for branches that have none (see the module docstring)."""
    flows = np.abs(intact_flows_mw(grid))
    fallback = np.maximum(sampling.rating_margin * flows, sampling.rating_floor * flows.max())
    given = (grid.rate_mva > 0) & (grid.rate_mva < NO_RATING_MVA)
    return np.where(given, grid.rate_mva, fallback)


def _reference_buses(grid: DCGrid, labels: np.ndarray) -> np.ndarray:
    """One bus per island: the bus of its largest generator, else its first bus."""
    ref = np.zeros(labels.max() + 1, int)
    first_bus_labels, first_bus = np.unique(labels, return_index=True)
    ref[first_bus_labels] = first_bus
    order = np.argsort(-grid.gen_pmax_mw, kind="stable")
    gen_labels, first_gen = np.unique(labels[grid.gen_bus[order]], return_index=True)
    ref[gen_labels] = grid.gen_bus[order[first_gen]]
    return ref


def _balance(grid: DCGrid, labels: np.ndarray, served: np.ndarray, gen_ref: np.ndarray) -> np.ndarray:
    """Shed load and re-dispatch generation island by island (rules in the module docstring); returns the
    generation and sheds in ``served`` in place."""
    n = labels.max() + 1
    gen_island = labels[grid.gen_bus]
    capacity = np.bincount(gen_island, grid.gen_pmax_mw, minlength=n)
    positive = np.maximum(served, 0.0)
    demand = np.bincount(labels, served, minlength=n)
    load = np.bincount(labels, positive, minlength=n)
    short = demand > capacity + 1e-9
    with np.errstate(divide="ignore", invalid="ignore"):
        keep = np.where(short, np.clip(1.0 - (demand - capacity) / load, 0.0, 1.0), 1.0)
    keep = np.where(load > 0, keep, 1.0)
    served[:] = np.where(served > 0, served * keep[labels], served)
    target = np.clip(np.minimum(demand, capacity), 0.0, None)
    ref = np.where(np.bincount(gen_island, gen_ref, minlength=n)[gen_island] > 0, gen_ref, grid.gen_pmax_mw)
    ref_sum = np.bincount(gen_island, ref, minlength=n)
    with np.errstate(divide="ignore", invalid="ignore"):
        gen = np.minimum(np.nan_to_num(ref * target[gen_island] / ref_sum[gen_island]), grid.gen_pmax_mw)
        deficit = target - np.bincount(gen_island, gen, minlength=n)
        headroom = grid.gen_pmax_mw - gen
        room = np.bincount(gen_island, headroom, minlength=n)
        gen = gen + np.nan_to_num(headroom * np.clip(deficit / room, 0.0, 1.0)[gen_island])
    return gen


#: One cascade stage before its trips: (in-service branches, served demand per bus -- rebalanced in place --,
#: the generators' reference dispatch) -> absolute branch flows (MW).
StageFlows = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def numpy_stage(grid: DCGrid) -> StageFlows:
    """The stage in numpy and scipy, readable: the definition the compiled stage is tested against."""

    def stage(in_service: np.ndarray, served: np.ndarray, gen_ref: np.ndarray) -> np.ndarray:
        labels = grid.islands(in_service)
        gen = _balance(grid, labels, served, gen_ref)
        injection = -served.copy()
        np.add.at(injection, grid.gen_bus, gen)
        return np.abs(grid.flows_mw(in_service, injection, _reference_buses(grid, labels)))

    return stage


def compiled_stage(grid: DCGrid) -> StageFlows:
    """The same stage in one compiled call (``physical/cascade_kernels.py``), 20-50x faster."""
    return partial(stage_flows, _kernel_grid(grid))


@cache
def _kernel_grid(grid: DCGrid) -> KernelGrid:
    return kernel_grid(grid)


@dataclass(frozen=True, eq=False)
class TripThresholds:
    """The flows (MW) above which a branch trips in one state: its static rating, and for each line the lower and
    the higher of its static and dynamic ratings (all times 1 + ``TRIP_TOLERANCE``)."""

    static: np.ndarray  # per branch
    low: np.ndarray  # per line
    high: np.ndarray

    @staticmethod
    def of(study: CascadeStudy, state_index: int) -> TripThresholds:
        nl = study.n_lines
        dynamic, static = study.dynamic_mw[state_index], study.static_mw[:nl]
        scale = 1.0 + TRIP_TOLERANCE
        return TripThresholds(study.static_mw * scale, np.minimum(static, dynamic) * scale,
                              np.maximum(static, dynamic) * scale)

    def deciding(self, flows: np.ndarray, in_service: np.ndarray) -> np.ndarray:
        """Lines in service whose trip at this stage depends on their DTR state: overloaded under the lower of
        their two ratings and not under the higher."""
        nl = len(self.low)
        return in_service[:nl] & (flows[:nl] > self.low) & ~(flows[:nl] > self.high)


def initial_conditions(study: CascadeStudy, state_index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A state's in-service branches, demand per bus and generators' reference dispatch before its cascade."""
    grid, state = study.grid, study.states[state_index]
    in_service = np.ones(grid.n_branch, bool)
    in_service[list(state.outages)] = False
    return in_service, state.load_level * grid.demand_mw, state.load_level * grid.gen_p_mw


def shed_mw(load_mw: np.float64, served: np.ndarray) -> float:
    """Load shed (MW) of a cascade whose demand had ``load_mw`` of positive loads, now ``served``."""
    return max(float(load_mw - np.maximum(served, 0.0).sum()), 0.0)


def positive_load_mw(demand: np.ndarray) -> np.float64:
    return np.maximum(demand, 0.0).sum()


def simulate_cascade(study: CascadeStudy, state_index: int, operating: frozenset[int],
                     stage: StageFlows | None = None) -> CascadeOutcome:
    """Run the cascade of one state with DTR operating on the lines in ``operating`` (``stage``: the compiled
    stage unless given)."""
    stage = stage or compiled_stage(study.grid)
    rating = study.static_mw.copy()
    on = np.fromiter(operating, int, len(operating))
    rating[on] = study.dynamic_mw[state_index][on]
    in_service, demand, gen_ref = initial_conditions(study, state_index)
    served = demand.copy()
    thresholds = TripThresholds.of(study, state_index)
    sensitive: set[int] = set()
    tripped: list[int] = []
    stages = 0
    while True:
        stages += 1
        flows = stage(in_service, served, gen_ref)
        sensitive.update(np.flatnonzero(thresholds.deciding(flows, in_service)).tolist())
        over = np.flatnonzero(in_service & (flows > rating * (1.0 + TRIP_TOLERANCE)))
        if len(over) == 0:
            break
        tripped.extend(over.tolist())
        in_service[over] = False
    return CascadeOutcome(shed_mw(positive_load_mw(demand), served), tuple(tripped), frozenset(sensitive), stages)


@cache
def _case_grid(case: str) -> tuple[DCGrid, np.ndarray]:
    """The DC grid of a pandapower case and each line's voltage (kV); loading a case takes seconds."""
    net = getattr(pn, case)()
    grid = dc_grid(net)
    return grid, net.bus.vn_kv.loc[net.line.from_bus.loc[grid.line_index]].to_numpy()


def build_study(case: str, n_states: int, seed: int, sampling: StateSampling = StateSampling()) -> CascadeStudy:
    """Sample ``n_states`` states of a pandapower transmission case and rate every line in each (seeded)."""
    if case not in CASES:
        raise FeederError(f"--case {case!r}: expected one of pandapower's transmission cases {list(CASES)}")
    if n_states < 1:
        raise FeederError(f"--states {n_states}: expected at least 1")
    grid, vn_kv = _case_grid(case)
    if grid.n_lines < 2:
        raise FeederError(f"--case {case!r}: needs at least two lines")
    rng = np.random.default_rng(seed)
    azimuth = rng.uniform(0.0, 180.0, grid.n_lines)
    conductors = [conductor_for_voltage(v) for v in vn_kv]
    weather = load_tmy(sampling.station)
    hours = rng.integers(0, weather.hours, n_states)
    factors = rating_factors(conductors, azimuth, weather.at(hours))
    static = static_ratings_mw(grid, sampling)
    states = []
    for hour in hours:
        k = 2 if rng.random() < sampling.n2_share else 1
        outages = tuple(sorted(rng.choice(grid.n_lines, k, replace=False).tolist()))
        states.append(SystemState(outages, int(hour), float(rng.uniform(sampling.load_min, sampling.load_max))))
    available = rng.random((n_states, grid.n_lines)) >= sampling.device_outage
    return CascadeStudy(case, grid, static, azimuth, tuple(states), static[None, : grid.n_lines] * factors,
                        available)
