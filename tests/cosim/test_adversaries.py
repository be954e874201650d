"""Adversaries that know the defence and the cross-layer check, end to end: `cosim clear` and `cosim run`."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from cosim.cli import EXIT_INPUT, EXIT_OK, main
from cyber.attacks import byzantine_agents
from tests.cosim.test_cosim import scenario_file


def test_clear_with_a_colluding_share_names_the_colluders(tmp_path):
    """A seeded fifth of case15da's prosumers drift stealthily (up to 0.01 p.u. each): the message screen
    hardly sees them, the cross-layer check names exactly them."""
    out = tmp_path / "share"
    args = ["clear", "--case", "case15da", "--seed", "0", "--method", "admm", "--attack", "stealthy",
            "--byzantine-share", "0.2", "--attack-fields", "P,Q", "--delta", "0.01", "--detector", "tensor",
            "--out", str(out), "--quiet"]
    assert main(args) == EXIT_OK
    summary = json.loads((out / "summary.json").read_text())
    group = byzantine_agents(0, 15, 0.2)
    assert summary["byzantine"] == group and summary["attack"] == "stealthy"
    assert summary["tpr"] < 0.1
    assert summary["cross_layer_checked"] and summary["suspected_agents"] == group


def test_an_attack_free_centralized_clearing_reports_no_suspect(tmp_path):
    out = tmp_path / "central"
    assert main(["clear", "--case", "case15da", "--out", str(out), "--quiet"]) == EXIT_OK
    summary = json.loads((out / "summary.json").read_text())
    assert summary["suspected_agents"] == [] and summary["cross_layer_checked"] is False


@pytest.mark.parametrize(("extra", "message"), [
    (["--attack", "stealthy", "--byzantine", "2", "--attack-period", "5"], "period 1"),
    (["--attack", "stealthy", "--byzantine-share", "1.5"], "--byzantine-share 1.5: expected a share in (0, 1]"),
    (["--attack", "stealthy", "--byzantine", "2", "--byzantine-share", "0.2"], "not both"),
    (["--attack", "stealthy", "--byzantine", "2", "--drift", "-1"], "drift must be > 0"),
])
def test_bad_adversary_options_are_clear_errors(tmp_path, capsys, extra, message):
    out = tmp_path / "bad"
    assert main(["clear", "--case", "case15da", "--method", "admm", "--out", str(out), *extra]) == EXIT_INPUT
    assert message in capsys.readouterr().err and not out.exists()


def test_cosim_names_the_stealthy_agent_per_interval(tmp_path):
    """The Grid simulator checks every dispatch against the market's reports: the stealthy agent of a scenario
    file is named in intervals.csv and summary.json, and an attack-free run names nobody."""
    attacked = scenario_file(tmp_path, '[[attacks]]\nkind = "stealthy"\nagents = [4]\nfields = ["P", "Q"]\n'
                                       'delta = 0.01\n[detector]\nname = "tensor"\n', seed=0)
    out = tmp_path / "stealthy"
    assert main(["run", str(attacked), "--out", str(out), "--quiet"]) == EXIT_OK
    intervals = pd.read_csv(out / "intervals.csv")
    assert [json.loads(s) for s in intervals["suspected_agents"]] == [[4]]
    assert intervals["cross_layer_checked"].all()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["suspected_agents"] == [4] and summary["intervals_with_suspects"] == 1

    clean = tmp_path / "clean.toml"
    clean.write_text(attacked.read_text().split("[[attacks]]")[0] + '[detector]\nname = "tensor"\n')
    out = tmp_path / "clean"
    assert main(["run", str(clean), "--out", str(out), "--quiet"]) == EXIT_OK
    summary = json.loads((out / "summary.json").read_text())
    assert summary["suspected_agents"] == [] and summary["intervals_with_suspects"] == 0


def test_a_scenario_stealthy_attack_with_a_period_is_refused(tmp_path, capsys):
    path = scenario_file(tmp_path, '[[attacks]]\nkind = "stealthy"\nagents = [4]\nperiod = 5\n')
    out = tmp_path / "x"
    assert main(["run", str(path), "--out", str(out), "--quiet"]) == EXIT_INPUT
    assert "period 1" in capsys.readouterr().err and not out.exists()
