"""Private vs plain clearing in simulated time over a network: what ciphertexts and crypto add.

``python benchmarks/privacy_network.py [--cases case15da,case33bw,case85] [--key-bits 2048] [--latency-ms 5]
[--kbps 1000] [--compute-ms 1]`` clears each case (21 June 2016, noon, seed 0) with the plain ADMM (its defaults)
and with ``--privacy paillier`` and ``hybrid`` over the same network (constant latency, bandwidth, synchronous
rounds, no loss), in the protocol's clear arithmetic: the same messages, sizes and modelled crypto time as the
encrypted run (:mod:`cyber.privacy.costs`), without the hours of encryption case85 would take. It prints
iterations, the simulated clearing time, bytes on the wire, the largest and the total modelled crypto time per
agent and the ratio of each private clearing time to the plain one, all measured in this run.
"""

from __future__ import annotations

import argparse

from cyber.network import ChannelSpec, build_network
from cyber.privacy.setup import PrivacySetup, private_settings, secure_pairs
from cyber.timing import TimedTransport
from market.admm.driver import AdmmSettings, solve_admm
from market.instance import build_instance
from physical.catalog import load_feeder


def clearing(instance, mode: str, bits: int, spec: ChannelSpec, compute_ms: float) -> dict:
    transport = TimedTransport(build_network(instance, spec, seed=0), compute_ms=compute_ms, retransmit=False)
    pairs = None if mode == "plain" else secure_pairs(instance, PrivacySetup(mode, bits), 0, encrypted=False)
    settings = AdmmSettings() if pairs is None else private_settings(AdmmSettings(relaxation=1.0))
    run = solve_admm(instance, settings, transport, pairs=pairs)
    return {"mode": mode, "iterations": run.result.info["iterations"], "converged": run.result.info["converged"],
            "clearing_s": transport.finish() / 1e3, "mb": transport.wire.bytes_sent / 1e6,
            "crypto_max_s": 0.0 if pairs is None else float(pairs.model_s.max()),
            "crypto_total_s": 0.0 if pairs is None else float(pairs.model_s.sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", default="case15da,case33bw,case85")
    parser.add_argument("--key-bits", type=int, default=2048)
    parser.add_argument("--latency-ms", type=float, default=5.0)
    parser.add_argument("--kbps", type=float, default=1000.0)
    parser.add_argument("--compute-ms", type=float, default=1.0)
    args = parser.parse_args()
    spec = ChannelSpec(mean_ms=args.latency_ms, bandwidth_kbps=args.kbps)
    print(f"{args.key_bits}-bit keys; {args.latency_ms:g} ms latency, {args.kbps:g} kbit/s, {args.compute_ms:g} ms "
          "compute per round")
    print("| case | mode | iterations | converged | clearing s (simulated) | x plain | MB on the wire | "
          "crypto max per agent s | crypto all agents s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for case in args.cases.split(","):
        instance = build_instance(load_feeder(case), interval="2016-06-21T12:00", seed=0)
        rows = [clearing(instance, mode, args.key_bits, spec, args.compute_ms)
                for mode in ("plain", "paillier", "hybrid")]
        for r in rows:
            print(f"| {case} | {r['mode']} | {r['iterations']} | {r['converged']} | {r['clearing_s']:.2f} | "
                  f"{r['clearing_s'] / rows[0]['clearing_s']:.2f} | {r['mb']:.2f} | {r['crypto_max_s']:.2f} | "
                  f"{r['crypto_total_s']:.1f} |")


if __name__ == "__main__":
    main()
