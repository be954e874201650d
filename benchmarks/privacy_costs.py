"""Per-operation CPU cost of the private exchange: the calibration of ``cyber.privacy.costs.MEASURED_US``.

``python benchmarks/privacy_costs.py [--key-bits 1024,2048,3072,4096] [--count 200] [--rounds 5]`` prints, per
key size, the median CPU microseconds of each operation (encrypt with a pooled obfuscator, respond, add, CRT
decrypt, pad) next to the table the simulator charges, and their ratio measured in this run.

``--validate`` then checks the model against a clearing: case15da at noon, 10 iterations with prepared
obfuscators and seeds, encrypted and in the clear arithmetic; it prints the CPU time the encrypted run spent
beyond the clear one next to what the model charges for the same operations (the seeds, prepared beforehand,
left out of both), and the wall-time brackets' ratio to the model per decrypting agent.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from cyber.privacy.costs import MEASURED_US, OPERATIONS, measure_costs
from cyber.privacy.setup import PrivacySetup, private_settings, secure_pairs
from market.admm.driver import AdmmSettings, solve_admm
from market.instance import build_instance
from physical.catalog import load_feeder


def validate(bits: int, iterations: int = 10) -> None:
    instance = build_instance(load_feeder("case15da"), interval="2016-06-21T12:00", seed=0)
    settings = private_settings(AdmmSettings(relaxation=1.0, max_iter=iterations))
    cpu = {}
    solve_admm(instance, settings, pairs=secure_pairs(instance, PrivacySetup("paillier", bits), 0, encrypted=False))
    for encrypted in (False, True):  # (after a first run: kernels loaded and compiled)
        pairs = secure_pairs(instance, PrivacySetup("paillier", bits), 0, encrypted=encrypted)
        if encrypted:
            pairs.prepare(iterations)
        start = time.process_time()
        solve_admm(instance, settings, pairs=pairs)
        cpu[encrypted] = time.process_time() - start
    seeds = len(instance.trades) * (pairs.costs.encrypt + pairs.costs.decrypt) / 1e6
    model = pairs.model_s.sum() - seeds
    decrypting = np.unique(pairs.decryptor)
    ratio = np.round(pairs.crypto_s[decrypting] / pairs.model_s[decrypting], 2)
    print(f"case15da, {iterations} iterations, {bits} bits: CPU beyond the clear arithmetic "
          f"{cpu[True] - cpu[False]:.3f} s, model {model:.3f} s (ratio {(cpu[True] - cpu[False]) / model:.2f}); "
          f"wall brackets / model per decrypting agent {ratio}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--key-bits", default="1024,2048,3072,4096")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--validate", action="store_true")
    args = parser.parse_args()
    for bits in (int(b) for b in args.key_bits.split(",")):
        measured = measure_costs(bits, args.count, args.rounds).us()
        table = MEASURED_US.get(bits)
        print(f"{bits}: {{" + ", ".join(f'"{op}": {measured[op]:.1f}' for op in OPERATIONS) + "},")
        if table is not None:
            print("   ratio measured / table: " + ", ".join(
                f"{op} {measured[op] / table[op]:.2f}" if table[op] else f"{op} -" for op in OPERATIONS))
        if args.validate:
            validate(bits)


if __name__ == "__main__":
    main()
