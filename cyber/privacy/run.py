"""The private clearing as the command line asks for it: options in, the pair exchange and summary out."""

from __future__ import annotations

from dataclasses import dataclass

from cyber.privacy.paillier import DEFAULT_KEY_BITS
from cyber.privacy.pairs import SecurePairs
from cyber.privacy.setup import PrivacySetup, privacy_report, private_settings, secure_pairs
from market.admm.driver import AdmmSettings, solve_admm
from market.instance import MarketInstance


@dataclass(frozen=True)
class PrivateClearing:
    """A private clearing's setup and the steps a driver (the CLI) takes with it."""

    setup: PrivacySetup

    @classmethod
    def from_options(cls, mode: str, key_bits: int | None) -> PrivateClearing:
        return cls(PrivacySetup(mode, DEFAULT_KEY_BITS if key_bits is None else key_bits))

    def settings(self, settings: AdmmSettings) -> AdmmSettings:
        return private_settings(settings)

    def pairs(self, instance: MarketInstance, settings: AdmmSettings, seed: int) -> SecurePairs:
        return secure_pairs(instance, self.setup, seed)

    def summary(self, instance: MarketInstance, pairs: SecurePairs) -> dict:
        """privacy, key_bits, crypto_s (per agent, max, total), bytes_sent and the plain ADMM's objective (its
        default settings, on the same instance)."""
        return privacy_report(self.setup, pairs, solve_admm(instance).result.objective).summary()
