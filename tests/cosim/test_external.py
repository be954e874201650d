"""External mosaik simulators attached to the co-simulation's grid: a mosaik-csv player loads a bus, and the
AC check of every dispatch carries that load as pandapower itself computes it."""

from __future__ import annotations

import json
from pathlib import Path

import pandapower as pp
import pytest

from cosim.clearing_run import clear_market
from cosim.cli import EXIT_INPUT, main
from cosim.external import remote_simulators_supported
from cosim.scenario import load_scenario
from cosim.world import run_world
from market.instance import instance_from_dict
from physical.ac_power_flow import to_pandapower
from tests.cosim.external_sims import Recorder
from tests.cosim.test_cosim import assert_refused

START = "2016-06-21 12:00:00"


def scenario(tmp_path: Path, rows: list[tuple[float, float]], connect: str, *, case: str = "case15da",
             extra: str = "", intervals: int = 2) -> Path:
    """A centralized scenario of ``intervals`` quarter hours from summer noon with a mosaik-csv player of one
    household whose P[MW], Q[MVar] are ``rows`` (one per quarter hour), wired by ``connect``."""
    times = [f"2016-06-21 {12 + k // 4:02d}:{15 * (k % 4):02d}:00" for k in range(len(rows))]
    data = tmp_path / "household.csv"
    lines = "".join(f"{t},{p},{q}\n" for t, (p, q) in zip(times, rows, strict=True))
    data.write_text("Household\nDate,P[MW],Q[MVar]\n" + lines)
    path = tmp_path / "scenario.toml"
    path.write_text(f"""
name = "external"
case = "{case}"
seed = 3
start = "2016-06-21T12:00"
intervals = {intervals}
method = "centralized"

[[external]]
name = "Household"
python = "mosaik_csv:CSV"
params = {{ sim_start = "{START}", datafile = "{data.as_posix()}" }}
model = "Household"
{extra}
{connect}""")
    return path


def to_bus(bus: int) -> str:
    return f"""
[[connect]]
src = "Household.0"
dest = "Grid.Bus-{bus}"
attrs = [["P[MW]", "P_load[MW]"], ["Q[MVar]", "Q_load[MVar]"]]
"""


@pytest.mark.parametrize(("case", "bus", "rows"), [
    ("case15da", 9, [(0.04, 0.01), (0.09, -0.005), (0.0, 0.0)]),
    ("case33bw", 17, [(0.12, 0.03), (0.02, 0.0), (0.0, 0.0)]),
])
def test_a_csv_player_loads_a_bus_as_pandapower_predicts(tmp_path, case, bus, rows):
    """mosaik-csv feeds a bus's load for two quarter hours: the market clears without it (its dispatch is that
    of the instance re-solved on its own), and the grid's AC voltages are pandapower's with that dispatch and
    one more load of the CSV's value on that bus -- whose voltage drops by what pandapower says it does."""
    run = run_world(load_scenario(scenario(tmp_path, rows, to_bus(bus), case=case)))
    assert list(run.intervals["external_load_kw"]) == pytest.approx([rows[0][0] * 1e3, rows[1][0] * 1e3])
    for k, interval in enumerate(sorted(run.instances)):
        inst = instance_from_dict(json.loads(run.instances[interval]))
        res = clear_market(inst).result
        net = to_pandapower(inst.feeder, res.p * inst.feeder.base_mva, res.q * inst.feeder.base_mva)
        pp.runpp(net, tolerance_mva=1e-10)
        without = net.res_bus.vm_pu.sort_index().to_numpy()
        pp.create_load(net, bus, p_mw=rows[k][0], q_mvar=rows[k][1])
        pp.runpp(net, tolerance_mva=1e-10)
        expected = net.res_bus.vm_pu.sort_index().to_numpy()
        seen = run.voltages[run.voltages["interval"] == interval].sort_values("bus")["vm_ac_pu"].to_numpy()
        assert seen == pytest.approx(expected, abs=1e-8)
        assert without[bus] - expected[bus] > 1e-3  # the load moved the voltage, by pandapower's amount
        assert without[bus] - seen[bus] == pytest.approx(without[bus] - expected[bus], rel=1e-5)


def test_the_grid_tells_a_listener_the_voltage_of_every_ac_check(tmp_path):
    """A user's simulator reads Vm[pu] of a bus: it gets each interval's AC voltage, when the dispatch arrived."""
    Recorder.seen = {}
    listener = """
[[external]]
name = "Listener"
python = "tests.cosim.external_sims:Recorder"
model = "Meter"

[[connect]]
src = "Grid.Bus-9"
dest = "Listener.meter0"
attrs = [["Vm[pu]", "v"]]
"""
    run = run_world(load_scenario(scenario(tmp_path, [(0.05, 0.0)] * 3, to_bus(9), extra=listener)))
    volts = run.voltages[run.voltages["bus"] == 9].sort_values("interval")["vm_ac_pu"].to_list()
    assert [Recorder.seen[t] for t in sorted(Recorder.seen)] == pytest.approx(volts, abs=1e-12)
    assert len(Recorder.seen) == 2


@pytest.mark.parametrize(("edit", "field"), [
    (('python = "mosaik_csv:CSV"', 'python = "no_such_module:CSV"'), "field external.0.python: cannot import"),
    (('python = "mosaik_csv:CSV"', 'python = "mosaik_csv:Player"'), "field external.0.python: module 'mosaik_csv' "
                                                                    "has no class 'Player'"),
    (('python = "mosaik_csv:CSV"', 'cmd = "no-such-program %(addr)s"'), "field external.0.cmd"),
    (('python = "mosaik_csv:CSV"', ''), "fields python, cmd: expected exactly one"),
    (('name = "Household"', 'name = "Market"'), "field external.0.name: 'Market' is taken"),
    (('model = "Household"', 'model = "Fridge"'), "field external.0.model: Household has no model 'Fridge'"),
    (("household.csv", "nowhere.csv"), "field external.0: Household did not start"),
    (('"P[MW]", "P_load[MW]"', '"P[kW]", "P_load[MW]"'), "field connect.0.attrs: Household entities of Household "
                                                         "have no output 'P[kW]'"),
    (('"P[MW]", "P_load[MW]"', '"P[MW]", "P_load[kW]"'), "field connect.0.attrs: Grid.Bus-9 has no input "
                                                         "'P_load[kW]'"),
    (("Grid.Bus-9", "Grid.Bus-15"), "field connect.0.dest: 'Grid.Bus-15' is not an entity of the grid of"),
    (("Grid.Bus-9", "Grid.Bus-0"), "field connect.0.attrs: Grid.Bus-0 is the substation"),
    (("Grid.Bus-9", "Grid.Line-4"), "field connect.0.attrs: Grid.Line-4 has no input 'P_load[MW]'"),
    (("Household.0", "Household.1"), "field connect.0.src: Household creates 1 entities"),
    (("Household.0", "Housheold.0"), "field connect.0.src: 'Housheold.0' names no entity"),
])
def test_bad_external_specs_are_refused_before_the_run(tmp_path, capsys, edit, field):
    path = scenario(tmp_path, [(0.05, 0.0)] * 3, to_bus(9))
    path.write_text(path.read_text().replace(*edit, 1))
    assert_refused(path, field, capsys)


def test_a_value_that_is_no_power_stops_the_run_as_bad_input(tmp_path, capsys):
    path = scenario(tmp_path, [(0.05, 0.0)] * 3, to_bus(9))
    data = tmp_path / "household.csv"
    data.write_text(data.read_text().replace("0.05,0.0", "lots,0.0", 1))
    out = tmp_path / "results"
    assert main(["run", str(path), "--out", str(out), "--quiet"]) == EXIT_INPUT
    err = capsys.readouterr().err
    assert "sent 'lots' for Bus-9 P_load[MW]: expected a finite number" in err and len(err.splitlines()) == 1
    assert not out.exists()



def test_a_csv_player_in_its_own_process_loads_the_bus_as_in_this_one(tmp_path, capsys):
    """``cmd`` starts the simulator as a process of its own (mosaik >= 3.7) and gives the AC check the same load
    as in this process; on mosaik 3.6, whose scheduler loses such a simulator's output, it is refused."""
    rows = [(0.06, 0.01), (0.03, 0.0), (0.0, 0.0)]
    here = scenario(tmp_path, rows, to_bus(7))
    (tmp_path / "remote").mkdir()
    there = tmp_path / "remote" / "scenario.toml"
    there.write_text(here.read_text().replace('python = "mosaik_csv:CSV"', 'cmd = "%(python)s -m mosaik_csv %(addr)s"'))
    if not remote_simulators_supported():
        assert_refused(there, "field external.0.cmd: a simulator in a process of its own needs mosaik >= 3.7",
                       capsys)
        return
    local, remote = (run_world(load_scenario(p)) for p in (here, there))
    assert list(remote.intervals["external_load_kw"]) == pytest.approx([60.0, 30.0])
    assert remote.voltages["vm_ac_pu"].to_numpy() == pytest.approx(local.voltages["vm_ac_pu"].to_numpy(), abs=1e-12)
