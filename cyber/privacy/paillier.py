"""Paillier keys, fixed-point encoding and precomputed obfuscators, all arithmetic through ``phe``.

Paillier with ``g = n + 1`` (``phe``'s choice): ``E(m) = (1 + m n) r^n mod n^2``. The costly part, the
obfuscator ``r^n mod n^2``, does not depend on the message, so a party prepares a pool of them *offline*
(before the clearing, e.g. in the 15 minutes between two) and an online encryption is one multiplication mod
``n^2`` of ``phe``'s nude ciphertext ``raw_encrypt(m, r_value=1)`` by a fresh pooled obfuscator. Every
obfuscator is used once. Decryption is ``phe``'s ``raw_decrypt``, which works mod ``p^2`` and ``q^2``
separately and recombines by the Chinese remainder theorem; :func:`decrypt_without_crt` is the textbook
``L(c^lambda mod n^2) mu mod n`` kept only to measure what CRT saves (and tested against ``phe``).

Packing: ``k`` ciphertexts ``E(m_j 2^(W j))`` under one key, each already placed in its slot ``j`` (the
shift is a plaintext multiplication, done before encrypting), add up (``phe``'s ciphertext addition) to one,
``E(sum_j m_j 2^(W j))``, whose owner recovers the ``k`` small signed values (:func:`unpack`) with one CRT
decryption instead of ``k``. Each value must lie in ``(-2^(W-1), 2^(W-1))`` and ``k W`` below the modulus'
bits less two (signed slots borrow from the next one; :func:`unpack` undoes the borrow).

Fixed point: a real ``x`` travels as the integer ``round(x 2^FRACTION_BITS)``; with 40 fraction bits the
quantisation is ``2^-41 = 4.5e-13`` p.u. per value, far below the ADMM's tolerances (1e-6). Negative integers
are represented mod ``n`` and decoded from the upper half. Keys: 2048 bits by default; below 1024 bits is
refused (:func:`check_key_bits`). Key material and obfuscators come from the operating system's randomness
(``phe`` uses ``secrets``), never from the simulation seed: they do not change any result, only its secrecy.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import gmpy2
import numpy as np
from phe import paillier

from cyber.errors import CyberError

DEFAULT_KEY_BITS = 2048
MIN_KEY_BITS = 1024
FRACTION_BITS = 40


def check_key_bits(bits: int, minimum: int = MIN_KEY_BITS) -> int:
    """``bits`` if it is a usable modulus size, else a clear error (below 1024 bits factoring is practical)."""
    if isinstance(bits, bool) or not isinstance(bits, int) or bits < minimum or bits % 8:
        raise CyberError(f"privacy key_bits: expected a multiple of 8 of at least {minimum} bits "
                         f"(1024 is the least that resists factoring; 2048 recommended), got {bits!r}")
    return bits


def ciphertext_bytes(key_bits: int) -> int:
    """Bytes of a ciphertext on the wire: an integer mod ``n^2``, ``n`` of ``key_bits`` bits."""
    return -(-2 * key_bits // 8)


def encode(x: float) -> int:
    """Fixed point: ``round(x 2^FRACTION_BITS)``."""
    return round(x * (1 << FRACTION_BITS))


def encode_array(x: np.ndarray) -> list[int]:
    """:func:`encode` of every entry at once (``|x| < 2^22``, far above any p.u. value of the market)."""
    x = np.asarray(x, dtype=float)
    if x.size and not np.abs(x).max() < 2.0**22:
        raise CyberError(f"privacy fixed point: a value of magnitude {np.abs(x).max():g} is out of range")
    return np.rint(np.ldexp(x, FRACTION_BITS)).astype(np.int64).tolist()


@dataclass
class AgentKeys:
    """One agent's Paillier key pair."""

    public: paillier.PaillierPublicKey
    private: paillier.PaillierPrivateKey

    def decrypt(self, ciphertext: int) -> int:
        """The signed integer a ciphertext holds (CRT decryption)."""
        m = self.private.raw_decrypt(int(ciphertext))
        n = self.public.n
        return m - n if m > n // 2 else m


def generate_keys(count: int, key_bits: int = DEFAULT_KEY_BITS, minimum: int = MIN_KEY_BITS) -> list[AgentKeys]:
    """A key pair per agent (``minimum`` is lowered only by tests of the protocol's arithmetic)."""
    check_key_bits(key_bits, minimum)
    return [AgentKeys(*paillier.generate_paillier_keypair(n_length=key_bits)) for _ in range(count)]


@dataclass
class ObfuscatorPool:
    """Obfuscators ``r^n mod n^2`` under one public key, prepared ahead and each used once.

    ``take`` refills the pool by ``batch`` when it runs dry; ``prepare_s`` is the time spent preparing (the
    offline work: it does not depend on any value the market computes).
    """

    public: paillier.PaillierPublicKey
    batch: int = 8
    prepare_s: float = 0.0
    _ready: list[int] = field(default_factory=list)

    def prepare(self, count: int) -> None:
        start = time.perf_counter()
        self._ready += obfuscators(self.public, count)
        self.prepare_s += time.perf_counter() - start

    def add_prepared(self, ready: list[int], seconds: float) -> None:
        """Obfuscators prepared elsewhere (e.g. in another process, :func:`obfuscators`)."""
        self._ready += ready
        self.prepare_s += seconds

    def __len__(self) -> int:
        return len(self._ready)

    def take(self) -> int:
        if not self._ready:
            self.prepare(self.batch)
        return self._ready.pop()


def obfuscators(public: paillier.PaillierPublicKey, count: int) -> list[int]:
    """``count`` fresh obfuscators ``r^n mod n^2`` (``r`` from ``phe``'s random source)."""
    n, nsq = public.n, public.nsquare
    return [int(gmpy2.powmod(public.get_random_lt_n(), n, nsq)) for _ in range(count)]


def encrypt(public: paillier.PaillierPublicKey, value: int, obfuscator: int) -> int:
    """``E(value)`` with a prepared obfuscator: ``phe``'s nude ciphertext times ``r^n`` mod ``n^2``."""
    return int(gmpy2.mul(public.raw_encrypt(value % public.n, r_value=1), obfuscator) % public.nsquare)


def add(public: paillier.PaillierPublicKey, a: int, b: int) -> int:
    """``E(x + y)`` from ``E(x)`` and ``E(y)`` (``phe``'s ciphertext addition)."""
    return _number(public, a)._raw_add(a, b)


def multiply(public: paillier.PaillierPublicKey, a: int, scalar: int) -> int:
    """``E(k x)`` from ``E(x)`` and a signed integer ``k`` (``phe``'s scalar multiplication)."""
    return _number(public, a)._raw_mul(scalar % public.n)


def slots(public: paillier.PaillierPublicKey, slot_bits: int) -> int:
    """How many signed slots of ``slot_bits`` one plaintext holds."""
    return (public.n.bit_length() - 2) // slot_bits


def unpack(value: int, count: int, slot_bits: int) -> list[int]:
    """The ``count`` signed slots ``m_0 .. m_(count-1)`` of a decrypted ``sum_j m_j 2^(slot_bits j)``."""
    out = []
    half, full = 1 << (slot_bits - 1), 1 << slot_bits
    for _ in range(count):
        low = value % full
        low = low - full if low >= half else low
        out.append(low)
        value = (value - low) >> slot_bits
    if value:
        raise CyberError("privacy packing: a slot overflowed its width")
    return out


def _number(public: paillier.PaillierPublicKey, ciphertext: int) -> paillier.EncryptedNumber:
    return paillier.EncryptedNumber(public, int(ciphertext), 0)


def decrypt_without_crt(keys: AgentKeys, ciphertext: int) -> int:
    """Textbook decryption ``L(c^lambda mod n^2) mu mod n``, ``mu = lambda^-1 mod n`` (for ``g = n + 1``):
    the path CRT replaces; for measuring only."""
    p, q, n = keys.private.p, keys.private.q, keys.public.n
    lam = (p - 1) * (q - 1)
    m = (int(gmpy2.powmod(int(ciphertext), lam, keys.public.nsquare)) - 1) // n * int(gmpy2.invert(lam, n)) % n
    return m - n if m > n // 2 else m
