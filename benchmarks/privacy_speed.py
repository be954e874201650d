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

A stopped offline phase resumes where it was when run again with the same options (``S.head`` keeps the
instance and keys, ``S.spool`` the obfuscators made so far; both go when ``S`` is written).

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


def _read_spool(path: str) -> list:
    """The offline jobs a previous run finished (one pickle each, appended as they came); a record cut short by
    the run being stopped is dropped, and the file cut back to the last whole one."""
    records, good = [], 0
    if os.path.exists(path):
        with open(path, "rb") as f:
            while True:
                try:
                    records.append(pickle.load(f))
                except (EOFError, pickle.UnpicklingError, ValueError):
                    break
                good = f.tell()
        os.truncate(path, good)
    return records


def _run_spooled(pool: ProcessPoolExecutor, spool: str, jobs: list) -> list:
    """The offline jobs on ``pool``, each finished one appended to ``spool`` at once (a stopped run resumes
    from it: the jobs it already holds are not run again), with a progress line (obfuscators done, rate, load)
    every 5 % of them."""
    done = _read_spool(spool)
    have: dict = {}
    for key, ready, _ in done:
        have[key] = have.get(key, 0) + len(ready)
    todo = []
    for job in jobs:  # a pool's jobs are 1000s then its remainder: skip as many as the spool covers
        key, count = job.args[2], job.args[1]
        if have.get(key, 0) >= count:
            have[key] -= count
        else:
            todo.append(job)
    total, resumed = sum(job.args[1] for job in jobs), sum(len(ready) for _, ready, _ in done)
    if resumed:
        print(f"  offline: resuming, {resumed}/{total} obfuscators already in {spool}", flush=True)
    futures = {pool.submit(_call, job): job.args[1] for job in todo}
    count, start, step = resumed, time.perf_counter(), max(len(todo) // 20, 1)
    with open(spool, "ab") as f:
        for i, future in enumerate(as_completed(futures), 1):
            done.append(future.result())
            pickle.dump(done[-1], f)
            f.flush()
            count += futures[future]
            if i % step == 0 or i == len(todo):
                wall = time.perf_counter() - start
                print(f"  offline progress: {count}/{total} obfuscators, {wall:.0f} s wall, "
                      f"{(count - resumed) / wall:.1f} per s, load average {os.getloadavg()[0]:.1f}", flush=True)
    return done


def offline(case: str, state: str, bits: int, workers: int, iterations: int | None) -> None:
    """Everything but the obfuscators is computed once and kept in ``state.head`` (the keys among it), the
    obfuscators in ``state.spool`` as they come: run again with the same ``--state``, a stopped offline phase
    goes on where it was."""
    head_path, spool = state + ".head", state + ".spool"
    if os.path.exists(head_path):
        with open(head_path, "rb") as f:
            head = pickle.load(f)
        if (head["case"], head["bits"], head["requested"]) != (case, bits, iterations):
            raise SystemExit(f"{head_path} was made for {head['case']}, {head['bits']} bits, --iterations "
                             f"{head['requested']}: remove it (and {spool}) or give the same options")
    else:
        prox.warm_up()
        instance = build_instance(load_feeder(case), interval="2016-06-21T12:00", seed=0)
        reference = solve_clearing(instance)
        plain = solve_admm(instance).result
        cfg = private_settings(AdmmSettings(relaxation=1.0))
        clear = solve_admm(instance, cfg, pairs=secure_pairs(instance, PrivacySetup("paillier", bits), 0,
                                                              encrypted=False)).result
        if iterations is not None:
            cfg = AdmmSettings(**{**cfg.__dict__, "max_iter": iterations})
        start = time.perf_counter()
        pairs = secure_pairs(instance, PrivacySetup("paillier", bits), 0)
        head = {"instance": instance, "settings": cfg, "pairs": pairs, "reference": reference.objective,
                "plain": plain, "full_iterations": clear.info["iterations"], "case": case, "bits": bits,
                "requested": iterations, "keygen": time.perf_counter() - start}
        with open(head_path + ".tmp", "wb") as f:
            pickle.dump(head, f)
        os.replace(head_path + ".tmp", head_path)
    pairs, full = head["pairs"], head["full_iterations"]
    n_it = full if iterations is None else iterations
    start = time.perf_counter()
    with ProcessPoolExecutor(workers) as pool:
        pairs.prepare(n_it, run=partial(_run_spooled, pool, spool))
    prepare = time.perf_counter() - start
    with open(state, "wb") as f:
        pickle.dump({key: head[key] for key in ("instance", "settings", "pairs", "reference", "plain",
                                                 "full_iterations", "case")}, f)
    os.remove(spool)
    os.remove(head_path)
    print(f"{case}: {len(head['instance'].agents)} agents, {len(head['instance'].trades)} trades, {bits}-bit keys, "
          f"{len(set(pairs.decryptor))} decrypting agents; prepared {n_it} iterations (the clear arithmetic takes "
          f"{full})")
    print(f"  offline: key generation {head['keygen']:.1f} s, obfuscators and pad seeds {prepare:.1f} s wall on "
          f"{workers} processes in this run ({pairs.offline_s.sum():.1f} s in the workers in all runs, busiest "
          f"agent {pairs.offline_s.max():.1f} s)")


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
