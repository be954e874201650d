"""A private clearing's settings: which exchange is protected, key size, coefficients, and the ADMM they need."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from cyber.errors import CyberError
from cyber.privacy.coefficient import CoefficientRange, check_relaxation
from cyber.privacy.paillier import DEFAULT_KEY_BITS, check_key_bits, generate_keys
from cyber.privacy.pairs import SecurePairs
from cyber.privacy.sums import MaskedSums
from market.admm.driver import AdmmSettings
from market.instance import MarketInstance

MODES = ("none", "paillier", "hybrid")
#: Residual tolerances of a private clearing (sweep, relaxation 1). Measured with per-trade balancing (noon, seed
#: 0 unless said): relative gap to the centralized optimum 1.9e-6 (case15da, 272 iterations), 4.4e-7 (case15da
#: 09:00 seed 3), 5.8e-7 (case33bw), 4.9e-7 (case85); at the plain (1e-6, 3e-6) without balancing case15da at
#: 09:00 ended 1.3e-5 from the optimum.
PRIVATE_TOLERANCES = (1e-7, 3e-7)


@dataclass(frozen=True)
class PrivacySetup:
    """``mode``: ``none`` (plain ADMM), ``paillier`` (every trade pair by secure two-party computation) or
    ``hybrid`` (that, and the sweep's subtree flows as additive shares of each parent's sum,
    :mod:`cyber.privacy.sums`)."""

    mode: str = "none"
    key_bits: int = DEFAULT_KEY_BITS
    coefficients: CoefficientRange = field(default_factory=CoefficientRange)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise CyberError(f"privacy: expected one of {MODES}, got {self.mode!r}")
        check_key_bits(self.key_bits)


def private_settings(settings: AdmmSettings) -> AdmmSettings:
    """The ADMM a private clearing runs: the sweep without over-relaxation (the coefficient's range is derived
    for relaxation 1), tolerances :data:`PRIVATE_TOLERANCES` unless given. Per-trade residual balancing stays
    as asked (the sweep's default: on); the buyer evaluates it (:mod:`cyber.privacy.pairs`) and it cuts the
    iterations 4-10 fold (case15da noon 1780 -> 272, case33bw 3343 -> 336, case85 2929 -> 419)."""
    check_relaxation(settings.relaxation)
    if settings.projection != "sweep":
        raise CyberError("privacy: protects the trade pairs of the sweep splitting; the local splitting's flow "
                         "messages would still be sent in the clear -- use projection sweep")
    primal, dual = PRIVATE_TOLERANCES
    return replace(settings,
                   tol_primal=primal if settings.tol_primal is None else settings.tol_primal,
                   tol_dual=dual if settings.tol_dual is None else settings.tol_dual)


def secure_pairs(instance: MarketInstance, setup: PrivacySetup, seed: int, encrypted: bool = True) -> SecurePairs:
    """The secure pair exchange of ``instance``: a key pair per agent, coefficients from ``seed`` (the
    simulator's stand-in for each agent's own randomness, so that a run repeats). ``encrypted=False``: the
    same integers computed in the clear (for measuring the protocol's convergence apart from its cost)."""
    if setup.mode == "none":
        raise CyberError(f"privacy {setup.mode}: no secure exchange to build")
    buyer = np.array([t.buyer for t in instance.trades], dtype=int) - 1
    seller = np.array([t.seller for t in instance.trades], dtype=int) - 1
    keys = generate_keys(len(instance.agents), setup.key_bits) if encrypted else None
    sums = MaskedSums(instance.feeder.parent, keys) if setup.mode == "hybrid" else None
    return SecurePairs(len(instance.agents), buyer, seller, setup.coefficients, seed, keys, subtree_sums=sums,
                       key_bits=setup.key_bits)


@dataclass(frozen=True)
class PrivacyReport:
    """What privacy cost a clearing: crypto time per agent -- measured (online; obfuscators offline) and as
    charged in simulated time (the per-operation model of :mod:`cyber.privacy.costs`) --, the protocol's bytes
    sent (ciphertexts, padded steps, seeds), and the plain ADMM's objective on the same instance when known."""

    mode: str
    key_bits: int
    sibling_pairs: int  # hybrid: pairs of siblings sharing a mask seed
    crypto_s: tuple[float, ...]
    offline_s: tuple[float, ...]
    model_s: tuple[float, ...]
    costs_us: dict[str, float]
    bytes_sent: tuple[int, ...]
    plain_objective: float | None

    def summary(self) -> dict:
        return {"privacy": self.mode, "key_bits": self.key_bits, "sibling_pairs": self.sibling_pairs,
                "crypto_s_max": max(self.crypto_s, default=0.0), "crypto_s_total": sum(self.crypto_s),
                "crypto_s_per_agent": list(self.crypto_s),
                "crypto_offline_s_max": max(self.offline_s, default=0.0),
                "crypto_offline_s_total": sum(self.offline_s),
                "crypto_model_s_max": max(self.model_s, default=0.0), "crypto_model_s_total": sum(self.model_s),
                "crypto_model_s_per_agent": list(self.model_s), "crypto_costs_us": dict(self.costs_us),
                "bytes_sent": sum(self.bytes_sent), "plain_objective": self.plain_objective}


def privacy_report(setup: PrivacySetup, pairs: SecurePairs, plain_objective: float | None) -> PrivacyReport:
    sums = pairs.subtree_sums
    siblings = 0 if sums is None else len(sums.pairs)
    return PrivacyReport(setup.mode, setup.key_bits, siblings, tuple(float(v) for v in pairs.crypto_s),
                         tuple(float(v) for v in pairs.offline_s), tuple(float(v) for v in pairs.model_s),
                         pairs.costs.us(), tuple(int(v) for v in pairs.bytes_sent),
                         None if plain_objective is None else float(plain_objective))
