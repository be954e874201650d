"""Scenario files: what a co-simulation run is, as TOML validated by a pydantic schema.

A scenario names the feeder, the seed, the first quarter hour and how many follow, the market method and ADMM
settings, the communication network and how the ADMM waits for it, the Byzantine attacks and the detector
every agent runs, and optionally a delay study (latency x loss grid), weather-driven line ratings and a private
clearing (``[privacy]``). Unknown keys are errors: a typo must not silently fall back to a default. Errors name
the file, the field and what was expected.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from cosim.external import ConnectSection, ExternalError, ExternalSection, check_external
from cosim.scenario_table import ScenarioTable
from cyber.attacks import ATTACK_KINDS, DEFAULT_PERIOD, KNOWN_FIELDS, AttackSpec
from cyber.errors import CyberError
from cyber.network import ChannelSpec
from cyber.privacy.coefficient import CoefficientRange
from cyber.privacy.paillier import DEFAULT_KEY_BITS, check_key_bits
from cyber.privacy.setup import MODES as PRIVACY_MODES
from cyber.privacy.setup import PrivacySetup, private_settings
from cyber.resilient_admm import DETECTORS, CyberSetup, Timing, check_projection, check_stopping, default_relaxation
from market.admm.driver import PROJECTIONS, AdmmSettings
from market.admm.stopping import STOPPING_RULES, StoppingError, check_size
from market.errors import InstanceError
from market.instance import InstanceOptions, build_instance
from market.online.controllers import LyapunovController, MyopicController
from market.online.study import interval_controller, retail_prices
from market.problem.storage import StorageArrays, storage_arrays
from physical.catalog import load_feeder
from physical.errors import FeederError
from physical.feeder_ratings import DEFAULT_MV_CONDUCTOR, MV_CONDUCTORS, RATING_MODES, feeder_conductors
from physical.profiles import DEFAULT_INTERVAL, YEAR_INTERVALS, interval_index
from physical.weather import DEFAULT_STATION, bundled_stations


class ScenarioError(ValueError):
    """A scenario file that cannot be read or does not follow the schema."""


@dataclass(frozen=True, eq=False)
class StoragePlan:
    """A scenario's batteries (the same units in every quarter hour) and the controller that sets them."""

    arrays: StorageArrays
    controller: LyapunovController | MyopicController


class MarketSection(ScenarioTable):
    partners: Literal["auto", "all", "nearest"] = "auto"
    k_nearest: int = Field(3, ge=1)
    pv_share: float = Field(0.5, ge=0, le=1)
    wind_share: float = Field(0.15, ge=0, le=1)
    vmin_pu: float = Field(0.9, gt=0)
    vmax_pu: float = Field(1.1, gt=0)

    def options(self) -> InstanceOptions:
        return InstanceOptions(partners=self.partners, k_nearest=self.k_nearest, pv_share=self.pv_share,
                               wind_share=self.wind_share, vmin_pu=self.vmin_pu, vmax_pu=self.vmax_pu)


class AdmmSection(ScenarioTable):
    # the paper's one-hop messages unless a scenario asks for the sweep (fewer iterations, 2 x (depth - 1) hops
    # each)
    projection: Literal[PROJECTIONS] = "local"  # type: ignore[valid-type]
    rho: float = Field(AdmmSettings.rho, gt=0)
    tol_primal: float | None = Field(None, gt=0)  # default: the splitting's (market.admm.driver)
    tol_dual: float | None = Field(None, gt=0)
    max_iter: int = Field(AdmmSettings.max_iter, ge=1)
    relaxation: float | None = Field(None, gt=0, lt=2)  # default: cyber.resilient_admm.default_relaxation
    warm_start: bool = True  # agents start a quarter hour where the last converged clearing ended
    stopping: Literal[STOPPING_RULES] = "central"  # type: ignore[valid-type]
    stop_trim: int | None = Field(None, ge=0)  # default: 1 with a detector (market.admm.stopping), else 0

    def settings(self, default_relaxation: float, defended: bool = False) -> AdmmSettings:
        """``defended``: the agents run a detector, so the distributed stopping test is resilient by default."""
        trim = self.stop_trim if self.stop_trim is not None else int(defended and self.stopping == "distributed")
        try:
            return AdmmSettings(projection=self.projection, rho=self.rho, tol_primal=self.tol_primal,
                                tol_dual=self.tol_dual, max_iter=self.max_iter,
                                relaxation=self.relaxation or default_relaxation, stopping=self.stopping,
                                stop_trim=trim)
        except ValueError as exc:
            raise ScenarioError(f"field admm: {exc}") from exc


class NetworkSection(ScenarioTable):
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
    # async rounds: iterations a value may lag behind (a local barrier, cyber.async_rounds); "none": no barrier
    max_staleness: int | Literal["none"] = Timing.max_staleness

    @field_validator("max_staleness", mode="before")
    @classmethod
    def _staleness(cls, value: object) -> object:
        if value != "none" and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise ValueError(f'expected an integer >= 0 or "none", got {value!r}')
        return value

    def channel(self) -> ChannelSpec:
        return ChannelSpec(self.latency, mean_ms=self.mean_ms, std_ms=self.std_ms, jitter_ms=self.jitter_ms,
                           loss=self.loss, bandwidth_kbps=self.bandwidth_kbps)

    def timing(self) -> Timing:
        return Timing(self.mode, self.timeout_ms, self.compute_ms, self.deadline_s * 1e3, self.retransmit,
                      self.staleness_bound())

    def staleness_bound(self) -> int | None:
        """``max_staleness`` as the timing takes it: ``None`` for no barrier."""
        return None if self.max_staleness == "none" else self.max_staleness


class AttackSection(ScenarioTable):
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
    claim: float = AttackSpec.claim

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
                          claim=self.claim, **({} if alpha is None else {"alpha": alpha}))


class DetectorSection(ScenarioTable):
    name: Literal[DETECTORS] = "none"  # type: ignore[valid-type]
    alpha: float | None = Field(None, gt=0, lt=1)

    def options(self) -> dict[str, float]:
        return {} if self.alpha is None else {"alpha": self.alpha}


class StorageSection(ScenarioTable):
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


class StudySection(ScenarioTable):
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


class RatingsSection(ScenarioTable):
    """Weather-driven line ratings (:mod:`physical.feeder_ratings`): every line strung with ``conductor``, rated
    each quarter hour from the TMY weather of ``station`` (``dynamic``) or under the conservative assumption
    (``static``); ``compare`` also runs the other mode and reports the difference."""

    mode: Literal[RATING_MODES] = "dynamic"  # type: ignore[valid-type]
    station: str = DEFAULT_STATION
    conductor: str = DEFAULT_MV_CONDUCTOR
    compare: bool = False

    @field_validator("station")
    @classmethod
    def _bundled(cls, station: str) -> str:
        if station not in bundled_stations():
            raise ValueError(f"expected one of pvlib's TMY3 files {bundled_stations()}, got {station!r}")
        return station

    @field_validator("conductor")
    @classmethod
    def _known_conductor(cls, conductor: str) -> str:
        if conductor not in MV_CONDUCTORS:
            raise ValueError(f"expected one of {sorted(MV_CONDUCTORS)}, got {conductor!r}")
        return conductor


class PrivacySection(ScenarioTable):
    """The private clearing (docs/privacy.md): ``paillier`` protects the trade pairs, ``hybrid`` also the
    sweep's subtree flows; keys of ``key_bits`` (at least 1024), each side's random encryption coefficient
    drawn from ``[coefficient_low, coefficient_high]`` (within ``[1/2, sqrt(4/3))``). ``encrypt = false`` runs
    the protocol's clear arithmetic instead (the same integers, messages, sizes and charged crypto time; no
    secrecy): for studies whose encryption would take hours."""

    mode: Literal[PRIVACY_MODES] = "none"  # type: ignore[valid-type]
    key_bits: int = DEFAULT_KEY_BITS
    coefficient_low: float = CoefficientRange.low
    coefficient_high: float = CoefficientRange.high
    encrypt: bool = True

    @field_validator("key_bits")
    @classmethod
    def _key_bits(cls, bits: int) -> int:
        try:
            return check_key_bits(bits)
        except CyberError as exc:
            raise ValueError(str(exc)) from exc

    @model_validator(mode="after")
    def _coefficients(self) -> PrivacySection:
        try:
            CoefficientRange(self.coefficient_low, self.coefficient_high)
        except CyberError as exc:
            raise ValueError(f"field privacy.coefficient_low/coefficient_high: {exc}") from exc
        return self

    def setup(self) -> PrivacySetup:
        return PrivacySetup(self.mode, self.key_bits, CoefficientRange(self.coefficient_low, self.coefficient_high))


class Scenario(ScenarioTable):
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
    ratings: RatingsSection | None = None  # none: the case's own (static) line ratings
    privacy: PrivacySection = PrivacySection()
    storage: StorageSection | None = None
    external: list[ExternalSection] = []  # the user's own mosaik simulators (cosim.external)
    connect: list[ConnectSection] = []

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
        if self.privacy.mode != "none":  # relaxation 1 unless set (and then checked by private_settings)
            return private_settings(self.admm.settings(1.0))
        return self.admm.settings(default_relaxation(self.attack_specs(), self.detector.name, self.network.mode,
                                                     self.network.staleness_bound()),
                                  self.detector.name != "none")


def _problem(error: dict) -> str:
    """One pydantic error as "field a.b: what was expected" (a check across fields names its field itself)."""
    message = error["msg"].removeprefix("Value error, ")
    field = ".".join(str(p) for p in error["loc"])
    return f"field {field}: {message}" if field else message


def _check_privacy(path: Path, scenario: Scenario) -> None:
    """What a private clearing cannot be combined with, each a clear error naming its field."""
    if scenario.privacy.mode == "none":
        return
    if scenario.method != "admm":
        raise ScenarioError(f"{path}: field privacy.mode: privacy protects the distributed market's exchanges: "
                            f"needs method = \"admm\"")
    if scenario.attacks or scenario.detector.name != "none":
        raise ScenarioError(f"{path}: field privacy.mode: detectors screen values in the clear and the private "
                            f"exchanges send none -- not combined with attacks or a detector (yet)")
    if scenario.network.loss > 0 and not scenario.network.retransmit:
        raise ScenarioError(f"{path}: field network.retransmit: a private exchange cannot make up a lost padded step "
                            f"(the pair's prices would no longer be opposite and the clearing stops): with "
                            f"network.loss > 0 it needs retransmit = true")
    if scenario.privacy.mode == "hybrid" and scenario.network.loss > 0:
        raise ScenarioError(f"{path}: field privacy.mode: hybrid needs every share of a round (a lost share breaks "
                            f"its parent's sum): network.loss must be 0")
    try:
        scenario.admm_settings()
    except CyberError as exc:
        raise ScenarioError(f"{path}: field admm: {exc}") from exc


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
    _check_privacy(path, scenario)
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
        settings = scenario.admm_settings()
    except ScenarioError as exc:
        raise ScenarioError(f"{path}: {exc}") from exc
    try:
        check_stopping(settings, setup)
    except CyberError as exc:
        raise ScenarioError(f"{path}: field admm.stopping: {exc}") from exc
    try:
        feeder = load_feeder(scenario.case)
    except FeederError as exc:
        raise ScenarioError(f"{path}: field case: {exc}") from exc
    n_buses = feeder.n_buses
    if settings.stopping == "distributed":
        try:
            check_size(scenario.case, n_buses - 1)
        except StoppingError as exc:
            raise ScenarioError(f"{path}: field admm.stopping: {exc}") from exc
    drawn = sorted({"pv_share", "wind_share"} & scenario.market.model_fields_set)
    if drawn and feeder.own_profiles is not None:
        raise ScenarioError(f"{path}: field market.{drawn[0]}: {scenario.case} is a SimBench grid, whose prosumers "
                            "follow the grid's own load, generator and storage profiles; remove "
                            f"{' and '.join('market.' + k for k in drawn)}")
    if scenario.ratings is not None:
        if feeder.own_profiles is not None:
            raise ScenarioError(f"{path}: field ratings: {scenario.case} is a SimBench grid, whose lines carry "
                                "their own types and ratings; weather-driven ratings need a MATPOWER feeder")
        try:
            feeder_conductors(feeder, scenario.seed, scenario.ratings.conductor)
        except FeederError as exc:
            raise ScenarioError(f"{path}: field ratings: {exc}") from exc
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
    try:
        check_external(scenario.external, scenario.connect, scenario.case, feeder)
    except ExternalError as exc:
        raise ScenarioError(f"{path}: {exc}") from exc
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
