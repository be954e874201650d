"""Each online interval cleared by the distributed consensus ADMM, the batteries in their owners' local steps.

:class:`AdmmSlots` is a slot solver for the per-interval controllers (:mod:`market.online.controllers`):
the controller decides its batteries' boxes and prices (a Lyapunov queue term, a myopic rule), the ADMM
clears the interval with them (:mod:`market.admm.battery`), and the next interval's clearing starts where
this one ended (:mod:`market.admm.warm_start`): consecutive quarter hours differ little.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from market.admm.battery import gate_binding
from market.admm.driver import AdmmRun, AdmmSettings, solve_admm
from market.instance import MarketInstance
from market.online.controllers import GATE_DUAL_TOL, SlotDecision, SlotError
from market.problem.storage import BatteryStep, StorageArrays


class SlotNotConverged(SlotError):
    """The ADMM of an interval did not converge (the run stops; the message names the interval)."""


@dataclass
class AdmmSlots:
    """Clears intervals one after the other with the ADMM, each warm-started from the last converged one (unless
    ``warm_start`` is off, as a scenario's ``[admm] warm_start = false`` has it)."""

    settings: AdmmSettings = field(default_factory=AdmmSettings)
    warm_start: bool = True
    last_: AdmmRun | None = None
    iterations_: list[int] = field(default_factory=list)

    def __call__(self, instance: MarketInstance, arr: StorageArrays, step: BatteryStep, method: str) -> SlotDecision:
        run = solve_admm(instance, self.settings, warm=self.last_ if self.warm_start else None, battery=step)
        res = run.result
        if not res.status.has_solution:
            raise SlotNotConverged(f"interval {instance.interval}: {res.message}")
        self.last_ = run
        self.iterations_.append(int(res.info["iterations"]))
        x = run.states.x
        charge = np.clip(x["c"][step.agent], step.c_lo, step.c_hi)
        discharge = np.clip(x["d"][step.agent], step.d_lo, step.d_hi)
        binding = gate_binding(run.split.battery, x, arr.kappa, GATE_DUAL_TOL)
        return SlotDecision(res, charge, discharge, binding)
