"""Parameter sweeps of one scenario's first quarter hour on Dask: latency x loss x attack x Byzantine share.

Every point clears the interval with the scenario's settings changed as the point says (the direct driver:
the market and the grid called in-process, which the co-simulation reproduces exactly at zero latency) and
returns one tidy row. Points run on a dask.distributed cluster: a local one by default, or the scheduler at
an address to scale out.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import pandas as pd

from cosim.clearing_run import validate
from cosim.interval import clear_interval
from cosim.scenario import AttackSection, Scenario
from cyber.attacks import CORRELATED_KINDS, byzantine_agents
from cyber.cross_layer import cross_layer_check
from physical.catalog import load_feeder
from physical.profiles import interval_index


class SweepError(ValueError):
    """The sweep cannot run as asked (a grid value out of range, no workers, no scheduler at the address)."""


@dataclass(frozen=True)
class SweepGrid:
    """The grid's axes; every value is checked here, before any point reaches a worker."""

    latency_ms: tuple[float, ...] = (1.0,)
    loss: tuple[float, ...] = (0.0,)
    attacks: tuple[str, ...] = ("none",)
    byzantine_share: tuple[float, ...] = (0.0,)

    def __post_init__(self) -> None:
        from cyber.attacks import ATTACK_KINDS

        checks = [("latency-ms", self.latency_ms, lambda v: 0 <= v < math.inf, "latencies >= 0"),
                  ("loss", self.loss, lambda v: 0 <= v < 1, "loss rates in [0, 1)"),
                  ("byzantine-share", self.byzantine_share, lambda v: 0 <= v <= 1, "shares in [0, 1]"),
                  ("attacks", self.attacks, lambda v: v == "none" or v in ATTACK_KINDS,
                   f"none or one of {', '.join(ATTACK_KINDS)}")]
        for option, values, ok, expected in checks:
            bad = [v for v in values if not ok(v)]
            if bad or not values:
                raise SweepError(f"--{option} {','.join(map(str, values))}: expected {expected}")

    def points(self) -> list[dict]:
        combos = itertools.product(self.latency_ms, self.loss, self.attacks, self.byzantine_share)
        return [{"latency_ms": a, "loss": b, "attack": c, "byzantine_share": d} for a, b, c, d in combos
                if (c == "none") == (d == 0.0)]  # an attack needs Byzantine agents and vice versa


def point_scenario(scenario: Scenario, point: dict, n_buses: int) -> Scenario:
    network = scenario.network.model_copy(update={"mean_ms": point["latency_ms"], "loss": point["loss"]})
    attacks = []
    if point["attack"] != "none":
        agents = byzantine_agents(scenario.seed, n_buses, point["byzantine_share"])
        fields = ["P", "Q"] if point["attack"] in CORRELATED_KINDS else ["P"]
        attacks = [AttackSection(kind=point["attack"], agents=agents, fields=fields)]
    return scenario.model_copy(update={"network": network, "attacks": attacks, "intervals": 1, "study": None})


def run_point(scenario_data: dict, point: dict) -> dict:
    """One sweep point (runs on a Dask worker): the market record joined with the AC check and the agents the
    cross-layer check suspects."""
    scenario = Scenario.model_validate(scenario_data)
    feeder = load_feeder(scenario.case)
    clearing = clear_interval(point_scenario(scenario, point, feeder.n_buses), feeder,
                              interval_index(scenario.start))
    row = {**point, **clearing.record()}
    if not clearing.fallback:
        validation = validate(clearing.instance, clearing.run.result)[0]
        check = (cross_layer_check(clearing.instance, clearing.run.admm, validation.ac)
                 if clearing.run.admm is not None else None)
        row |= validation.summary() | {"suspected_agents": list(check.suspected) if check is not None else []}
    return row


def run_sweep(scenario: Scenario, grid: SweepGrid, scheduler: str | None = None, workers: int = 2,
              connect_timeout_s: float = 5.0) -> pd.DataFrame:
    """All points of ``grid``, one row each, in grid order."""
    from dask.distributed import Client, LocalCluster

    if scheduler is None and workers < 1:
        raise SweepError(f"--workers {workers}: a local cluster needs at least one worker")
    points = grid.points()
    data = scenario.model_dump()
    if scheduler is None:
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            rows = client.gather(client.map(run_point, [data] * len(points), points, pure=False))
        return pd.DataFrame(rows)
    try:
        client = Client(scheduler, timeout=f"{connect_timeout_s}s")
    except (OSError, TimeoutError) as exc:
        raise SweepError(f"--scheduler {scheduler}: no Dask scheduler answers there ({exc})") from exc
    with client:
        rows = client.gather(client.map(run_point, [data] * len(points), points, pure=False))
    return pd.DataFrame(rows)
