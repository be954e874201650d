"""A workaround for mosaik 3.3-3.6: progress bookkeeping that grows with every step of a run.

When an event-based simulator waits for its next step, mosaik's scheduler waits both for the progress of the
simulators it depends on and for a new step, and cancels whichever loses. A cancelled progress waiter stays in
``Progress._futures`` until the progress reaches its target -- for an event-based simulator with nothing
scheduled, the end of the run -- and ``Progress.set``, called after every step of every simulator, checks all
of them. A clearing's thousands of message rounds then cost time quadratic in their number (measured: 4000
rounds of a Market-Comm-Detector loop, 45 ms a round instead of 0.3 ms). The replacement below forgets
cancelled waiters; it fires the others exactly as mosaik does (same results, same order).
"""

from __future__ import annotations

from importlib.metadata import version

from mosaik.progress import Progress

#: mosaik versions whose ``Progress.set`` this replaces (read from their source; later ones are left alone)
PATCHED = ("3.3", "3.4", "3.5", "3.6")


def forget_abandoned_waiters() -> bool:
    """Patch :meth:`mosaik.progress.Progress.set` on the mosaik versions in ``PATCHED`` (idempotent).
    Returns whether the patch is in place."""
    if getattr(Progress.set, "_forgets_abandoned", False):
        return True
    if not version("mosaik").startswith(PATCHED) or not hasattr(Progress, "_triggered_time"):
        return False

    def set_progress(self, time) -> None:
        assert time >= self.time, "cannot progress backwards"
        self.time = time
        keep, fire = [], []
        for spec, future in self._futures:
            if future.cancelled():
                continue
            reached = self._triggered_time(spec)
            if reached:
                fire.append((future, reached))
            else:
                keep.append((spec, future))
        self._futures = keep
        for future, reached in reversed(fire):  # mosaik walks its list backwards
            future.set_result(reached)

    set_progress._forgets_abandoned = True
    Progress.set = set_progress
    return True
