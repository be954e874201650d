"""How much longer the first clearing after an install takes than the later ones: the compiled kernels' cost.

    python benchmarks/first_run.py [--pairs 3] [--kernels] [-- CLEAR OPTIONS]

Runs ``cosim clear`` (default: case85, ADMM, tensor detector, static FDI by bus 7) as a new process, in
pairs: first with an empty kernel cache (``NUMBA_CACHE_DIR`` a new temporary folder: the kernels compile, as
after an install), then again on the cache that run filled (the kernels load). Prints per pair the wall and
CPU seconds of both runs and their ratio first/later, then the medians. The ratio of CPU seconds is the
steadier one on a busy machine: a compile is CPU work, and the wall time of both runs stretches with the
other processes' load. ``--kernels`` also prints, from one process with an empty cache, the CPU seconds each
kernel of the clearing's detector takes to compile and how many signatures it compiles (with the kernels
and numba library functions it compiles first, and its own).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT = ["--case", "case85", "--method", "admm", "--detector", "tensor", "--attack", "static-fdi",
           "--byzantine", "7"]

#: one process: compile the kernels a resilient clearing with detector argv[1] loads, and print per kernel its
#: signatures and CPU seconds (numba's compile events nest: a kernel's time holds what it compiles first)
KERNEL_PROFILE = """
import sys, time
from collections import defaultdict
from numba.core import event

stack, per, library = [], defaultdict(lambda: [0, 0.0, 0.0]), [0.0]

class Timer(event.Listener):
    def on_start(self, ev):
        stack.append([time.process_time(), 0.0])

    def on_end(self, ev):
        start, inner = stack.pop()
        spent = time.process_time() - start
        if stack:
            stack[-1][1] += spent
        func = ev.data["dispatcher"].py_func
        name = f"{func.__module__}.{func.__qualname__}"
        if name.startswith(("cyber.", "market.", "physical.")):
            per[name][0] += 1
            per[name][1] += spent
            per[name][2] += spent - inner
        else:
            library[0] += spent - inner

event.register("numba:compile", Timer())
from cyber.resilient_admm import warm_up
start = time.process_time()
warm_up(sys.argv[1])
total = time.process_time() - start
print(f"  {'kernel':40s} {'signatures':>10s} {'with callees':>12s} {'own':>6s}  (CPU s)")
for name, (count, spent, own) in sorted(per.items()):
    print(f"  {name:40s} {count:10d} {spent:12.2f} {own:6.2f}")
print(f"  {'numba library functions':40s} {'':10s} {'':12s} {library[0]:6.2f}")
print(f"  {'all (loading the kernels)':40s} {'':10s} {total:12.2f}")
"""


def run(argv: list[str], cache: Path, out: Path) -> tuple[float, float]:
    """Wall and CPU seconds (the process's user + system) of one ``cosim clear``."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    before = os.times()
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "cosim.cli", "clear", *argv, "--out", str(out), "--force",
                           "--quiet"], env=env)
    if done.returncode not in (0, 3):  # 3: the ADMM stopped unconverged, a result all the same
        sys.exit(f"cosim clear failed (exit code {done.returncode})")
    wall = time.perf_counter() - start
    after = os.times()
    return wall, (after.children_user - before.children_user) + (after.children_system - before.children_system)


def detector_of(argv: list[str]) -> str:
    return argv[argv.index("--detector") + 1] if "--detector" in argv else "none"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=3, help="first/later pairs (default 3)")
    parser.add_argument("--kernels", action="store_true", help="also the compile time of each kernel")
    parser.add_argument("clear", nargs="*", help="cosim clear options (after --; --out is added)")
    args = parser.parse_args()
    argv = args.clear or DEFAULT
    print(f"cosim clear {' '.join(argv)}; load average {os.getloadavg()[0]:.1f}")
    walls, cpus = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for pair in range(args.pairs):
            cache = Path(tmp) / f"cache{pair}"
            first = run(argv, cache, Path(tmp) / "out")
            later = run(argv, cache, Path(tmp) / "out")
            walls.append(first[0] / later[0])
            cpus.append(first[1] / later[1])
            print(f"pair {pair + 1}: first {first[0]:.1f} s wall, {first[1]:.1f} s CPU; later {later[0]:.1f} s wall,"
                  f" {later[1]:.1f} s CPU; first/later {walls[-1]:.2f} wall, {cpus[-1]:.2f} CPU")
        print(f"median first/later: {statistics.median(walls):.2f} wall, {statistics.median(cpus):.2f} CPU "
              f"(load average {os.getloadavg()[0]:.1f})")
        if args.kernels:
            print(f"compiling the kernels of detector {detector_of(argv)} with an empty cache:")
            env = {**os.environ, "NUMBA_CACHE_DIR": str(Path(tmp) / "profile")}
            subprocess.run([sys.executable, "-c", KERNEL_PROFILE, detector_of(argv)], env=env, check=True)


if __name__ == "__main__":
    main()
