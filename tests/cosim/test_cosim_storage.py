"""Batteries in the co-simulation: the Storage simulator carries every unit's state between quarter hours, and
the co-simulated run equals the in-process online run of the same intervals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cosim.cli import EXIT_OK, main
from cosim.interval import interval_instance
from cosim.scenario import load_scenario
from cosim.world import run_world
from market.online.controllers import run_online, solve_slot
from market.online.distributed import AdmmSlots
from market.online.study import interval_controller, terminal_value
from market.problem.storage import storage_arrays
from physical.catalog import load_feeder
from physical.profiles import interval_index
from tests.cosim.test_cosim import assert_refused

BASE = """
name = "storage"
case = "case15da"
seed = 1
start = "2016-06-21T17:00"
"""
#: loose tolerances keep the ADMM runs short; co-simulation and in-process run the same steps either way
LOOSE = '[admm]\nprojection = "sweep"\ntol_primal = 1e-4\ntol_dual = 3e-4\n'


def scenario_at(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.toml"
    path.write_text(BASE + text)
    return path


def in_process(path: Path):
    """The scenario's intervals run by the online controller in-process (what ``cosim online`` runs)."""
    scenario = load_scenario(path)
    feeder, first = load_feeder(scenario.case), interval_index(scenario.start)
    instances = [interval_instance(scenario, feeder, first + k) for k in range(scenario.intervals)]
    solve = (AdmmSlots(scenario.admm_settings(), scenario.admm.warm_start) if scenario.method == "admm"
             else solve_slot)
    controller = interval_controller(storage_arrays(instances[0]), scenario.storage.controller, scenario.storage.V,
                                     [inst.retail_price for inst in instances], solve)
    run, _ = run_online(instances, controller, terminal_value(instances))
    return scenario, run


def assert_same_run(path: Path) -> None:
    scenario, online = in_process(path)
    run = run_world(scenario)
    assert not run.intervals["fallback"].any()
    assert run.intervals["objective"].to_numpy() == pytest.approx(online.slot_costs_ct, rel=1e-9, abs=1e-9)
    soc = run.storage.pivot(index="unit", columns="interval", values="soc_kwh").to_numpy()
    assert soc == pytest.approx(online.soc_kwh[:, 1:], abs=1e-9)
    charge = run.storage.pivot(index="unit", columns="interval", values="charge_kw").to_numpy()
    assert charge == pytest.approx(online.charge_kw, abs=1e-9)
    # the Grid's AC check saw the batteries in the bus injections: SOCP and AC voltages agree
    assert run.intervals["max_vm_mismatch_pu"].max() < 1e-4


@pytest.mark.parametrize("controller", ["lyapunov", "myopic"])
def test_a_centralized_cosimulation_equals_the_in_process_online_run(tmp_path, controller):
    assert_same_run(scenario_at(tmp_path, f'intervals = 4\nmethod = "centralized"\n[storage]\n'
                                          f'controller = "{controller}"\nshare = 0.6\n'))


@pytest.mark.parametrize("warm", ["true", "false"])
def test_an_admm_cosimulation_equals_the_in_process_online_run(tmp_path, warm):
    assert_same_run(scenario_at(tmp_path, f'intervals = 2\n{LOOSE}warm_start = {warm}\n[storage]\nshare = 0.6\n'))


def test_attacks_and_detectors_keep_working_with_batteries(tmp_path):
    path = scenario_at(tmp_path, 'intervals = 2\n[admm]\ntol_primal = 1e-4\ntol_dual = 3e-4\n'
                                 '[[attacks]]\nkind = "static-fdi"\nagents = [4]\nfields = ["P", "Q"]\n'
                                 '[detector]\nname = "tensor"\n[storage]\nshare = 0.6\n')
    out = tmp_path / "results"
    assert main(["run", str(path), "--out", str(out), "--quiet"]) == EXIT_OK
    summary = json.loads((out / "summary.json").read_text())
    assert summary["tp"] + summary["fn"] > 0 and summary["tp"] > 0  # injections happened and were caught
    assert summary["soc_violations"] == 0 and summary["units"] > 0
    storage = (out / "storage.csv").read_text().splitlines()
    assert storage[0] == "interval,unit,bus,soc_kwh,charge_kw,discharge_kw,queue"
    assert len(storage) == 1 + 2 * summary["units"]


@pytest.mark.parametrize("text, field", [
    ("[storage]\nV = 1e9", "field storage: --V 1e+09: expected 0 < V <="),
    ('[storage]\ncontroller = "myopic"\nV = 0.1', "field storage: field V: the Lyapunov"),
    ("[storage]\nsoc_min = 0.6\nsoc0 = 0.5", "expected soc_min <= soc0 <= soc_max"),
    ('[storage]\ncontroller = "mpc"', "field storage.controller"),
    ("[storage]\nshare = 0", "field storage.share"),
    ("[storage]\nshare = 0.01", "gives no battery on case15da"),
    ("[storage]\ncolour = 1", "field storage.colour"),
])
def test_broken_storage_sections_name_the_field_and_write_nothing(tmp_path, capsys, text, field):
    assert_refused(scenario_at(tmp_path, text), field, capsys)


def test_the_units_are_those_of_the_online_run():
    """The scenario's [storage] draws the units cosim online draws for the same options and seed."""
    from market.instance import InstanceOptions, build_instance

    scenario = load_scenario(Path("scenarios/storage_day_case33bw.toml"))
    first = interval_index(scenario.start)
    plain = build_instance(load_feeder(scenario.case), interval=first, seed=scenario.seed,
                           options=InstanceOptions(storage_share=scenario.storage.share, tariff="tou"))
    got = storage_arrays(interval_instance(scenario, load_feeder(scenario.case), first))
    assert np.array_equal(got.bus, storage_arrays(plain).bus) and np.allclose(got.soc0, storage_arrays(plain).soc0)
