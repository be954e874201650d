"""Real 15-minute load, PV and wind profiles from the data the ``simbench`` package ships.

SimBench's complete data set holds one year (2016, 35 136 quarter hours) of normalised profiles: standard
load profiles (household H0, commercial G0-G6, agricultural L0-L2, ...) scaled to an annual peak of 1, and
renewable profiles (PV1-PV8, WP1-WP12) relative to installed capacity. Reading the CSV files takes seconds,
so the columns used here are cached once as a ``.npz`` file (``$P2P_COSIM_CACHE`` or ``~/.cache/p2p-cosim``).
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import simbench

from physical.cache_folders import data_cache
from physical.errors import FeederError
from physical.feeder import Feeder

SIMBENCH_DATA_DIR = Path(simbench.__file__).parent / "networks" / "1-complete_data-mixed-all-0-sw"
YEAR_START = datetime(2016, 1, 1)
INTERVAL = timedelta(minutes=15)
INTERVALS_PER_DAY = 96
#: Quarter hours in the profile year (2016 is a leap year).
YEAR_INTERVALS = INTERVALS_PER_DAY * 366
#: The quarter hour a clearing takes when none is named: summer noon, when PV makes sellers of many prosumers.
DEFAULT_INTERVAL = "2016-06-21T12:00"
_LOAD_COLUMN = re.compile(r"^((?:H0|G\d|L\d|BL|WB)-\w+)_pload$")
_RES_COLUMN = re.compile(r"^(PV\d+|WP\d+)$")


@dataclass(frozen=True, eq=False)
class ProfileLibrary:
    """Normalised yearly profiles by SimBench type name (``H0-A``, ``PV3``, ``WP7``)."""

    load: dict[str, np.ndarray]
    pv: dict[str, np.ndarray]
    wind: dict[str, np.ndarray]

    @property
    def n_intervals(self) -> int:
        return len(next(iter(self.load.values())))


def cache_dir() -> Path:
    return data_cache()


@lru_cache(maxsize=1)
def profile_library() -> ProfileLibrary:
    """The SimBench profiles, read from the package's CSV files on first use and cached afterwards (read again
    by every process where no cache folder can be written)."""
    cache = cache_dir() / f"simbench-{simbench.__version__}-profiles.npz"
    if cache.is_file():
        with np.load(cache) as data:
            arrays = {k: data[k] for k in data.files}
    else:
        arrays = _read_profiles()
        with contextlib.suppress(OSError):  # no cache folder can be written: every process reads the CSVs
            _write_cache(cache, arrays)
    groups: dict[str, dict[str, np.ndarray]] = {"load": {}, "pv": {}, "wind": {}}
    for key, values in arrays.items():
        group, name = key.split(":", 1)
        groups[group][name] = values
    return ProfileLibrary(**groups)


def _read_profiles() -> dict[str, np.ndarray]:
    try:
        load = pd.read_csv(SIMBENCH_DATA_DIR / "LoadProfile.csv", sep=";")
        res = pd.read_csv(SIMBENCH_DATA_DIR / "RESProfile.csv", sep=";")
    except OSError as exc:
        raise FeederError(f"cannot read SimBench profiles in {SIMBENCH_DATA_DIR}: {exc}") from exc
    arrays = {}
    for col in load.columns:
        if m := _LOAD_COLUMN.match(col):
            arrays[f"load:{m.group(1)}"] = load[col].to_numpy(dtype=float)
    for col in res.columns:
        if m := _RES_COLUMN.match(col):
            group = "pv" if col.startswith("PV") else "wind"
            arrays[f"{group}:{col}"] = res[col].to_numpy(dtype=float)
    return arrays


def _write_cache(cache: Path, arrays: dict[str, np.ndarray]) -> None:
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, cache)


def interval_index(when: str | int) -> int:
    """Quarter-hour index in the profile year from an index or an ISO time (``2016-06-21T12:00``); a time
    between quarter hours falls in the one it belongs to (12:07 is the 12:00 quarter hour)."""
    n = YEAR_INTERVALS
    if isinstance(when, int) or (isinstance(when, str) and when.isdigit()):
        index = int(when)
    else:
        try:
            stamp = datetime.fromisoformat(when)
        except (TypeError, ValueError) as exc:
            raise FeederError(f"interval {when!r}: expected an index 0..{n - 1} or an ISO time in 2016, "
                              "e.g. 2016-06-21T12:00") from exc
        if stamp.tzinfo is not None:
            raise FeederError(f"interval {when!r}: expected a local time without a time zone (the profiles are "
                              "in the grid's local time), e.g. 2016-06-21T12:00")
        index = (stamp - YEAR_START) // INTERVAL
    if not 0 <= index < n:
        raise FeederError(f"interval {when!r} is outside the profile year 2016 (index 0..{n - 1})")
    return index


def interval_start(index: int) -> datetime:
    return YEAR_START + index * INTERVAL


@dataclass(frozen=True)
class BusProfiles:
    """Which profile drives each bus and how it is scaled (index = feeder bus; bus 0 has none)."""

    load_type: tuple[str, ...]
    load_peak_mw: np.ndarray
    pv_type: tuple[str, ...]
    pv_mw: np.ndarray
    wind_type: tuple[str, ...]
    wind_mw: np.ndarray

    def nominal(self) -> tuple[np.ndarray, np.ndarray]:
        """Peak load and installed renewable capacity (MW per bus): what storage is sized to."""
        return self.load_peak_mw, self.pv_mw + self.wind_mw

    def snapshot(self, index: int, library: ProfileLibrary | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Load and renewable generation (MW per bus) in quarter hour ``index``."""
        lib = library or profile_library()
        n = len(self.load_type)
        demand = np.array([lib.load[self.load_type[j]][index] * self.load_peak_mw[j] if self.load_type[j]
                           else 0.0 for j in range(n)])
        gen = np.array([(lib.pv[self.pv_type[j]][index] * self.pv_mw[j] if self.pv_type[j] else 0.0)
                        + (lib.wind[self.wind_type[j]][index] * self.wind_mw[j] if self.wind_type[j] else 0.0)
                        for j in range(n)])
        return np.maximum(demand, 0.0), np.maximum(gen, 0.0)


@dataclass(frozen=True, eq=False)
class UnitProfiles:
    """Loads, generators and storage units that follow their own yearly profiles, each at a feeder bus.

    SimBench's convention: unit ``u`` consumes ``values[t, column[u]] * p_mw[u]`` in quarter hour ``t``, a
    relative profile times the unit's reference power, with consumption positive (loads, charging storage)
    and generation negative (``p_mw`` of a generator is stored negated). ``values`` holds one column per
    profile named in ``names``.
    """

    n_buses: int
    bus: np.ndarray
    column: np.ndarray
    p_mw: np.ndarray
    values: np.ndarray
    names: tuple[str, ...]

    def nominal(self) -> tuple[np.ndarray, np.ndarray]:
        """Peak load and peak generation over the year (MW per bus): what storage is sized to."""
        peak = np.abs(self.p_mw) * self.values[:, self.column].max(axis=0, initial=0.0)
        load = np.bincount(self.bus, weights=np.where(self.p_mw > 0, peak, 0.0), minlength=self.n_buses)
        gen = np.bincount(self.bus, weights=np.where(self.p_mw < 0, peak, 0.0), minlength=self.n_buses)
        load[0] = gen[0] = 0.0
        return load, gen

    def snapshot(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Load and generation (MW per bus) in quarter hour ``index``: the units' consumption and production."""
        p = self.values[index, self.column] * self.p_mw
        demand = np.bincount(self.bus, weights=np.maximum(p, 0.0), minlength=self.n_buses)
        gen = np.bincount(self.bus, weights=np.maximum(-p, 0.0), minlength=self.n_buses)
        demand[0] = gen[0] = 0.0
        return demand, gen


def assign_profiles(feeder: Feeder, rng: np.random.Generator, *, pv_share: float,
                    pv_ratio: tuple[float, float], wind_share: float, wind_ratio: tuple[float, float],
                    load_types: tuple[str, ...] = ()) -> BusProfiles:
    """Draw a load profile for every loaded bus and PV/wind units for a share of buses.

    A bus's load profile is scaled so that its annual peak is the case's nominal load; PV and wind capacities
    are ``ratio x nominal load`` with the ratio drawn uniformly in the given range.
    """
    lib = profile_library()
    pool = sorted(lib.load) if not load_types else [t for t in sorted(lib.load) if t.startswith(load_types)]
    if not pool:
        raise FeederError(f"no SimBench load profile matches {load_types}; known: {sorted(lib.load)}")
    n = feeder.n_buses
    peak = np.maximum(feeder.pd_mw, 0.0)
    peak[0] = 0.0
    load_type = tuple("" if peak[j] == 0 else str(rng.choice(pool)) for j in range(n))
    has_pv = (rng.random(n) < pv_share) & (peak > 0)
    pv_mw = np.where(has_pv, rng.uniform(*pv_ratio, n) * peak, 0.0)
    pv_type = tuple(str(rng.choice(sorted(lib.pv))) if has_pv[j] else "" for j in range(n))
    has_wind = (rng.random(n) < wind_share) & (peak > 0)
    wind_mw = np.where(has_wind, rng.uniform(*wind_ratio, n) * peak, 0.0)
    wind_type = tuple(str(rng.choice(sorted(lib.wind))) if has_wind[j] else "" for j in range(n))
    return BusProfiles(load_type, peak, pv_type, pv_mw, wind_type, wind_mw)
