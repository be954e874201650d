"""Full AC power flow with pandapower: the physical check of every market clearing.

The SOCP-relaxed DistFlow model is exact on a radial feeder when the relaxation is tight, so pandapower's
Newton-Raphson solution of the same injections must reproduce the SOCP voltages and losses; the mismatch is
reported rather than assumed.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandapower as pp

from physical.errors import AcNotConverged, FeederError
from physical.feeder import Feeder

#: Rating given to pandapower lines that the source leaves unrated; their loading is reported as NaN.
UNRATED_MAX_I_KA = 1e6
#: Lines with |z| below this (p.u.) are closed bus-bus switches in pandapower: Newton-Raphson does not
#: converge on admittances of 1e9 p.u. (case16am, case141 model switches as lines of ~1e-9 p.u.).
ZERO_IMPEDANCE_PU = 1e-6


def to_pandapower(feeder: Feeder, p_mw: np.ndarray | None = None,
                  q_mvar: np.ndarray | None = None) -> pp.pandapowerNet:
    """Build a pandapower net of ``feeder`` with net injections ``p_mw``/``q_mvar`` per bus.

    Without injections the case's nominal loads are used. Bus ``j`` of the feeder is pandapower bus ``j``,
    line ``j`` (ending at bus ``j``) is pandapower line ``j - 1``; injections enter as (possibly negative)
    loads so that one element per bus carries the whole net injection.
    """
    p, q = _injections(feeder, p_mw, q_mvar)
    n = feeder.n_buses
    z_base = feeder.base_kv**2 / feeder.base_mva
    net = pp.create_empty_network(name=feeder.name, sn_mva=feeder.base_mva)
    pp.create_buses(net, n, vn_kv=feeder.base_kv, name=[str(b) for b in feeder.labels], index=np.arange(n))
    pp.create_ext_grid(net, 0, vm_pu=1.0, va_degree=0.0)
    all_lines = np.arange(1, n)
    tiny = np.hypot(feeder.r_pu[all_lines], feeder.x_pu[all_lines]) < ZERO_IMPEDANCE_PU
    for j in all_lines[tiny]:
        pp.create_switch(net, feeder.parent[j], j, et="b", closed=True, index=j - 1)
    lines = all_lines[~tiny]
    pp.create_lines_from_parameters(
        net,
        from_buses=feeder.parent[lines],
        to_buses=lines,
        length_km=1.0,
        r_ohm_per_km=feeder.r_pu[lines] * z_base,
        x_ohm_per_km=feeder.x_pu[lines] * z_base,
        c_nf_per_km=0.0,
        max_i_ka=_max_i_ka(feeder, lines),
        index=lines - 1,
    )
    pp.create_loads(net, buses=all_lines, p_mw=0.0, q_mvar=0.0, index=all_lines - 1)
    _set_loads(net, p, q)
    return net


def _max_i_ka(feeder: Feeder, lines: np.ndarray) -> np.ndarray:
    """pandapower's rating (kA) of the feeder's ``lines``; unrated lines get :data:`UNRATED_MAX_I_KA`."""
    imax = feeder.imax_pu[lines]
    i_base_ka = feeder.base_mva / (math.sqrt(3) * feeder.base_kv)
    return np.where(np.isfinite(imax), imax * i_base_ka, UNRATED_MAX_I_KA)


def set_line_ratings(net: pp.pandapowerNet, feeder: Feeder) -> None:
    """Give a :func:`to_pandapower` net of ``feeder`` the feeder's current ratings (e.g. a quarter hour's
    dynamic ones), so that its loading is checked against them."""
    lines = net.line.index.to_numpy() + 1
    net.line["max_i_ka"] = _max_i_ka(feeder, lines)


def _set_loads(net: pp.pandapowerNet, p: np.ndarray, q: np.ndarray) -> None:
    """Each load carries the net injection of its bus (negated: a load)."""
    bus = net.load.bus.to_numpy()
    net.load["p_mw"] = -p[bus]
    net.load["q_mvar"] = -q[bus]


def _injections(feeder: Feeder, p_mw: np.ndarray | None, q_mvar: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Net injections per bus, the case's nominal loads where none are given."""
    p = -feeder.pd_mw if p_mw is None else np.asarray(p_mw, dtype=float)
    q = -feeder.qd_mvar if q_mvar is None else np.asarray(q_mvar, dtype=float)
    n = feeder.n_buses
    if p.shape != (n,) or q.shape != (n,):
        raise FeederError(f"dispatch for {feeder.name} needs {n} values per bus, got {p.shape} and {q.shape}")
    return p, q


@dataclass(frozen=True)
class AcPowerFlow:
    """pandapower's solution, indexed like the feeder (line arrays: entry j is line j, entry 0 unused)."""

    vm_pu: np.ndarray
    va_degree: np.ndarray
    line_p_from_mw: np.ndarray
    line_q_from_mvar: np.ndarray
    loading_percent: np.ndarray
    losses_mw: float
    p0_mw: float
    q0_mvar: float
    #: net injection of every bus (generation positive; entry 0 the substation's): what a meter at the bus reads
    bus_p_mw: np.ndarray
    bus_q_mvar: np.ndarray
    #: active and reactive losses of every line (0 on a line modelled as a closed switch)
    line_pl_mw: np.ndarray
    line_ql_mvar: np.ndarray

    @classmethod
    def not_converged(cls, n_buses: int) -> AcPowerFlow:
        """The flow of a dispatch Newton-Raphson found no solution for: every figure NaN."""
        nan = np.full(n_buses, np.nan)
        return cls(nan, nan, nan, nan, nan, math.nan, math.nan, math.nan, nan, nan, nan, nan)


def solve_net(net: pp.pandapowerNet, what: str, init: str = "flat") -> None:
    """pandapower's Newton-Raphson at the tolerance every AC check here uses; a power flow that does not
    converge raises :class:`AcNotConverged` naming ``what``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pp.runpp(net, algorithm="nr", init=init, tolerance_mva=1e-10, max_iteration=50,
                     calculate_voltage_angles=True, numba=False)
    except pp.LoadflowNotConverged as exc:
        raise AcNotConverged(f"AC power flow on {what} did not converge for this dispatch") from exc


def run_ac_power_flow(feeder: Feeder, p_mw: np.ndarray | None = None, q_mvar: np.ndarray | None = None,
                      net: pp.pandapowerNet | None = None) -> AcPowerFlow:
    """Solve the AC power flow for a dispatch (voltages in p.u. of each bus's nominal voltage); a diverging power
    flow raises :class:`AcNotConverged`. ``net``, a
    :func:`to_pandapower` net of this feeder, is reused with the dispatch's injections: building a net takes
    longer than solving it (case85: about 0.1 s against 0.02), and a day validates 96 dispatches."""
    if net is None:
        net = to_pandapower(feeder, p_mw, q_mvar)
    elif len(net.bus) != feeder.n_buses or len(net.load) != feeder.n_buses - 1:
        raise FeederError(f"the pandapower net given for {feeder.name} was not built from it")
    else:
        _set_loads(net, *_injections(feeder, p_mw, q_mvar))
    solve_net(net, feeder.name)
    line = net.res_line.reindex(np.arange(feeder.n_buses - 1))
    rated = np.isfinite(feeder.imax_pu[1:])
    bus = net.res_bus.sort_index()
    return AcPowerFlow(
        vm_pu=feeder.nominal_vm(bus.vm_pu.to_numpy()),  # the net is in the feeder's p.u. (Feeder.vm_base)
        va_degree=bus.va_degree.to_numpy(),
        line_p_from_mw=np.r_[np.nan, line.p_from_mw.to_numpy()],
        line_q_from_mvar=np.r_[np.nan, line.q_from_mvar.to_numpy()],
        loading_percent=np.r_[np.nan, np.where(rated, line.loading_percent.to_numpy(), np.nan)],
        losses_mw=float(net.res_line.pl_mw.sum()),
        p0_mw=float(net.res_ext_grid.p_mw.iloc[0]),
        q0_mvar=float(net.res_ext_grid.q_mvar.iloc[0]),
        bus_p_mw=-bus.p_mw.to_numpy(),
        bus_q_mvar=-bus.q_mvar.to_numpy(),
        line_pl_mw=np.r_[np.nan, line.pl_mw.fillna(0.0).to_numpy()],
        line_ql_mvar=np.r_[np.nan, line.ql_mvar.fillna(0.0).to_numpy()],
    )


@dataclass(frozen=True)
class AcValidation:
    """How far the market's SOCP solution is from the AC power flow of the same injections; a dispatch whose
    AC power flow did not converge is a result too (``converged`` false, every AC figure NaN)."""

    ac: AcPowerFlow
    max_vm_mismatch_pu: float
    losses_mismatch_kw: float
    voltage_violations: tuple[int, ...]
    converged: bool = True

    @classmethod
    def not_converged(cls, n_buses: int) -> AcValidation:
        return cls(AcPowerFlow.not_converged(n_buses), math.nan, math.nan, (), converged=False)

    def summary(self) -> dict:
        if not self.converged:
            return {"ac_converged": False, "max_vm_mismatch_pu": math.nan, "voltage_violations": None}
        return {
            "ac_converged": True,
            "max_vm_mismatch_pu": self.max_vm_mismatch_pu,
            "ac_losses_kw": self.ac.losses_mw * 1e3,
            "losses_mismatch_kw": self.losses_mismatch_kw,
            "ac_p0_kw": self.ac.p0_mw * 1e3,
            "min_vm_ac_pu": float(self.ac.vm_pu.min()),
            "max_vm_ac_pu": float(self.ac.vm_pu.max()),
            "voltage_violations": len(self.voltage_violations),
            "max_loading_percent": (float(np.nanmax(self.ac.loading_percent))
                                    if np.isfinite(self.ac.loading_percent).any() else None),
        }


def validate_dispatch(feeder: Feeder, p_mw: np.ndarray, q_mvar: np.ndarray, vm_socp_pu: np.ndarray,
                      losses_socp_mw: float, vmin_pu: np.ndarray, vmax_pu: np.ndarray,
                      tol_pu: float = 1e-6, net: pp.pandapowerNet | None = None) -> AcValidation:
    """Run the AC power flow of a market dispatch and compare it with the SOCP voltages and losses.

    ``vm_socp_pu``, ``vmin_pu`` and ``vmax_pu`` are in the feeder's p.u. (as the market has them); the
    validation reports every voltage in p.u. of the buses' nominal voltages (:meth:`Feeder.nominal_vm`). A bus
    violates its limits when its AC voltage leaves ``[vmin, vmax]`` by more than ``tol_pu``; ``net``
    as in :func:`run_ac_power_flow`. A dispatch without an AC solution is reported, not raised: the market
    cleared, and what the grid made of it is the finding.
    """
    try:
        ac = run_ac_power_flow(feeder, p_mw, q_mvar, net)
    except AcNotConverged:
        return AcValidation.not_converged(feeder.n_buses)
    return compare_with_ac(ac, feeder.nominal_vm(vm_socp_pu), losses_socp_mw, feeder.nominal_vm(vmin_pu),
                           feeder.nominal_vm(vmax_pu), tol_pu)


def compare_with_ac(ac: AcPowerFlow, vm_socp_pu: np.ndarray, losses_socp_mw: float, vmin_pu: np.ndarray,
                    vmax_pu: np.ndarray, tol_pu: float = 1e-6) -> AcValidation:
    """Compare a dispatch's SOCP voltages and losses with its AC power flow, however that was solved (the
    feeder's own net, or the source grid's, e.g. :func:`physical.simbench_grid.simbench_ac_power_flow`); every
    voltage in p.u. of the buses' nominal voltages."""
    outside = (ac.vm_pu < vmin_pu - tol_pu) | (ac.vm_pu > vmax_pu + tol_pu)
    outside[0] = False
    return AcValidation(
        ac=ac,
        max_vm_mismatch_pu=float(np.max(np.abs(ac.vm_pu - vm_socp_pu))),
        losses_mismatch_kw=float((ac.losses_mw - losses_socp_mw) * 1e3),
        voltage_violations=tuple(int(j) for j in np.flatnonzero(outside)),
    )
