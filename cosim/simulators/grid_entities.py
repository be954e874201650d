"""The Grid simulator's entities for other mosaik simulators: one per bus and one per line, with the attribute
names and units of the mosaik ecosystem's pandapower adapter (mosaik-pandapower-2), so that a household model,
a CSV player or a controller written for that adapter connects to our grid unchanged.

- ``Bus-j`` (bus ``j`` of the feeder, as in ``buses.csv``): inputs ``P_load[MW]``, ``Q_load[MVar]`` (consumption
  positive) and ``P_gen[MW]``, ``Q_gen[MVar]`` (generation positive), summed over everything connected to them;
  outputs ``P[MW]``, ``Q[MVar]`` (the bus's net demand, pandapower's ``res_bus`` sign: consumption positive),
  ``Vm[pu]`` and ``Va[deg]``.
- ``Line-j`` (the line feeding bus ``j``, as in ``lines.csv``): outputs ``P_from[MW]``, ``Q_from[MVar]`` (sending
  end) and ``loading[%]`` (NaN on an unrated line).

What the inputs do: they are loads and generators outside the market -- the AC power flow of every dispatch
carries them on top of the prosumers' dispatched injections, the market's clearing does not see them (see
``docs/external_simulators.md``). The outputs are those of the last AC power flow, published when it ran.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from physical.ac_power_flow import AcPowerFlow


class ExternalInputError(ValueError):
    """An external simulator sent the grid something that is not a power (not a finite number)."""


@dataclass(frozen=True)
class BusInput:
    """What an input attribute adds to its bus's net injection: ``sign x value`` to the active (``p``) or
    reactive (``q``) injection, in MW / MVar (generation positive)."""

    quantity: str
    sign: float


@dataclass(frozen=True)
class EntitySpec:
    """One kind of grid entity: its mosaik model, the buses it exists for, the attributes other simulators may
    set on it and the :class:`AcPowerFlow` field (and sign) behind every attribute it outputs."""

    model: str
    inputs: dict[str, BusInput] = field(default_factory=dict)
    outputs: dict[str, tuple[str, float]] = field(default_factory=dict)

    def eid(self, index: int) -> str:
        return f"{self.model}-{index}"

    @property
    def attrs(self) -> list[str]:
        return [*self.inputs, *self.outputs]


BUS = EntitySpec("Bus", inputs={
    "P_load[MW]": BusInput("p", -1.0), "Q_load[MVar]": BusInput("q", -1.0),
    "P_gen[MW]": BusInput("p", 1.0), "Q_gen[MVar]": BusInput("q", 1.0),
}, outputs={"P[MW]": ("bus_p_mw", -1.0), "Q[MVar]": ("bus_q_mvar", -1.0), "Vm[pu]": ("vm_pu", 1.0),
            "Va[deg]": ("va_degree", 1.0)})
LINE = EntitySpec("Line", outputs={"P_from[MW]": ("line_p_from_mw", 1.0), "Q_from[MVar]": ("line_q_from_mvar", 1.0),
                                   "loading[%]": ("loading_percent", 1.0)})
SPECS = {spec.model: spec for spec in (BUS, LINE)}


def entity_models() -> dict[str, dict]:
    """The mosaik model descriptions of the bus and line entities (children of the grid, not created by hand)."""
    return {spec.model: {"public": False, "params": [], "attrs": spec.attrs} for spec in SPECS.values()}


def entity_tree(n_buses: int) -> list[dict]:
    """The grid's child entities: every bus (0, the substation, included) and every line (1 .. n - 1)."""
    buses = [{"eid": BUS.eid(j), "type": BUS.model} for j in range(n_buses)]
    lines = [{"eid": LINE.eid(j), "type": LINE.model, "rel": [BUS.eid(j)]} for j in range(1, n_buses)]
    return buses + lines


def parse_eid(eid: str) -> tuple[EntitySpec, int]:
    model, index = eid.split("-")
    return SPECS[model], int(index)


class ExternalInjections:
    """The loads and generators other simulators put on the buses: the newest value of every (bus, attribute,
    source), so that sources stepping at different times each keep their own contribution."""

    def __init__(self, n_buses: int) -> None:
        self.n_buses = n_buses
        self.values_: dict[tuple[int, str, str], float] = {}

    def update(self, eid: str, attr: str, sent: dict[str, object]) -> None:
        _, bus = parse_eid(eid)
        for source, value in sent.items():
            try:
                number = float(value)
            except (TypeError, ValueError):
                number = math.nan
            if not math.isfinite(number):
                raise ExternalInputError(f"{source} sent {value!r} for {eid} {attr}: expected a finite number")
            self.values_[bus, attr, source] = number

    def injections(self) -> tuple[np.ndarray, np.ndarray]:
        """The net injection (MW, MVar; generation positive) the external elements add to every bus."""
        out = {"p": np.zeros(self.n_buses), "q": np.zeros(self.n_buses)}
        for (bus, attr, _), value in self.values_.items():
            given = BUS.inputs[attr]
            out[given.quantity][bus] += given.sign * value
        return out["p"], out["q"]

    def summary(self) -> dict[str, float]:
        """What the interval's AC check carried beyond the dispatch: external load and generation, kW and kvar."""
        totals = {attr: 0.0 for attr in BUS.inputs}
        for (_, attr, _), value in self.values_.items():
            totals[attr] += value
        return {"external_load_kw": totals["P_load[MW]"] * 1e3, "external_load_kvar": totals["Q_load[MVar]"] * 1e3,
                "external_gen_kw": totals["P_gen[MW]"] * 1e3, "external_gen_kvar": totals["Q_gen[MVar]"] * 1e3}


def entity_outputs(ac: AcPowerFlow, requested: dict[str, list[str]]) -> dict[str, dict[str, float]]:
    """The requested attributes of bus and line entities from an AC power flow."""
    out = {}
    for eid, attrs in requested.items():
        spec, index = parse_eid(eid)
        out[eid] = {attr: float(getattr(ac, spec.outputs[attr][0])[index] * spec.outputs[attr][1])
                    for attr in attrs}
    return out
