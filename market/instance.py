"""The market instance: everything a clearing needs, and nothing it computes.

``feeder + interval + seed -> MarketInstance``: one prosumer agent per non-substation bus with its desired net
injection ``p_hat`` (renewable output minus load, from SimBench profiles), its role (buyer ``p_hat < 0``,
seller ``p_hat > 0``, otherwise a passive power-flow participant), seeded cost parameters and its trading
partners. The instance serialises to JSON and back unchanged, so a clearing can be re-solved anywhere.

Modelling choices written down here (the paper's parameter values were lost in extraction):
- costs in cents per interval, energy in kWh = kW x ``dt_h``; buyer ``-(b E - a E^2) + c (E - E_hat)^2``,
  seller ``a S^2 + b S``, bilateral trade ``fee T + trade_a T^2`` (the small quadratic term makes the split
  between partners unique), utility company: retail ``lambda_b`` to buyers, feed-in ``lambda_s`` from sellers,
  losses ``sum (r + mu x) l`` at ``loss_price`` (a positive price on losses keeps the SOC relaxation exact; the
  reactive part covers lines with r = 0);
- fee ``fee_per_ohm x |Z|`` of the tree path between the two parties (electrical distance);
- reactive power: a buyer keeps its load's power factor when it curtails, ``q = q_hat + tan_phi (p - p_hat)``;
  sellers and passive buses keep ``q = q_hat`` (inverters at unity power factor, load fully served).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from market.errors import InstanceError
from market.tariff import TARIFFS, min_factor, tariff_factor
from physical.errors import FeederError
from physical.feeder import Feeder
from physical.profiles import assign_profiles, interval_index, interval_start
from physical.storage import StorageUnit, assign_storage, validate_storage

ROLES = ("buyer", "seller", "passive")
#: 2 adds ``storage`` (units at prosumer buses) and the ``tariff`` and ``storage_*`` options; version 1 files
#: (no storage, flat tariff) still load.
SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)
#: Storage draws come from their own stream of the seed, so that adding storage changes no other draw.
STORAGE_STREAM = 18
#: Net injections smaller than this (kW) make a bus a passive power-flow participant.
PASSIVE_THRESHOLD_KW = 1e-6
#: Who may trade with whom: every buyer with every seller, each buyer with its ``k_nearest`` electrically
#: nearest sellers, or ``auto``: all pairs while there are at most ``MAX_ALL_TRADES`` of them, else the nearest.
PARTNER_RULES = ("auto", "all", "nearest")
#: All pairs grow with the square of the feeder (``1-MVLV-rural-all-0-sw`` at noon: 4 785 buyers x 354 sellers,
#: 1.7 M trades, against 14 355 with the 3 nearest); every MATPOWER case and SimBench LV or MV grid (at most
#: 70 x 70 pairs) stays below this limit, so ``auto`` gives them all pairs.
MAX_ALL_TRADES = 10_000


@dataclass(frozen=True)
class InstanceOptions:
    """Caller-given ranges and prices; every random draw comes from ``seed``."""

    buyer_a: tuple[float, float] = (0.01, 0.02)  # cent/kWh^2, utility curvature
    buyer_b: tuple[float, float] = (20.0, 30.0)  # cent/kWh, marginal utility at zero
    buyer_c: tuple[float, float] = (0.5, 1.0)  # cent/kWh^2, discomfort of curtailing demand
    seller_a: tuple[float, float] = (0.02, 0.05)  # cent/kWh^2
    seller_b: tuple[float, float] = (2.0, 6.0)  # cent/kWh
    trade_a: float = 0.002  # cent/kWh^2 on each bilateral trade
    fee_per_ohm: float = 0.1  # cent/kWh per ohm of path impedance
    retail_price: float = 22.0  # cent/kWh, utility sells to buyers
    feed_in_price: float = 4.0  # cent/kWh, utility buys from sellers
    loss_price: float = 22.0  # cent/kWh of losses
    reactive_loss_weight: float = 0.1  # mu: weight of x*l next to r*l in the loss term
    partners: str = "auto"  # "all" buyers x sellers, "nearest" k sellers per buyer, "auto" (MAX_ALL_TRADES)
    k_nearest: int = 3
    pv_share: float = 0.5
    pv_ratio: tuple[float, float] = (0.5, 2.0)  # PV capacity / nominal load
    wind_share: float = 0.15
    wind_ratio: tuple[float, float] = (0.5, 1.5)
    load_types: tuple[str, ...] = ()  # SimBench load-profile prefixes; empty = all standard profiles
    vmin_pu: float | None = 0.9  # voltage limits for every bus; None: the case file's VMIN/VMAX
    vmax_pu: float | None = 1.1
    dt_h: float = 0.25
    tariff: str = "flat"  # retail tariff: "flat" or "tou" (market/tariff.py)
    storage_share: float = 0.0  # share of loaded buses with a battery
    storage_power_ratio: tuple[float, float] = (0.5, 1.0)  # rated kW / max(peak load, PV + wind capacity)
    storage_hours: float = 2.0  # capacity kWh / rated kW
    storage_efficiency: float = 0.95  # one-way (charge and discharge) efficiency
    storage_soc_range: tuple[float, float] = (0.1, 0.9)  # SoC window, share of capacity
    storage_soc0: float = 0.5  # SoC at the start of a run, share of capacity

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, int | float) for v in value):
                lo, hi = value
                if not (math.isfinite(lo) and math.isfinite(hi) and 0 <= lo <= hi):
                    raise InstanceError(f"option {f.name}: expected a range 0 <= low <= high, got {value}")
        for name in ("pv_share", "wind_share", "storage_share", "storage_soc0"):
            if not 0 <= getattr(self, name) <= 1:
                raise InstanceError(f"option {name}: expected a share between 0 and 1, got {getattr(self, name)}")
        if self.partners not in PARTNER_RULES:
            raise InstanceError(f"option partners: expected one of {PARTNER_RULES}, got {self.partners!r}")
        if self.k_nearest < 1:
            raise InstanceError(f"option k_nearest: expected >= 1, got {self.k_nearest}")
        if self.tariff not in TARIFFS:
            raise InstanceError(f"option tariff: expected one of {TARIFFS}, got {self.tariff!r}")
        if not 0 <= self.feed_in_price <= self.retail_price * min_factor(self.tariff):
            raise InstanceError("options feed_in_price/retail_price: expected 0 <= feed-in <= the lowest retail "
                                f"price of the {self.tariff} tariff")
        if not (self.storage_hours > 0 and 0 < self.storage_efficiency <= 1):
            raise InstanceError("options storage_hours and storage_efficiency: expected hours > 0 and an "
                                "efficiency in (0, 1]")
        lo, hi = self.storage_soc_range
        if not (hi <= 1 and lo <= self.storage_soc0 <= hi):
            raise InstanceError("options storage_soc_range/storage_soc0: expected 0 <= low <= soc0 <= high <= 1")
        if self.loss_price <= 0 or self.dt_h <= 0:
            raise InstanceError("options loss_price and dt_h must be positive")


@dataclass(frozen=True)
class Agent:
    """One prosumer: its bus, its line to the parent and its private economics (kW, cent)."""

    bus: int
    role: str
    d_kw: float
    g_kw: float
    p_hat_kw: float
    q_hat_kvar: float
    tan_phi: float
    a: float
    b: float
    c: float


@dataclass(frozen=True)
class Trade:
    """A permitted bilateral trade; ``fee`` in cent/kWh."""

    buyer: int
    seller: int
    fee: float


@dataclass(frozen=True, eq=False)
class MarketInstance:
    """Feeder + agents + partners + prices: the input of every clearing method."""

    feeder: Feeder
    agents: tuple[Agent, ...]
    trades: tuple[Trade, ...]
    options: InstanceOptions
    seed: int
    interval: int
    vmin_pu: np.ndarray = field(repr=False)  # in the feeder's p.u. (Feeder.vm_base), like the SOCP's voltages
    vmax_pu: np.ndarray = field(repr=False)
    storage: tuple[StorageUnit, ...] = ()

    @property
    def retail_price(self) -> float:
        """The utility's retail price in this quarter hour (cent/kWh), after the tariff's factor."""
        return self.options.retail_price * tariff_factor(self.options.tariff, self.interval, self.options.dt_h)

    @property
    def case(self) -> str:
        return self.feeder.name

    @property
    def kwh_per_pu(self) -> float:
        """Energy in kWh of one p.u. of power held for one interval."""
        return self.feeder.base_mva * 1e3 * self.options.dt_h

    def role_mask(self, role: str) -> np.ndarray:
        return np.array([a.role == role for a in self.agents])

    def to_dict(self) -> dict:
        f = self.feeder
        return {
            "schema_version": SCHEMA_VERSION,
            "case": f.name,
            "seed": self.seed,
            "interval": self.interval,
            "interval_start": interval_start(self.interval).isoformat(),
            "options": asdict(self.options),
            "feeder": {
                "name": f.name, "base_mva": f.base_mva, "base_kv": f.base_kv, "source": f.source,
                "notes": list(f.notes), "labels": list(f.labels), "parent": f.parent.tolist(),
                "r_pu": f.r_pu.tolist(), "x_pu": f.x_pu.tolist(), "pd_mw": f.pd_mw.tolist(),
                "qd_mvar": f.qd_mvar.tolist(), "vmin_pu": f.vmin_pu.tolist(), "vmax_pu": f.vmax_pu.tolist(),
                "imax_pu": [v if math.isfinite(v) else None for v in f.imax_pu.tolist()],
                "vm_base": None if f.vm_base is None else f.vm_base.tolist(),
            },
            "vmin_pu": self.vmin_pu.tolist(),
            "vmax_pu": self.vmax_pu.tolist(),
            "agents": [asdict(a) for a in self.agents],
            "trades": [asdict(t) for t in self.trades],
            "storage": [asdict(u) for u in self.storage],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)


def build_instance(feeder: Feeder, *, interval: int | str, seed: int,
                   options: InstanceOptions | None = None) -> MarketInstance:
    """Draw profiles, roles, costs and partners for one quarter hour of ``feeder``.

    A feeder with its own profile assignment (a SimBench grid: every load, generator and storage unit with
    its profile) keeps it, and the options ``pv_share``, ``pv_ratio``, ``wind_share``, ``wind_ratio`` and
    ``load_types`` do not apply; otherwise every bus draws its profiles from ``seed``.
    """
    opts = options or InstanceOptions()
    index = interval_index(interval)
    rng = np.random.default_rng(seed)
    profiles = feeder.own_profiles or assign_profiles(
        feeder, rng, pv_share=opts.pv_share, pv_ratio=opts.pv_ratio, wind_share=opts.wind_share,
        wind_ratio=opts.wind_ratio, load_types=opts.load_types)
    demand_mw, gen_mw = profiles.snapshot(index)
    agents = []
    for j in range(1, feeder.n_buses):
        d_kw, g_kw = demand_mw[j] * 1e3, gen_mw[j] * 1e3
        p_hat = g_kw - d_kw
        role = "buyer" if p_hat < -PASSIVE_THRESHOLD_KW else "seller" if p_hat > PASSIVE_THRESHOLD_KW else "passive"
        tan_phi = feeder.qd_mvar[j] / feeder.pd_mw[j] if feeder.pd_mw[j] > 0 else 0.0
        # every agent draws all parameters so that one agent's role does not shift the others' draws
        buyer = (rng.uniform(*opts.buyer_a), rng.uniform(*opts.buyer_b), rng.uniform(*opts.buyer_c))
        seller = (rng.uniform(*opts.seller_a), rng.uniform(*opts.seller_b), 0.0)
        a, b, c = buyer if role == "buyer" else seller if role == "seller" else (0.0, 0.0, 0.0)
        agents.append(Agent(bus=j, role=role, d_kw=float(d_kw), g_kw=float(g_kw), p_hat_kw=float(p_hat),
                            q_hat_kvar=float(-tan_phi * d_kw), tan_phi=float(tan_phi), a=float(a),
                            b=float(b), c=float(c)))
    # the options' limits are in p.u. of the buses' nominal voltages, the feeder's in its own p.u. (vm_base)
    vmin = feeder.model_vm(opts.vmin_pu) if opts.vmin_pu is not None else feeder.vmin_pu.copy()
    vmax = feeder.model_vm(opts.vmax_pu) if opts.vmax_pu is not None else feeder.vmax_pu.copy()
    vmin[0] = vmax[0] = 1.0
    storage = assign_storage(*profiles.nominal(), np.random.default_rng((int(seed), STORAGE_STREAM)),
                             share=opts.storage_share, power_ratio=opts.storage_power_ratio, hours=opts.storage_hours,
                             efficiency=opts.storage_efficiency, soc_range=opts.storage_soc_range,
                             soc0=opts.storage_soc0)
    instance = MarketInstance(feeder, tuple(agents), _partners(feeder, agents, opts), opts, int(seed), index,
                              vmin, vmax, storage)
    validate_instance(instance)
    return instance


def _partners(feeder: Feeder, agents: list[Agent], opts: InstanceOptions) -> tuple[Trade, ...]:
    buyers = [a.bus for a in agents if a.role == "buyer"]
    sellers = [a.bus for a in agents if a.role == "seller"]
    z_ohm = feeder.path_impedance_pu(buyers) * feeder.base_kv**2 / feeder.base_mva  # row k: buyers[k]
    seller_ids = np.array(sellers, dtype=int)
    # nearest: a stable sort over the sellers in bus order, so equal distances go to the lower bus
    nearest = np.argsort(z_ohm[:, seller_ids], axis=1, kind="stable")[:, : opts.k_nearest]
    every = opts.partners == "all" or (opts.partners == "auto" and len(buyers) * len(sellers) <= MAX_ALL_TRADES)
    trades = []
    for k, i in enumerate(buyers):
        chosen = seller_ids if every else np.sort(seller_ids[nearest[k]])
        trades += [Trade(i, int(s), float(opts.fee_per_ohm * z_ohm[k, s])) for s in chosen]
    return tuple(trades)


def validate_instance(instance: MarketInstance, where: str = "instance") -> None:
    """Check the invariants a clearing relies on; raise :class:`InstanceError` naming the field."""
    f = instance.feeder
    n = f.n_buses
    if [a.bus for a in instance.agents] != list(range(1, n)):
        raise InstanceError(f"{where}: field agents: expected one agent per bus 1..{n - 1} in order")
    for a in instance.agents:
        expected = ("buyer" if a.p_hat_kw < -PASSIVE_THRESHOLD_KW else "seller"
                    if a.p_hat_kw > PASSIVE_THRESHOLD_KW else "passive")
        if a.role != expected:
            raise InstanceError(f"{where}: field agents[{a.bus - 1}].role: expected {expected!r} for "
                                f"p_hat_kw={a.p_hat_kw}, got {a.role!r}")
        values = [a.d_kw, a.g_kw, a.p_hat_kw, a.q_hat_kvar, a.tan_phi, a.a, a.b, a.c]
        if not all(math.isfinite(v) for v in values) or min(a.a, a.b, a.c, a.d_kw, a.g_kw) < 0:
            raise InstanceError(f"{where}: field agents[{a.bus - 1}]: expected finite, non-negative "
                                "loads, generation and cost parameters")
        if a.role != "passive" and a.a <= 0:
            raise InstanceError(f"{where}: field agents[{a.bus - 1}].a: expected > 0 (strictly convex cost)")
    roles = {a.bus: a.role for a in instance.agents}
    seen = set()
    for k, t in enumerate(instance.trades):
        if roles.get(t.buyer) != "buyer" or roles.get(t.seller) != "seller":
            raise InstanceError(f"{where}: field trades[{k}]: expected a buyer and a seller, got buses "
                                f"{t.buyer} ({roles.get(t.buyer)}) and {t.seller} ({roles.get(t.seller)})")
        if (t.buyer, t.seller) in seen or not (math.isfinite(t.fee) and t.fee >= 0):
            raise InstanceError(f"{where}: field trades[{k}]: duplicate pair or negative fee")
        seen.add((t.buyer, t.seller))
    for name in ("vmin_pu", "vmax_pu"):
        arr = getattr(instance, name)
        if arr.shape != (n,) or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
            raise InstanceError(f"{where}: field {name}: expected {n} positive values")
    if np.any(instance.vmin_pu > instance.vmax_pu):
        raise InstanceError(f"{where}: fields vmin_pu/vmax_pu: expected vmin <= vmax at every bus")
    try:
        validate_storage(instance.storage, n, f"{where}: field storage")
    except FeederError as exc:
        raise InstanceError(str(exc)) from exc


def instance_from_dict(data: dict, where: str = "instance") -> MarketInstance:
    """Rebuild an instance from :meth:`MarketInstance.to_dict` output, naming the field that is wrong."""
    def need(mapping: dict, key: str, path: str):
        if not isinstance(mapping, dict) or key not in mapping:
            raise InstanceError(f"{where}: missing field {path}{key}")
        return mapping[key]

    try:
        version = need(data, "schema_version", "")
        if version not in READABLE_VERSIONS:
            raise InstanceError(f"{where}: field schema_version: expected one of {READABLE_VERSIONS}, got {version!r}")
        fd = need(data, "feeder", "")
        arrays = {k: np.asarray(need(fd, k, "feeder."), dtype=float) for k in
                  ("r_pu", "x_pu", "pd_mw", "qd_mvar", "vmin_pu", "vmax_pu")}
        imax = np.array([np.inf if v is None else float(v) for v in need(fd, "imax_pu", "feeder.")])
        feeder = Feeder(
            name=str(need(fd, "name", "feeder.")), base_mva=float(need(fd, "base_mva", "feeder.")),
            base_kv=float(need(fd, "base_kv", "feeder.")),
            labels=tuple(int(b) for b in need(fd, "labels", "feeder.")),
            parent=np.asarray(need(fd, "parent", "feeder."), dtype=int), imax_pu=imax,
            source=str(fd.get("source", "")), notes=tuple(fd.get("notes", ())),
            vm_base=None if fd.get("vm_base") is None else np.asarray(fd["vm_base"], dtype=float), **arrays)
        _check_tree(feeder, where)
        opts_raw = dict(need(data, "options", ""))
        known = {f.name for f in fields(InstanceOptions)}
        unknown = sorted(set(opts_raw) - known)
        if unknown:
            raise InstanceError(f"{where}: field options: unknown keys {unknown}")
        try:
            opts = InstanceOptions(**{k: tuple(v) if isinstance(v, list) else v for k, v in opts_raw.items()})
        except InstanceError as exc:
            raise InstanceError(f"{where}: {exc}") from exc
        agents = tuple(Agent(**a) for a in need(data, "agents", ""))
        trades = tuple(Trade(**t) for t in need(data, "trades", ""))
        storage = tuple(StorageUnit(**u) for u in (need(data, "storage", "") if version >= 2 else ()))
        instance = MarketInstance(feeder, agents, trades, opts, int(need(data, "seed", "")),
                                  int(need(data, "interval", "")),
                                  np.asarray(need(data, "vmin_pu", ""), dtype=float),
                                  np.asarray(need(data, "vmax_pu", ""), dtype=float), storage)
    except InstanceError:
        raise
    except (TypeError, ValueError) as exc:
        raise InstanceError(f"{where}: malformed instance ({exc})") from exc
    validate_instance(instance, where)
    return instance


def _check_tree(feeder: Feeder, where: str) -> None:
    n = feeder.n_buses
    shapes = [feeder.parent, feeder.r_pu, feeder.x_pu, feeder.pd_mw, feeder.qd_mvar, feeder.vmin_pu,
              feeder.vmax_pu, feeder.imax_pu] + ([] if feeder.vm_base is None else [feeder.vm_base])
    if n < 2 or any(a.shape != (n,) for a in shapes):
        raise InstanceError(f"{where}: field feeder: expected arrays of length {n} (one per bus)")
    if feeder.vm_base is not None and not (np.all(np.isfinite(feeder.vm_base)) and np.all(feeder.vm_base > 0)):
        raise InstanceError(f"{where}: field feeder.vm_base: expected {n} positive voltage base ratios")
    if feeder.parent[0] != -1 or np.any(feeder.parent[1:] < 0) or np.any(feeder.parent[1:] >= n):
        raise InstanceError(f"{where}: field feeder.parent: expected -1 for bus 0 and a bus index otherwise")
    try:
        order = feeder.topological_order
    except Exception as exc:  # networkx raises on malformed graphs
        raise InstanceError(f"{where}: field feeder.parent does not describe a tree ({exc})") from exc
    if len(order) != n:
        raise InstanceError(f"{where}: field feeder.parent: buses not reachable from the substation")


def load_instance(path: str | Path) -> MarketInstance:
    """Read ``instance.json``; a malformed file is an :class:`InstanceError` naming the file and field."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except OSError as exc:
        raise InstanceError(f"{p}: cannot read instance file ({exc.strerror})") from exc
    except json.JSONDecodeError as exc:
        raise InstanceError(f"{p}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from exc
    except UnicodeDecodeError as exc:
        raise InstanceError(f"{p}: not a text file (byte {exc.start} is not UTF-8); expected an instance.json "
                            "written by cosim") from exc
    if not isinstance(data, dict):
        raise InstanceError(f"{p}: expected a JSON object at the top level")
    return instance_from_dict(data, str(p))
