"""Screening received messages: the detector interface, the transport that applies it, and its scoring.

A detector sits at every receiving agent (Algorithm 2 of seed 001): for each message field that arrives it
accepts the value, replaces it by its own forecast, or rejects the message (the receiver then keeps the last
value it had). Detectors here are batched -- one object serves all agents, but every agent's decision uses
only what that agent received and its own values (the ``local`` reports of :mod:`market.admm.consensus`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from market.admm.driver import Splitting
from market.admm.states import LOCAL
from market.admm.stopping import KIND as STOP_KIND
from market.messages import MessageBatch, Transport

#: The decision band's defaults (the tensor detector's): nominal false-alarm rate ``alpha`` (``z_(1 - alpha/2)``
#: robust scales), the absolute floor added to the band (p.u.), and how many of a slot's last errors its robust
#: scale is the median of. An attacker that knows the defence models the band with the same numbers.
BAND_ALPHA, BAND_FLOOR, BAND_MEMORY = 0.1, 1e-5, 9
#: A robust scale from the median absolute error: 1.4826 x median is the standard deviation of a normal.
MAD_SCALE = 1.4826


@dataclass
class Verdict:
    """Per field the values to deliver (replacements applied) and which rows were flagged; rows to drop."""

    values: dict[str, np.ndarray]
    flagged: dict[str, np.ndarray]
    rejected: np.ndarray

    @classmethod
    def accept(cls, batch: MessageBatch) -> Verdict:
        n = len(batch)
        return cls(dict(batch.fields), {f: np.zeros(n, dtype=bool) for f in batch.fields}, np.zeros(n, dtype=bool))


def clean(received: np.ndarray, estimate: np.ndarray, bound: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Decision (16) and replacement (17) of every detector: flag ``|x - estimate| > bound`` (the tensor
    detector applies this rule per slot in its compiled pass, tested equal to this function).

    A value far outside the band (more than twice the bound) is replaced by the estimate; one just outside
    is pulled back onto the band's edge. The ADMM's duals integrate every error they are fed, so a false
    alarm must cost little: replacing an honest value that barely crossed the bound by the estimate would
    inject an error of the bound's size, clipping injects only the excess.
    """
    deviation = received - estimate
    flagged = np.abs(deviation) > bound
    far = np.abs(deviation) > 2 * bound
    cleaned = np.where(far, estimate, np.where(flagged, estimate + np.clip(deviation, -bound, bound), received))
    return cleaned, flagged


class Detector(Protocol):
    """Screens one batch as its receivers would; ``local`` batches only inform it of the agents' own values."""

    name: str

    def screen(self, batch: MessageBatch) -> Verdict: ...


class NoDetector:
    """Accepts everything: the undefended ADMM."""

    name = "none"

    def screen(self, batch: MessageBatch) -> Verdict:
        return Verdict.accept(batch)


class Colluding:
    """``inner`` at every receiver, except that colluding agents accept whatever their fellow colluders send
    them: a Byzantine group does not screen itself out of its own falsification."""

    def __init__(self, inner: Detector, colluders: tuple[int, ...]) -> None:
        self.inner = inner
        self.name = inner.name
        self.colluders = np.asarray(colluders)

    def screen(self, batch: MessageBatch) -> Verdict:
        verdict = self.inner.screen(batch)
        among = np.isin(batch.sender, self.colluders) & np.isin(batch.receiver, self.colluders)
        if batch.kind == LOCAL or not among.any():
            return verdict
        values = {name: np.where(among, batch.fields[name], v) for name, v in verdict.values.items()}
        flagged = {name: f & ~among for name, f in verdict.flagged.items()}
        return Verdict(values, flagged, verdict.rejected & ~among)


@dataclass(frozen=True)
class SlotMap:
    """Where every received message field sits in its receiving agent's observation vector.

    Agent ``a`` (bus ``a + 1``) observes its own local fields first, then every field of every channel it
    receives; ``agent[kind, field]`` and ``position[kind, field]`` index (agent, slot) per channel. Agent
    ``a`` uses slots ``0 .. used[a] - 1`` of the ``width`` every agent's vector is padded to.
    """

    n_agents: int
    width: int
    used: np.ndarray
    agent: dict[tuple[str, str], np.ndarray]
    position: dict[tuple[str, str], np.ndarray]

    @classmethod
    def of(cls, split: Splitting, local_fields: tuple[str, ...]) -> SlotMap:
        receivers = split.channel_receivers()
        fields = {LOCAL: local_fields} | {kind: names for kind, (_, names) in split.kinds.items()}
        used = np.zeros(split.n, dtype=int)
        agent, position = {}, {}
        for kind, names in fields.items():
            owner = receivers[kind] - 1
            # the k-th channel an agent receives of this kind gets its k-th free slot, for every field
            order = np.argsort(owner, kind="stable")
            counts = np.bincount(owner, minlength=split.n)
            starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
            rank = np.empty_like(order)
            rank[order] = np.arange(len(owner)) - starts[owner[order]]
            for name in names:
                agent[kind, name] = owner
                position[kind, name] = used[owner] + rank
                used += counts
        return cls(split.n, int(used.max()), used, agent, position)

    def flat(self, kind: str, name: str) -> np.ndarray:
        """Raveled positions ``agent * width + slot`` of field ``name`` of every channel of ``kind``: where
        it sits in an (agents, width) array."""
        return self.agent[kind, name] * self.width + self.position[kind, name]


class ScreeningTransport:
    """Delivers through ``inner`` (network, attackers), then screens what arrived with ``detector``.

    Keeps every flag (for scoring against the attack's ground truth), the number of screened message
    fields, flagged counts per iteration and the time spent in the detector.
    """

    def __init__(self, detector: Detector, inner: Transport) -> None:
        self.detector = detector
        self.inner = inner
        self.wall_s = 0.0
        self.screened_by_kind: dict[str, int] = {}
        self.records: list[tuple] = []
        self.per_iteration: dict[int, int] = {}

    def observe_local(self, report: MessageBatch) -> None:
        """The agents' own values of this iteration, for their own detectors only (never on the network)."""
        start = time.perf_counter()
        self.detector.screen(report)
        self.wall_s += time.perf_counter() - start

    def deliver(self, batch: MessageBatch) -> MessageBatch:
        arrived = self.inner.deliver(batch)
        if arrived.kind == STOP_KIND:  # the stopping rule's shares: its own test screens them
            return arrived
        start = time.perf_counter()
        verdict = self.detector.screen(arrived)
        self.wall_s += time.perf_counter() - start
        self.screened_by_kind[arrived.kind] = (self.screened_by_kind.get(arrived.kind, 0)
                                               + len(arrived) * len(arrived.fields))
        flagged = 0
        for name, flags in verdict.flagged.items():
            if not flags.any():  # the common case: nothing to record
                continue
            rows = np.flatnonzero(flags)
            flagged += rows.size
            self.records.append((arrived.iteration, arrived.phase, arrived.kind, name, arrived.channel[rows],
                                 arrived.sender[rows], arrived.receiver[rows]))
        self.per_iteration[arrived.iteration] = self.per_iteration.get(arrived.iteration, 0) + flagged
        return arrived.with_fields(**verdict.values).subset(~verdict.rejected)

    @property
    def screened(self) -> int:
        """Message fields screened, all kinds."""
        return sum(self.screened_by_kind.values())

    def flags(self) -> pd.DataFrame:
        """One row per flagged message field: iteration, phase, kind, field, channel, sender, receiver."""
        cols = ["iteration", "phase", "kind", "field", "channel", "sender", "receiver"]
        if not self.records:
            return pd.DataFrame(columns=cols)
        size = [len(r[4]) for r in self.records]
        return pd.DataFrame({
            **{c: np.repeat([r[i] for r in self.records], size) for i, c in enumerate(cols[:4])},
            **{c: np.concatenate([r[i] for r in self.records]) for i, c in enumerate(cols[4:], start=4)}})


KEY = ["iteration", "kind", "field", "channel"]


def score(flags: pd.DataFrame, truth: pd.DataFrame, screened: int) -> dict[str, float]:
    """Confusion counts over screened message fields: positive = corrupted by an attacker, flagged or not."""
    hits = len(flags[KEY].merge(truth[KEY].drop_duplicates(), on=KEY)) if len(flags) and len(truth) else 0
    tp, fp = hits, len(flags) - hits
    fn = len(truth) - hits
    tn = screened - tp - fp - fn
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn,
            "tpr": tp / (tp + fn) if tp + fn else float("nan"),
            "fpr": fp / (fp + tn) if fp + tn else float("nan")}


def fpr_by_kind(flags: pd.DataFrame, truth: pd.DataFrame, screened_by_kind: dict[str, int]) -> dict[str, float]:
    """Share of the honest fields flagged, per message kind (trade messages are many and rarely flagged, so
    the overall FPR hides the rate on flows and voltages)."""
    return {kind: score(flags[flags["kind"] == kind], truth[truth["kind"] == kind], n)["fpr"]
            for kind, n in screened_by_kind.items()}


def tpr_by_kind(flags: pd.DataFrame, truth: pd.DataFrame) -> dict[str, float]:
    """Share of the corrupted fields flagged, per message kind (a correlated attack falsifies flows by delta
    but the voltages it sends by only ``2 (r delta_P + x delta_Q)``: the two are not equally visible)."""
    if not len(truth):
        return {}
    hit = truth[KEY].merge(flags[KEY].assign(hit=True), on=KEY, how="left")["hit"].eq(True)
    return {str(k): float(v) for k, v in hit.groupby(truth["kind"].to_numpy()).mean().items()}
