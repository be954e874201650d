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
- ``residual``: against the distributed stopping rule (:mod:`market.admm.stopping`), the agent claims the
  share ``claim`` (in units of the test's threshold) for its own residuals, every iteration from ``start``:
  a large one keeps the plain test from ever passing (never stopping), a negative one makes it pass while
  the others are far from converged (stopping early). It touches nothing else.
- ``false-load``: the agent runs its ADMM step on a load ``delta`` p.u. above its true one, from the first
  iteration (:mod:`cyber.false_load`): every message it sends is consistent; all of them count as corrupted.
- ``stealthy``: an attacker that knows the detector. It falsifies like ``static-fdi`` (flows to the parent,
  the voltage to the children shifted with them) in *every* iteration from ``start``, and moves its offset
  one way (the sign of ``delta``, at most ``|delta|`` in all) by ``drift`` times the receiver's acceptance
  band per iteration. The band is the detector's decision rule (:mod:`cyber.tensor_detector`, step 4):
  ``z_(1 - alpha/2) * sigma + floor``, ``sigma`` the robust scale (1.4826 x median) of the slot's last
  ``memory`` errors. The attacker cannot see the receiver's estimate, but it knows what the receiver got: the
  values it sent itself. It tracks the robust scale of their iteration-to-iteration steps -- the error of
  the detector's fallback estimate, repeating the last trusted value -- and keeps every step inside that band
  (``drift < 1``). Where the detector trusts its forecast instead, the real band is narrower and a step may
  be flagged; the value is then pulled onto the band's edge (:func:`cyber.screening.clean`), so the drift
  passes anyway (measured: 0.1-3 % of the falsified fields flagged). Until half the ring is filled the
  detector has no scale and the attacker does not move: it drifts only where it can hide. As the market
  converges the band shrinks to ``floor``; the drift slows with it.

Every attack has start iteration, period (the paper injects every 5 iterations; ``stealthy`` every one),
Byzantine agents and the message fields it targets. Several agents under one spec *collude*: each
falsifies its own line consistently (flows and voltage together, so the DistFlow voltage drop of every line
still holds), the stealthy ones all drift the same way, and none of them screens what the others send it
(:func:`cyber.resilient_admm.build_screening`) -- so wherever two colluders are neighbours the falsified
flow one sends is the one the other balances its own group with, and what they pass on upstream agrees with
it. ``byzantine_agents`` draws a share of the prosumers with a seed. The ground truth of which message fields
were corrupted is kept for scoring detectors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cyber.errors import CyberError
from cyber.screening import BAND_ALPHA, BAND_FLOOR, BAND_MEMORY, MAD_SCALE
from market.admm.driver import FLOW_KINDS, VOLTAGE_KINDS
from market.admm.stopping import FIELDS as STOP_FIELDS
from market.admm.stopping import KIND as STOP_KIND
from market.instance import MarketInstance
from market.messages import MessageBatch, Transport

ATTACK_KINDS = ("static-fdi", "dynamic-noise", "random", "sign-flip", "scale", "replay", "stealthy", "residual",
                "false-load")
#: Attacks that falsify an agent's flows and its voltage together (the DistFlow voltage drop still holds)
CORRELATED_KINDS = ("static-fdi", "dynamic-noise", "stealthy")
#: Iterations between injections unless a spec says: the paper's 5 (``DEFAULT_PERIOD.get(kind, 5)``), a
#: stealthy drift's, a false residual claim's and a false load's every one
DEFAULT_PERIOD = {"stealthy": 1, "residual": 1, "false-load": 1}
#: Message fields an attack may falsify: flows, voltages, trades.
KNOWN_FIELDS = ("P", "Q", "v", "t")


@dataclass(frozen=True)
class AttackSpec:
    """One Byzantine behaviour. ``agents`` are bus numbers; ``delta`` is in p.u. of the feeder's base
    (``stealthy``: its direction and the most it drifts); ``drift`` the share of the acceptance band a stealthy
    attacker moves per iteration, ``alpha`` the detector's false-alarm rate it assumes; ``claim`` the residual
    share a ``residual`` attacker reports (units of the stopping test's threshold, 1 = the threshold).
    ``period`` None: the kind's default (:data:`DEFAULT_PERIOD`)."""

    kind: str
    agents: tuple[int, ...]
    start: int = 1
    period: int | None = None
    fields: tuple[str, ...] = ("P",)
    delta: float = 0.05
    sigma: float = 0.01
    low: float = -1.0
    high: float = 1.0
    factor: float = -3.0
    lag: int = 10
    seed: int = 0
    drift: float = 0.5
    alpha: float = BAND_ALPHA
    claim: float = 1e6

    def __post_init__(self) -> None:
        if self.kind not in ATTACK_KINDS:
            raise CyberError(f"attack kind: expected one of {ATTACK_KINDS}, got {self.kind!r}")
        if self.period is None:
            object.__setattr__(self, "period", DEFAULT_PERIOD.get(self.kind, 5))
        if not self.agents:
            raise CyberError("attack agents: expected at least one Byzantine agent")
        if self.start < 1 or self.period < 1 or self.lag < 1:
            raise CyberError("attack start, period and lag must be >= 1")
        if not self.fields or set(self.fields) - set(KNOWN_FIELDS):
            raise CyberError(f"attack fields: expected some of {list(KNOWN_FIELDS)}, got {self.fields}")
        if self.kind in CORRELATED_KINDS and set(self.fields) - {"P", "Q"}:
            raise CyberError(f"attack {self.kind}: falsifies the flows P and/or Q (and the voltage with them)")
        if self.kind == "false-load" and (self.start != 1 or self.period != 1 or self.fields != ("P",)):
            raise CyberError("attack false-load: the load is declared before the first iteration and stays so "
                             "(start 1, period 1); it shifts the active load (fields P)")
        if self.kind == "stealthy" and self.period != 1:
            raise CyberError(f"attack stealthy: drifts in every iteration (period 1), got period {self.period}")
        if not self.drift > 0 or not 0 < self.alpha < 1:
            raise CyberError("attack drift must be > 0 and alpha in (0, 1)")
        if self.sigma < 0 or self.low > self.high:
            raise CyberError("attack sigma must be >= 0 and low <= high")
        if not np.isfinite(self.claim):
            raise CyberError(f"attack claim: expected a finite share, got {self.claim}")

    def active(self, iteration: int) -> bool:
        return iteration >= self.start and (iteration - self.start) % self.period == 0


def byzantine_agents(seed: int, n_buses: int, share: float) -> list[int]:
    """``share`` of the prosumers (at least one), drawn with ``seed``."""
    if not 0 < share <= 1:
        raise CyberError(f"Byzantine share: expected a share in (0, 1], got {share}")
    count = max(1, round(share * (n_buses - 1)))
    return sorted(int(b) for b in np.random.default_rng(seed).choice(np.arange(1, n_buses), count, replace=False))


class StealthyDrift:
    """The offsets of a stealthy attack's agents: each moves by ``drift`` times the band it models at its
    receiver, all the same way, until ``|delta|`` (see the module docstring)."""

    def __init__(self, spec: AttackSpec) -> None:
        from scipy.stats import norm

        self.spec = spec
        self.z = float(norm.ppf(1 - spec.alpha / 2))
        n = len(spec.agents)
        self.steps = np.full((n, 2, BAND_MEMORY), np.inf)  # per agent, P and Q: last |steps| of what it sent
        self.count = 0
        self.last_sent: np.ndarray | None = None
        self.offset = np.zeros((n, 2))
        self.iteration = -1

    def advance(self, iteration: int, true_flows: np.ndarray) -> np.ndarray:
        """The offsets (agents x (P, Q)) of ``iteration``, given the agents' true flows: the band is modelled
        on the values sent before, then the offset moves inside it."""
        if iteration != self.iteration:
            self.iteration = iteration
            if self.count >= BAND_MEMORY // 2 + 1:
                sigma = MAD_SCALE * np.partition(self.steps, BAND_MEMORY // 2, axis=-1)[..., BAND_MEMORY // 2]
                sigma = np.where(np.isfinite(sigma), sigma, 0.0)
                step = self.spec.drift * (self.z * sigma + BAND_FLOOR)
                wanted = np.array([0.0 if "P" not in self.spec.fields else 1.0,
                                   0.0 if "Q" not in self.spec.fields else 1.0])
                limit = abs(self.spec.delta)
                self.offset = np.minimum(np.abs(self.offset) + step * wanted, limit) * np.sign(self.spec.delta)
            sent = true_flows + self.offset
            if self.last_sent is not None:
                self.steps[..., self.count % BAND_MEMORY] = np.abs(sent - self.last_sent)
                self.count += 1
            self.last_sent = sent
        return self.offset


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
        self._drifts = [StealthyDrift(spec) if spec.kind == "stealthy" else None for spec in attacks]
        self._replays = any(spec.kind == "replay" for spec in attacks)  # only replay needs what was sent before

    def deliver(self, batch: MessageBatch) -> MessageBatch:
        due = [(spec, rng, byzantine[batch.sender], drift)
               for spec, rng, byzantine, drift in zip(self.attacks, self.rngs, self._byzantine, self._drifts,
                                                      strict=True)
               if spec.active(batch.iteration)]
        active = [(spec, rng, mine, drift) for spec, rng, mine, drift in due if mine.any()]
        sent = {name: values.copy() for name, values in batch.fields.items()} if active else batch.fields
        for spec, rng, mine, drift in active:
            self._apply(spec, rng, mine, batch, sent, drift)
        if self._replays:
            self._remember(batch)
        if not active:
            return self.inner.deliver(batch)
        arrived = self.inner.deliver(batch.with_fields(**sent))
        delivered = np.isin(batch.channel, arrived.channel)  # a corrupted message that is lost does no harm
        false_state = np.zeros(len(batch), dtype=bool)  # a false-load agent's every message (honest value unknown)
        if batch.kind != STOP_KIND:
            for spec, _, mine, _ in active:
                if spec.kind == "false-load":
                    false_state |= mine
        for name in sent:
            changed = sent[name] != batch.fields[name]
            rows = np.flatnonzero((changed | false_state) & delivered)
            if rows.size:
                self.records.append({
                    "iteration": np.full(rows.size, batch.iteration), "phase": np.full(rows.size, batch.phase),
                    "kind": np.full(rows.size, batch.kind), "field": np.full(rows.size, name),
                    "channel": batch.channel[rows], "sender": batch.sender[rows], "receiver": batch.receiver[rows],
                    "true": np.where(changed[rows], batch.fields[name][rows], np.nan), "sent": sent[name][rows]})
        return arrived

    def ground_truth(self) -> pd.DataFrame:
        """One row per corrupted message field that was delivered: iteration, phase, kind, field, channel,
        sender, receiver, true and sent value."""
        cols = ["iteration", "phase", "kind", "field", "channel", "sender", "receiver", "true", "sent"]
        if not self.records:
            return pd.DataFrame(columns=cols)
        return pd.DataFrame({c: np.concatenate([r[c] for r in self.records]) for c in cols})

    def _apply(self, spec: AttackSpec, rng: np.random.Generator, mine: np.ndarray, batch: MessageBatch,
               sent: dict[str, np.ndarray], drift: StealthyDrift | None) -> None:
        """Falsify ``sent`` where ``mine`` (the rows the attack's agents send; some)."""
        if drift is not None:
            self._stealthy(spec, drift, batch, sent)
            return
        if spec.kind == "false-load":
            return  # it sends what its false state gives: nothing to change on the way (see deliver)
        if spec.kind == "residual" or batch.kind == STOP_KIND:
            if spec.kind == "residual" and batch.kind == STOP_KIND:
                for name in STOP_FIELDS:
                    sent[name][mine] = spec.claim
            return  # a residual claim touches only the stopping rule's shares, and the others never those
        if spec.kind in CORRELATED_KINDS:
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

    def _stealthy(self, spec: AttackSpec, drift: StealthyDrift, batch: MessageBatch,
                  sent: dict[str, np.ndarray]) -> None:
        """Flows up and voltage down shifted by the drift's offsets, like :meth:`_correlated`."""
        agents = np.asarray(sorted(spec.agents))  # the drift's rows, in bus order
        if batch.kind in FLOW_KINDS:
            true = np.zeros((len(agents), 2))  # an agent under the substation sends no flow: its own is metered
            rows = np.flatnonzero(np.isin(batch.sender, agents))
            where = np.searchsorted(agents, batch.sender[rows]) if rows.size else rows
            true[where, 0], true[where, 1] = batch.fields["P"][rows], batch.fields["Q"][rows]
            offset = drift.advance(batch.iteration, true)
            sent["P"][rows] += offset[where, 0]
            sent["Q"][rows] += offset[where, 1]
        elif batch.kind in VOLTAGE_KINDS:
            offset = drift.offset
            rows = np.flatnonzero(np.isin(batch.sender, agents))
            where = np.searchsorted(agents, batch.sender[rows])
            sent["v"][rows] -= 2.0 * (self.r[batch.sender[rows]] * offset[where, 0]
                                      + self.x[batch.sender[rows]] * offset[where, 1])

    def _remember(self, batch: MessageBatch) -> None:
        for name, values in batch.fields.items():
            past = self.history.setdefault((batch.kind, name), [])
            past.append(values.copy())
            if len(past) > 64:
                past.pop(0)
