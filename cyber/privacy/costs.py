"""What each agent's cryptography costs in simulated time: a per-operation cost model, calibrated once.

A private clearing's crypto work is charged to each agent's compute time in simulated time
(:mod:`cyber.timing`: a message leaves when its sender has computed it, ``MessageBatch.ready_ms``). Two ways
were possible: the wall time each operation took in this run, or a count of operations times a cost per
operation measured once. The count is chosen, for reproducibility: the same scenario gives the same clearing
times, whatever else the machine runs (on this 2-core machine shared by five developers wall times varied 2-4x
with the load), and the same times whether the protocol runs encrypted or in its clear arithmetic (bit for
bit the same integers, :mod:`cyber.privacy.pairs`) -- so long studies need not encrypt. The measured wall time
of the encrypted run is still reported next to it (``crypto_s_*`` in ``summary.json``), and
:func:`measure_costs` re-measures the table (``python benchmarks/privacy_costs.py``).

The operations (all through ``phe`` + ``gmpy2``, as :mod:`cyber.privacy.pairs` runs them):

- ``encrypt``: one encryption with a pooled obfuscator (a request, a pad seed): a nude ciphertext times the
  obfuscator mod ``n^2``;
- ``respond``: a response -- the partner's value encrypted without obfuscator, added to the request,
  multiplied by a 17-bit coefficient, re-randomised with a pooled obfuscator;
- ``add``: one ciphertext addition (packing the responses of a decrypting agent);
- ``decrypt``: one CRT decryption (a packed ciphertext, a seed);
- ``pad``: one pad of a step or its removal (SHAKE-256, 16 bytes; ``hashlib``).

The obfuscators ``r^n mod n^2`` are prepared offline (before the clearing) and not charged to it.

:data:`MEASURED_US`: CPU time per operation in microseconds (``time.process_time``, which the other
developers' processes do not inflate the way they do wall time), median of five rounds of 200 operations
each, measured on this machine (``benchmarks/privacy_costs.py``, 2026-12-07). Key sizes between the measured
ones are interpolated on a log-log scale; above the largest, extrapolated with the last segment's slope.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
from phe import paillier

from cyber.errors import CyberError

OPERATIONS = ("encrypt", "respond", "add", "decrypt", "pad")
#: key bits -> microseconds per operation (see the module docstring for how they were measured).
MEASURED_US: dict[int, dict[str, float]] = {
    1024: {"encrypt": 8.3, "respond": 56.6, "add": 4.6, "decrypt": 497.7, "pad": 1.2},
    2048: {"encrypt": 24.1, "respond": 206.6, "add": 10.4, "decrypt": 3329.5, "pad": 0.9},
    3072: {"encrypt": 25.1, "respond": 370.6, "add": 16.3, "decrypt": 10468.9, "pad": 1.1},
    4096: {"encrypt": 33.7, "respond": 642.7, "add": 26.1, "decrypt": 24752.8, "pad": 1.4},
}


@dataclass(frozen=True)
class CryptoCosts:
    """Microseconds of CPU per operation of the private exchange (the names of :data:`OPERATIONS`)."""

    encrypt: float
    respond: float
    add: float
    decrypt: float
    pad: float

    def __post_init__(self) -> None:
        if not all(math.isfinite(v) and v >= 0 for v in asdict(self).values()):
            raise CyberError(f"privacy crypto costs: expected finite non-negative microseconds, got {asdict(self)}")

    def us(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def zero(cls) -> CryptoCosts:
        """No crypto time: for isolating what the bytes alone cost on the network."""
        return cls(0.0, 0.0, 0.0, 0.0, 0.0)


def costs_for(key_bits: int) -> CryptoCosts:
    """The cost model of ``key_bits``-bit keys from :data:`MEASURED_US` (log-log interpolation)."""
    sizes = sorted(MEASURED_US)
    if key_bits in MEASURED_US:
        return CryptoCosts(**MEASURED_US[key_bits])
    if len(sizes) < 2:
        raise CyberError(f"privacy crypto costs: no measurement for {key_bits}-bit keys")
    lo, hi = (sizes[0], sizes[1]) if key_bits < sizes[0] else (
        (sizes[-2], sizes[-1]) if key_bits > sizes[-1] else
        next((a, b) for a, b in zip(sizes, sizes[1:], strict=False) if a < key_bits < b))
    share = math.log(key_bits / lo) / math.log(hi / lo)
    return CryptoCosts(**{op: math.exp((1 - share) * math.log(max(MEASURED_US[lo][op], 1e-3))
                                       + share * math.log(max(MEASURED_US[hi][op], 1e-3)))
                          for op in OPERATIONS})


def measure_costs(key_bits: int, count: int = 200, rounds: int = 5) -> CryptoCosts:
    """Median CPU microseconds per operation over ``rounds`` rounds of ``count`` operations, with one fresh key
    pair -- the calibration of :data:`MEASURED_US`."""
    from cyber.privacy.paillier import add, encrypt, multiply, obfuscators

    public, private = paillier.generate_paillier_keypair(n_length=key_bits)
    pool = obfuscators(public, 2 * count)
    rng = np.random.default_rng(0)
    values = [int(v) for v in rng.integers(-2**40, 2**40, count)]
    coefficients = [int(v) for v in rng.integers(2**15, 2**17, count)]
    requests = [encrypt(public, -v << 80, r) for v, r in zip(values, pool[:count], strict=True)]
    seed = secrets.token_bytes(32)

    def respond() -> None:
        for q, v, a, r in zip(requests, values, coefficients, pool[count:], strict=True):
            multiply(public, add(public, q, encrypt(public, v << 80, 1)), a) * r % public.nsquare

    def pads() -> None:
        for k in range(count):
            hashlib.shake_256(seed + k.to_bytes(8, "little")).digest(16)

    jobs: dict[str, Callable[[], object]] = {
        "encrypt": lambda: [encrypt(public, -v << 80, r) for v, r in zip(values, pool[:count], strict=True)],
        "respond": respond,
        "add": lambda: [add(public, q, requests[0]) for q in requests],
        "decrypt": lambda: [private.raw_decrypt(q) for q in requests],
        "pad": pads,
    }
    out = {}
    for op, job in jobs.items():
        times = []
        for _ in range(rounds):
            start = time.process_time()
            job()
            times.append((time.process_time() - start) / count * 1e6)
        out[op] = float(np.median(times))
    return CryptoCosts(**out)
