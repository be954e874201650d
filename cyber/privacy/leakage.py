"""What a curious parent learns from the flows its child reports: measured, not argued.

In both splittings a child tells its parent the line flow ``P`` (and ``Q``) it would like on the line between
them -- the local splitting in its ``flow`` messages, the sweep in its ``subtree`` preferences. For a leaf the
power balance (1j) of its own bus is ``p = r l - P`` with ``l = (P^2 + Q^2) / v``: the flow *is* the
prosumer's net injection up to the line loss, and the parent knows ``r`` (public line data) and its own
voltage. :func:`reconstruct_leaf_injections` is that honest-but-curious parent: it keeps the last flow it
received from each leaf child in a clearing and inverts the balance. :func:`leak_report` scores the guesses
of many clearings (e.g. a day) against the prosumers' true cleared injections and desired net loads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from market.instance import MarketInstance
from market.messages import MessageBatch, Transport

#: Message kinds that carry a child's line flow to its parent, per splitting.
FLOW_TO_PARENT = ("flow", "subtree")


class FlowRecorder:
    """A transport that passes everything on and keeps, per (child bus), the last flow its parent received.

    ``decode``: how the parent reads the flow fields (default: as they are; a hybrid clearing's shares are
    read as the fixed point they would be without a mask, :func:`cyber.privacy.sums.decode_share`)."""

    def __init__(self, inner: Transport, decode: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        self.inner = inner
        self.decode = decode or (lambda values: values)
        self.last: dict[int, tuple[float, float]] = {}

    def deliver(self, batch: MessageBatch) -> MessageBatch:
        out = self.inner.deliver(batch)
        if out.kind in FLOW_TO_PARENT:
            flows = self.decode(out.fields["P"]), self.decode(out.fields["Q"])
            for child, p, q in zip(out.sender, *flows, strict=True):
                self.last[int(child)] = (float(p), float(q))
        return out


def leaf_children(instance: MarketInstance) -> np.ndarray:
    """Buses that have a prosumer as parent and no children: their flow is their own net injection."""
    f = instance.feeder
    n_children = np.bincount(f.parent[1:], minlength=f.n_buses)
    buses = np.arange(1, f.n_buses)
    return buses[(f.parent[1:] > 0) & (n_children[1:] == 0)]


def reconstruct_leaf_injections(instance: MarketInstance, recorder: FlowRecorder) -> dict[int, float]:
    """The parent's estimate of each leaf child's net injection (kW) from the last flow received:
    ``p = r (P^2 + Q^2) / v - P`` with the parent's voltage taken as 1 p.u. (its error is second order)."""
    f = instance.feeder
    kw = f.base_mva * 1e3
    out = {}
    for bus in leaf_children(instance):
        if int(bus) in recorder.last:
            P, Q = recorder.last[int(bus)]
            out[int(bus)] = (f.r_pu[bus] * (P * P + Q * Q) - P) * kw
    return out


@dataclass(frozen=True)
class LeakReport:
    """A curious parent's guesses of its leaf children's net injections over many clearings.

    ``mae_kw``: mean absolute error against the cleared injection; ``corr_cleared`` / ``corr_desired``:
    Pearson correlation of guess and truth over all (clearing, leaf) samples, against the cleared injection
    and the desired net load ``g - d`` (private data); ``baseline_mae_kw``: the error of the best guess from
    public data alone (the case file's nominal load of the bus, as a consumption); ``scale_kw``: the mean
    absolute cleared injection, for scale.
    """

    samples: int
    mae_kw: float
    max_error_kw: float
    corr_cleared: float
    corr_desired: float
    baseline_mae_kw: float
    scale_kw: float


def leak_report(guess_kw: np.ndarray, cleared_kw: np.ndarray, desired_kw: np.ndarray,
                public_kw: np.ndarray) -> LeakReport:
    """Score guesses against the truth (all arrays: one entry per clearing and leaf)."""
    err = np.abs(guess_kw - cleared_kw)

    def corr(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.corrcoef(a, b)[0, 1]) if len(a) > 1 and a.std() > 0 and b.std() > 0 else float("nan")

    return LeakReport(len(guess_kw), float(err.mean()), float(err.max()), corr(guess_kw, cleared_kw),
                      corr(guess_kw, desired_kw), float(np.abs(public_kw - cleared_kw).mean()),
                      float(np.abs(cleared_kw).mean()))


def leaves_with_siblings(instance: MarketInstance) -> set[int]:
    """The leaf children (:func:`leaf_children`) whose parent has other children: their flow can hide in a sum."""
    f = instance.feeder
    n_children = np.bincount(f.parent[1:], minlength=f.n_buses)
    return {int(b) for b in leaf_children(instance) if n_children[f.parent[b]] > 1}


def measure_flow_leak(instances: list[MarketInstance], solve, decode: Callable | None = None,
                      keep: Callable[[MarketInstance], set[int]] | None = None) -> LeakReport:
    """Clear every instance with ``solve(instance, transport) -> ClearingResult`` through a
    :class:`FlowRecorder` (reading flows with ``decode``) and score each parent's guesses of its leaf children's
    net injections (only the leaves ``keep`` returns, if given)."""
    from market.messages import IdealTransport

    guess, cleared, desired, public = [], [], [], []
    for instance in instances:
        recorder = FlowRecorder(IdealTransport(), decode)
        result = solve(instance, recorder)
        kw = instance.feeder.base_mva * 1e3
        kept = None if keep is None else keep(instance)
        for bus, value in reconstruct_leaf_injections(instance, recorder).items():
            if kept is not None and bus not in kept:
                continue
            guess.append(value)
            cleared.append(result.p[bus] * kw)
            desired.append(instance.agents[bus - 1].p_hat_kw)
            public.append(-instance.feeder.pd_mw[bus] * 1e3)
    return leak_report(*(np.array(a) for a in (guess, cleared, desired, public)))
