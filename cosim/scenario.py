"""Scenario files: what a co-simulation run is, as TOML validated by a pydantic schema.

A scenario names the feeder, the seed, the first quarter hour and how many follow, the market method and ADMM
settings, the communication network and how the ADMM waits for it, the Byzantine attacks and the detector
every agent runs, and optionally a delay study (latency x loss grid). Unknown keys are errors: a typo must not
silently fall back to a default. Errors name the file, the field and what was expected.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cyber.attacks import ATTACK_KINDS, DEFAULT_PERIOD, KNOWN_FIELDS, AttackSpec
from cyber.errors import CyberError
from cyber.network import ChannelSpec
from cyber.resilient_admm import DETECTORS, CyberSetup, Timing, check_projection, default_relaxation
from market.admm.driver import PROJECTIONS, AdmmSettings
from market.errors import InstanceError
from market.instance import InstanceOptions, build_instance
from market.online.controllers import LyapunovController, MyopicController
from market.online.study import interval_controller, retail_prices
from market.problem.storage import StorageArrays, storage_arrays
from physical.catalog import load_feeder
from physical.errors import FeederError
from physical.profiles import DEFAULT_INTERVAL, YEAR_INTERVALS, interval_index


class ScenarioError(ValueError):
    """A scenario file that cannot be read or does not follow the schema."""


@dataclass(frozen=True, eq=False)
class StoragePlan:
    """A scenario's batteries (the same units in every quarter hour) and the controller that sets them."""

    arrays: StorageArrays
    controller: LyapunovController | MyopicController


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MarketSection(_Strict):
    partners: Literal["all", "nearest"] = "all"
    k_nearest: int = Field(3, ge=1)
    pv_share: float = Field(0.5, ge=0, le=1)
    wind_share: float = Field(0.15, ge=0, le=1)
    vmin_pu: float = Field(0.9, gt=0)
    vmax_pu: float = Field(1.1, gt=0)

    def options(self) -> InstanceOptions:
        return InstanceOptions(partners=self.partners, k_nearest=self.k_nearest, pv_share=self.pv_share,
                               wind_share=self.wind_share, vmin_pu=self.vmin_pu, vmax_pu=self.vmax_pu)


class AdmmSection(_Strict):
    # the paper's one-hop messages unless a scenario asks for the sweep (fewer iterations, 2 x (depth - 1) hops
    # each)
    projection: Literal[PROJECTIONS] = "local"  # type: ignore[valid-type]
    rho: float = Field(AdmmSettings.rho, gt=0)
    tol_primal: float | None = Field(None, gt=0)  # default: the splitting's (market.admm.driver)
    tol_dual: float | None = Field(None, gt=0)
    max_iter: int = Field(AdmmSettings.max_iter, ge=1)
    relaxation: float | None = Field(None, gt=0, lt=2)  # default: cyber.resilient_admm.default_relaxation
    warm_start: bool = True  # agents start a quarter hour where the last converged clearing ended

    def settings(self, default_relaxation: float) -> AdmmSettings:
        return AdmmSettings(projection=self.projection, rho=self.rho, tol_primal=self.tol_primal,
                            tol_dual=self.tol_dual, max_iter=self.max_iter,
                            relaxation=self.relaxation or default_relaxation)


class NetworkSection(_Strict):
    """Every channel's quality (latency in ms) and how the ADMM rounds wait for it."""

    latency: Literal["constant", "normal", "lognormal"] = "constant"
    mean_ms: float = Field(0.0, ge=0)
    std_ms: float = Field(0.0, ge=0)
    jitter_ms: float = Field(0.0, ge=0)
    loss: float = Field(0.0, ge=0, lt=1)
    bandwidth_kbps: float | None = Field(None, gt=0)
    mode: Literal["sync", "async"] = Timing.mode
    timeout_ms: float = Field(Timing.timeout_ms, gt=0)
    compute_ms: float = Field(Timing.compute_ms, ge=0)
    deadline_s: float = Field(Timing.deadline_ms / 1e3, gt=0, le=900.0)
    retransmit: bool = Timing.retransmit  # acknowledged exchanges, lost messages sent again

    def channel(self) -> ChannelSpec:
        return ChannelSpec(self.latency, mean_ms=self.mean_ms, std_ms=self.std_ms, jitter_ms=self.jitter_ms,
                           loss=self.loss, bandwidth_kbps=self.bandwidth_kbps)

    def timing(self) -> Timing:
        return Timing(self.mode, self.timeout_ms, self.compute_ms, self.deadline_s * 1e3, self.retransmit)


class AttackSection(_Strict):
    kind: Literal[ATTACK_KINDS]  # type: ignore[valid-type]
    agents: list[int] = Field(min_length=1)
    start: int = Field(1, ge=1)
    period: int = Field(5, ge=1)  # unstated: the kind's default (5; stealthy: 1)
    fields: list[Literal[KNOWN_FIELDS]] = ["P"]  # type: ignore[valid-type]
    delta: float = 0.05
    sigma: float = Field(0.01, ge=0)
    low: float = -1.0
    high: float = 1.0
    factor: float = -3.0
    lag: int = Field(10, ge=1)
    drift: float = Field(0.5, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _kind_default_period(cls, data: object) -> object:
        """An unstated period is the kind's (scenario.json shows it filled in)."""
        if isinstance(data, dict) and "period" not in data and data.get("kind") in DEFAULT_PERIOD:
            return {**data, "period": DEFAULT_PERIOD[data["kind"]]}
        return data

    def spec(self, seed: int, alpha: float | None = None) -> AttackSpec:
        """The behaviour; ``alpha``: the detector's false-alarm rate, which a stealthy attacker knows."""
        return AttackSpec(self.kind, tuple(self.agents), self.start, self.period, tuple(self.fields), self.delta,
                          self.sigma, self.low, self.high, self.factor, self.lag, seed, self.drift,
                          **({} if alpha is None else {"alpha": alpha}))


class DetectorSection(_Strict):
    name: Literal[DETECTORS] = "none"  # type: ignore[valid-type]
    alpha: float | None = Field(None, gt=0, lt=1)

    def options(self) -> dict[str, float]:
        return {} if self.alpha is None else {"alpha": self.alpha}


class StorageSection(_Strict):
    """Batteries behind a share of the prosumers' meters (:mod:`physical.storage`), run by a per-interval online
    controller (:mod:`market.online`); the Storage simulator carries their state of charge between quarter
    hours. The defaults are ``cosim online``'s."""

    controller: Literal["lyapunov", "lyapunov-standard", "myopic"] = "lyapunov"
    V: float | None = Field(None, gt=0)  # Lyapunov weight (kWh^2/ct); default the largest admissible, v_max
    share: float = Field(0.5, gt=0, le=1)  # share of loaded buses with a battery
    hours: float = Field(2.0, gt=0)  # capacity / rated power
    efficiency: float = Field(0.95, gt=0, le=1)  # one-way
    soc_min: float = Field(0.1, ge=0, le=1)  # SoC window and start, shares of the capacity
    soc_max: float = Field(0.9, ge=0, le=1)
    soc0: float = Field(0.5, ge=0, le=1)
    tariff: Literal["flat", "tou"] = "tou"  # the retail tariff (market/tariff.py): flat prices leave storage little

    @model_validator(mode="after")
    def _window(self) -> StorageSection:
        if not self.soc_min <= self.soc0 <= self.soc_max:
            raise ValueError("fields soc_min, soc0, soc_max: expected soc_min <= soc0 <= soc_max")
        if self.V is not None and not self.controller.startswith("lyapunov"):
            raise ValueError(f"field V: the Lyapunov controllers' weight; {self.controller} takes none")
        return self

    def options(self, market: InstanceOptions) -> InstanceOptions:
        return replace(market, storage_share=self.share, storage_hours=self.hours,
                       storage_efficiency=self.efficiency, storage_soc_range=(self.soc_min, self.soc_max),
                       storage_soc0=self.soc0, tariff=self.tariff)


class StudySection(_Strict):
    """A delay study: every (latency, loss) pair -- and splitting, if several are named -- clears the
    scenario's first interval once."""

    latency_ms: list[float] = Field(min_length=1)
    loss: list[float] = [0.0]
    projections: list[Literal[PROJECTIONS]] = []  # type: ignore[valid-type]  # empty: the scenario's own

    @field_validator("latency_ms", "loss")
    @classmethod
    def _non_negative(cls, values: list[float]) -> list[float]:
        if any(v < 0 for v in values):
            raise ValueError("values must be non-negative")
        return values


class Scenario(_Strict):
    name: str
    case: str
    seed: int = Field(0, ge=0)
    start: str = DEFAULT_INTERVAL
    intervals: int = Field(1, ge=1, le=YEAR_INTERVALS)
    method: Literal["centralized", "admm"] = "admm"
    market: MarketSection = MarketSection()
    admm: AdmmSection = AdmmSection()
    network: NetworkSection = NetworkSection()
    attacks: list[AttackSection] = []
    detector: DetectorSection = DetectorSection()
    study: StudySection | None = None
    storage: StorageSection | None = None

    @field_validator("start")
    @classmethod
    def _in_profile_year(cls, start: str) -> str:
        try:
            interval_index(start)
        except FeederError as exc:
            raise ValueError(str(exc)) from exc
        return start

    @model_validator(mode="after")
    def _intervals_in_profile_year(self) -> Scenario:
        first = interval_index(self.start)
        if first + self.intervals > YEAR_INTERVALS:
            raise ValueError(f"field intervals: {self.intervals} quarter hours from {self.start} run past the end of "
                             f"the profile year 2016 (at most {YEAR_INTERVALS - first} from there)")
        return self

    def instance_options(self) -> InstanceOptions:
        """The instances' options: the market section's, with the batteries and tariff of ``[storage]``."""
        options = self.market.options()
        return options if self.storage is None else self.storage.options(options)

    def attack_specs(self) -> tuple[AttackSpec, ...]:
        return tuple(a.spec(self.seed + k, self.detector.alpha) for k, a in enumerate(self.attacks))

    def admm_settings(self) -> AdmmSettings:
        """The ADMM settings of this scenario (relaxation by default after its attacks, detector and network
        timing mode)."""
        return self.admm.settings(default_relaxation(self.attack_specs(), self.detector.name, self.network.mode))


def _problem(error: dict) -> str:
    """One pydantic error as "field a.b: what was expected" (a check across fields names its field itself)."""
    message = error["msg"].removeprefix("Value error, ")
    field = ".".join(str(p) for p in error["loc"])
    return f"field {field}: {message}" if field else message


def load_scenario(path: Path) -> Scenario:
    """Read and validate a scenario file; every problem is a :class:`ScenarioError` naming file and field."""
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ScenarioError(f"{path}: no such scenario file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot be read ({exc})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML: {exc}") from exc
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_problem(e) for e in exc.errors())
        raise ScenarioError(f"{path}: {problems}") from exc
    if scenario.method == "centralized" and (scenario.attacks or scenario.detector.name != "none"):
        raise ScenarioError(f"{path}: field method: attacks and detectors need method = \"admm\"")
    try:
        setup = CyberSetup(attacks=scenario.attack_specs(), detector=scenario.detector.name,
                           timing=scenario.network.timing())
        scenario.network.channel()
    except CyberError as exc:
        raise ScenarioError(f"{path}: {exc}") from exc
    studied = scenario.study.projections if scenario.study is not None else []
    for field, projection in [("admm.projection", scenario.admm.projection)] + [("study.projections", p)
                                                                                  for p in studied]:
        try:
            check_projection(projection, setup)
        except CyberError as exc:
            raise ScenarioError(f"{path}: field {field}: {exc}") from exc
    try:
        n_buses = load_feeder(scenario.case).n_buses
    except FeederError as exc:
        raise ScenarioError(f"{path}: field case: {exc}") from exc
    for k, attack in enumerate(scenario.attacks):
        bad = [a for a in attack.agents if not 1 <= a < n_buses]
        if bad:
            raise ScenarioError(f"{path}: field attacks.{k}.agents: {bad} are not prosumers of {scenario.case} "
                                f"(buses 1..{n_buses - 1})")
    if scenario.storage is not None:
        if scenario.study is not None:
            raise ScenarioError(f"{path}: field storage: a delay study clears single intervals; batteries need a run")
        try:
            storage_plan(scenario)
        except InstanceError as exc:
            raise ScenarioError(f"{path}: field storage: {exc}") from exc
    return scenario


def storage_plan(scenario: Scenario) -> StoragePlan:
    """The batteries of a scenario with ``[storage]`` and the controller that runs them; refuses a scenario whose
    seed draws no unit or whose V is outside the admissible range (:class:`market.errors.InstanceError`)."""
    first = interval_index(scenario.start)
    instance = build_instance(load_feeder(scenario.case), interval=first, seed=scenario.seed,
                              options=scenario.instance_options())
    arr = storage_arrays(instance)
    if arr.n_units == 0:
        raise InstanceError(f"share {scenario.storage.share:g} with seed {scenario.seed} gives no battery on "
                            f"{scenario.case}")
    retail = retail_prices(instance.options, first, scenario.intervals)
    return StoragePlan(arr, interval_controller(arr, scenario.storage.controller, scenario.storage.V, retail))
