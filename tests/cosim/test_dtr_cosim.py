"""Weather-driven line ratings in the co-simulation: the Weather simulator's ratings are the market's limits
and the grid's, in-process and through mosaik alike; the comparison of dynamic with static ratings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cosim.interval import clear_interval, scenario_ratings
from cosim.ratings_run import COMPARED
from cosim.scenario import load_scenario
from cosim.scenario_run import result_files, run_scenario
from cosim.world import run_world
from market.instance import instance_from_dict
from physical.feeder_ratings import OVERLOAD_TOL
from physical.profiles import interval_index
from tests.conftest import feeder
from tests.cosim.test_cosim import assert_refused

CONGESTED = """
name = "congested"
case = "case141"
seed = 0
start = "2016-01-15T08:00"
intervals = 2
method = "centralized"
[ratings]
mode = "static"
conductor = "70-AL1/11-ST1A 10.0"
compare = true
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.toml"
    path.write_text(text)
    return path


def test_congested_day_in_mosaik_equals_in_process_and_dynamic_ratings_cost_less(tmp_path):
    scenario = load_scenario(_write(tmp_path, CONGESTED))
    files = result_files(run_scenario(scenario), CONGESTED)
    summary = files["summary.json"]["ratings"]
    static, dynamic = files["intervals.csv"], files["intervals_dynamic.csv"]
    first, f = interval_index(scenario.start), feeder("case141")
    ratings = scenario_ratings(scenario, f, [first, first + 1])
    for mode, table in (("static", static), ("dynamic", dynamic)):
        run = scenario.model_copy(update={"ratings": scenario.ratings.model_copy(update={"mode": mode})})
        for k, row in zip(range(2), table.itertuples(), strict=True):
            direct = clear_interval(run, f, first + k)
            assert row.objective == pytest.approx(direct.record()["objective"], rel=1e-9)
            assert json.loads(row.binding_lines) == direct.record()["binding_lines"]
            # the market cleared under that quarter hour's ratings, and respected them
            assert np.allclose(direct.instance.feeder.imax_pu, ratings[k].imax_pu(f, mode))
            res = direct.run.result
            assert np.all(np.sqrt(res.l[1:]) <= direct.instance.feeder.imax_pu[1:] * (1 + 1e-6))
            # the grid's AC loading against the same ratings
            assert row.max_loading_percent <= 100 * (1 + OVERLOAD_TOL)
            assert json.loads(row.overloaded_lines) == []
    saved = instance_from_dict(json.loads(files[f"instances/interval_{first:05d}.json"]))
    assert np.allclose(saved.feeder.imax_pu, ratings[0].imax_pu(f, "static"))
    # the static ratings bind at this winter peak (AC loading at 100 %), the dynamic ones do not and cost less
    assert summary["static"]["intervals_binding"] == 2 and summary["dynamic"]["intervals_binding"] == 0
    assert summary["static"]["max_loading_percent"] == pytest.approx(100.0, abs=0.1)
    assert summary["dynamic"]["cost_ct"] < summary["static"]["cost_ct"]
    assert summary["dynamic"]["curtailed_kwh"] < summary["static"]["curtailed_kwh"]
    for key in COMPARED:
        assert summary["dynamic_minus_static"][key] == pytest.approx(summary["dynamic"][key] - summary["static"][key])
    # the dynamic run loads lines beyond the static rating, within the dynamic one
    assert summary["dynamic"]["max_static_loading_percent"] > 100.5
    assert summary["dynamic"]["intervals_above_static"] == 2
    assert summary["static"]["max_static_loading_percent"] == pytest.approx(summary["static"]["max_loading_percent"])
    assert summary["dynamic_over_static_min"] >= 1.0  # a January morning: every line rated above static
    assert "figures/ratings_dynamic_vs_static.png" in files and len(files["ratings.csv"]) == 2 * (f.n_buses - 1)


def test_distributed_market_with_weather_ratings_in_mosaik_equals_in_process(tmp_path):
    text = ('name = "admm"\ncase = "case15da"\nseed = 1\nstart = "2016-06-21T12:45"\nintervals = 2\n'
            '[admm]\nprojection = "sweep"\n[ratings]\nconductor = "34-AL1/6-ST1A 10.0"\n')
    scenario = load_scenario(_write(tmp_path, text))
    cosim = run_world(scenario)
    first, clearing = interval_index(scenario.start), None
    for k in range(2):
        clearing = clear_interval(scenario, feeder("case15da"), first + k, clearing)
        row = cosim.intervals.iloc[k]
        assert row["iterations"] == clearing.record()["iterations"]
        assert row["objective"] == clearing.record()["objective"]
        limits = instance_from_dict(json.loads(cosim.instances[first + k])).feeder.imax_pu
        assert np.array_equal(limits, clearing.instance.feeder.imax_pu) and np.isfinite(limits[1:]).all()
    hours = [instance_from_dict(json.loads(cosim.instances[first + k])).feeder.imax_pu for k in range(2)]
    assert not np.array_equal(*hours)  # 12:45 and 13:00 lie in two hours of measured weather


@pytest.mark.parametrize(("text", "field"), [
    ('[ratings]\nmode = "windy"', "field ratings.mode"),
    ('[ratings]\nstation = "nowhere.csv"', "field ratings.station"),
    ('[ratings]\nconductor = "copper"', "field ratings.conductor"),
    ('[ratings]\ncompare = "maybe"', "field ratings.compare"),
    ('[ratings]\nspeed = 3', "field ratings.speed"),
])
def test_bad_ratings_sections_name_the_field_and_write_nothing(tmp_path, capsys, text, field):
    assert_refused(_write(tmp_path, 'name = "t"\ncase = "case15da"\n' + text), field, capsys)
