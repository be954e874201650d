"""Byzantine agents: what they do to the messages they send, and the record of what they changed.

Attacks act on outgoing message batches (:class:`market.messages.MessageBatch`) before the network carries
them, so the ADMM code never knows. Kinds (paper Sec. IV-B/C; model.md "Byzantine faults"):

- ``static-fdi``: correlated static false data injection. A fixed deviation ``delta`` is added to the flow
  ``P`` (and/or ``Q``) the agent reports to its parent, and the voltage it reports to its children is
  shifted by ``-2 (r delta_P + x delta_Q)`` so that the falsified values still satisfy the DistFlow voltage
  drop of its line -- a consistency check on the received data cannot see it.
- ``dynamic-noise``: the same with ``delta ~ N(0, sigma^2)`` redrawn at every injection.
- ``random``: the targeted fields replaced by uniform values in ``[low, high]``.
- ``sign-flip``, ``scale``: the targeted fields negated or multiplied by ``factor``.
- ``replay``: the targeted fields replaced by what the agent sent ``lag`` iterations earlier.

Every attack has start iteration, period (the paper injects every 5 iterations), Byzantine agents (several
agents colluding is simply several agents with the same spec) and the message fields it targets. The
ground truth of which message fields were corrupted is kept for scoring detectors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cyber.errors import CyberError
from market.admm.driver import FLOW_KINDS, VOLTAGE_KINDS
from market.instance import MarketInstance
from market.messages import MessageBatch, Transport

ATTACK_KINDS = ("static-fdi", "dynamic-noise", "random", "sign-flip", "scale", "replay")
#: Message fields an attack may falsify: flows, voltages, trades.
KNOWN_FIELDS = ("P", "Q", "v", "t")


@dataclass(frozen=True)
class AttackSpec:
    """One Byzantine behaviour. ``agents`` are bus numbers; ``delta`` is in p.u. of the feeder's base."""

    kind: str
    agents: tuple[int, ...]
    start: int = 1
    period: int = 5
    fields: tuple[str, ...] = ("P",)
    delta: float = 0.05
    sigma: float = 0.01
    low: float = -1.0
    high: float = 1.0
    factor: float = -3.0
    lag: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ATTACK_KINDS:
            raise CyberError(f"attack kind: expected one of {ATTACK_KINDS}, got {self.kind!r}")
        if not self.agents:
            raise CyberError("attack agents: expected at least one Byzantine agent")
        if self.start < 1 or self.period < 1 or self.lag < 1:
            raise CyberError("attack start, period and lag must be >= 1")
        if not self.fields or set(self.fields) - set(KNOWN_FIELDS):
            raise CyberError(f"attack fields: expected some of {list(KNOWN_FIELDS)}, got {self.fields}")
        if self.kind in ("static-fdi", "dynamic-noise") and set(self.fields) - {"P", "Q"}:
            raise CyberError(f"attack {self.kind}: falsifies the flows P and/or Q (and the voltage with them)")
        if self.sigma < 0 or self.low > self.high:
            raise CyberError("attack sigma must be >= 0 and low <= high")

    def active(self, iteration: int) -> bool:
        return iteration >= self.start and (iteration - self.start) % self.period == 0


class ByzantineTransport:
    """Applies attacks to outgoing batches, records the ground truth, then hands them to ``inner``."""

    def __init__(self, instance: MarketInstance, attacks: list[AttackSpec], inner: Transport) -> None:
        n = instance.feeder.n_buses
        for spec in attacks:
            bad = [a for a in spec.agents if not 1 <= a < n]
            if bad:
                raise CyberError(f"attack agents {bad}: {instance.case} has prosumers 1..{n - 1}")
        self.attacks = attacks
        self.inner = inner
        self.r, self.x = instance.feeder.r_pu, instance.feeder.x_pu
        self.rngs = [np.random.default_rng(spec.seed) for spec in attacks]
        self._byzantine = [np.isin(np.arange(n), spec.agents) for spec in attacks]  # per attack, by bus
        self.history: dict[tuple[str, str], list[np.ndarray]] = {}
        self.records: list[dict] = []
        self._delta: dict[tuple[int, int], tuple[float, float]] = {}
        self._replays = any(spec.kind == "replay" for spec in attacks)  # only replay needs what was sent before

    def deliver(self, batch: MessageBatch) -> MessageBatch:
        due = [(spec, rng, byzantine[batch.sender])
               for spec, rng, byzantine in zip(self.attacks, self.rngs, self._byzantine, strict=True)
               if spec.active(batch.iteration)]
        active = [(spec, rng, mine) for spec, rng, mine in due if mine.any()]
        sent = {name: values.copy() for name, values in batch.fields.items()} if active else batch.fields
        for spec, rng, mine in active:
            self._apply(spec, rng, mine, batch, sent)
        if self._replays:
            self._remember(batch)
        if not active:
            return self.inner.deliver(batch)
        arrived = self.inner.deliver(batch.with_fields(**sent))
        delivered = np.isin(batch.channel, arrived.channel)  # a corrupted message that is lost does no harm
        for name in sent:
            rows = np.flatnonzero((sent[name] != batch.fields[name]) & delivered)
            if rows.size:
                self.records.append({
                    "iteration": np.full(rows.size, batch.iteration), "phase": np.full(rows.size, batch.phase),
                    "kind": np.full(rows.size, batch.kind), "field": np.full(rows.size, name),
                    "channel": batch.channel[rows], "sender": batch.sender[rows], "receiver": batch.receiver[rows],
                    "true": batch.fields[name][rows], "sent": sent[name][rows]})
        return arrived

    def ground_truth(self) -> pd.DataFrame:
        """One row per corrupted message field that was delivered: iteration, phase, kind, field, channel,
        sender, receiver, true and sent value."""
        cols = ["iteration", "phase", "kind", "field", "channel", "sender", "receiver", "true", "sent"]
        if not self.records:
            return pd.DataFrame(columns=cols)
        return pd.DataFrame({c: np.concatenate([r[c] for r in self.records]) for c in cols})

    def _apply(self, spec: AttackSpec, rng: np.random.Generator, mine: np.ndarray, batch: MessageBatch,
               sent: dict[str, np.ndarray]) -> None:
        """Falsify ``sent`` where ``mine`` (the rows the attack's agents send; some)."""
        if spec.kind in ("static-fdi", "dynamic-noise"):
            self._correlated(spec, rng, batch, sent)
            return
        rows = np.flatnonzero(mine)
        for name in (f for f in spec.fields if f in batch.fields):  # spec order: draws do not depend on hashing
            if spec.kind == "random":
                sent[name][rows] = rng.uniform(spec.low, spec.high, rows.size)
            elif spec.kind == "sign-flip":
                sent[name][rows] = -sent[name][rows]
            elif spec.kind == "scale":
                sent[name][rows] = spec.factor * sent[name][rows]
            else:  # replay
                past = self.history.get((batch.kind, name), [])
                if len(past) >= spec.lag:
                    sent[name][rows] = past[-spec.lag][batch.channel[rows]]

    def _correlated(self, spec: AttackSpec, rng: np.random.Generator, batch: MessageBatch,
                    sent: dict[str, np.ndarray]) -> None:
        """Flows up and voltage down shifted together, so the line's voltage drop still holds."""
        if any(it != batch.iteration for it, _ in self._delta):
            self._delta.clear()  # deviations are shared within one iteration only; keep the dict from growing
        for agent in spec.agents:
            key = (batch.iteration, agent)
            if key not in self._delta:  # one deviation per agent and injection, shared by all its messages
                if spec.kind == "static-fdi":
                    d = spec.delta
                    self._delta[key] = (d if "P" in spec.fields else 0.0, d if "Q" in spec.fields else 0.0)
                else:
                    dp, dq = rng.normal(0.0, spec.sigma, 2)
                    self._delta[key] = (dp if "P" in spec.fields else 0.0, dq if "Q" in spec.fields else 0.0)
            dp, dq = self._delta[key]
            rows = np.flatnonzero(batch.sender == agent)
            if batch.kind in FLOW_KINDS:
                sent["P"][rows] += dp
                sent["Q"][rows] += dq
            elif batch.kind in VOLTAGE_KINDS:
                sent["v"][rows] -= 2.0 * (self.r[agent] * dp + self.x[agent] * dq)

    def _remember(self, batch: MessageBatch) -> None:
        for name, values in batch.fields.items():
            past = self.history.setdefault((batch.kind, name), [])
            past.append(values.copy())
            if len(past) > 64:
                past.pop(0)
