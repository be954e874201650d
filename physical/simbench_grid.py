"""SimBench grids as radial feeders: ``1-LV-rural1--0-sw``, ``1-MV-urban--0-sw``, ``1-MVLV-rural-all-0-sw``, ...

The ``simbench`` package builds a pandapower net from its complete data set (:func:`simbench.get_simbench_net`);
that takes 15-20 s per grid, so the net is pickled once per code (:func:`simbench_net`). The conversion to a
:class:`physical.feeder.Feeder` follows the grid in operation and writes down what the DistFlow model drops:

- **operation**: lines and transformers out of service or behind an open switch are skipped; buses joined by a
  closed bus-bus switch are one feeder bus (a switch has no impedance). A loop left in the feeder is refused
  with an error naming its lines.
- **substation**: the root is the bus of the external grid together with every bus reached from it through a
  transformer whose HV side is at or above ``SUBSTATION_MIN_KV`` (SimBench's HV/MV substations: two parallel
  HV/MV transformers and a busbar coupler, a loop that belongs to the root). Their on-load tap changers hold
  the MV busbar, so the root is that busbar at 1 p.u.; the external grid's own set point (1.025 p.u. in
  SimBench) is not used.
- **MV/LV transformers** are series impedances on the system base: ``|z| = vk% / 100 * S_base / S_rated``,
  ``r = vkr% / 100 * S_base / S_rated``, ``x = sqrt(|z|^2 - r^2)`` (pandapower's short-circuit model), divided
  by the number of parallel units; the magnetising branch (``pfe_kw``, ``i0_percent``) is dropped, a tap
  position off neutral or rated voltages other than the buses' are refused. Their current limit is the
  rating, ``S_rated / S_base`` p.u.
- **lines**: ``r, x`` in ohms over the zone's base ``vn_kv^2 / S_base``; line charging (``c_nf_per_km``)
  is dropped -- DistFlow has no shunts.
- **per unit**: every bus in p.u. of its own nominal voltage, so a transformer with rated voltages equal to its
  buses' has ratio 1:1 in p.u.; ``Feeder.base_kv`` is the nominal voltage most buses share (trading fees are
  per ohm on that base).

Every load, static generator and storage unit keeps its SimBench profile (:class:`physical.profiles.UnitProfiles`),
so the grid's own year drives its prosumers. :func:`simbench_ac_power_flow` solves the AC power flow of a
dispatch on the SimBench net itself (with the same simplifications), for checking the feeder's own pandapower
net (:func:`physical.ac_power_flow.to_pandapower`) against it.
"""

from __future__ import annotations

import os
import pickle
import re
from dataclasses import dataclass, replace
from functools import cache, lru_cache
from pathlib import Path

import networkx as nx
import numpy as np
import pandapower as pp
import pandapower.topology
import simbench

from physical.ac_power_flow import AcPowerFlow, AcValidation, compare_with_ac, solve_net
from physical.errors import AcNotConverged, FeederError
from physical.feeder import Feeder, build_feeder, working_base_mva
from physical.profiles import UnitProfiles, cache_dir

#: ``cosim --case`` accepts a SimBench code as is or with this prefix.
SIMBENCH_PREFIX = "simbench:"
#: Transformers from this voltage up belong to the substation, i.e. to the root (HV/MV in SimBench).
SUBSTATION_MIN_KV = 60.0
_CODE = re.compile(r"^\d+-[A-Z]+-[\w.]*-[\w.]*-\d-(sw|no_sw)$")
#: Elements the DistFlow model cannot represent; a grid holding one in service is refused.
_UNSUPPORTED = ("gen", "shunt", "ward", "xward", "impedance", "dcline", "trafo3w")
_PROFILE_TABLES = {"load": ("load",), "sgen": ("renewables", "powerplants"), "storage": ("storage",)}


def is_simbench_code(name: str) -> bool:
    """Whether ``name`` names a SimBench grid (``simbench:`` prefix or the code pattern; MATPOWER names and
    ``.m`` paths never match)."""
    return name.startswith(SIMBENCH_PREFIX) or bool(_CODE.match(name))


@cache
def simbench_codes() -> tuple[str, ...]:
    """The distribution-grid codes SimBench defines (LV, MV and MV with its LV grids), in SimBench's order."""
    return tuple(c for c in simbench.collect_all_simbench_codes(all_data=False)
                 if c.split("-")[1] in ("LV", "MV", "MVLV"))


@cache
def _all_codes() -> frozenset[str]:
    return frozenset(simbench.collect_all_simbench_codes())


def _check_code(name: str) -> str:
    code = name.removeprefix(SIMBENCH_PREFIX)
    if code not in _all_codes():
        raise FeederError(f"unknown SimBench grid {code!r}; e.g. 1-LV-rural1--0-sw, 1-MV-urban--0-sw, "
                          "1-MVLV-rural-all-0-sw (see `cosim cases`)")
    return code


def grid_cache_dir() -> Path:
    """Where converted SimBench nets are pickled: ``$P2P_COSIM_SIMBENCH_CACHE`` or the profile cache."""
    env = os.environ.get("P2P_COSIM_SIMBENCH_CACHE")
    return Path(env) if env else cache_dir() / "simbench-grids"


def simbench_net(code: str) -> pp.pandapowerNet:
    """SimBench's pandapower net of ``code`` (a fresh copy; read from the pickle cache when present)."""
    code = _check_code(code)
    path = grid_cache_dir() / f"{code}-simbench{simbench.__version__}-pp{pp.__version__}.pkl"
    if path.is_file():
        with path.open("rb") as fh:
            return pickle.load(fh)
    net = simbench.get_simbench_net(code)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with tmp.open("wb") as fh:
        pickle.dump(net, fh, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, path)
    return net


@dataclass(frozen=True, eq=False)
class SimbenchGrid:
    """A SimBench net and the feeder made from it.

    ``feeder_bus[b]`` is the feeder bus of pandapower bus ``b`` (-1 where the bus is not energised),
    ``line_element[j]`` the pandapower element (``("line", idx)`` or ``("trafo", idx)``) of feeder line ``j``.
    """

    code: str
    net: pp.pandapowerNet
    feeder: Feeder
    feeder_bus: dict[int, int]
    line_element: tuple[tuple[str, int], ...]


def load_simbench_grid(name: str) -> SimbenchGrid:
    """Load and convert the SimBench grid ``name`` (a code, with or without ``simbench:``); kept in memory."""
    return _converted(_check_code(name))


@lru_cache(maxsize=4)
def _converted(code: str) -> SimbenchGrid:
    return grid_from_net(simbench_net(code), code)


def grid_from_net(net: pp.pandapowerNet, code: str) -> SimbenchGrid:
    """Convert a SimBench pandapower net into a radial feeder (see the module docstring for the rules)."""
    where = f"SimBench grid {code}"
    for element in _UNSUPPORTED:
        table = net[element]
        if len(table) and table.in_service.any():
            raise FeederError(f"{where}: has {element} elements in service ({', '.join(map(str, table.name[:3]))}"
                              f"{' ...' if len(table) > 3 else ''}), which the DistFlow model does not represent")
    grids = net.ext_grid[net.ext_grid.in_service]
    if len(grids) != 1:
        raise FeederError(f"{where}: expected one external grid in service, found {len(grids)}")
    slack = int(grids.bus.iloc[0])

    groups = _BusGroups(net.bus.index)
    switch = net.switch
    for bus, other in switch.loc[(switch.et == "b") & switch.closed, ["bus", "element"]].itertuples(index=False):
        groups.join(int(bus), int(other))
    lines = _in_operation(net, "line", "l")
    trafos = _in_operation(net, "trafo", "t")
    substation = trafos[trafos.vn_hv_kv >= SUBSTATION_MIN_KV]
    changed = True
    while changed:  # HV/MV transformers hanging off the root join it, however the busbars are coupled
        changed = False
        for hv, lv in substation[["hv_bus", "lv_bus"]].itertuples(index=False):
            if groups.find(int(hv)) == groups.find(slack) != groups.find(int(lv)):
                groups.join(slack, int(lv))
                changed = True
    feeder_trafos = trafos[trafos.vn_hv_kv < SUBSTATION_MIN_KV]
    _check_transformers(net, feeder_trafos, where)

    root = groups.find(slack)
    root_bus = _root_label(net, groups, root, slack)
    vn = net.bus.vn_kv
    base_kv = float(vn.mode().iloc[0])
    p_load = _unit_powers(net, "load")
    base_mva = working_base_mva(float(p_load.clip(lower=0).sum()))

    edges: list[tuple[int, int, float, float, float, tuple[str, int], str]] = []
    kv = vn[lines.from_bus].to_numpy()
    z_base, i_base_ka = kv**2 / base_mva, base_mva / (np.sqrt(3) * kv)
    par = lines.parallel.to_numpy(dtype=float)
    r = (lines.r_ohm_per_km * lines.length_km).to_numpy() / par / z_base
    x = (lines.x_ohm_per_km * lines.length_km).to_numpy() / par / z_base
    imax = lines.max_i_ka.to_numpy() * par / i_base_ka
    for k, (idx, f, t, name) in enumerate(zip(lines.index, lines.from_bus, lines.to_bus, lines.name, strict=True)):
        edges.append((int(f), int(t), float(r[k]), float(x[k]), float(imax[k]), ("line", int(idx)), str(name)))
    for idx, tr in feeder_trafos.iterrows():
        r_tr, x_tr = _trafo_series_pu(tr, base_mva)
        edges.append((int(tr.hv_bus), int(tr.lv_bus), r_tr, x_tr, tr.sn_mva * float(tr.parallel) / base_mva,
                      ("trafo", int(idx)), str(tr["name"])))

    g = nx.MultiGraph()
    g.add_node(root)
    for k, (f, t, *_rest) in enumerate(edges):
        g.add_edge(groups.find(f), groups.find(t), key=k)
    energised = nx.node_connected_component(g, root)
    _refuse_loops(g.subgraph(energised), edges, net, root, where)
    dead_units = [f"{el} {name}" for el in _PROFILE_TABLES
                  for name, bus, on in zip(net[el].name, net[el].bus, net[el].in_service, strict=True)
                  if on and groups.find(int(bus)) not in energised]
    if dead_units:
        raise FeederError(f"{where}: {', '.join(dead_units[:5])} sit at buses not connected to the "
                          "substation in operation")

    label = {grp: (root_bus if grp == root else grp) for grp in energised}  # a group's id is its lowest bus
    q_load = _unit_powers(net, "load", "q_mvar")
    pd_mw: dict[int, float] = {}
    qd_mvar: dict[int, float] = {}
    for bus, p, q in zip(net.load.bus, p_load, q_load, strict=True):  # out of service: zero
        lab = label[groups.find(int(bus))]
        pd_mw[lab] = pd_mw.get(lab, 0.0) + float(p)
        qd_mvar[lab] = qd_mvar.get(lab, 0.0) + float(q)
    in_tree = [e for e in edges if groups.find(e[0]) in energised]
    vmin = {label[groups.find(int(b))]: float(v) for b, v in net.bus.min_vm_pu.dropna().items()
            if groups.find(int(b)) in energised}
    vmax = {label[groups.find(int(b))]: float(v) for b, v in net.bus.max_vm_pu.dropna().items()
            if groups.find(int(b)) in energised}
    n_open = int((~net.switch.closed).sum())
    feeder = build_feeder(
        code,
        base_mva=base_mva,
        base_kv=base_kv,
        bus_labels=sorted(label.values()),
        root_label=root_bus,
        branches=[(label[groups.find(f)], label[groups.find(t)], r, x, imax)
                  for f, t, r, x, imax, _el, _name in in_tree],
        pd_mw=pd_mw,
        qd_mvar=qd_mvar,
        vmin_pu=vmin,
        vmax_pu=vmax,
        source=where,
        notes=(f"{n_open} open switches as in the data set; buses joined by closed bus-bus switches merged",
               f"substation (root): bus {root_bus} with {len(groups.members(root)) - 1} buses merged into it "
               f"and {len(substation)} HV/MV transformers; external grid held at 1 p.u., not "
               f"{float(grids.vm_pu.iloc[0]):g}",
               f"{len(feeder_trafos)} MV/LV transformers as series impedances (magnetising branch dropped)",
               "line charging dropped; every bus in p.u. of its own nominal voltage",
               f"base {base_mva:g} MVA, fees per ohm on {base_kv:g} kV"),
    )
    index = {lab: j for j, lab in enumerate(feeder.labels)}
    feeder_bus = {int(b): index[label[groups.find(int(b))]] if groups.find(int(b)) in energised else -1
                  for b in net.bus.index}
    line_of = {}
    for f, t, *_r, element, _name in in_tree:
        a, b = index[label[groups.find(f)]], index[label[groups.find(t)]]
        line_of[b if feeder.parent[b] == a else a] = element
    line_element = (("", -1),) + tuple(line_of[j] for j in range(1, feeder.n_buses))
    feeder = replace(feeder, own_profiles=_unit_profiles(net, feeder_bus, feeder.n_buses, where))
    return SimbenchGrid(code, net, feeder, feeder_bus, line_element)


class _BusGroups:
    """Union-find over pandapower buses: the buses one feeder bus stands for; a group is named by its lowest
    bus."""

    def __init__(self, buses) -> None:
        self._up = {int(b): int(b) for b in buses}

    def find(self, b: int) -> int:
        while self._up[b] != b:
            self._up[b] = self._up[self._up[b]]
            b = self._up[b]
        return b

    def join(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self._up[max(ra, rb)] = min(ra, rb)

    def members(self, group: int) -> list[int]:
        return [b for b in self._up if self.find(b) == group]


def _in_operation(net: pp.pandapowerNet, table: str, et: str):
    """Rows of ``table`` in service and not behind an open switch."""
    sw = net.switch
    opened = set(sw.element[(sw.et == et) & ~sw.closed].astype(int))
    rows = net[table]
    return rows[rows.in_service & ~rows.index.isin(opened)]


def _check_transformers(net: pp.pandapowerNet, trafos, where: str) -> None:
    vn = net.bus.vn_kv
    for _idx, tr in trafos.iterrows():
        off_tap = np.isfinite(tr.tap_pos) and np.isfinite(tr.tap_neutral) and tr.tap_pos != tr.tap_neutral
        if off_tap or tr.vn_hv_kv != vn[tr.hv_bus] or tr.vn_lv_kv != vn[tr.lv_bus]:
            raise FeederError(f"{where}: transformer {tr['name']!r} has an off-nominal ratio (tap {tr.tap_pos} "
                              f"of neutral {tr.tap_neutral}, rated {tr.vn_hv_kv}/{tr.vn_lv_kv} kV between "
                              f"{vn[tr.hv_bus]} and {vn[tr.lv_bus]} kV buses), which the DistFlow model here "
                              "does not represent")


def _root_label(net: pp.pandapowerNet, groups: _BusGroups, root: int, slack: int) -> int:
    """The substation's busbar on the feeder's side: the lowest-voltage bus of the root group."""
    members = groups.members(root)
    vn = net.bus.vn_kv[members]
    return int(min(b for b in members if vn[b] == vn.min())) if len(members) > 1 else slack


def _unit_powers(net: pp.pandapowerNet, element: str, column: str = "p_mw"):
    """Reference power of each unit as pandapower applies it (times ``scaling``), zero out of service."""
    table = net[element]
    return (table[column] * table.scaling).where(table.in_service, 0.0).astype(float)


def _trafo_series_pu(tr, base_mva: float) -> tuple[float, float]:
    """Series impedance of a two-winding transformer on ``base_mva`` (short-circuit voltages, parallel units)."""
    scale = base_mva / (tr.sn_mva * float(tr.parallel))
    z = tr.vk_percent / 100 * scale
    r = tr.vkr_percent / 100 * scale
    return float(r), float(np.sqrt(max(z**2 - r**2, 0.0)))


def _refuse_loops(g: nx.MultiGraph, edges: list, net: pp.pandapowerNet, root: int, where: str) -> None:
    if g.number_of_edges() == g.number_of_nodes() - 1:
        return
    cycle = nx.find_cycle(g)
    names = [edges[key][6] for _u, _v, key in cycle]
    buses = ["the substation" if u == root else str(net.bus.name[u]) for u, _v, _k in cycle]
    raise FeederError(f"{where}: the feeder in operation has a loop through {', '.join(names)} (buses "
                      f"{', '.join(buses)}); a radial feeder is required: open one of its switches")


def _unit_profiles(net: pp.pandapowerNet, feeder_bus: dict[int, int], n_buses: int, where: str) -> UnitProfiles:
    """Every load, static generator and storage unit with the SimBench profile its table names.

    Loads follow their ``<profile>_pload`` column, generators and storage their ``<profile>`` column; a unit
    without a profile keeps its reference power (a constant column of ones).
    """
    columns: dict[str, np.ndarray] = {"": None}
    bus, column, p_mw = [], [], []
    n = len(net.profiles["load"])
    for element, tables in _PROFILE_TABLES.items():
        table = net[element]
        sign = -1.0 if element == "sgen" else 1.0
        table = table[table.in_service]
        names = table.profile if "profile" in table else [None] * len(table)
        for unit, unit_bus, p, name in zip(table.name, table.bus, table.p_mw * table.scaling, names, strict=True):
            column_name = f"{name}_pload" if element == "load" else name
            # names repeat across tables (an aggregated LV grid's load, generation and storage: lv_rural1)
            key = f"{element}:{column_name}" if isinstance(name, str) and name else ""
            if key not in columns:
                found = [net.profiles[t][column_name] for t in tables if column_name in net.profiles[t]]
                if not found:
                    raise FeederError(f"{where}: {element} {unit!r} follows profile {name!r}, which "
                                      "the grid's profile tables do not hold")
                columns[key] = found[0].to_numpy(dtype=float)
            bus.append(feeder_bus[int(unit_bus)])
            column.append(list(columns).index(key))
            p_mw.append(sign * float(p))
    columns[""] = np.ones(n)
    return UnitProfiles(n_buses=n_buses, bus=np.array(bus, dtype=int), column=np.array(column, dtype=int),
                        p_mw=np.array(p_mw), values=np.column_stack(list(columns.values())),
                        names=tuple(columns))


@lru_cache(maxsize=4)
def _validation_net(grid: SimbenchGrid) -> pp.pandapowerNet:
    """The SimBench net as the DistFlow model sees it: its lines and MV/LV transformers without shunts, the
    substation replaced by external grids at its MV busbars at 1 p.u., and one load per feeder bus (bus
    ``j >= 1`` of the feeder is load ``j - 1``) in place of its own loads, generators and storage."""
    net = pickle.loads(pickle.dumps(grid.net))
    for element in _PROFILE_TABLES:
        net[element]["in_service"] = False
    net.line["c_nf_per_km"] = 0.0
    net.line["g_us_per_km"] = 0.0
    net.trafo["pfe_kw"] = 0.0
    net.trafo["i0_percent"] = 0.0
    substation = net.trafo.vn_hv_kv >= SUBSTATION_MIN_KV
    busbars = set(net.trafo.lv_bus[substation & net.trafo.in_service].astype(int))
    net.trafo.loc[substation, "in_service"] = False
    net.ext_grid.drop(net.ext_grid.index, inplace=True)
    f = grid.feeder
    # one source per busbar section: SimBench's urban substation runs its two halves with open couplers
    graph = pp.topology.create_nxgraph(net)
    sections = [c for c in nx.connected_components(graph) if f.labels[0] in c or c & busbars]
    for section in sections:
        bus = f.labels[0] if f.labels[0] in section else min(section & busbars)
        pp.create_ext_grid(net, bus, vm_pu=1.0, va_degree=0.0)
    pp.create_loads(net, buses=list(f.labels[1:]), p_mw=0.0, q_mvar=0.0, index=np.arange(1, f.n_buses) + 10**7)
    return net


def simbench_ac_power_flow(grid: SimbenchGrid, p_mw: np.ndarray, q_mvar: np.ndarray) -> AcPowerFlow:
    """AC power flow of a dispatch (net injections per feeder bus) on the SimBench net itself, indexed like
    the feeder; a diverging power flow raises :class:`AcNotConverged`."""
    net = _validation_net(grid)
    f = grid.feeder
    ours = net.load.index >= 10**7
    net.load.loc[ours, "p_mw"] = -np.asarray(p_mw, dtype=float)[1:]
    net.load.loc[ours, "q_mvar"] = -np.asarray(q_mvar, dtype=float)[1:]
    # a flat start with the MV/LV transformers' 150 degree shift converges to a collapsed solution
    solve_net(net, f"SimBench grid {grid.code}", init="dc")
    labels = list(f.labels)
    p_from, q_from, loading, pl, ql = (np.full(f.n_buses, np.nan) for _ in range(5))
    for j in range(1, f.n_buses):
        kind, idx = grid.line_element[j]
        res = net[f"res_{kind}"].loc[idx]
        start = net[kind].loc[idx, "from_bus" if kind == "line" else "hv_bus"]
        side = "from" if grid.feeder_bus[int(start)] == f.parent[j] else "to"
        if kind == "trafo":
            side = "hv" if side == "from" else "lv"
        p_from[j], q_from[j], loading[j] = res[f"p_{side}_mw"], res[f"q_{side}_mvar"], res.loading_percent
        pl[j], ql[j] = res.pl_mw, res.ql_mvar
    p0, q0 = float(net.res_ext_grid.p_mw.sum()), float(net.res_ext_grid.q_mvar.sum())
    return AcPowerFlow(
        vm_pu=net.res_bus.vm_pu.loc[labels].to_numpy(),
        va_degree=net.res_bus.va_degree.loc[labels].to_numpy(),
        line_p_from_mw=p_from,
        line_q_from_mvar=q_from,
        loading_percent=loading,
        losses_mw=float(net.res_line.pl_mw.sum() + net.res_trafo.pl_mw.fillna(0.0).sum()),
        p0_mw=p0,
        q0_mvar=q0,
        # the feeder's buses carry the dispatch's injections (SimBench's own loads and units are taken out)
        bus_p_mw=np.r_[p0, np.asarray(p_mw, dtype=float)[1:]],
        bus_q_mvar=np.r_[q0, np.asarray(q_mvar, dtype=float)[1:]],
        line_pl_mw=pl,
        line_ql_mvar=ql,
    )


def validate_on_simbench_net(grid: SimbenchGrid, p_mw: np.ndarray, q_mvar: np.ndarray, vm_socp_pu: np.ndarray,
                             losses_socp_mw: float, vmin_pu: np.ndarray, vmax_pu: np.ndarray,
                             tol_pu: float = 1e-6) -> AcValidation:
    """:func:`physical.ac_power_flow.validate_dispatch` with the AC power flow solved on the SimBench net."""
    try:
        ac = simbench_ac_power_flow(grid, p_mw, q_mvar)
    except AcNotConverged:
        return AcValidation.not_converged(grid.feeder.n_buses)
    return compare_with_ac(ac, vm_socp_pu, losses_socp_mw, vmin_pu, vmax_pu, tol_pu)
