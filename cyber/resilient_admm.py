"""Byzantine-resilient ADMM (seed 001, Algorithm 2): the distributed market through network, attackers and
detectors, and the score of the detectors against the attackers' ground truth.

The transport chain per message batch is: attackers falsify what Byzantine agents send
(:class:`~cyber.attacks.ByzantineTransport`), the network drops and delays
(:class:`~cyber.network.NetworkTransport`), every receiver screens what arrived
(:class:`~cyber.screening.ScreeningTransport`). Both the x-update data (flows, voltages, trades) and the
y-update data (flow and voltage targets) of the local splitting are screened; the sweep splitting's
messages are not (detectors and correlated attacks are refused with it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cyber import tensor_detector
from cyber.attacks import CORRELATED_KINDS, AttackSpec, ByzantineTransport
from cyber.detectability import HonestHistory, detected_of_detectable, oracle_flags
from cyber.errors import CyberError
from cyber.false_load import declared_instance
from cyber.network import CommNetwork, NetworkTransport
from cyber.physics_detector import PhysicsTensorDetector
from cyber.screening import (
    BAND_ALPHA,
    Colluding,
    Detector,
    NoDetector,
    ScreeningTransport,
    fpr_by_kind,
    score,
    tpr_by_kind,
)
from cyber.tensor_detector import TensorDetector
from cyber.timing import TimedTransport
from cyber.window_screen import STATISTICS, WindowScreen
from market.admm import prox
from market.admm.consensus import KINDS
from market.admm.driver import FLOW_KINDS, VOLTAGE_KINDS, AdmmRun, AdmmSettings, build_splitting, solve_admm
from market.admm.pairs import PairExchange
from market.admm.stopping import KIND as STOP_KIND
from market.instance import MarketInstance
from market.messages import IdealTransport, MessageBatch, Transport

#: ``tensor-paper``: the paper's detector as written (:mod:`cyber.physics_detector`), ``tensor-paper-no-physics``
#: its ablation; ``tensor`` (default): the screening variant (:mod:`cyber.tensor_detector`: forecasts fused with
#: the equalities afterwards, screening rules for intermittent spikes), ``tensor-no-physics`` its ablation. The
#: variant stays the default: it detects more at fewer false alarms on seed 001's tables and costs about a
#: quarter as much (``docs/reproduction_tensor-paper.md``, ``benchmarks/physics_ablation.py``).
DETECTORS = ("none", "tensor", "tensor-no-physics", "tensor-paper", "tensor-paper-no-physics", *STATISTICS)


def warm_up(detector: str | None = None) -> None:
    """Load (or compile) the kernels a resilient clearing with ``detector`` runs (default: every detector's)
    -- the agents' market step, the tensor detector's screening and forecasts, the paper's detector's fit --
    so that timed runs compare runs, not the first one's loading. Only those: on a fresh install a kernel
    compiles in seconds, and a clearing should not pay for a detector it does not run."""
    prox.warm_up()
    if detector is None or detector in ("tensor", "tensor-no-physics"):
        tensor_detector.warm_up()
    elif detector in ("tensor-paper", "tensor-paper-no-physics"):
        tensor_detector.warm_up(screening=False)


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
        if name in ("tensor-paper", "tensor-paper-no-physics"):
            return PhysicsTensorDetector(instance, split, physics=name == "tensor-paper", **opts)
        if name in ("tensor", "tensor-no-physics"):
            opts.setdefault("zigzag", settings.relaxation > 1.0)  # over-relaxed iterates go out and back
            return TensorDetector(instance, split, physics=name == "tensor", **opts)
        if name in STATISTICS:
            return WindowScreen(split, name, **opts)
    except (TypeError, ValueError) as exc:
        raise CyberError(f"detector {name}: {exc}") from exc
    raise CyberError(f"detector: expected one of {DETECTORS}, got {name!r}")


#: Iterations a value may lag behind in asynchronous rounds (:mod:`cyber.async_rounds`): none. Every agent waits,
#: for its own neighbours only, for their current values (acknowledged and sent again when lost), so the iterates
#: are those of fresh values and take the synchronous relaxation. Stale values need under-relaxation, and then
#: four times the iterations: barrier-free (tens of iterations stale), case33bw at 20 % loss with 10 +- 50 ms
#: needs 10 623 at relaxation 0.5; already one to two iterations of staleness (2.5 ms constant latency, case15da,
#: bound 1 or 2) stalls at 0.7 and above, and case33bw needs 7 524 iterations at 0.5 with fresh values.
ASYNC_STALENESS = 0


@dataclass(frozen=True)
class Timing:
    """ADMM in simulated time (:mod:`cyber.timing`): rounds wait for messages (``sync``, at most
    ``timeout_ms``) or not (``async``); a clearing still running after ``deadline_ms`` is stopped. With
    ``retransmit`` the exchanges of synchronous rounds are acknowledged and lost messages sent again
    (:mod:`cyber.retransmission`); ``False`` is the network as it was, a lost message simply missing.
    ``max_staleness``: asynchronous rounds' local barrier (:mod:`cyber.async_rounds`), ``None`` none."""

    mode: str = "sync"
    timeout_ms: float = 100.0
    compute_ms: float = 1.0
    deadline_ms: float = 600_000.0
    retransmit: bool = True
    max_staleness: int | None = ASYNC_STALENESS


#: Over-relaxation when messages are attacked or screened: none. A replaced value is a forecast and a missed
#: injection an error, and over-relaxation extrapolates both -- at the attack-free default of 1.8 the tensor
#: detector alone kept case33bw's market from converging (primal residual 0.01-0.2 after 6000 iterations), and
#: static FDI on case15da / case85 was caught at TPR 0.81 / 0.80; at 1.0 the defended runs converge in
#: 770-790 / 2170-2190 iterations with TPR 0.97 / 0.98 (five attack phases each).
SCREENED_RELAXATION = 1.0
#: Over-relaxation when the ADMM rounds do not wait for their messages: with data one or more rounds stale the
#: default 1.8 stalls (primal residual near 0.4 on case15da), under-relaxation converges (case15da, 2.5 ms
#: latency = three rounds stale: 1728 iterations at 0.5).
ASYNC_RELAXATION = 0.5


def _touched(attacks: tuple[AttackSpec, ...] | list, detector: str) -> bool:
    """Whether the ADMM's messages are attacked or screened."""
    return bool(attacks) or detector != "none"


def default_relaxation(attacks: tuple[AttackSpec, ...] | list, detector: str, mode: str = "sync",
                       max_staleness: int | None = ASYNC_STALENESS) -> float:
    """The ADMM's over-relaxation unless a run says otherwise: 1.8 on clean messages of the current iteration,
    none when they are attacked or screened, under-relaxation when asynchronous rounds let values be stale
    (``max_staleness`` other than 0)."""
    if mode == "async" and max_staleness != 0:
        return ASYNC_RELAXATION
    return SCREENED_RELAXATION if _touched(attacks, detector) else AdmmSettings.relaxation


def default_projection(attacks: tuple[AttackSpec, ...] | list, detector: str) -> str:
    """The ADMM splitting a run uses unless told otherwise: the paper's one-hop ``local`` pattern as soon as
    messages are attacked or screened (the detectors model its messages, and an attacked run should be
    compared with an attack-free one of the same splitting), else the faster ``sweep``."""
    return "local" if _touched(attacks, detector) else "sweep"


@dataclass(frozen=True)
class CyberSetup:
    """What the cyber layer does to one clearing: attacks, the detector every agent runs, the network and,
    with ``timing``, the simulated time its messages take (without it, delays are drawn but not waited for)."""

    attacks: tuple[AttackSpec, ...] = ()
    detector: str = "none"
    detector_options: Mapping[str, object] = field(default_factory=dict)
    network: CommNetwork | None = None
    timing: Timing | None = None


def check_stopping(settings: AdmmSettings, cyber: CyberSetup) -> None:
    """Refuse a residual attack without the distributed stopping rule (the central test has no shares to
    falsify) and that rule with asynchronous rounds (its snapshot needs every share of one iteration)."""
    if settings.stopping == "distributed":
        if cyber.timing is not None and cyber.timing.mode == "async":
            raise CyberError("distributed stopping with asynchronous rounds: the agents' test needs every share of "
                             "one iteration -- use synchronous rounds or the central test")
    elif any(a.kind == "residual" for a in cyber.attacks):
        raise CyberError("attack residual: falsifies the shares of the distributed stopping rule; the central test "
                         "has none -- use stopping distributed")


def check_projection(projection: str, cyber: CyberSetup) -> None:
    """Refuse what the sweep splitting cannot carry: correlated attacks and detectors (both act on the local
    splitting's one-hop messages) and asynchronous rounds."""
    if projection == "local":
        return
    correlated = [a.kind for a in cyber.attacks if a.kind in CORRELATED_KINDS]
    if correlated:
        raise CyberError(f"attack {correlated[0]}: falsifies the flows and voltages of the local splitting's "
                         "one-hop messages; the sweep's are subtree preferences and prices -- use projection local")
    if cyber.detector != "none":
        raise CyberError(f"detector {cyber.detector}: screens the one-hop messages of the local splitting (flows, "
                         "voltages, targets); a sweep message summarises a whole subtree and is not screened -- "
                         "use projection local")
    if cyber.timing is not None and cyber.timing.mode == "async":
        raise CyberError("asynchronous rounds: a sweep needs every hop's message before the next one, so stale data "
                         "breaks its projection -- use projection local")


@dataclass(frozen=True, eq=False)
class CommReport:
    """What the communication layer of one clearing reports at its end: the attackers' record of every
    falsified field (``truth``; with attacks, which of them an oracle could detect), the falsified residual
    shares of the stopping rule, the simulated duration and deadline (with timing; NaN and ``False`` without),
    the network's message counts (sent, lost, bytes, late, retransmitted, acks; empty on an ideal network) and
    the message kinds the attacks can falsify."""

    truth: pd.DataFrame
    false_shares: int
    clearing_ms: float
    deadline_missed: bool
    messages: dict[str, int]
    attackable: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class ScreeningReport:
    """What the detectors of one clearing report at its end: the flags, how many fields they screened (in all
    and per message kind), their wall time, the flags per iteration and (tensor detector) the forecast error
    per iteration."""

    flags: pd.DataFrame
    screened: int
    screened_by_kind: dict[str, int]
    wall_s: float
    per_iteration: dict[int, int]
    prediction_error: dict[int, float]


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
    false_shares: int = 0  # residual shares falsified for the distributed stopping rule (delivered)

    def tpr_by_kind(self) -> dict[str, float]:
        return tpr_by_kind(self.flags, self.truth)

    def fpr_by_kind(self) -> dict[str, float]:
        return fpr_by_kind(self.flags, self.truth, self.screened_by_kind)

    def detectable_caught(self) -> tuple[int, int]:
        """How many of the injections an oracle with the honest history flags (:mod:`cyber.detectability`)
        the detectors flagged, and of how many."""
        return detected_of_detectable(self.flags, self.truth)

    def detector_cost_us(self, n_agents: int) -> tuple[float, float]:
        """The detectors' wall time in microseconds per agent and iteration, and per screened message field: a
        cost that compares across feeders and run lengths, where a ratio to the ADMM's own (4 us) step does not."""
        iterations = len(self.admm.history)
        fields = sum(int(self.confusion[k]) for k in ("tp", "fp", "fn", "tn"))
        per_agent = self.detector_wall_s * 1e6 / (n_agents * iterations) if n_agents * iterations else math.nan
        return per_agent, (self.detector_wall_s * 1e6 / fields if fields else math.nan)

    def iteration_counts(self) -> pd.DataFrame:
        """Per iteration: message fields corrupted by attackers and flagged by detectors."""
        its = self.admm.history["iteration"].to_numpy()
        attacked = self.truth.groupby("iteration").size() if len(self.truth) else pd.Series(dtype=int)
        return pd.DataFrame({
            "iteration": its,
            "attacked": attacked.reindex(its, fill_value=0).to_numpy(dtype=int),
            "flagged": np.array([self.flagged_per_iteration.get(int(k), 0) for k in its], dtype=int)})


class CommLayer:
    """The communication network of one clearing: Byzantine agents falsify what they send, then the network
    drops it and, with timing, delays it in simulated time. In-process it is the inner transport of the
    screening; in the co-simulation it is what the Comm simulator runs."""

    def __init__(self, instance: MarketInstance, setup: CyberSetup) -> None:
        self.network: Transport = IdealTransport()
        self.deadline_ms = float("inf")
        if setup.network is not None and setup.timing is not None:
            t = setup.timing
            self.network = TimedTransport(setup.network, t.mode, t.timeout_ms, t.compute_ms, t.retransmit,
                                          t.max_staleness)
            self.deadline_ms = t.deadline_ms
        elif setup.network is not None:
            self.network = NetworkTransport(setup.network)
        self.attackers = ByzantineTransport(instance, list(setup.attacks), self.network)
        # what the channels would have carried, for the oracle that scores which injections were detectable
        self.honest = HonestHistory(self.attackers) if setup.attacks else None
        self.alpha = float(setup.detector_options.get("alpha", BAND_ALPHA))

    def deliver(self, batch: MessageBatch) -> MessageBatch:
        return (self.honest or self.attackers).deliver(batch)

    @property
    def now_ms(self) -> float:
        """The end of the round under way, since the clearing started (NaN without timing)."""
        return self.network.now_ms if isinstance(self.network, TimedTransport) else float("nan")

    def stop(self) -> str | None:
        """Why the clearing must stop: its deadline passed in simulated time."""
        return f"deadline of {self.deadline_ms:g} ms passed" if self.now_ms > self.deadline_ms else None

    def report(self) -> CommReport:
        """At the end of the clearing: the attackers' record and what the network did, in simulated time."""
        truth = self.attackers.ground_truth()
        claims = (truth["kind"] == STOP_KIND).to_numpy()  # false residual shares: no detector screens those
        truth = truth[~claims].reset_index(drop=True)
        if self.honest is not None:
            truth = truth.assign(detectable=oracle_flags(truth, self.honest, self.alpha))
        clearing_ms, missed, messages = float("nan"), False, {}
        if isinstance(self.network, TimedTransport):
            clearing_ms = self.network.finish()
            missed = self.stop() is not None
        if isinstance(self.network, TimedTransport | NetworkTransport):
            messages = {"sent": self.network.sent, "lost": self.network.lost,
                        "bytes": self.network.wire.bytes_sent, "late": getattr(self.network, "late", 0),
                        "retransmitted": getattr(self.network, "retransmitted", 0),
                        "acks": getattr(self.network, "acks", 0)}
        return CommReport(truth, int(claims.sum()), clearing_ms, missed, messages,
                          attackable_kinds(self.attackers.attacks))


def build_screening(instance: MarketInstance, settings: AdmmSettings, setup: CyberSetup,
                    inner: Transport) -> ScreeningTransport:
    """Every receiving agent's detector, screening what ``inner`` delivers. The compiled kernels are loaded
    first, so that the detectors' wall time is their work, not the process's first loading of them."""
    check_projection(settings.projection, setup)
    check_stopping(settings, setup)
    warm_up(setup.detector)
    detector = build_detector(setup.detector, instance, settings, setup.detector_options)
    colluders = tuple(sorted({a for spec in setup.attacks if len(spec.agents) > 1 for a in spec.agents}))
    if colluders and setup.detector != "none":
        detector = Colluding(detector, colluders)
    return ScreeningTransport(detector, inner)


def screening_report(screening: ScreeningTransport) -> ScreeningReport:
    """At the end of the clearing: what the detectors flagged, screened and spent."""
    return ScreeningReport(screening.flags(), screening.screened, dict(screening.screened_by_kind), screening.wall_s,
                           dict(screening.per_iteration),
                           dict(getattr(screening.detector, "prediction_error", {})))


def attackable_kinds(attacks: tuple[AttackSpec, ...] | list) -> tuple[str, ...]:
    """Message kinds an attack of these specs can falsify: the correlated attacks shift the x-phase flows and
    voltages only, the others every message that carries a field they target (none: every kind)."""
    kinds: set[str] = set()
    for spec in attacks:
        if spec.kind in CORRELATED_KINDS:
            kinds |= set(FLOW_KINDS) | set(VOLTAGE_KINDS)
        elif spec.kind == "residual":
            kinds.add(STOP_KIND)
        else:
            kinds |= {kind for kind, (_, names) in KINDS.items() if set(names) & set(spec.fields)}
    return tuple(sorted(kinds)) or tuple(KINDS)


def resilient_run(run: AdmmRun, comm: CommReport, screening: ScreeningReport) -> ResilientRun:
    """A clearing's ADMM run with the reports of its communication layer and of its detectors. The confusion
    counts all screened fields; ``fpr_attackable`` only the kinds its attacks can touch (the headline FPR:
    trade messages are the majority and rarely flagged, and no correlated attack touches them)."""
    flags, truth = screening.flags, comm.truth
    kinds = comm.attackable
    confusion = score(flags, truth, screening.screened)
    confusion["fpr_attackable"] = score(flags[flags["kind"].isin(kinds)],
                                        truth[truth["kind"].isin(kinds)] if len(truth) else truth,
                                        sum(n for k, n in screening.screened_by_kind.items() if k in kinds))["fpr"]
    return ResilientRun(run, flags, truth, confusion, screening.wall_s, screening.per_iteration, comm.clearing_ms,
                        comm.deadline_missed, comm.messages, screening.prediction_error, screening.screened_by_kind,
                        comm.false_shares)


def solve_resilient_admm(instance: MarketInstance, settings: AdmmSettings | None = None,
                         setup: CyberSetup | None = None, warm: AdmmRun | None = None,
                         pairs: PairExchange | None = None) -> ResilientRun:
    """Clear the market in-process with the ADMM through the cyber layer of ``setup`` (``warm``: the last
    clearing the agents remember, ``pairs``: a private pair exchange, :func:`market.admm.driver.admm_process`)."""
    cyber = setup or CyberSetup()
    cfg = settings or AdmmSettings(projection=default_projection(cyber.attacks, cyber.detector),
                                   relaxation=default_relaxation(cyber.attacks, cyber.detector))
    declared = declared_instance(instance, cyber.attacks)  # what a false-load agent told the market
    comm = CommLayer(instance, cyber)
    screening = build_screening(declared, cfg, cyber, comm)
    run = solve_admm(declared, cfg, screening, stop=comm.stop, warm=warm, pairs=pairs)
    return resilient_run(run, comm.report(), screening_report(screening))
