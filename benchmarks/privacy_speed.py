"""Private clearing wall time, offline and online apart: the clearing an agent waits for vs the work before it.

Two commands, so that ``farm-bench`` can time the online one as a whole process:

``python benchmarks/privacy_speed.py offline --case case15da --state /tmp/state.pkl [--key-bits 2048]
[--workers 2]`` builds the instance (noon, seed 0), every agent's key pair and the obfuscators and pad seeds
of as many iterations as the same clearing takes in the protocol's clear arithmetic (bit for bit the encrypted
run's, so the count is exact; a deployment would prepare a margin and refill), on ``--workers`` processes, and
pickles them. It prints the offline cost.

``python benchmarks/privacy_speed.py online --state /tmp/state.pkl`` loads that state and runs the encrypted
clearing; it prints iterations, wall time, the gap to the centralized optimum, the largest dispatch difference
to the plain ADMM (both computed before the clock starts are not part of it: they are read from the state), and
the crypto time per agent (max, total) and bytes sent. Every run of ``online`` replays the same prepared
obfuscators -- fine for timing, never for secrecy.

``--iterations N`` (offline) prepares N iterations only and ``online`` then stops after N (a truncated run, for
cases whose full offline phase takes hours; the output says so).
"""

from __future__ import annotations

import argparse
import os
import pickle
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from functools import partial

import numpy as np

from cyber.privacy.setup import PrivacySetup, private_settings, secure_pairs
from market.admm import prox
from market.admm.driver import AdmmSettings, solve_admm
from market.instance import build_instance
from market.problem.clearing import solve_clearing
from physical.catalog import load_feeder


def _call(job):
    return job()


def _run_reporting(pool: ProcessPoolExecutor, jobs: list) -> list:
    """The offline jobs on ``pool``, with a progress line (obfuscators done, rate) every 5 % of them, so that a
    run stopped early still says how far it got."""
    total, done, start = sum(job.args[1] for job in jobs), 0, time.perf_counter()
    futures = {pool.submit(_call, job): job.args[1] for job in jobs}
    out, step = [], max(len(jobs) // 20, 1)
    for i, future in enumerate(as_completed(futures), 1):
        out.append(future.result())
        done += futures[future]
        if i % step == 0 or i == len(jobs):
            wall = time.perf_counter() - start
            print(f"  offline progress: {done}/{total} obfuscators, {wall:.0f} s wall, {done / wall:.1f} per s, "
                  f"load average {os.getloadavg()[0]:.1f}", flush=True)
    return out


def offline(case: str, state: str, bits: int, workers: int, iterations: int | None) -> None:
    prox.warm_up()
    instance = build_instance(load_feeder(case), interval="2016-06-21T12:00", seed=0)
    reference = solve_clearing(instance)
    plain = solve_admm(instance).result
    cfg = private_settings(AdmmSettings(relaxation=1.0))
    clear = solve_admm(instance, cfg, pairs=secure_pairs(instance, PrivacySetup("paillier", bits), 0,
                                                          encrypted=False)).result
    n_it = clear.info["iterations"] if iterations is None else iterations
    if iterations is not None:
        cfg = AdmmSettings(**{**cfg.__dict__, "max_iter": iterations})
    start = time.perf_counter()
    pairs = secure_pairs(instance, PrivacySetup("paillier", bits), 0)
    keygen = time.perf_counter() - start
    start = time.perf_counter()
    with ProcessPoolExecutor(workers) as pool:
        pairs.prepare(n_it, run=partial(_run_reporting, pool))
    prepare = time.perf_counter() - start
    with open(state, "wb") as f:
        pickle.dump({"instance": instance, "settings": cfg, "pairs": pairs, "reference": reference.objective,
                     "plain": plain, "full_iterations": clear.info["iterations"], "case": case}, f)
    print(f"{case}: {len(instance.agents)} agents, {len(instance.trades)} trades, {bits}-bit keys, "
          f"{len(set(pairs.decryptor))} decrypting agents; prepared {n_it} iterations "
          f"(the clear arithmetic takes {clear.info['iterations']})")
    print(f"  offline: key generation {keygen:.1f} s, obfuscators and pad seeds {prepare:.1f} s wall on {workers} "
          f"processes ({pairs.offline_s.sum():.1f} s CPU in all, busiest agent {pairs.offline_s.max():.1f} s)")


def online(state: str) -> None:
    start = time.perf_counter()
    with open(state, "rb") as f:
        s = pickle.load(f)
    pairs = s["pairs"]
    run = solve_admm(s["instance"], s["settings"], pairs=pairs).result
    wall = time.perf_counter() - start
    gap = abs(run.objective - s["reference"]) / abs(s["reference"])
    dispatch = max(float(np.nanmax(np.abs(getattr(run, f) - getattr(s["plain"], f)))) for f in ("v", "p", "q"))
    n_it = run.info["iterations"]
    truncated = "" if run.info["converged"] else f" TRUNCATED (the full clearing takes {s['full_iterations']})"
    print(f"{s['case']} online: {n_it} iterations{truncated}, wall {wall:.2f} s (state load included), gap "
          f"{gap:.1e}, dispatch vs plain {dispatch:.1e} p.u.; crypto per agent max {pairs.crypto_s.max():.2f} s, "
          f"all agents {pairs.crypto_s.sum():.2f} s; {pairs.bytes_sent.sum() / 1e6:.2f} MB sent")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("phase", choices=("offline", "online"))
    parser.add_argument("--state", required=True)
    parser.add_argument("--case", default="case15da")
    parser.add_argument("--key-bits", type=int, default=2048)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--iterations", type=int)
    args = parser.parse_args()
    if args.phase == "offline":
        offline(args.case, args.state, args.key_bits, args.workers, args.iterations)
    else:
        online(args.state)


if __name__ == "__main__":
    main()
