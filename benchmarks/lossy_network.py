"""The market over a lossy network, before and after the measures that keep it clearing, in the same run.

    python benchmarks/lossy_network.py [--cases case15da,case33bw,case85] [--modes sync,async] [--seeds 0]

Each case's bundled scenario ``scenarios/lossy_CASE.toml`` (20 % loss, 10 ms mean latency with 50 ms of
jitter, 150 ms sync timeout, 900 s deadline; a case without one, e.g. case69, takes case33bw's network) clears
its quarter hour in-process (:func:`cosim.interval.clear_interval`, the same communication layer as the
co-simulation), at each seed:

- synchronous rounds ``before`` (``retransmit = false``: a lost message is simply missing) and ``after``
  (``retransmit = true``: acknowledged, retransmitted exchanges, :mod:`cyber.retransmission`);
- asynchronous rounds ``before`` (``max_staleness = "none"``: nobody waits, relaxation 0.5) and ``after``
  (the default local barrier of bounded staleness, relaxation 1.0, :mod:`cyber.async_rounds`).

Prints the simulated clearing time, the iterations, whether the market fell back to grid-only supply, the
messages sent, lost, retransmitted, acknowledged and late, and the gap to the centralized optimum.

``--staleness-study`` instead clears case15da (seed 0, summer noon) over a lossless network of constant 2.5 ms
latency -- values one to two iterations stale unless a barrier waits for them -- at each (bound, relaxation)
of ``STUDY``: why the default barrier waits for the current values (any staleness needs relaxation 0.5).
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

#: Per round mode: the network options of the variant before and after.
VARIANTS = {"sync": (("before", {"retransmit": False}), ("after", {"retransmit": True})),
            "async": (("before", {"max_staleness": "none"}), ("after", {}))}


#: (max_staleness, relaxation) of the staleness study.
STUDY = ((0, 1.8), (1, 1.0), (2, 1.0), (2, 0.7), ("none", 0.7), ("none", 0.5))


def staleness_study() -> None:
    base = load_scenario(Path("scenarios/lossy_case15da_async.toml"))
    network = base.network.model_copy(update={"jitter_ms": 0.0, "loss": 0.0, "mean_ms": 2.5})
    print(f"{'bound':>5} {'relax':>5} {'clear_s':>8} {'iters':>6} {'status':>13} {'gap':>8}", flush=True)
    for bound, relaxation in STUDY:
        scenario = base.model_copy(update={"network": network.model_copy(update={"max_staleness": bound}),
                                           "admm": base.admm.model_copy(update={"relaxation": relaxation})})
        r = clear_interval(scenario, load_feeder(scenario.case), interval_index(scenario.start)).record()
        print(f"{bound!s:>5} {relaxation:5.2f} {r['clearing_ms'] / 1e3:8.1f} {r['iterations']:6d} {r['status']:>13} "
              f"{r['optimality_gap']:8.1e}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", default="case15da,case33bw,case85")
    parser.add_argument("--modes", default="sync,async")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--staleness-study", action="store_true")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    warm_up()
    if args.staleness_study:
        staleness_study()
        return
    print(f"{'case':9} {'seed':>4} {'mode':5} {'variant':7} {'relax':>5} {'clear_s':>8} {'iters':>6} {'fallback':>8} "
          f"{'sent':>9} {'lost':>9} {'retrans':>9} {'acks':>9} {'late':>9} {'gap':>8} {'wall_s':>6}", flush=True)
    for case in args.cases.split(","):
        path = Path(f"scenarios/lossy_{case}.toml")
        base = load_scenario(path if path.exists() else Path("scenarios/lossy_case33bw.toml"))
        feeder = load_feeder(case)
        for seed in (int(s) for s in args.seeds.split(",")):
            for mode in args.modes.split(","):
                for variant, options in VARIANTS[mode]:
                    network = base.network.model_copy(update={"mode": mode, **options})
                    scenario = base.model_copy(update={"case": case, "seed": seed, "network": network})
                    start = time.perf_counter()
                    clearing = clear_interval(scenario, feeder, interval_index(scenario.start))
                    wall = time.perf_counter() - start
                    r = clearing.record()
                    print(f"{case:9} {seed:4d} {mode:5} {variant:7} {scenario.admm_settings().relaxation:5.2f} "
                          f"{r['clearing_ms'] / 1e3:8.1f} {r['iterations']:6d} {str(clearing.fallback):>8} "
                          f"{r['messages_sent']:9d} {r['messages_lost']:9d} {r['messages_retransmitted']:9d} "
                          f"{r['messages_acks']:9d} {r['messages_late']:9d} {r['optimality_gap']:8.1e} {wall:6.0f}",
                          flush=True)


if __name__ == "__main__":
    main()
