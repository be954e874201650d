"""Private clearing: per-operation Paillier times and clearings plain vs private, measured in the same run.

One command: ``python benchmarks/privacy.py [--key-bits 2048] [--cases case15da,case33bw,case85]
[--encrypted-iterations 3]``. Prints

1. per-operation times (ms) with ``phe`` + ``gmpy2``: key generation, an obfuscator ``r^n mod n^2`` (offline),
   an online encryption with a pooled obfuscator, ciphertext addition, multiplication by a 16-bit coefficient,
   CRT decryption and the textbook decryption it replaces;
2. per case (noon, seed 0): the plain ADMM (its defaults), the plain ADMM with the private run's settings, and
   the private clearing computed in the clear (the protocol's exact arithmetic): iterations, wall time, gap to
   the centralized optimum, largest dispatch difference to the plain ADMM (p.u.);
3. per case, the encrypted exchange over ``--encrypted-iterations`` iterations with keys of ``--key-bits``:
   online crypto time and obfuscator time per iteration (all agents, summed and slowest agent), bytes sent per
   iteration, and the *projected* full clearing (that per-iteration cost times the private run's iterations;
   a projection, said so in the output; ``benchmarks/privacy_speed.py`` times a whole encrypted clearing).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from cyber.privacy.paillier import ObfuscatorPool, add, decrypt_without_crt, encode, encrypt, generate_keys, multiply
from cyber.privacy.setup import PrivacySetup, private_settings, secure_pairs
from market.admm import prox
from market.admm.driver import AdmmSettings, solve_admm
from market.instance import build_instance
from market.problem.clearing import solve_clearing
from physical.catalog import load_feeder


def _ms(f, repeat: int) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        f()
    return (time.perf_counter() - start) / repeat * 1e3


def operations(bits: int) -> None:
    start = time.perf_counter()
    keys = generate_keys(1, bits)[0]
    keygen = (time.perf_counter() - start) * 1e3
    pk = keys.public
    pool = ObfuscatorPool(pk)
    obfuscator = _ms(lambda: pool.prepare(1), 10)
    c = encrypt(pk, encode(0.123), pool.take())
    rows = {"key generation": keygen, "obfuscator r^n (offline)": obfuscator,
            "encrypt, pooled obfuscator": _ms(lambda: encrypt(pk, encode(-0.5), pool.take()), 5),
            "add": _ms(lambda: add(pk, c, c), 200),
            "multiply by 16-bit coefficient": _ms(lambda: multiply(pk, c, 54321), 50),
            "decrypt (CRT, phe)": _ms(lambda: keys.decrypt(c), 20),
            "decrypt (textbook)": _ms(lambda: decrypt_without_crt(keys, c), 20)}
    print(f"per operation, {bits}-bit keys (ms)")
    for name, value in rows.items():
        print(f"  {name:<32} {value:9.3f}")
    print(f"  CRT decryption speed-up          {rows['decrypt (textbook)'] / rows['decrypt (CRT, phe)']:9.2f}x")


def clearings(case: str, bits: int, encrypted_iterations: int) -> None:
    instance = build_instance(load_feeder(case), interval="2016-06-21T12:00", seed=0)
    reference = solve_clearing(instance)
    setup = PrivacySetup("paillier", bits)
    private_cfg = private_settings(AdmmSettings(relaxation=1.0))

    def gap(r) -> float:
        return abs(r.objective - reference.objective) / abs(reference.objective)

    def timed(cfg, pairs=None):
        start = time.perf_counter()
        run = solve_admm(instance, cfg, pairs=pairs)
        return run.result, time.perf_counter() - start

    plain, plain_s = timed(AdmmSettings())
    same, same_s = timed(private_cfg)
    private, private_s = timed(private_cfg, secure_pairs(instance, setup, 0, encrypted=False))
    dispatch = max(float(np.nanmax(np.abs(getattr(private, f) - getattr(plain, f)))) for f in ("v", "p", "q"))
    print(f"{case}: {len(instance.agents)} agents, {len(instance.trades)} trades")
    for name, r, s in (("plain (defaults)", plain, plain_s), ("plain, private settings", same, same_s),
                       ("private, clear arithmetic", private, private_s)):
        print(f"  {name:<26} iterations {r.info['iterations']:>5}  wall {s:7.2f} s  gap {gap(r):.1e}")
    print(f"  private vs plain dispatch (v, p, q): {dispatch:.1e} p.u.")
    start = time.perf_counter()
    pairs = secure_pairs(instance, setup, 0)
    keygen_s = time.perf_counter() - start
    pairs.prepare(encrypted_iterations)
    start = time.perf_counter()
    solve_admm(instance, AdmmSettings(**{**private_cfg.__dict__, "max_iter": encrypted_iterations}), pairs=pairs)
    wall = (time.perf_counter() - start) / encrypted_iterations
    online = pairs.crypto_s / encrypted_iterations
    offline = pairs.offline_s / encrypted_iterations
    n_it = private.info["iterations"]
    print(f"  encrypted, {bits}-bit keys, over {encrypted_iterations} iterations (key generation {keygen_s:.1f} s):")
    print(f"    per iteration: wall {wall:.2f} s, crypto online {online.sum():.2f} s (slowest agent "
          f"{online.max():.2f} s), obfuscators offline {offline.sum():.2f} s (slowest agent {offline.max():.2f} s),"
          f" {pairs.bytes_sent.sum() / encrypted_iterations / 1e3:.0f} kB sent")
    print(f"    PROJECTED to {n_it} iterations: wall {wall * n_it:.0f} s in-process; agents in parallel "
          f"(slowest agent) online {online.max() * n_it:.0f} s, offline {offline.max() * n_it:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--key-bits", type=int, default=2048)
    parser.add_argument("--cases", default="case15da,case33bw,case85")
    parser.add_argument("--encrypted-iterations", type=int, default=3)
    args = parser.parse_args()
    prox.warm_up()
    operations(args.key_bits)
    for case in args.cases.split(","):
        clearings(case, args.key_bits, args.encrypted_iterations)


if __name__ == "__main__":
    main()
