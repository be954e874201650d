"""External mosaik simulators in a scenario: a user's household model, CSV player or controller attached to the
co-simulation's grid (``[[external]]`` and ``[[connect]]`` in a scenario file; ``docs/external_simulators.md``).

An ``[[external]]`` table names a simulator (``name``), how mosaik starts it (``python = "module:Class"`` in this
process, or ``cmd``, a command line with mosaik's ``%(addr)s``), its ``params`` (what ``world.start`` passes to
its ``init``), the ``model`` it creates ``count`` entities of and their ``model_params``. A ``[[connect]]``
table joins two entities, ``src`` to ``dest``, with mosaik's attribute pairs (``attrs = [["P[MW]",
"P_load[MW]"]]``, or one name where both sides use it). Entities are named ``<name>.<k>`` (the k-th entity
an external simulator created, or its entity id) and ``Grid.Bus-<j>`` / ``Grid.Line-<j>`` (the grid's, with the
attributes of :mod:`cosim.simulators.grid_entities`).

Everything is checked before the run (:func:`check_external`): the names, the feeder's buses and lines, the
grid's attribute names, and -- by starting the simulators in a probe world and wiring them as the run will --
that the module or command starts, the model exists, the entities accept their parameters and carry the
attributes named. Each problem is one line naming the scenario field.
"""

from __future__ import annotations

import importlib
import re
import shlex
import shutil
import sys
from importlib.metadata import version
from typing import Any

import mosaik
from pydantic import Field, model_validator

from cosim.scenario_table import ScenarioTable
from cosim.simulators.grid_entities import BUS, SPECS
from physical.feeder import Feeder

#: the grid's name in ``[[connect]]`` entity references
GRID = "Grid"
#: mosaik's time unit in the co-simulation (milliseconds): what an external simulator's ``init`` receives
TIME_RESOLUTION = 0.001
_NAME = r"^[A-Za-z][A-Za-z0-9_]*$"


class ExternalError(ValueError):
    """An external simulator or connection that cannot be attached; the message names the scenario field."""


class ExternalSection(ScenarioTable):
    """One external simulator and the entities it creates."""

    name: str = Field(pattern=_NAME)
    python: str | None = Field(None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")  # module:Class
    cmd: str | None = Field(None, min_length=1)
    params: dict[str, Any] = {}
    model: str = Field(min_length=1)
    count: int = Field(1, ge=1)
    model_params: dict[str, Any] = {}

    @model_validator(mode="after")
    def _one_way_to_start(self) -> ExternalSection:
        if (self.python is None) == (self.cmd is None):
            raise ValueError("fields python, cmd: expected exactly one (python = \"module:Class\" or cmd = \"...\")")
        return self

    def sim_config(self) -> dict[str, str]:
        return {"python": self.python} if self.python is not None else {"cmd": self.cmd}


class ConnectSection(ScenarioTable):
    """A data flow between two entities (one of them may be the grid's), as mosaik's ``world.connect``."""

    src: str = Field(min_length=1)
    dest: str = Field(min_length=1)
    attrs: list[str | tuple[str, str]] = Field(min_length=1)

    def pairs(self) -> list[tuple[str, str]]:
        return [(a, a) if isinstance(a, str) else tuple(a) for a in self.attrs]


def check_external(externals: list[ExternalSection], connections: list[ConnectSection], case: str,
                   feeder: Feeder) -> None:
    """Refuse, naming the field, what cannot be attached to the grid of ``case`` (``feeder``): clashing names, a
    module, class or command that does not exist, an entity that is not there, a grid attribute that is not the
    grid's, an external attribute its model lacks."""
    from cosim.world import SIM_CONFIG  # the world wires the external simulators: imported once both exist

    reserved = tuple(SIM_CONFIG)
    if connections and not externals:
        raise ExternalError("field connect: connections need an [[external]] simulator")
    seen: set[str] = set()
    for k, ext in enumerate(externals):
        if ext.name in reserved or ext.name == GRID or ext.name in seen:
            raise ExternalError(f"field external.{k}.name: {ext.name!r} is taken (the co-simulation's own "
                                f"{', '.join(reserved)} and every external simulator need names of their own)")
        seen.add(ext.name)
        _check_start(k, ext)
    by_name = {ext.name: ext for ext in externals}
    for k, conn in enumerate(connections):
        ends = [_static_end(f"connect.{k}.{side}", ref, by_name, feeder) for side, ref in (("src", conn.src),
                                                                                       ("dest", conn.dest))]
        if ends[0] == ends[1] or all(e == GRID for e in ends):
            raise ExternalError(f"field connect.{k}: {conn.src} -> {conn.dest} joins the "
                                f"{'grid' if ends[0] == GRID else 'same simulator'} to itself")
        for src_attr, dest_attr in conn.pairs():
            if ends[0] == GRID:
                _check_grid_attr(f"connect.{k}.attrs", conn.src, src_attr, "outputs")
            if ends[1] == GRID:
                _check_grid_attr(f"connect.{k}.attrs", conn.dest, dest_attr, "inputs")
    if externals:
        _probe(externals, connections, case, SIM_CONFIG[GRID])


def _check_start(k: int, ext: ExternalSection) -> None:
    if ext.python is not None:
        module, cls = ext.python.split(":")
        try:
            found = importlib.import_module(module)
        except ImportError as exc:
            raise ExternalError(f"field external.{k}.python: cannot import module {module!r} ({exc})") from exc
        if not isinstance(getattr(found, cls, None), type):
            raise ExternalError(f"field external.{k}.python: module {module!r} has no class {cls!r}")
        return
    if not remote_simulators_supported():
        raise ExternalError(f"field external.{k}.cmd: a simulator in a process of its own needs mosaik >= 3.7 "
                            f"(mosaik {version('mosaik')}'s scheduler can let the grid run past such a simulator's "
                            "next output); start it in this process with python = \"module:Class\"")
    try:
        program = shlex.split(ext.cmd)[0].replace("%(python)s", sys.executable)
    except (ValueError, IndexError) as exc:
        raise ExternalError(f"field external.{k}.cmd: not a command line ({exc})") from exc
    if shutil.which(program) is None:
        raise ExternalError(f"field external.{k}.cmd: {program!r} is not a program on this machine")


def remote_simulators_supported() -> bool:
    """Whether this mosaik runs simulators started by ``cmd``: mosaik 3.6 sets the grid's progress from its
    ancestors' next steps while a remote ancestor is still stepping, and fails ("cannot progress backwards")
    when that step's output then arrives (measured on a mosaik-csv process feeding a bus; 3.7.1 runs it)."""
    major, minor = (int(part) for part in version("mosaik").split(".")[:2])
    return (major, minor) >= (3, 7)


def _static_end(field: str, ref: str, by_name: dict[str, ExternalSection], feeder: Feeder) -> str:
    """The simulator an entity reference names (checked against the grid's buses and lines and the external
    simulators' entity counts)."""
    sim, _, entity = ref.partition(".")
    if sim == GRID:
        match = re.fullmatch(r"(Bus|Line)-(\d+)", entity)
        first = 0 if match and match[1] == "Bus" else 1
        if match is None or not first <= int(match[2]) < feeder.n_buses:
            raise ExternalError(f"field {field}: {ref!r} is not an entity of the grid of {feeder.name} (expected "
                                f"Grid.Bus-0 .. Grid.Bus-{feeder.n_buses - 1} or Grid.Line-1 .. "
                                f"Grid.Line-{feeder.n_buses - 1})")
        return GRID
    if sim not in by_name or not entity:
        raise ExternalError(f"field {field}: {ref!r} names no entity (expected <external name>.<k>, "
                            f"Grid.Bus-<j> or Grid.Line-<j>; external simulators: {sorted(by_name)})")
    if entity.isdigit() and int(entity) >= by_name[sim].count:
        raise ExternalError(f"field {field}: {sim} creates {by_name[sim].count} entities, numbered from 0; "
                            f"{ref!r} is not one of them")
    return sim


def _check_grid_attr(field: str, ref: str, attr: str, direction: str) -> None:
    spec = SPECS[ref.split(".")[1].split("-")[0]]
    allowed = list(getattr(spec, direction))
    if attr not in allowed:
        what = "takes" if direction == "inputs" else "gives"
        raise ExternalError(f"field {field}: {ref} has no {direction[:-1]} {attr!r} (a grid {spec.model} {what} "
                            f"{allowed or 'nothing'})")
    if direction == "inputs" and ref.endswith(f".{BUS.eid(0)}"):
        raise ExternalError(f"field {field}: {ref} is the substation (the slack bus): a load there changes no "
                            "voltage of the feeder; connect to Bus-1 and beyond")


def attach_external(world: mosaik.World, grid: Any, externals: list[ExternalSection],
                    connections: list[ConnectSection]) -> None:
    """Start the external simulators in ``world``, create their entities and connect them to each other and to
    ``grid`` (the Grid simulator's entity, whose children are the bus and line entities)."""
    created = {}
    for k, ext in enumerate(externals):
        try:
            sim = world.start(ext.name, **ext.params)
        except Exception as exc:  # noqa: BLE001 -- whatever the user's simulator raises, named as its field
            raise ExternalError(f"field external.{k}: {ext.name} did not start: {_reason(exc)}") from exc
        if not hasattr(sim, ext.model):
            raise ExternalError(f"field external.{k}.model: {ext.name} has no model {ext.model!r} (it has "
                                f"{sorted(sim._proxy.meta['models'])})")
        try:
            created[ext.name] = getattr(sim, ext.model).create(ext.count, **ext.model_params)
        except Exception as exc:  # noqa: BLE001
            raise ExternalError(f"field external.{k}.model_params: {ext.name} could not create {ext.count} "
                                f"{ext.model}: {_reason(exc)}") from exc
    for k, conn in enumerate(connections):
        src, dest = (_entity(f"connect.{k}.{side}", ref, grid, created) for side, ref in (("src", conn.src),
                                                                                          ("dest", conn.dest)))
        for src_attr, dest_attr in conn.pairs():
            for entity, attr, kind in ((src, src_attr, "output_attrs"), (dest, dest_attr, "input_attrs")):
                if attr not in getattr(entity.model_mock, kind):
                    raise ExternalError(f"field connect.{k}.attrs: {entity.type} entities of {entity.sim_name} "
                                        f"have no {kind.split('_')[0]} {attr!r}{_listing(entity, kind)}")
        try:
            world.connect(src, dest, *conn.pairs())
        except Exception as exc:  # noqa: BLE001 -- e.g. a cycle in the data flow
            raise ExternalError(f"field connect.{k}: {_reason(exc)}") from exc


def _entity(field: str, ref: str, grid: Any, created: dict[str, list]) -> Any:
    sim, _, entity = ref.partition(".")
    if sim == GRID:
        return grid.children_dict[entity]
    entities = created[sim]
    if entity.isdigit():
        return entities[int(entity)]
    named = [e for e in entities if e.eid == entity]
    if not named:
        raise ExternalError(f"field {field}: {sim} created no entity {entity!r} (it created "
                            f"{[e.eid for e in entities][:10]})")
    return named[0]


def _listing(entity: Any, kind: str) -> str:
    try:
        return f" (it has {sorted(getattr(entity.model_mock, kind))})"
    except TypeError:  # a model taking any input
        return ""


def _reason(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def sim_config(externals: list[ExternalSection]) -> dict[str, dict[str, str]]:
    """The external simulators' entries of mosaik's simulator configuration."""
    return {ext.name: ext.sim_config() for ext in externals}


def _probe(externals: list[ExternalSection], connections: list[ConnectSection], case: str,
           grid_config: dict[str, str]) -> None:
    """Start the external simulators beside a Grid in a world that never runs, and wire them as the run will."""
    world = mosaik.World({GRID: grid_config, **sim_config(externals)}, time_resolution=TIME_RESOLUTION,
                         skip_greetings=True, configure_logging=False)
    try:
        grid = world.start(GRID).Grid.create(1, case=case, run_id="probe")[0]
        attach_external(world, grid, externals, connections)
    finally:
        world.shutdown()
