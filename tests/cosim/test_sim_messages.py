"""The typed messages between the world's simulators (cosim/simulators/messages.py): a receiver refuses anything
but the message its attribute carries, naming simulator, attribute and sender; and stepped by hand with nothing
but those messages, Market, Comm and Detector clear a quarter hour as the in-process cyber layer does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cosim.interval import clear_interval, interval_instance
from cosim.scenario import load_scenario
from cosim.simulators.comm import CommSim
from cosim.simulators.detector import DetectorSim
from cosim.simulators.grid import GridSim
from cosim.simulators.market import MarketSim
from cosim.simulators.messages import ClearingClose, ClearingRound, MessageError, StorageState
from cosim.simulators.run_store import COLLECTED
from cosim.simulators.storage import StorageSim
from physical.catalog import load_feeder
from physical.profiles import interval_index

SOURCE = "Sender-0.x"
BASE = 'name = "t"\ncase = "case15da"\nseed = 1\nstart = "2016-06-21T12:00"\n'
CYBER = ("[admm]\nmax_iter = 300\n[network]\nlatency = \"normal\"\nmean_ms = 3.0\nstd_ms = 1.0\nloss = 0.02\n"
         "[[attacks]]\nkind = \"static-fdi\"\nagents = [2]\nfields = [\"P\", \"Q\"]\n[detector]\nname = \"tensor\"\n")


def _scenario(tmp_path: Path, text: str = ""):
    path = tmp_path / "s.toml"
    path.write_text(BASE + text)
    return load_scenario(path)


def _created(sim, **params):
    sim.create(1, next(iter(sim.meta["models"])), **params)
    return sim


def _simulator(eid: str, scenario: dict):
    if eid == "grid":
        return _created(GridSim(), case="case15da", run_id="t")
    if eid == "market":
        return _created(MarketSim(), scenario=scenario, run_id="t")
    if eid == "storage":
        return _created(StorageSim(), scenario=scenario, run_id="t")
    return _created({"comm": CommSim, "detector": DetectorSim}[eid](), scenario=scenario)


ROUND = "ClearingRound or ClearingClose"


@pytest.mark.parametrize("eid, attr, expected", [
    ("grid", "dispatch", "DispatchOrder"), ("grid", "ratings", "LineRatings"), ("market", "soc", "StorageState"),
    ("market", "ratings", "LineRatings"), ("market", "screened", ROUND), ("market", "instance_json", "str"),
    ("comm", "round", ROUND), ("detector", "delivered", ROUND), ("storage", "battery", "BatteryPowers"),
])
def test_a_simulator_refuses_a_dict_where_its_typed_message_belongs(tmp_path, eid, attr, expected):
    sim = _simulator(eid, _scenario(tmp_path, "[storage]\n").model_dump())
    # what the simulators passed each other before: plain dicts of lists
    malformed = {"interval": 4, "p_mw": [0.0, 0.1], "batches": [], "close": None}
    with pytest.raises(MessageError) as err:
        sim.step(0, {eid: {attr: {SOURCE: malformed}}}, 0)
    name = eid.capitalize()
    assert str(err.value) == f"{name} simulator: {attr} from {SOURCE}: expected a {expected}, got dict"


def test_a_simulator_refuses_another_typed_message(tmp_path):
    sim = _simulator("storage", _scenario(tmp_path, "[storage]\n").model_dump())
    with pytest.raises(MessageError, match=r"^Storage simulator: battery from Sender-0.x: expected a BatteryPowers, "
                                           r"got StorageState$"):
        sim.step(0, {"storage": {"battery": {SOURCE: StorageState(0, np.zeros(3))}}}, 0)


def test_the_market_refuses_a_close_without_the_reports_and_a_round_of_another_interval(tmp_path):
    scenario = _scenario(tmp_path)
    market = _simulator("market", scenario.model_dump())
    inst = interval_instance(scenario, load_feeder(scenario.case), interval_index(scenario.start))
    market.step(0, {"market": {"instance_json": {SOURCE: inst.to_json()}}}, 0)
    first = market.get_data({})["market"]["round"]
    assert isinstance(first, ClearingRound) and first.interval == inst.interval and first.instance is not None
    with pytest.raises(MessageError, match=f"screened: a round of interval 7 while clearing {inst.interval}$"):
        market.step(1, {"market": {"screened": {SOURCE: ClearingRound(7, ())}}}, 0)
    with pytest.raises(MessageError, match="lacks the Comm or the Detector report"):
        market.step(1, {"market": {"screened": {SOURCE: ClearingClose(inst.interval)}}}, 0)


def test_market_comm_and_detector_stepped_by_hand_clear_as_the_in_process_cyber_layer(tmp_path):
    """No mosaik: the test hands each simulator's typed output to the next. Loss, a Byzantine agent and the
    tensor detector act as in-process: the same iterations, objective, clock, detections and message counts."""
    scenario = _scenario(tmp_path, CYBER)
    data = scenario.model_dump()
    market = _created(MarketSim(), scenario=data, run_id="by-hand")
    comm, detector = _simulator("comm", data), _simulator("detector", data)
    first = interval_index(scenario.start)
    inst = interval_instance(scenario, load_feeder(scenario.case), first)
    market.step(0, {"market": {"instance_json": {SOURCE: inst.to_json()}}}, 0)
    rounds = 0
    try:
        while "dispatch" not in (out := market.get_data({})["market"]):
            comm.step(0, {"comm": {"round": {SOURCE: out["round"]}}}, 0)
            detector.step(0, {"detector": {"delivered": {SOURCE: comm.get_data({})["comm"]["delivered"]}}}, 0)
            market.step(0, {"market": {"screened": {SOURCE: detector.get_data({})["detector"]["screened"]}}}, 0)
            rounds += 1
        kept = COLLECTED["by-hand"][first].clearing
    finally:
        COLLECTED.pop("by-hand", None)
    direct = clear_interval(scenario, load_feeder(scenario.case), first)
    want = direct.record()
    for key in ("iterations", "objective", "clearing_ms", "tp", "fp", "fn", "messages_sent", "messages_lost"):
        assert kept.record[key] == want[key], key
    assert want["tp"] > 0 and want["messages_lost"] > 0 and rounds > want["iterations"]
    assert np.array_equal(kept.iterations["primal_residual"], direct.run.history["primal_residual"])
