"""Asynchronous rounds behind the local barrier cross mosaik as they run in-process."""

from __future__ import annotations

import numpy as np

from cosim.interval import clear_interval
from cosim.scenario import load_scenario
from cosim.world import run_world
from physical.profiles import interval_index
from tests.conftest import feeder

SCENARIO = """
name = "async over a lossy network"
case = "case15da"
seed = 1
start = "2016-06-21T12:00"
[admm]
max_iter = 150
[network]
mean_ms = 10.0
jitter_ms = 50.0
loss = 0.2
mode = "async"
"""


def test_the_comm_simulator_carries_async_rounds_with_their_barrier_as_in_process(tmp_path):
    """Every agent's clock, barrier and what it releases are the Comm simulator's: the same draws, the same
    values used, the same iterates and the same simulated clock as the in-process driver."""
    path = tmp_path / "scenario.toml"
    path.write_text(SCENARIO)
    scenario = load_scenario(path)
    assert scenario.network.timing().max_staleness == 0
    cosim = run_world(scenario)
    direct = clear_interval(scenario, feeder("case15da"), interval_index(scenario.start))
    row, want = cosim.intervals.iloc[0], direct.record()
    for key in ("iterations", "objective", "clearing_ms", "messages_sent", "messages_lost", "messages_late",
                "messages_retransmitted", "messages_acks"):
        assert row[key] == want[key], key
    assert row["messages_retransmitted"] > 0 and row["clearing_ms"] > 2 * 150 * scenario.network.compute_ms
    assert np.array_equal(cosim.iterations["primal_residual"], direct.run.history["primal_residual"])
