"""Every cascade of one system state run so far, as a tree of stages: cascades that differ only in their DTR
devices share the stages before their first different trip.

A stage's trips depend on the DTR set T only through T & D, D being the stage's deciding lines (overloaded under
the lower of their two ratings, not under the higher; :class:`physical.cascade.TripThresholds`). So a node holds
its stage's flows reduced to what the trips need -- the branches that trip whatever T, and D split by which
rating is the lower -- and a child per key T & D seen so far. Looking a cascade up walks the tree with a set
intersection and a dict look-up per stage; only the stages after the walk leaves the tree are solved, each from
its parent's topology and served demand. The answer is the same as :func:`physical.cascade.simulate_cascade`'s
(tested), which solves every stage of every cascade.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from physical.cascade import (
    CascadeStudy,
    StageFlows,
    TripThresholds,
    compiled_stage,
    initial_conditions,
    positive_load_mw,
    shed_mw,
)


@dataclass(frozen=True)
class CascadeResult:
    shed_mw: float
    decisive: frozenset[int]  # lines whose DTR state decided some trip along the cascade


@dataclass(eq=False)
class _Stage:
    in_service: np.ndarray  # before this stage's trips
    served: np.ndarray  # after this stage's rebalancing
    always: np.ndarray  # branches that trip whatever the DTR set
    deciding: frozenset[int]  # lines whose DTR state decides their trip
    trip_if_operating: frozenset[int]  # deciding lines whose dynamic rating is the lower one
    shed_mw: float  # should the cascade end here
    # by key T & deciding: the next stage, or the cascade's result if nothing trips (a node has one path from the
    # root, so the result, decisive lines included, is the same for every DTR set that ends here)
    next_: dict[frozenset[int], _Stage | CascadeResult] = field(default_factory=dict)

    def in_service_after(self, key: frozenset[int]) -> np.ndarray | None:
        """The branches in service after this stage's trips when DTR operates on ``key`` (a subset of
        ``deciding``); None if nothing trips."""
        deciding = [e for e in self.deciding if (e in self.trip_if_operating) == (e in key)]
        if len(self.always) == 0 and not deciding:
            return None
        in_service = self.in_service.copy()
        in_service[self.always] = False
        in_service[deciding] = False
        return in_service


class CascadeTree:
    """The cascades of state ``state_index`` of a study, memoised by their stages."""

    def __init__(self, study: CascadeStudy, state_index: int, stage: StageFlows | None = None):
        self.study = study
        self.state_index = state_index
        self._stage = stage or compiled_stage(study.grid)
        in_service, demand, self._gen_ref = initial_conditions(study, state_index)
        self._load_mw = positive_load_mw(demand)
        self._dynamic_lower = study.dynamic_mw[state_index] < study.static_mw[: study.n_lines]
        self._thresholds = TripThresholds.of(study, state_index)
        self._known: dict[frozenset[int], CascadeResult] = {}  # by DTR set, for repeated look-ups
        self.stages_solved = 0
        self.cascades_solved = 0
        self._root = self._solve(in_service, demand, None)

    def _solve(self, in_service: np.ndarray, served_before: np.ndarray, parent: _Stage | None) -> _Stage:
        served = served_before.copy()
        flows = self._stage(in_service, served, self._gen_ref)
        self.stages_solved += 1
        if parent is not None and np.array_equal(served, served_before):
            served, shed = served_before, parent.shed_mw  # most stages shed nothing: share the parent's array
        else:
            shed = shed_mw(self._load_mw, served)
        deciding = self._thresholds.deciding(flows, in_service)
        # over its static rating and not deciding: over both ratings (a transformer has the static one only)
        always = in_service & (flows > self._thresholds.static)
        always[: len(deciding)] &= ~deciding
        decide = np.flatnonzero(deciding)
        return _Stage(in_service, served, np.flatnonzero(always), frozenset(decide.tolist()),
                      frozenset(decide[self._dynamic_lower[decide]].tolist()), shed)

    def run(self, operating: frozenset[int]) -> CascadeResult:
        """The cascade with DTR operating on the lines in ``operating``."""
        known = self._known.get(operating)
        if known is not None:
            return known
        node = self._root
        decisive: set[int] = set()
        new = False
        while True:
            decisive |= node.deciding
            key = operating & node.deciding
            child = node.next_.get(key)
            if child is None:
                in_service = node.in_service_after(key)
                if in_service is None:
                    child = CascadeResult(node.shed_mw, frozenset(decisive))
                else:
                    child = self._solve(in_service, node.served, node)
                    new = True
                node.next_[key] = child
            if isinstance(child, CascadeResult):
                self.cascades_solved += new
                self._known[operating] = child
                return child
            node = child
