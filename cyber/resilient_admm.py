"""Byzantine-resilient ADMM (seed 001, Algorithm 2): the distributed market through network, attackers and
detectors, and the score of the detectors against the attackers' ground truth.

The transport chain per message batch is: attackers falsify what Byzantine agents send
(:class:`~cyber.attacks.ByzantineTransport`), the network drops and delays
(:class:`~cyber.network.NetworkTransport`), every receiver screens what arrived
(:class:`~cyber.screening.ScreeningTransport`). Both the x-update data (flows, voltages, trades) and the
y-update data (flow and voltage targets) are screened.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cyber.attacks import AttackSpec, ByzantineTransport
from cyber.errors import CyberError
from cyber.network import CommNetwork, NetworkTransport
from cyber.screening import Detector, NoDetector, ScreeningTransport, fpr_by_kind, score, tpr_by_kind
from cyber.tensor_detector import TensorDetector
from cyber.timing import TimedTransport
from cyber.window_screen import STATISTICS, WindowScreen
from market.admm.driver import AdmmRun, AdmmSettings, build_splitting, solve_admm
from market.instance import MarketInstance
from market.messages import IdealTransport, Transport

DETECTORS = ("none", "tensor", "tensor-no-physics", *STATISTICS)


def build_detector(name: str, instance: MarketInstance, settings: AdmmSettings,
                   options: Mapping[str, object] | None = None) -> Detector:
    """A detector by name; ``options`` are its keyword parameters (e.g. ``alpha``)."""
    opts = dict(options or {})
    try:
        if name == "none":
            if opts:
                raise CyberError(f"detector none takes no options, got {sorted(opts)}")
            return NoDetector()
        split = build_splitting(instance, settings)
        if name in ("tensor", "tensor-no-physics"):
            return TensorDetector(instance, split, physics=name == "tensor", **opts)
        if name in STATISTICS:
            return WindowScreen(split, name, **opts)
    except (TypeError, ValueError) as exc:
        raise CyberError(f"detector {name}: {exc}") from exc
    raise CyberError(f"detector: expected one of {DETECTORS}, got {name!r}")


@dataclass(frozen=True)
class Timing:
    """ADMM in simulated time (:mod:`cyber.timing`): rounds wait for messages (``sync``, at most
    ``timeout_ms``) or not (``async``); a clearing still running after ``deadline_ms`` is stopped."""

    mode: str = "sync"
    timeout_ms: float = 100.0
    compute_ms: float = 1.0
    deadline_ms: float = 600_000.0


def default_projection(attacks: tuple[AttackSpec, ...] | list, detector: str) -> str:
    """The ADMM splitting a run uses unless told otherwise: the paper's one-hop ``local`` pattern as soon as
    messages are attacked or screened (the detectors model its messages, and an attacked run should be
    compared with an attack-free one of the same splitting), else the faster ``sweep``."""
    return "local" if attacks or detector != "none" else "sweep"


@dataclass(frozen=True)
class CyberSetup:
    """What the cyber layer does to one clearing: attacks, the detector every agent runs, the network and,
    with ``timing``, the simulated time its messages take (without it, delays are drawn but not waited for)."""

    attacks: tuple[AttackSpec, ...] = ()
    detector: str = "none"
    detector_options: Mapping[str, object] = field(default_factory=dict)
    network: CommNetwork | None = None
    timing: Timing | None = None


def _check_projection(settings: AdmmSettings, cyber: CyberSetup) -> None:
    if settings.projection == "local":
        return
    if cyber.detector != "none":
        raise CyberError(f"detector {cyber.detector}: screens the one-hop messages of the local splitting (flows, "
                         "voltages, targets); a sweep message summarises a whole subtree and is not screened -- "
                         "use projection local")
    if cyber.timing is not None and cyber.timing.mode == "async":
        raise CyberError("asynchronous rounds: a sweep needs every hop's message before the next one, so stale data "
                         "breaks its projection -- use projection local")


@dataclass
class ResilientRun:
    """The ADMM run plus what the cyber layer saw: flags, ground truth, confusion counts, detector time."""

    admm: AdmmRun
    flags: pd.DataFrame
    truth: pd.DataFrame
    confusion: dict[str, float]
    detector_wall_s: float
    flagged_per_iteration: dict[int, int]
    clearing_ms: float = float("nan")  # simulated duration (with timing)
    deadline_missed: bool = False
    messages: dict[str, int] = field(default_factory=dict)  # sent, lost, late
    prediction_error: dict[int, float] = field(default_factory=dict)  # tensor detector: MAE per iteration
    screened_by_kind: dict[str, int] = field(default_factory=dict)

    def tpr_by_kind(self) -> dict[str, float]:
        return tpr_by_kind(self.flags, self.truth)

    def fpr_by_kind(self) -> dict[str, float]:
        return fpr_by_kind(self.flags, self.truth, self.screened_by_kind)

    def iteration_counts(self) -> pd.DataFrame:
        """Per iteration: message fields corrupted by attackers and flagged by detectors."""
        its = self.admm.history["iteration"].to_numpy()
        attacked = self.truth.groupby("iteration").size() if len(self.truth) else pd.Series(dtype=int)
        return pd.DataFrame({
            "iteration": its,
            "attacked": attacked.reindex(its, fill_value=0).to_numpy(dtype=int),
            "flagged": np.array([self.flagged_per_iteration.get(int(k), 0) for k in its], dtype=int)})


def solve_resilient_admm(instance: MarketInstance, settings: AdmmSettings | None = None,
                         setup: CyberSetup | None = None) -> ResilientRun:
    """Clear the market with the ADMM through the cyber layer of ``setup``."""
    cyber = setup or CyberSetup()
    cfg = settings or AdmmSettings(projection=default_projection(cyber.attacks, cyber.detector))
    _check_projection(cfg, cyber)
    detector = build_detector(cyber.detector, instance, cfg, cyber.detector_options)
    inner: Transport = IdealTransport()
    stop = None
    if cyber.network is not None and cyber.timing is not None:
        timing = cyber.timing
        inner = clock = TimedTransport(cyber.network, timing.mode, timing.timeout_ms, timing.compute_ms)

        def stop() -> str | None:
            return f"deadline of {timing.deadline_ms:g} ms passed" if clock.now_ms > timing.deadline_ms else None
    elif cyber.network is not None:
        inner = NetworkTransport(cyber.network)
    attackers = ByzantineTransport(instance, list(cyber.attacks), inner)
    screening = ScreeningTransport(detector, attackers)
    run = solve_admm(instance, cfg, screening, stop=stop)
    flags, truth = screening.flags(), attackers.ground_truth()
    out = ResilientRun(run, flags, truth, score(flags, truth, screening.screened), screening.wall_s,
                       dict(screening.per_iteration),
                       prediction_error=dict(getattr(detector, "prediction_error", {})),
                       screened_by_kind=dict(screening.screened_by_kind))
    if isinstance(inner, TimedTransport):
        out.clearing_ms = inner.finish()
        out.deadline_missed = stop() is not None
        out.messages = {"sent": inner.sent, "lost": inner.lost, "late": inner.late}
    elif isinstance(inner, NetworkTransport):
        out.messages = {"sent": inner.sent, "lost": inner.lost, "late": 0}
    return out
