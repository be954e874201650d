"""Multi-party sums of the sweep: a parent learns the total of its children's line flows, never one child's.

In the sweep splitting (:mod:`market.admm.sweep`) a child tells its parent the parent voltage and line flows
``(w, P, Q)`` its subtree would like. The parent's equalities use the flows only through their sum over its
children (power balance, rows E1 and E2); only the voltage enters child by child. So the flows can travel as
*additive shares* of that sum:

- **offline** (once per clearing): every pair of siblings ``i < l`` gets a shared 256-bit seed: ``i`` draws it
  from the operating system and sends it to ``l`` encrypted under ``l``'s Paillier key, relayed by their parent,
  which sees only the ciphertext. Expanded by SHAKE-256 (``hashlib``), the seeds give every child ``c`` a mask
  per iteration and field, ``m_c = sum_(l > c) PRF(s_cl) - sum_(l < c) PRF(s_lc) mod 2^53``: the masks of
  a parent's children are additive shares of zero, Paillier-generated correlated randomness;
- **online**: child ``c`` sends ``enc(P_c) + m_c mod 2^53`` (``enc``: signed fixed point with
  :data:`FRACTION_BITS` fraction bits, ``2^-35 = 2.9e-11`` p.u. per value) in the message's ``P`` field (and
  likewise ``Q``); the parent adds its children's shares mod ``2^53`` and the masks cancel: it has the exact
  fixed-point sum and nothing else. An integer below ``2^53`` travels exactly in the float64 field, so the
  message keeps its size.

A share is uniform on ``[0, 2^53)`` whatever the flow (the mask is, and is independent of it; tested), so a
parent, an eavesdropper, or a sibling (which never sees another's share) learns nothing of one child's flow
from it -- unless the parent has a single child: its "sum" is that child's flow, sent as its share with mask
zero, and nothing hides it (a radial chain). Still revealed: the parent's sum at every iteration; the
child's voltage preference ``w`` (it enters the parent's equalities child by child), sent in the clear.
Every share of a round must arrive: a lost share leaves a stale one in its place and the masks no longer
cancel, so this exchange is not combined with a lossy network, and a share missing from its iteration's sweep
(later than the round's timeout) stops the clearing (:class:`~cyber.privacy.pairs.SecurePairs`).
"""

from __future__ import annotations

import hashlib
import secrets
import time

import numpy as np

from cyber.errors import CyberError
from cyber.privacy.paillier import AgentKeys, ObfuscatorPool, encrypt

#: Shares live in the integers mod ``2^MODULUS_BITS``: below ``2^53`` a float64 holds them exactly.
MODULUS_BITS = 53
MODULUS = 1 << MODULUS_BITS
#: Fixed point of a flow share: a flow below ``2^12`` p.u. summed over up to ``2^6`` children stays in the
#: signed range ``2^52``.
FRACTION_BITS = 34
MAX_VALUE = 2.0**12
SEED_BYTES = 32


def _prf(seed: bytes, k: int) -> tuple[int, int]:
    """Two 53-bit words (the P and Q masks) of iteration ``k`` from a pair's seed (SHAKE-256)."""
    stream = hashlib.shake_256(seed + k.to_bytes(8, "little")).digest(16)
    return (int.from_bytes(stream[:8], "little") % MODULUS, int.from_bytes(stream[8:], "little") % MODULUS)


def decode_share(shares: np.ndarray) -> np.ndarray:
    """A share read as if it were the flow (signed fixed point): what a curious parent can make of one."""
    ints = np.asarray(shares).astype(np.int64)
    return np.ldexp(np.where(ints >= MODULUS // 2, ints - MODULUS, ints).astype(float), -FRACTION_BITS)


class MaskedSums:
    """The sweep's subtree flows as additive shares of each parent's sum (see the module docstring).

    ``parent``: the feeder's parent of every bus (bus 0 the substation); ``keys``: one Paillier key pair per
    agent (index = bus - 1) for the offline seed exchange, or ``None`` to draw the seeds without encryption (the
    same online arithmetic, for tests). ``offline_s``: per agent, the time its seed exchange took.
    """

    def __init__(self, parent: np.ndarray, keys: list[AgentKeys] | None = None) -> None:
        parent = np.asarray(parent)
        n_agents = len(parent) - 1
        self.offline_s = np.zeros(n_agents)
        self.seeds: dict[int, list[tuple[bytes, int]]] = {}  # per child: (seed, sign) with each sibling
        self.single = set()  # children without siblings: their share is their flow
        self.pairs: list[tuple[int, int, int]] = []  # (sender, receiver, parent) of every sibling seed (buses)
        for p in range(1, len(parent)):
            children = [int(c) for c in np.flatnonzero(parent == p) if c > 0]
            if len(children) == 1:
                self.single.add(children[0])
            if len(children) > 1 << (MODULUS_BITS - 1 - FRACTION_BITS - 12):
                raise CyberError(f"privacy sums: bus {p} has {len(children)} children, more than the shares' "
                                 f"fixed point allows")
            for i, a in enumerate(children):
                for b in children[i + 1:]:
                    seed = self._exchange(a, b, keys)
                    self.pairs.append((a, b, p))
                    self.seeds.setdefault(a, []).append((seed, 1))
                    self.seeds.setdefault(b, []).append((seed, -1))

    def _exchange(self, sender: int, receiver: int, keys: list[AgentKeys] | None) -> bytes:
        """Offline: ``sender`` draws a seed and sends it to ``receiver`` under ``receiver``'s key."""
        seed = secrets.token_bytes(SEED_BYTES)
        if keys is None:
            return seed
        key = keys[receiver - 1]
        start = time.perf_counter()
        pool = ObfuscatorPool(key.public, batch=1)
        sent = encrypt(key.public, int.from_bytes(seed, "little"), pool.take())
        middle = time.perf_counter()
        received = key.decrypt(sent).to_bytes(SEED_BYTES, "little")
        self.offline_s[sender - 1] += middle - start
        self.offline_s[receiver - 1] += time.perf_counter() - middle
        return received

    def mask(self, child: int, k: int) -> tuple[int, int]:
        """Child bus ``child``'s masks of ``P`` and ``Q`` at iteration ``k`` (integers mod ``2^53``)."""
        p = q = 0
        for seed, sign in self.seeds.get(child, ()):
            dp, dq = _prf(seed, k)
            p, q = p + sign * dp, q + sign * dq
        return p % MODULUS, q % MODULUS

    def hide(self, k: int, child_bus: np.ndarray, flows: np.ndarray) -> np.ndarray:
        """What each child sends for its ``(P, Q)`` (rows: links): its share, exactly representable as float."""
        flows = np.asarray(flows, dtype=float)
        if flows.size and not np.abs(flows).max() < MAX_VALUE:
            raise CyberError(f"privacy sums: a flow of {np.abs(flows).max():g} p.u. is out of the shares' range")
        fixed = np.rint(np.ldexp(flows, FRACTION_BITS)).astype(np.int64)
        masks = np.array([self.mask(int(c), k) for c in child_bus], dtype=np.int64).reshape(fixed.shape)
        return ((fixed + masks) % MODULUS).astype(float)

    def total(self, to_parent: np.ndarray, shares: np.ndarray) -> np.ndarray:
        """Each parent's sum of its children's flows from their shares (rows: the parents of ``to_parent``)."""
        ints = shares.astype(np.int64)
        sums = np.zeros((to_parent.shape[1], shares.shape[1]), dtype=np.int64)
        for link, p in enumerate(to_parent.argmax(axis=1)):
            sums[p] = (sums[p] + ints[link]) % MODULUS
        signed = np.where(sums >= MODULUS // 2, sums - MODULUS, sums)
        return np.ldexp(signed.astype(float), -FRACTION_BITS)
