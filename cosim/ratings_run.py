"""Weather-driven line ratings in a scenario run: the ratings table, the headline figures of a run's ratings and
the comparison of dynamic with static ratings (``[ratings] compare = true``: the same quarter hours co-simulated
in both modes).

A run's figures (``summary.json`` field ``ratings``) count what the thermal limits did: the market's cost, the
energy imported at the substation, the prosumers' curtailment (demand shed and generation spilled), the lines at
their limit in the market's solution, and the AC loading against the quarter hour's rating (pandapower, Grid
simulator) -- the largest, and the line-intervals above the rating by more than
:data:`physical.feeder_ratings.OVERLOAD_TOL` -- and against the static rating (what a static operation would
call an overload: the largest, and the quarter hours in which some line is above it).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cosim.interval import scenario_ratings
from cosim.scenario import Scenario
from physical.catalog import load_feeder
from physical.feeder_ratings import OVERLOAD_TOL
from physical.profiles import interval_index

#: The figures of one run that the comparison subtracts (dynamic minus static).
COMPARED = ("cost_ct", "import_kwh", "curtailed_kwh", "traded_kwh", "binding_line_intervals",
            "intervals_binding", "max_loading_percent", "overloaded_line_intervals", "max_static_loading_percent",
            "intervals_above_static")


def ratings_table(scenario: Scenario) -> pd.DataFrame:
    """Every line's dynamic and static rating (A) in every quarter hour of the run, with the weather used."""
    feeder = load_feeder(scenario.case)
    first = interval_index(scenario.start)
    rows = []
    for r in scenario_ratings(scenario, feeder, list(range(first, first + scenario.intervals))):
        lines = np.arange(1, feeder.n_buses)
        rows.append(pd.DataFrame({"interval": r.interval, "line": lines, "weather_hour": r.weather_hour,
                                  "air_temperature_c": r.air_temperature_c, "wind_speed_m_s": r.wind_speed_m_s,
                                  "dynamic_a": r.dynamic_a[1:], "static_a": r.static_a[1:]}))
    return pd.concat(rows, ignore_index=True)


def ratings_figures(intervals: pd.DataFrame) -> dict:
    """What one run's line limits did (see the module docstring); ``intervals`` as :func:`cosim.world.run_world`
    returns them."""
    ok = intervals[~intervals["fallback"]]
    binding = intervals["binding_lines"]
    overloaded = intervals["overloaded_lines"]
    loading = pd.to_numeric(intervals["max_loading_percent"], errors="coerce")
    static_loading = pd.to_numeric(intervals["max_static_loading_percent"], errors="coerce")
    return {
        "cost_ct": float(ok["objective"].sum()),
        "import_kwh": float(ok["p0_kw"].sum() / 4),
        "curtailed_kwh": float(ok["curtailed_kw"].sum() / 4),
        "traded_kwh": float(ok["traded_kw"].sum() / 4),
        "binding_line_intervals": int(binding.map(len).sum()),
        "intervals_binding": int(binding.map(bool).sum()),
        "binding_lines": sorted({j for lines in binding for j in lines}),
        "max_loading_percent": float(loading.max()) if loading.notna().any() else None,
        "overloaded_line_intervals": int(overloaded.map(len).sum()),
        "max_static_loading_percent": float(static_loading.max()) if static_loading.notna().any() else None,
        "intervals_above_static": int((static_loading > 100.0 * (1.0 + OVERLOAD_TOL)).sum()),
        "fallbacks": int(intervals["fallback"].sum()),
    }


def ratings_summary(scenario: Scenario, runs: dict[str, pd.DataFrame], table: pd.DataFrame) -> dict:
    """``summary.json``'s ``ratings``: the set-up, each mode's figures, and with both modes their difference."""
    factor = table["dynamic_a"] / table["static_a"]
    spec = scenario.ratings
    out: dict = {"mode": spec.mode, "conductor": spec.conductor, "station": spec.station,
                 "static_a_min": float(table["static_a"].min()),
                 "dynamic_over_static_min": float(factor.min()), "dynamic_over_static_median": float(factor.median()),
                 "intervals_dynamic_below_static": int(table.loc[factor < 1, "interval"].nunique())}
    figures = {mode: ratings_figures(t) for mode, t in runs.items()}
    out |= figures
    if set(figures) == {"dynamic", "static"}:
        dyn, sta = figures["dynamic"], figures["static"]
        out["dynamic_minus_static"] = {k: (None if dyn[k] is None or sta[k] is None else dyn[k] - sta[k])
                                       for k in COMPARED}
    return out


def other_mode(scenario: Scenario) -> Scenario:
    """The same scenario with the other rating mode (and no comparison of its own)."""
    mode = "static" if scenario.ratings.mode == "dynamic" else "dynamic"
    return scenario.model_copy(update={"ratings": scenario.ratings.model_copy(update={"mode": mode,
                                                                                      "compare": False})})
