"""The market over a lossy network, with and without acknowledged, retransmitted exchanges, in the same run.

    python benchmarks/lossy_network.py [--cases case15da,case33bw,case85] [--modes sync,async]

Each case's bundled scenario ``scenarios/lossy_CASE.toml`` (20 % loss, 10 ms mean latency with 50 ms of
jitter, 150 ms sync timeout, 900 s deadline) clears its quarter hour in-process (:func:`cosim.interval.
clear_interval`, the same communication layer as the co-simulation) in synchronous and asynchronous rounds,
``before`` (``retransmit = false``: a lost message is simply missing) and ``after`` (``retransmit = true``).
Prints the simulated clearing time, the iterations, whether the market fell back to grid-only supply, the
messages sent, lost, retransmitted, acknowledged and late, and the gap to the centralized optimum.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

from cosim.interval import clear_interval
from cosim.scenario import load_scenario
from cyber.resilient_admm import warm_up
from physical.catalog import load_feeder
from physical.profiles import interval_index


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", default="case15da,case33bw,case85")
    parser.add_argument("--modes", default="sync,async")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    warm_up()
    print(f"{'case':9} {'mode':5} {'variant':7} {'clear_s':>8} {'iters':>6} {'fallback':>8} {'sent':>9} {'lost':>9} "
          f"{'retrans':>9} {'acks':>9} {'late':>7} {'gap':>8} {'wall_s':>6}", flush=True)
    for case in args.cases.split(","):
        base = load_scenario(Path(f"scenarios/lossy_{case}.toml"))
        for mode in args.modes.split(","):
            for variant, retransmit in (("before", False), ("after", True)):
                network = base.network.model_copy(update={"mode": mode, "retransmit": retransmit})
                scenario = base.model_copy(update={"network": network})
                start = time.perf_counter()
                clearing = clear_interval(scenario, load_feeder(case), interval_index(scenario.start))
                wall = time.perf_counter() - start
                r = clearing.record()
                print(f"{case:9} {mode:5} {variant:7} {r['clearing_ms'] / 1e3:8.1f} {r['iterations']:6d} "
                      f"{str(clearing.fallback):>8} {r['messages_sent']:9d} {r['messages_lost']:9d} "
                      f"{r['messages_retransmitted']:9d} {r['messages_acks']:9d} {r['messages_late']:7d} "
                      f"{r['optimality_gap']:8.1e} {wall:6.0f}", flush=True)


if __name__ == "__main__":
    main()
