"""``cosim sweep --scheduler ADDRESS`` on a real Dask cluster: a scheduler and a worker started as separate
processes, the way a user points the sweep at a cluster of their own."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from cosim.cli import EXIT_OK, main

DASK = str(Path(sys.executable).with_name("dask"))
SCENARIO = """name = "cluster"
case = "case15da"
seed = 0
[admm]
projection = "sweep"
"""


def _address(scheduler_file: Path, timeout_s: float = 120.0) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if scheduler_file.is_file():
            try:
                return json.loads(scheduler_file.read_text())["address"]
            except (ValueError, KeyError):
                pass  # being written
        time.sleep(0.2)
    raise TimeoutError(f"no Dask scheduler wrote {scheduler_file} within {timeout_s} s")


def test_sweep_runs_on_a_separate_scheduler_and_worker(tmp_path):
    from dask.distributed import Client

    scheduler_file = tmp_path / "scheduler.json"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    processes = [subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                   "--scheduler-file", str(scheduler_file)], **quiet)]
    try:
        address = _address(scheduler_file)
        processes.append(subprocess.Popen([DASK, "worker", address, "--nworkers", "1", "--nthreads", "1",
                                           "--no-dashboard", "--name", "external-worker"], **quiet))
        with Client(address, timeout="60s") as client:
            client.wait_for_workers(1, timeout=120)
            assert [w["name"] for w in client.scheduler_info()["workers"].values()] == ["external-worker"]
        scenario = tmp_path / "scenario.toml"
        scenario.write_text(SCENARIO)
        out = tmp_path / "sweep"
        args = ["sweep", str(scenario), "--scheduler", address, "--latency-ms", "1,20", "--loss", "0",
                "--attacks", "none", "--out", str(out), "--quiet"]
        assert main(args) == EXIT_OK
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(timeout=60)
    table = pd.read_csv(out / "sweep.csv")
    assert table["latency_ms"].tolist() == [1.0, 20.0] and table["converged"].all()
    # the same iterates at both latencies (nothing lost), only the simulated clearing time grows
    assert table["iterations"].nunique() == 1 and table["clearing_ms"].is_monotonic_increasing
