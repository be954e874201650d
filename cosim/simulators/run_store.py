"""What the simulators keep for the results folder, per run and interval, outside mosaik's data flow.

The Market keeps its clearing (:class:`KeptClearing`), the Grid its AC check (:class:`KeptCheck`) and the
Storage simulator the batteries' state (:class:`KeptStorage`): nothing else in the world consumes them, and a
mosaik sink for them would cost every message round of every clearing one more simulator to advance (measured
on a Market-Comm-Detector loop with the Grid: 132 us per step, 183 with a collector simulator).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True, eq=False)
class KeptClearing:
    """The Market's quarter hour: its row of the interval table, the ADMM's iterations (with the detectors'
    counts; ``None`` for a centralized clearing) and the instance it cleared (JSON)."""

    record: dict[str, object]
    iterations: pd.DataFrame | None
    instance_json: str


@dataclass(frozen=True, eq=False)
class KeptCheck:
    """The Grid's AC check of a quarter hour's dispatch: when it ran (ms), its columns of the interval table
    (``row``) and the voltage profiles (nominal p.u.; SOCP NaN for the grid-only fallback)."""

    time_ms: int
    row: dict[str, object]
    vm_ac_pu: np.ndarray
    vm_socp_pu: np.ndarray


@dataclass(frozen=True, eq=False)
class KeptStorage:
    """Every battery after a quarter hour: stored energy (kWh), powers (kW) and Lyapunov queue (kWh; ``None``
    for other controllers)."""

    soc_kwh: np.ndarray
    charge_kw: np.ndarray
    discharge_kw: np.ndarray
    queue_kwh: np.ndarray | None


@dataclass
class KeptInterval:
    """What the simulators kept of one quarter hour (filled in as they step)."""

    clearing: KeptClearing | None = None
    check: KeptCheck | None = None
    storage: KeptStorage | None = None


_FIELDS = {KeptClearing: "clearing", KeptCheck: "check", KeptStorage: "storage"}

#: run id -> interval -> what was kept (the co-simulation's runner reads it after ``world.run``)
COLLECTED: dict[str, dict[int, KeptInterval]] = {}


def keep(run_id: str, interval: int, item: KeptClearing | KeptCheck | KeptStorage) -> None:
    """Keep ``item`` for ``interval`` of run ``run_id``."""
    setattr(COLLECTED.setdefault(run_id, {}).setdefault(interval, KeptInterval()), _FIELDS[type(item)], item)
