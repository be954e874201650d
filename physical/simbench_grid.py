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
- **MV/LV transformers** are an ideal transformer followed by a series impedance on the LV side, as in
  pandapower: ``|z| = vk% / 100 * S_base / S_rated * k^2``, ``r = vkr% / 100 * S_base / S_rated * k^2``,
  ``x = sqrt(|z|^2 - r^2)`` (pandapower's short-circuit model; ``k`` the LV winding's rated voltage, after an
  LV-side tap, over the LV bus's nominal voltage), divided by the number of parallel units; the magnetising
  branch (``pfe_kw``, ``i0_percent``) is dropped. Their current limit is the rating, ``S_rated / S_base`` p.u.
- **transformer ratio** (taps off neutral, rated voltages other than the buses'): SimBench's scenario 1 and 2
  LV grids run their MV/LV transformer one tap (2.5 %) off neutral. The ratio is folded into the per-unit
  bases below the transformer, exactly, so the DistFlow model, the market and both ADMM splittings need no
  change. Derivation. The tap changer sets the winding voltages ``U_hv = vn_hv_kv (1 + s t)`` on the tapped
  side (``s`` steps off neutral, ``t`` = ``tap_step_percent / 100``; pandapower's ``Ratio`` tap changer) and
  the no-load ratio in p.u. of the buses' nominal voltages is ``n = (V_hv,nom / U_hv) (U_lv / V_lv,nom)``:
  behind the ideal transformer the LV side sees ``n V_i`` (p.u.), then the series impedance ``z`` (LV p.u.)
  carries the current ``I`` (LV p.u.) to bus ``j``: ``V_j = n V_i - z I``, with ``S = n V_i I*`` entering the
  impedance (an ideal transformer is lossless). Measure the buses below the transformer in p.u. of ``n``
  times their nominal voltage (scale ``c_j = n c_i``; ``c = 1`` at the root): ``u = V / c``, and with the
  power base unchanged the current base shrinks by ``c``, ``I' = c I``, and the impedance base grows by
  ``c^2``, ``z' = z / c^2``. Dividing ``V_j = n V_i - z I`` by ``c_j = n c_i`` gives
  ``u_j = u_i - z' I'`` and ``S = u_i I'*``: the transformer becomes a plain DistFlow line,
  ``v_j = v_i - 2 (r' P + x' Q) + |z'|^2 l'``, ``P^2 + Q^2 <= v_i l'``, losses ``r l = r' l'``; the lines
  below keep the form with ``z' = z / c^2``, ``l' = c^2 l``; powers are unchanged, so are the injections, the
  costs and the relaxation. Voltage limits become ``v_min / c``, current limits ``c i_max``; nested
  transformers multiply their ratios. Equivalently: the squared voltage behind the transformer is the
  primary's times ``n^2`` before the drop. :attr:`physical.feeder.Feeder.vm_base` keeps ``c`` per bus, and
  every reported voltage (AC validation, tables) is turned back into p.u. of the nominal voltage with it;
  trading fees use the nominal-base impedances, so a tap does not change them. Tap changers that also shift
  the phase (``tap_step_degree``), symmetrical, ideal or tabular ones are refused.
  pandapower 3 applies ``tap_pos`` only to transformers with a ``tap_changer_type``, which SimBench 1.6.3's
  nets leave empty (e2nIEE/simbench issue 69: every tap silently at neutral); the AC check
  (:func:`simbench_ac_power_flow`) sets ``Ratio`` on them so that pandapower models the tap SimBench gives.
- **lines**: ``r, x`` in ohms over the zone's base ``vn_kv^2 / S_base``; line charging (``c_nf_per_km``)
  is dropped -- DistFlow has no shunts.
- **per unit**: every bus in p.u. of its own nominal voltage (times ``c`` below an off-nominal transformer);
  ``Feeder.base_kv`` is the nominal voltage most buses share (trading fees are per ohm on that base).

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
    ratio: dict[int, float] = {}  # edge -> no-load ratio V_lv = n V_hv of an off-nominal transformer
    for idx, tr in feeder_trafos.iterrows():
        n, k_lv = _trafo_ratio(tr, float(vn[tr.hv_bus]), float(vn[tr.lv_bus]), where)
        if n != 1.0:
            ratio[len(edges)] = n
        r_tr, x_tr = _trafo_series_pu(tr, base_mva, k_lv)
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
    base = _voltage_bases(g.subgraph(energised), edges, ratio, groups, root)
    vmin = {label[grp]: float(v) / base[grp] for b, v in net.bus.min_vm_pu.dropna().items()
            if (grp := groups.find(int(b))) in energised}
    vmax = {label[grp]: float(v) / base[grp] for b, v in net.bus.max_vm_pu.dropna().items()
            if (grp := groups.find(int(b))) in energised}
    folded = [(f, t, r / base[groups.find(t)] ** 2, x / base[groups.find(t)] ** 2, imax * base[groups.find(t)])
              for f, t, r, x, imax, _el, _name in in_tree]  # t is the LV side of a transformer
    n_open = int((~net.switch.closed).sum())
    feeder = build_feeder(
        code,
        base_mva=base_mva,
        base_kv=base_kv,
        bus_labels=sorted(label.values()),
        root_label=root_bus,
        branches=[(label[groups.find(f)], label[groups.find(t)], r, x, imax) for f, t, r, x, imax in folded],
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
               f"{len(ratio)} transformers off their nominal ratio ("
               f"{', '.join(f'{edges[k][6]}: {n:.4g}' for k, n in ratio.items()) or 'none'}), folded into the "
               "voltage bases below them",
               "line charging dropped; every bus in p.u. of its own nominal voltage (times Feeder.vm_base)",
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
    vm_base = np.array([base[groups.find(lab)] for lab in feeder.labels]) if ratio else None
    feeder = replace(feeder, own_profiles=_unit_profiles(net, feeder_bus, feeder.n_buses, where), vm_base=vm_base)
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


def _trafo_ratio(tr, vn_hv: float, vn_lv: float, where: str) -> tuple[float, float]:
    """A transformer's no-load ratio ``n`` (``V_lv = n V_hv`` in p.u. of the buses' nominal voltages ``vn_hv``,
    ``vn_lv``) and its LV winding's rated voltage over ``vn_lv``, with the tap set as pandapower's ``Ratio``
    tap changer sets it (see the module docstring)."""
    u_hv, u_lv = float(tr.vn_hv_kv), float(tr.vn_lv_kv)
    steps = float(tr.tap_pos - tr.tap_neutral) if np.isfinite(tr.tap_pos) and np.isfinite(tr.tap_neutral) else 0.0
    if steps:
        kind = tr.get("tap_changer_type")
        table = tr.get("tap_dependency_table")
        degree = tr.get("tap_step_degree")
        plain = ((not isinstance(kind, str) or kind == "Ratio") and not (isinstance(table, bool | np.bool_) and table)
                 and not (degree is not None and np.isfinite(degree) and degree != 0)
                 and np.isfinite(tr.tap_step_percent) and tr.tap_side in ("hv", "lv"))
        if not plain:
            raise FeederError(f"{where}: transformer {tr['name']!r} is {steps:g} taps off neutral with a tap "
                              f"changer other than a ratio changer on one side (type {kind!r}, side "
                              f"{tr.tap_side!r}, {tr.tap_step_percent} % and {degree} degrees per step), which "
                              "the DistFlow model here does not represent")
        factor = 1.0 + steps * float(tr.tap_step_percent) / 100.0
        if tr.tap_side == "hv":
            u_hv *= factor
        else:
            u_lv *= factor
    second = tr.get("tap2_pos")
    if second is not None and np.isfinite(second) and second != tr.get("tap2_neutral"):
        raise FeederError(f"{where}: transformer {tr['name']!r} has a second tap changer off neutral, which the "
                          "DistFlow model here does not represent")
    return (vn_hv / u_hv) * (u_lv / vn_lv), u_lv / vn_lv


def _voltage_bases(tree: nx.MultiGraph, edges: list, ratio: dict[int, float], groups: _BusGroups,
                   root: int) -> dict[int, float]:
    """Each feeder bus's voltage base over its nominal voltage: 1 at the root, times ``n`` across a transformer
    of ratio ``n`` from its HV to its LV side (the module docstring derives why this is exact)."""
    base = {root: 1.0}
    for u, v in nx.bfs_edges(tree, root):
        (key,) = tree[u][v]  # a tree: one edge between two buses
        n = ratio.get(key, 1.0)
        base[v] = base[u] * n if groups.find(edges[key][0]) == u else base[u] / n
    return base


def _root_label(net: pp.pandapowerNet, groups: _BusGroups, root: int, slack: int) -> int:
    """The substation's busbar on the feeder's side: the lowest-voltage bus of the root group."""
    members = groups.members(root)
    vn = net.bus.vn_kv[members]
    return int(min(b for b in members if vn[b] == vn.min())) if len(members) > 1 else slack


def _unit_powers(net: pp.pandapowerNet, element: str, column: str = "p_mw"):
    """Reference power of each unit as pandapower applies it (times ``scaling``), zero out of service."""
    table = net[element]
    return (table[column] * table.scaling).where(table.in_service, 0.0).astype(float)


def _trafo_series_pu(tr, base_mva: float, k_lv: float = 1.0) -> tuple[float, float]:
    """Series impedance of a two-winding transformer on ``base_mva`` and its LV bus's nominal voltage
    (short-circuit voltages, parallel units; ``k_lv``: the LV winding's rated voltage over the bus's)."""
    scale = base_mva / (tr.sn_mva * float(tr.parallel)) * k_lv**2
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
    # pandapower 3 ignores the tap of a transformer without a tap changer type, which SimBench leaves empty
    if "tap_changer_type" in net.trafo:
        untyped = net.trafo.tap_changer_type.isna() & net.trafo.tap_step_percent.notna()
        net.trafo.loc[untyped, "tap_changer_type"] = "Ratio"
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
    the feeder, voltages in p.u. of the buses' nominal voltages; a diverging power flow raises
    :class:`AcNotConverged`."""
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
    """:func:`physical.ac_power_flow.validate_dispatch` with the AC power flow solved on the SimBench net (the
    SOCP voltages and limits in the feeder's p.u., the validation in p.u. of the nominal voltages)."""
    try:
        ac = simbench_ac_power_flow(grid, p_mw, q_mvar)
    except AcNotConverged:
        return AcValidation.not_converged(grid.feeder.n_buses)
    f = grid.feeder
    return compare_with_ac(ac, f.nominal_vm(vm_socp_pu), losses_socp_mw, f.nominal_vm(vmin_pu), f.nominal_vm(vmax_pu),
                           tol_pu)
