"""Property-based fuzzing of the CLI and of scenario files.

Hypothesis mutates ``cosim clear`` arguments and scenario TOML files (values out of range, of the wrong type,
unknown keys, missing keys, garbled or binary files, results folders that must not be replaced) and checks, for
every case: the exit code is one the CLI documents, no traceback reaches the user, bad input is one line on
stderr and leaves ``--out`` as it was, a results folder is whole (its manifest lists exactly what it holds), and
nothing outside ``--out`` is touched. In CI the examples are few and always the same (the ``deterministic``
profile of ``tests/conftest.py``); by hand, ``COSIM_FUZZ_EXAMPLES=500 COSIM_FUZZ_RANDOM=1 python -m pytest
tests/cosim/test_fuzz.py`` draws new ones.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from cosim.cli import EXIT_CODES, EXIT_INPUT, main
from cosim.results import MANIFEST

FUZZ = settings(max_examples=int(os.environ.get("COSIM_FUZZ_EXAMPLES", "40")), deadline=None,
                derandomize=not os.environ.get("COSIM_FUZZ_RANDOM"),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

#: What may stand where a value goes: in range, out of range, of the wrong type, malformed.
VALUES = st.sampled_from([-1, 0, 1, 2, 3, 2**63, -0.5, 0.0, 0.05, 0.5, 1.5, 1e9, math.nan, math.inf, "", "x",
                          "2016-06-21T12:00", "2016-02-30T00:00", "2016-06-21T12:00+01:00", "2016-12-31T23:45",
                          True, [], [1], [0, 99], ["P", "Q"], {"a": 1}])
TEXT_VALUES = st.sampled_from(["-1", "0", "1", "2", "0.5", "1.5", "1e9", "nan", "inf", "-inf", "", "x", "P,Q",
                               "v", "t,z", "1,2", "2,1", "2016-06-21T12:00", "2016-06-21T12:00+01:00", "35135"])
#: Where ``--out`` may point in the sandbox: fresh, a previous results folder, a user's folder, the working
#: directory and its parent, a file, below a file, an empty folder, a deep new path.
OUTS = st.sampled_from(["out"] * 6 + ["previous", "user", ".", "..", "keep.txt", "keep.txt/run", "empty",
                        "deep/new/out"])


def sandbox() -> Path:
    """A working directory holding a user's files, a previous results folder and an empty folder."""
    top = Path(tempfile.mkdtemp(prefix="cosim-fuzz-"))
    work = top / "work"
    (work / "user" / "data").mkdir(parents=True)
    (work / "user" / "data" / "thesis.tex").write_text("precious")
    (work / "keep.txt").write_text("keep me")
    (work / "empty").mkdir()
    (top / "beside.txt").write_text("beside the working directory")
    previous = work / "previous"
    previous.mkdir()
    (previous / "summary.json").write_text("{}")
    (previous / MANIFEST).write_text(json.dumps({"written_by": "p2p-cosim", "files": ["summary.json"]}))
    return work


def snapshot(top: Path) -> dict[str, bytes | None]:
    """Every file (content) and folder (None) below ``top``."""
    return {str(p.relative_to(top)): (None if p.is_dir() else p.read_bytes()) for p in sorted(top.rglob("*"))}


def outside(tree: dict[str, bytes | None], out: str) -> dict[str, bytes | None]:
    return {k: v for k, v in tree.items() if k != out and not k.startswith(out + "/")}


def inside(tree: dict[str, bytes | None], out: str) -> dict[str, bytes | None]:
    return {k: v for k, v in tree.items() if k == out or k.startswith(out + "/")}


def run_cli(argv: list[str], work: Path) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.chdir(work), contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    return code, err.getvalue()


def check_outcome(work: Path, out: str, argv: list[str]) -> None:
    """Run ``argv`` in ``work`` and hold it to the CLI's promises."""
    top = work.parent
    key = os.path.normpath(os.path.join("work", out))
    before = snapshot(top)
    try:
        code, err = run_cli(argv, work)
        after = snapshot(top)
    finally:
        shutil.rmtree(top, ignore_errors=True)
    event(f"exit {code}")
    assert code in EXIT_CODES, (argv, code, err)
    assert "Traceback" not in err, (argv, err)
    made = {k for k, v in after.items() if v is None and k not in before and key.startswith(k + "/")}
    assert outside(after, key) == outside(before, key) | dict.fromkeys(made), f"{argv} touched files outside --out"
    if code == EXIT_INPUT:
        assert not made, f"{argv} made the folders {made} on bad input"
        assert len(err.strip().splitlines()) == 1 and err.startswith("cosim"), (argv, err)
        assert inside(after, key) == inside(before, key), f"{argv} wrote into --out on bad input"
        return
    written = {k[len(key) + 1:] for k, v in inside(after, key).items() if v is not None}
    manifest = json.loads(after[f"{key}/{MANIFEST}"])
    assert written == set(manifest["files"]) | {MANIFEST} and "summary.json" in written, (argv, written)


# --- cosim clear -----------------------------------------------------------------------------------------------

CLEAR_OPTIONS = ["--seed", "--interval", "--method", "--projection", "--rho", "--tol-primal", "--max-iter",
                 "--relaxation", "--attack", "--byzantine", "--attack-start", "--attack-period", "--attack-fields",
                 "--delta", "--sigma", "--detector", "--alpha", "--partners", "--k", "--vmin", "--vmax",
                 "--pv-share", "--pv-ratio", "--wind-share", "--instance", "--case", "--bogus"]
CHOICES = {"--method": ["centralized", "admm"], "--projection": ["sweep", "local"],
           "--attack": ["static-fdi", "scale", "replay", "meteor"], "--detector": ["tensor", "median", "none", "x"],
           "--partners": ["all", "nearest"], "--case": ["case15da", "case_nope", "case16ci"],
           "--instance": ["keep.txt", "missing.json", "user"], "--byzantine": ["2", "0", "99", "-3"],
           "--max-iter": ["1", "40", "200", "0", "-5", "x"]}


@st.composite
def clear_arguments(draw) -> tuple[list[str], str]:
    out = draw(OUTS)
    argv = ["clear", "--case", "case15da", "--out", out]
    if draw(st.booleans()):
        argv += ["--method", "admm", "--max-iter", "600"]
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2, 3]))):
        option = draw(st.sampled_from(CLEAR_OPTIONS))
        value = draw(st.sampled_from(CHOICES[option]) if option in CHOICES else TEXT_VALUES)
        argv += [option] if option == "--bogus" or draw(st.integers(0, 9)) == 0 else [option, value]
    if draw(st.booleans()):
        argv.append("--force")
    if draw(st.integers(0, 9)) == 0:  # drop one token: an option without its value, a value without its option
        argv.pop(draw(st.integers(1, len(argv) - 1)))
    return argv, out


@FUZZ
@given(clear_arguments())
def test_fuzzed_clear_arguments_keep_the_clis_promises(case):
    argv, out = case
    check_outcome(sandbox(), out, argv)


# --- scenario files ---------------------------------------------------------------------------------------------

BASES = [
    {"name": "fuzz", "case": "case15da", "seed": 0, "start": "2016-06-21T12:00", "intervals": 1,
     "method": "centralized"},
    {"name": "fuzz", "case": "case15da", "seed": 1, "intervals": 1, "admm": {"projection": "sweep", "max_iter": 60},
     "network": {"mean_ms": 1.0}},
    {"name": "fuzz", "case": "case15da", "seed": 2, "intervals": 1, "admm": {"max_iter": 60},
     "network": {"mean_ms": 2.0, "jitter_ms": 1.0, "loss": 0.05},
     "attacks": [{"kind": "static-fdi", "agents": [2], "fields": ["P", "Q"]}], "detector": {"name": "tensor"}},
]
KEYS = ["name", "case", "seed", "start", "intervals", "method", "market.partners", "market.k_nearest",
        "market.pv_share", "market.vmin_pu", "market.vmax_pu", "admm.projection", "admm.rho", "admm.max_iter",
        "admm.relaxation", "admm.tol_primal", "network.latency", "network.mean_ms", "network.jitter_ms",
        "network.loss", "network.mode", "network.timeout_ms", "network.deadline_s", "network.bandwidth_kbps",
        "attacks.0.kind", "attacks.0.agents", "attacks.0.fields", "attacks.0.period", "attacks.0.start",
        "attacks.0.delta", "attacks.0.sigma", "detector.name", "detector.alpha", "study.latency_ms", "study.loss",
        "unknown", "admm.unknown"]


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else "inf" if value > 0 else "-inf"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    return repr(value)


def to_toml(data: dict) -> str:
    """A scenario as TOML text (scalars first, then sections and arrays of sections)."""
    lines = [f"{k} = {toml_value(v)}" for k, v in data.items() if not isinstance(v, dict | list) or
             (isinstance(v, list) and not all(isinstance(x, dict) for x in v)) or v == []]
    for key, value in data.items():
        if isinstance(value, dict):
            lines += [f"[{key}]", *(f"{k} = {toml_value(v)}" for k, v in value.items())]
        elif isinstance(value, list) and value and all(isinstance(x, dict) for x in value):
            for item in value:
                lines += [f"[[{key}]]", *(f"{k} = {toml_value(v)}" for k, v in item.items())]
    return "\n".join(lines) + "\n"


def mutate(data: dict, path: str, value, delete: bool) -> None:
    *parents, last = path.split(".")
    node = data
    for part in parents:
        if part.isdigit():
            if not isinstance(node, list) or not node:
                return
            node = node[int(part)]
        else:
            node = node.setdefault(part, [{}] if part == "attacks" else {})
            if not isinstance(node, dict | list):
                return
    if isinstance(node, dict):
        if delete:
            node.pop(last, None)
        else:
            node[last] = value


@st.composite
def scenario_texts(draw) -> bytes:
    data = json.loads(json.dumps(draw(st.sampled_from(BASES))))
    for _ in range(draw(st.sampled_from([0, 1, 1, 2, 3]))):
        mutate(data, draw(st.sampled_from(KEYS)), draw(VALUES), draw(st.integers(0, 5)) == 0)
    text = to_toml(data).encode()
    garble = draw(st.integers(0, 9))
    if garble == 0:  # a truncated file
        text = text[:draw(st.integers(0, len(text)))]
    elif garble == 1:  # a binary one
        text = bytes(draw(st.lists(st.integers(0, 255), min_size=1, max_size=64)))
    return text


@FUZZ
@given(scenario_texts(), OUTS, st.booleans())
def test_fuzzed_scenario_files_keep_the_clis_promises(text, out, force):
    work = sandbox()
    (work / "scenario.toml").write_bytes(text)
    check_outcome(work, out, ["run", "scenario.toml", "--out", out, "--quiet"] + (["--force"] if force else []))
