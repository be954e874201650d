"""Secure two-party computation of every reciprocity pair: the trade exchange without plaintext trade values.

Replaces the market's :class:`~market.admm.pairs.PlainPairs`. Per trade and iteration (buyer ``b``, seller
``s``, relaxed trade iterates ``x_b, x_s`` in fixed point, coefficients ``a_b, a_s`` drawn afresh by each side
from :class:`~cyber.privacy.coefficient.CoefficientRange`):

1. ``b`` sends ``E_b(-x_b)`` (under its own key, a pooled obfuscator) to ``s``;
2. ``s`` returns ``(E_b(-x_b) E_b(x_s))^{a_s}``, re-randomised with a fresh obfuscator under ``b``'s key (else
   ``b``, which knows its own obfuscator, could read the small ``a_s`` off the ciphertext's randomness);
3. ``b`` adds up the responses of all its sellers into one ciphertext and decrypts ``a_s (x_s - x_b)`` for
   each of them with one CRT decryption (packing, :mod:`cyber.privacy.paillier`: the request of the ``j``-th
   trade of ``b`` holds ``-x_b 2^(80 j)`` and the seller adds ``x_s 2^(80 j)``; a trade's slot ``j`` follows
   from the public list of ``b``'s trades), then multiplies each by ``a_b``;
4. ``b`` sends ``s`` the step ``theta d = a_b a_s (x_s - x_b)`` under a one-time pad from a stream both share
   (:func:`pad_stream`; its seed went to ``s`` encrypted under ``s``'s key, once per clearing).

Steps 1-4 are written for the buyer decrypting; in each trade one side decrypts and the other answers, and
the sides are chosen (:func:`decrypting_sides`) so that the fewest agents decrypt (case15da: its 5 sellers
instead of its 9 buyers); a seller decrypting obtains ``a_b (x_b - x_s)`` and multiplies by ``-a_s``.
Both hold ``theta d`` with ``theta = a_b a_s`` in exact integer arithmetic, and update as
:mod:`cyber.privacy.coefficient` derives. Step 4 replaces the mirror image of steps 1-3 run by the seller
(its own request, the buyer's response, its own decryption), which gives the seller the very same integer:
what the seller learns is unchanged (``a_b (x_s - x_b)``, since it knows ``a_s``), and the clearing's
decryptions are halved. Without keys (``keys=None``) the same integers are computed in the clear -- the
protocol's arithmetic for tests of convergence, bit for bit what the encrypted run computes.

On the network (docs/privacy.md): the pad seeds (and the hybrid's sibling seeds) go out before the first
iteration, step 1 in the x-phase, steps 2 and 4 as two rounds after the sweep, each message through the
ADMM's transport at its size (a ciphertext: ``2 key_bits / 8`` bytes; a padded step: 16), carrying the
agents' crypto as modelled by :mod:`cyber.privacy.costs` (``MessageBatch.ready_ms``). The same messages and
times come out with or without keys. A lost request or response costs its trade the step of that iteration
(both sides take none); a lost step or seed stops the clearing (:attr:`SecurePairs.failure`).

Per-trade residual balancing (:class:`~market.admm.pairs.PairBalancer`) runs at the buyer: both sides' primal
residuals are ``-beta theta d`` and ``(1 - beta) theta d`` and the change of its own copy is its own, so it
evaluates the rule and tells the seller the step every ``every`` iterations (one of three factors).

What is still revealed: each side learns ``a (x_other - x_own)`` with an unknown ``a`` in ``[low, high]``,
i.e. the sign of the partner's difference and its size within a factor ``high / low``; the pair's price (the
duals stay exactly opposite, so each knows the other's); with balancing, the seller learns every ``every``
iterations whether the buyer's copy moved more or less than ``mu`` times the pair's disagreement; and, at
convergence, the agreed trade (their contract).
Pair weights (``weight_rule``): ``geometric`` (default) is the market's local-splitting rule, the trade weight
times the geometric mean of both sides' size factors (:func:`~market.admm.pairs.trade_size_factor`), which
each side needs to know -- so each learns the other's size factor, i.e. the partner's desired injection
``|p_hat|`` when it is below the median of the market (above, only that it is). ``uniform`` reveals nothing
but leaves small prosumers' prices creeping: case85 at noon did not converge in 10000 iterations (gap
6.8e-4) against 2929 iterations (gap 9.8e-10) with ``geometric`` (both without balancing). An eavesdropper
sees only ciphertexts and padded steps.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from functools import partial

import networkx as nx
import numpy as np

from cyber.errors import CyberError
from cyber.privacy.coefficient import COEFFICIENT_BITS, CoefficientRange
from cyber.privacy.costs import CryptoCosts, costs_for
from cyber.privacy.paillier import (
    DEFAULT_KEY_BITS,
    FRACTION_BITS,
    AgentKeys,
    ObfuscatorPool,
    add,
    ciphertext_bytes,
    encode_array,
    encrypt,
    multiply,
    obfuscators,
    unpack,
)
from cyber.privacy.sums import MaskedSums
from market.admm.pairs import pair_weights
from market.admm.states import X_PHASE, Y_PHASE, AgentStates, Exchange
from market.admm.sweep import SUBTREE
from market.formulation.trading import MarketArrays
from market.messages import Inbox, MessageBatch

WEIGHT_RULES = ("geometric", "uniform")
#: Fixed point of ``a (x_s - x_b)``: one coefficient times one value.
ONE_PRODUCT = 1 << (FRACTION_BITS + COEFFICIENT_BITS)
TWO_PRODUCTS = 1 << (FRACTION_BITS + 2 * COEFFICIENT_BITS)
#: Width of a packed slot: ``a_s (x_s - x_b)`` with ``a_s < 2^17`` and ``|x| < 2^22`` p.u. in 40-bit fixed
#: point (:func:`~cyber.privacy.paillier.encode_array`) needs at most 80 bits with its sign.
SLOT_BITS = 80
#: Width of the padded step ``theta d`` (two coefficients, one difference) and of its pad.
PAD_BITS = 128
SEED_BYTES = 32
#: The protocol's messages: the pad seeds and the siblings' mask seeds (two hops, via their parent) before the
#: first iteration, then per iteration a request (x-phase), a response and a padded step (after the sweep).
SEED, SIBLING_UP, SIBLING_DOWN = "private_seed", "private_sibling_seed_up", "private_sibling_seed_down"
REQUEST, RESPONSE, STEP = "private_request", "private_response", "private_step"
OFFLINE_PHASE = "offline"
#: Stage of the response round within the y-phase: after every hop of the sweep (whose stages count from 0).
PRIVATE_STAGE = 1 << 20


@dataclass
class PairObservations:
    """What the buyers received (``a_s (x_s - x_b)`` decoded) next to the truth, for measuring the leak."""

    own: list[np.ndarray] = field(default_factory=list)  # buyer's x_b
    received: list[np.ndarray] = field(default_factory=list)  # a_s (x_s - x_b)
    partner: list[np.ndarray] = field(default_factory=list)  # seller's x_s (never sent)


def pad_stream(seed: bytes, k: int) -> int:
    """The pad of iteration ``k`` from a pair's shared seed: SHAKE-256 (``hashlib``) of seed and counter."""
    return int.from_bytes(hashlib.shake_256(seed + k.to_bytes(8, "little")).digest(PAD_BITS // 8), "little")


def hide(step: int, pad: int) -> int:
    """``step`` (signed) under a one-time pad mod ``2^PAD_BITS``."""
    return (step + pad) % (1 << PAD_BITS)


def reveal(message: int, pad: int) -> int:
    """The signed step of a :func:`hide` message."""
    value = (message - pad) % (1 << PAD_BITS)
    return value - (1 << PAD_BITS) if value >= 1 << (PAD_BITS - 1) else value


def decrypting_sides(buyer: np.ndarray, seller: np.ndarray) -> list[int]:
    """Which side of each trade decrypts: a minimum vertex cover of the bipartite trade graph (``networkx``,
    Koenig's theorem), so the fewest agents decrypt -- one packed decryption each per iteration."""
    graph = nx.Graph()
    buyers = {("b", int(b)) for b in buyer}
    graph.add_nodes_from(buyers)
    graph.add_edges_from((("b", int(b)), ("s", int(s))) for b, s in zip(buyer, seller, strict=True))
    cover = nx.bipartite.to_vertex_cover(graph, nx.bipartite.maximum_matching(graph, top_nodes=buyers),
                                         top_nodes=buyers)
    return [int(b) if ("b", int(b)) in cover else int(s) for b, s in zip(buyer, seller, strict=True)]


class SecurePairs:
    """The pair exchange of the module docstring over Paillier (or in the clear without keys).

    ``keys``: one key pair per agent (index = bus - 1); ``key_bits``: their size without keys (what the
    messages' sizes follow); ``costs``: the per-operation cost model charged in simulated time (default: the
    measured one of ``key_bits``, :mod:`cyber.privacy.costs`). Per agent: ``crypto_s`` (online) and
    ``offline_s`` (obfuscators, the pads' seeds) measured, ``model_s`` the modelled crypto time charged to it,
    ``bytes_sent`` the payload bytes of the protocol's messages it sent. ``failure``: why the clearing cannot
    go on (a lost step or seed, :meth:`project`), else ``None``.
    """

    def __init__(self, n_agents: int, trade_buyer: np.ndarray, trade_seller: np.ndarray,
                 coefficients: CoefficientRange, seed: int, keys: list[AgentKeys] | None = None,
                 observe: bool = False, weight_rule: str = "geometric", subtree_sums: MaskedSums | None = None,
                 key_bits: int = DEFAULT_KEY_BITS, costs: CryptoCosts | None = None) -> None:
        if weight_rule not in WEIGHT_RULES:
            raise CyberError(f"privacy pair weights: expected one of {WEIGHT_RULES}, got {weight_rule!r}")
        self.weight_rule = weight_rule
        self.subtree_sums = subtree_sums  # the sweep's flows as shares (hybrid), else in the clear
        self.buyer, self.seller = np.asarray(trade_buyer), np.asarray(trade_seller)
        self.coefficients, self.keys = coefficients, keys
        self.key_bits = keys[0].public.n.bit_length() if keys else key_bits
        self.costs = costs or costs_for(self.key_bits)
        self.rng = np.random.default_rng(seed)
        self.crypto_s = np.zeros(n_agents)
        self.seed_s = np.zeros(n_agents)
        self.model_s = np.zeros(n_agents)
        self.bytes_sent = np.zeros(n_agents, dtype=np.int64)
        self.failure: str | None = None
        self._opened = False
        self._pending_ms = np.zeros(n_agents)  # modelled work not yet charged to a message of the agent's
        self._seen: dict[str, np.ndarray] = {}
        self._pools: dict[tuple[int, int], ObfuscatorPool] = {}
        self._seeds: list[bytes] | None = None
        self.observations = PairObservations() if observe else None
        self.decryptor = np.array(decrypting_sides(self.buyer, self.seller), dtype=int)
        self.other = np.where(self.decryptor == self.buyer, self.seller, self.buyer)
        # each decrypting agent's trades, in chunks that fit one packed ciphertext
        per = (self.key_bits - 2) // SLOT_BITS
        self._packs: list[tuple[int, np.ndarray]] = []
        for d in sorted(set(self.decryptor.tolist())):
            mine = np.flatnonzero(self.decryptor == d)
            self._packs += [(d, mine[i:i + per]) for i in range(0, len(mine), per)]

    @property
    def offline_s(self) -> np.ndarray:
        out = self.seed_s.copy()
        if self.subtree_sums is not None:
            out += self.subtree_sums.offline_s
        for (holder, _), pool in self._pools.items():
            out[holder] += pool.prepare_s
        return out

    def prepare(self, iterations: int, run: Callable | None = None) -> None:
        """Offline: every agent prepares the obfuscators ``iterations`` exchanges need (its requests under its
        own key, its responses under each decrypting partner's), and every decrypting side sends the other its
        pad seed. ``run``: how a list of zero-argument jobs is run (default: one after the other), e.g. on a
        process pool."""
        needs: dict[tuple[int, int], int] = {}
        for d, o in zip(self.decryptor.tolist(), self.other.tolist(), strict=True):
            for key, count in (((d, d), iterations), ((o, d), iterations), ((d, o), int(self._seeds is None))):
                needs[key] = needs.get(key, 0) + count
        needs = {key: count - len(self._pool(*key)) for key, count in needs.items()}
        for key, ready, seconds in _prepare_all(self, needs, run):
            self._pool(*key).add_prepared(ready, seconds)
        self._share_seeds()

    def weights(self, arr: MarketArrays, trade: float, rule: str) -> tuple[np.ndarray, np.ndarray]:
        if self.weight_rule == "geometric":
            return pair_weights(arr, trade, "geometric")
        ones = np.full(len(arr.trade_buyer), float(trade))
        return ones, ones.copy()

    def inbox_kinds(self) -> dict[str, tuple[int, tuple[str, ...]]]:
        """The protocol's message kinds, one channel per trade (hybrid: per pair of siblings too). They carry
        no float fields: the ciphertexts stay in this object, the messages stand for them on the wire
        (``extra_words``) and say which arrived."""
        kinds = {kind: (len(self.buyer), ()) for kind in (SEED, REQUEST, RESPONSE, STEP)}
        if self.subtree_sums is not None:
            kinds |= {kind: (len(self.subtree_sums.pairs), ()) for kind in (SIBLING_UP, SIBLING_DOWN)}
        return kinds

    def opening_messages(self) -> list[MessageBatch]:
        """Before the first iteration, the offline phase's material that crosses the network: every trade's pad
        seed (decrypting side to the other, under the other's key) and, with hybrid sums, every pair of
        siblings' mask seed (via their parent: two hops)."""
        trades = np.arange(len(self.buyer))
        self._charge(self.decryptor, self.costs.encrypt)
        out = [self._batch(SEED, OFFLINE_PHASE, 0, self.decryptor, self.other, trades, self._words(), 0)]
        sums = self.subtree_sums
        if sums is not None and sums.pairs:
            first, second, parent = (np.array(v, dtype=int) - 1 for v in zip(*sums.pairs, strict=True))
            links = np.arange(len(first))
            self._charge(first, self.costs.encrypt)
            out += [self._batch(SIBLING_UP, OFFLINE_PHASE, 0, first, parent, links, self._words(), 0),
                    self._batch(SIBLING_DOWN, OFFLINE_PHASE, 0, parent, second, links, self._words(), 1)]
        return out

    def messages(self, arr: MarketArrays, s: AgentStates, pair_b: slice, pair_s: slice, k: int,
                 alpha: float) -> list[MessageBatch]:
        """Step 1: every trade's request, decrypting side to the other (a ciphertext; its value is computed in
        :meth:`project` from the same iterate)."""
        self._charge(self.decryptor, self.costs.encrypt)
        return [self._batch(REQUEST, X_PHASE, k, self.decryptor, self.other, np.arange(len(self.buyer)),
                            self._words(), 0)]

    def project(self, y: np.ndarray, z: np.ndarray, u: np.ndarray, inbox: Inbox, sides: tuple[slice, slice],
                weight: tuple[np.ndarray, np.ndarray], k: int, exchange: Exchange) -> Generator:
        """Steps 2-4 as two rounds through ``exchange`` (responses, padded steps), then the pairs' y-update.

        A trade whose request or response did not arrive takes no step this iteration, on both sides (its
        decrypting side knows and pads a zero). A padded step that did not arrive cannot be made up: its
        receiver would not know the step its partner took, and their prices would no longer be exactly
        opposite (every fixed point would move off the optimum); :attr:`failure` says so and the driver stops
        the clearing."""
        (pb, ps), (wb, ws) = sides, weight
        xb, xs = z[pb] - u[pb], z[ps] - u[ps]
        m = len(xb)
        a_b, a_s = self.coefficients.draw(self.rng, m).tolist(), self.coefficients.draw(self.rng, m).tolist()
        Xb, Xs = encode_array(xb), encode_array(xs)
        if self.subtree_sums is not None:
            self._check_shares(inbox, k)
        if not self._opened:
            self._open(inbox)
        asked = self._arrived(inbox, REQUEST)
        rows = np.flatnonzero(asked)
        self._charge(self.other[rows], self.costs.respond)
        yield from exchange([self._batch(RESPONSE, Y_PHASE, k, self.other[rows], self.decryptor[rows], rows,
                                         self._words(), PRIVATE_STAGE)])
        answered = asked & self._arrived(inbox, RESPONSE)
        for d, trades in self._packs:
            got = int(answered[trades].sum())
            self._charge(np.full(max(got - 1, 0), d), self.costs.add)
            self._charge(np.full(int(got > 0), d), self.costs.decrypt)
        if self.keys is None:
            to_b = [a * (t - o) if ok else 0 for a, t, o, ok in zip(a_s, Xs, Xb, answered.tolist(), strict=True)]
            steps = [a * v for a, v in zip(a_b, to_b, strict=True)]
        else:
            steps = self._exchange(Xb, Xs, a_b, a_s, answered)
            to_b = [v // a for v, a in zip(steps, a_b, strict=True)]  # what a decrypting buyer saw
        trades = np.arange(m)
        self._charge(self.decryptor, self.costs.pad)
        yield from exchange([self._batch(STEP, Y_PHASE, k, self.decryptor, self.other, trades, PAD_BITS // 64,
                                         PRIVATE_STAGE + 1)])
        told = self._arrived(inbox, STEP)
        self._charge(self.other[told], self.costs.pad)
        steps = self._tell_others(steps, k)
        if not told.all() and self.failure is None:
            self.failure = (f"the padded step of trade {int(np.flatnonzero(~told)[0])} did not arrive at iteration "
                            f"{k}: the pair's prices would no longer be opposite")
        theta_d = np.array(steps, dtype=float) / TWO_PRODUCTS
        beta = ws / (wb + ws)
        y[pb] = xb + beta * theta_d
        y[ps] = xs - (1 - beta) * theta_d
        if self.observations is not None:
            self.observations.own.append(xb.copy())
            self.observations.received.append(np.array(to_b, dtype=float) / ONE_PRODUCT)
            self.observations.partner.append(xs.copy())

    def _exchange(self, Xb: list[int], Xs: list[int], a_b: list[int], a_s: list[int], answered: np.ndarray
                  ) -> list[int]:
        """Steps 1-3 (module docstring) with either side decrypting: the step ``a_b a_s (x_s - x_b)`` of every
        trade whose response arrived (0 for the others), as the decrypting side holds it."""
        out = [0] * len(Xb)
        for d, trades in self._packs:
            key = self.keys[d]
            pk = key.public
            responses = []
            for slot, j in enumerate(trades):
                if not answered[j]:  # its request or its response was lost: not in the packed sum
                    continue
                buys = self.buyer[j] == d
                own, theirs, a_other = (Xb[j], Xs[j], a_s[j]) if buys else (Xs[j], Xb[j], a_b[j])
                o, shift = int(self.other[j]), SLOT_BITS * slot
                start = time.perf_counter()
                request = encrypt(pk, -own << shift, self._pool(d, d).take())
                middle = time.perf_counter()
                response = multiply(pk, add(pk, request, encrypt(pk, theirs << shift, 1)), a_other)
                responses.append(response * self._pool(o, d).take() % pk.nsquare)
                self.crypto_s[d] += middle - start
                self.crypto_s[o] += time.perf_counter() - middle
            if not responses:
                continue
            start = time.perf_counter()
            packed = responses[0]
            for response in responses[1:]:
                packed = add(pk, packed, response)
            values = unpack(key.decrypt(packed), len(trades), SLOT_BITS)
            self.crypto_s[d] += time.perf_counter() - start
            for j, v in zip(trades, values, strict=True):  # a_other (x_other - x_own), times a_own: the step
                if answered[j]:
                    out[j] = (a_b[j] if self.buyer[j] == d else -a_s[j]) * v
        return out

    def _tell_others(self, steps: list[int], k: int) -> list[int]:
        """Step 4: the decrypting side sends the other its step under the pair's pad; the other removes it."""
        if self.keys is None:
            return steps
        self._share_seeds()
        out = []
        for j, step in enumerate(steps):
            d, o = self.decryptor[j], self.other[j]
            start = time.perf_counter()
            message = hide(step, pad_stream(self._seeds[j], k))
            middle = time.perf_counter()
            out.append(reveal(message, pad_stream(self._seeds[j], k)))
            self.crypto_s[d] += middle - start
            self.crypto_s[o] += time.perf_counter() - middle
        return out

    def _share_seeds(self) -> None:
        """Every trade's pad seed, drawn by its decrypting side and sent to the other under the other's key
        (once)."""
        if self._seeds is not None or self.keys is None:
            return
        self._seeds = []
        for d, o in zip(self.decryptor.tolist(), self.other.tolist(), strict=True):
            receiver = self.keys[o]
            start = time.perf_counter()
            seed = secrets.token_bytes(SEED_BYTES)
            sent = encrypt(receiver.public, int.from_bytes(seed, "little"), self._pool(d, o).take())
            middle = time.perf_counter()
            self._seeds.append(receiver.decrypt(sent).to_bytes(SEED_BYTES, "little"))
            self.seed_s[d] += middle - start
            self.seed_s[o] += time.perf_counter() - middle

    def _open(self, inbox: Inbox) -> None:
        """At the first iteration: the receivers of the offline material decrypt it (charged to them, so in
        their next message); a seed that did not arrive leaves a pair without its pad or a parent's sum without
        its masks cancelling: the clearing cannot go on (:attr:`failure`)."""
        self._opened = True
        self._charge(self.other, self.costs.decrypt)
        kinds = [SEED]
        if self.subtree_sums is not None and self.subtree_sums.pairs:
            self._charge(np.array([second for _, second, _ in self.subtree_sums.pairs], dtype=int) - 1,
                         self.costs.decrypt)
            kinds += [SIBLING_UP, SIBLING_DOWN]
        missing = [kind for kind in kinds if not self._arrived(inbox, kind).all()]
        if missing and self.failure is None:
            self.failure = f"offline material ({missing[0]}) did not arrive: a pad or a mask is missing"

    def _check_shares(self, inbox: Inbox, k: int) -> None:
        """Hybrid: every child's share of this iteration's sweep (and, at the first, of the opening) must have
        arrived -- a stale share in its place would leave its parent a wrong sum without anyone noticing."""
        now = inbox.received[SUBTREE].copy()
        missing = now - self._seen.get(SUBTREE, 0) < (2 if k == 1 else 1)
        self._seen[SUBTREE] = now
        if missing.any() and self.failure is None:
            self.failure = (f"a share of the subtree flows (link {int(np.flatnonzero(missing)[0])}) did not arrive "
                            f"at iteration {k}: its parent's sum would be wrong")

    def _arrived(self, inbox: Inbox, kind: str) -> np.ndarray:
        """Per channel of ``kind``: whether a message arrived since the last look."""
        now = inbox.received[kind].copy()
        new = now > self._seen.get(kind, 0)
        self._seen[kind] = now
        return new

    def _words(self) -> int:
        """64-bit words of a ciphertext (an integer mod ``n^2``), rounded up."""
        return -(-ciphertext_bytes(self.key_bits) // 8)

    def _charge(self, agents: np.ndarray, us: float) -> None:
        """``us`` of modelled crypto for each entry of ``agents`` (repeats add up)."""
        agents = np.asarray(agents, dtype=int)
        np.add.at(self._pending_ms, agents, us / 1e3)
        np.add.at(self.model_s, agents, us / 1e6)

    def _batch(self, kind: str, phase: str, k: int, sender: np.ndarray, receiver: np.ndarray, channel: np.ndarray,
               words: int, stage: int) -> MessageBatch:
        """Messages of the protocol, each leaving when its sender has done the work charged to it so far."""
        sender = np.asarray(sender, dtype=int)
        ready = self._pending_ms[sender].copy()
        self._pending_ms[sender] = 0.0
        np.add.at(self.bytes_sent, sender, words * 8)
        return MessageBatch(kind, phase, k, sender + 1, np.asarray(receiver, dtype=int) + 1,
                            np.asarray(channel, dtype=int), {}, stage, words, ready)

    def _pool(self, holder: int, owner: int) -> ObfuscatorPool:
        pool = self._pools.get((holder, owner))
        if pool is None:
            pool = self._pools[(holder, owner)] = ObfuscatorPool(self.keys[owner].public)
        return pool


#: Most obfuscators in one offline job: a pool's need is cut into jobs of at most this many, handed out largest
#: first, so that processes finish together (case85: pools of 400 to 40,000 obfuscators; uncut and in
#: the order met, one process could be left with a last 40,000 -- several minutes -- while the other idles).
OFFLINE_JOB = 1000


def offline_jobs(needs: dict[tuple[int, int], int], largest: int = OFFLINE_JOB) -> list[tuple[tuple[int, int], int]]:
    """``(pool, count)`` jobs covering every pool's need, none above ``largest``, largest first."""
    jobs = [(key, min(largest, count - start)) for key, count in needs.items() for start in range(0, count, largest)]
    return sorted(jobs, key=lambda job: -job[1])


def _prepare_all(pairs: SecurePairs, needs: dict[tuple[int, int], int], run: Callable | None
                 ) -> list[tuple[tuple[int, int], list[int], float]]:
    """The obfuscators of every (holder, key owner) pool, as jobs (:func:`offline_jobs`) handed to ``run``."""
    jobs = [partial(_timed_obfuscators, pairs.keys[owner].public, count, (holder, owner))
            for (holder, owner), count in offline_jobs(needs)]
    return (run or (lambda js: [j() for j in js]))(jobs)


def _timed_obfuscators(public, count: int, key: tuple[int, int]) -> tuple[tuple[int, int], list[int], float]:
    start = time.perf_counter()
    ready = obfuscators(public, count)
    return key, ready, time.perf_counter() - start
