"""cosim clear --privacy: bad options refused (exit 1, nothing written); a private run's summary.json."""

from __future__ import annotations

import json

import pytest

from cosim.cli import EXIT_INPUT, EXIT_NOT_CONVERGED, main

BASE = ["clear", "--case", "case15da", "--interval", "2016-06-21T12:00"]


@pytest.mark.parametrize("args, message", [
    (["--method", "admm", "--privacy", "paillier", "--key-bits", "512"], "key_bits"),
    (["--method", "admm", "--privacy", "paillier", "--key-bits", "1020"], "key_bits"),
    (["--privacy", "paillier"], "use --method admm"),
    (["--method", "admm", "--key-bits", "2048"], "--key-bits sets the keys of --privacy paillier"),
    (["--method", "admm", "--privacy", "paillier", "--relaxation", "1.8"], "relaxation 1"),
    (["--method", "admm", "--privacy", "paillier", "--projection", "local"], "projection sweep"),
    (["--method", "admm", "--privacy", "paillier", "--detector", "median"], "detectors screen values in the clear"),
    (["--method", "admm", "--privacy", "mpc"], "--privacy"),
])
def test_bad_privacy_options_are_one_line_and_write_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "out"
    assert main([*BASE, *args, "--out", str(out)]) == EXIT_INPUT
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1 and message in err, err
    assert not out.exists()


@pytest.mark.parametrize("mode", ["paillier", "hybrid"])
def test_a_private_run_reports_its_crypto_cost(tmp_path, mode):
    # 1024-bit keys and three iterations: the test is about what the run reports, not its security
    out = tmp_path / "out"
    code = main([*BASE, "--method", "admm", "--privacy", mode, "--key-bits", "1024", "--max-iter", "3",
                 "--out", str(out), "--quiet"])
    assert code == EXIT_NOT_CONVERGED
    s = json.loads((out / "summary.json").read_text())
    assert s["privacy"] == mode and s["key_bits"] == 1024 and s["iterations"] == 3
    assert 0 < s["crypto_s_max"] <= s["crypto_s_total"] == pytest.approx(sum(s["crypto_s_per_agent"]))
    # per trade: the pad's seed, then per iteration a request, a response (ciphertexts mod n^2) and a padded step
    # (hybrid: and a seed ciphertext per pair of siblings, relayed by their parent: two hops)
    siblings = 0 if mode == "paillier" else s["sibling_pairs"]
    assert s["bytes_sent"] == s["n_trades"] * (256 + 3 * (2 * 256 + 16)) + siblings * 2 * 256
    assert s["plain_objective"] == pytest.approx(s["reference_objective"], rel=1e-5)
