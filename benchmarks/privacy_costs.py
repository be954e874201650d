"""Per-operation CPU cost of the private exchange: the calibration of ``cyber.privacy.costs.MEASURED_US``.

``python benchmarks/privacy_costs.py [--key-bits 1024,2048,3072,4096] [--count 200] [--rounds 5]`` prints, per
key size, the median CPU microseconds of each operation (encrypt with a pooled obfuscator, respond, add, CRT
decrypt, pad) next to the table the simulator charges, and their ratio measured in this run.
"""

from __future__ import annotations

import argparse

from cyber.privacy.costs import MEASURED_US, OPERATIONS, measure_costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--key-bits", default="1024,2048,3072,4096")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    for bits in (int(b) for b in args.key_bits.split(",")):
        measured = measure_costs(bits, args.count, args.rounds).us()
        table = MEASURED_US.get(bits)
        print(f"{bits}: {{" + ", ".join(f'"{op}": {measured[op]:.1f}' for op in OPERATIONS) + "},")
        if table is not None:
            print("   ratio measured / table: " + ", ".join(
                f"{op} {measured[op] / table[op]:.2f}" if table[op] else f"{op} -" for op in OPERATIONS))


if __name__ == "__main__":
    main()
