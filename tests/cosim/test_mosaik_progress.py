"""The workaround for mosaik's progress bookkeeping fires what mosaik fires and forgets cancelled waiters."""

from __future__ import annotations

import asyncio

from mosaik.progress import Progress
from mosaik.tiered_time import TieredDuration, TieredTime

from cosim.mosaik_progress import forget_abandoned_waiters


def test_cancelled_waiters_are_forgotten_and_reached_ones_fire():
    assert forget_abandoned_waiters()
    loop = asyncio.new_event_loop()
    try:
        progress = Progress(TieredTime(0))
        zero = TieredDuration(0)
        reached, later, abandoned = loop.create_future(), loop.create_future(), loop.create_future()
        progress._futures = [((TieredTime(5), zero, False), reached), ((TieredTime(50), zero, False), later),
                             ((TieredTime(50), zero, False), abandoned)]
        abandoned.cancel()
        progress.set(TieredTime(10))
        assert reached.result() == TieredTime(10) and not later.done()
        assert [future for _, future in progress._futures] == [later]  # mosaik 3.6 would keep the cancelled one
    finally:
        loop.close()
