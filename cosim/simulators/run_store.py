"""What the simulators keep for the results folder, per run and interval, outside mosaik's data flow.

The Market keeps its clearing report and the Grid its AC check: nothing else in the world consumes them, and a
mosaik sink for them would cost every message round of every clearing one more simulator to advance (measured
on a Market-Comm-Detector loop with the Grid: 132 us per step, 183 with a collector simulator).
"""

from __future__ import annotations

#: run id -> interval -> what was kept (the co-simulation's runner reads it after ``world.run``)
COLLECTED: dict[str, dict[int, dict]] = {}


def keep(run_id: str, interval: int, name: str, value: dict) -> None:
    """Keep ``value`` as ``name`` of ``interval`` in run ``run_id``."""
    COLLECTED.setdefault(run_id, {}).setdefault(interval, {})[name] = value
