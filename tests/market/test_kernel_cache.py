"""The compiled kernels compile once: every kernel caches its machine code, and an installed package whose
folder cannot be written still caches it -- under the user's cache folder, or, without one that can be
written, in a private folder in the temporary folder (:mod:`physical.cache_folders`) -- unless the user names
a cache folder of their own (``NUMBA_CACHE_DIR``)."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from numba.core.registry import CPUDispatcher

KERNEL_MODULES = ("physical.cascade_kernels", "market.admm.prox", "cyber.detector_kernels",
                  "cyber.forecast_kernels")
ROOT = Path(__file__).resolve().parents[2]
#: compiles (or loads) one kernel and says where its cache is and whether it was loaded from there
PROBE = """
import numpy as np
from market.admm import prox
prox._own_energy(np.ones(3), 0.5, True)  # a kernel that compiles in a second or two
stats = prox._own_energy.stats
print(stats.cache_path, sum(stats.cache_hits.values()), sum(stats.cache_misses.values()))
"""


@pytest.mark.parametrize("module", KERNEL_MODULES)
def test_every_kernel_caches_its_machine_code(module):
    kernels = [k for k in vars(importlib.import_module(module)).values() if isinstance(k, CPUDispatcher)]
    assert kernels
    uncached = [k.__name__ for k in kernels if k.stats.cache_path is None]
    assert not uncached, f"{module}: {uncached} compile again in every process (njit(cache=True))"


def installed_copy(tmp_path: Path) -> Path:
    """The libraries copied as an installed package whose directories cannot take a ``__pycache__`` (a file of
    that name stands where numba would make the folder: unwritable even for root, who ignores permissions)."""
    site = tmp_path / "site"
    for package in ("physical", "market", "cyber"):
        shutil.copytree(ROOT / package, site / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for folder in [site, *[p for p in site.rglob("*") if p.is_dir()]]:
        (folder / "__pycache__").write_text("")
    return site


def probe(site: Path, tmp_path: Path, **env: str) -> tuple[Path, int, int]:
    """Where a fresh process caches a kernel of the copy at ``site``, and whether it loaded or compiled it."""
    clean = {k: v for k, v in os.environ.items()
             if k not in ("NUMBA_CACHE_DIR", "XDG_CACHE_HOME", "PYTHONPATH", "TMPDIR")}
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=tmp_path, capture_output=True, text=True,
                          env={**clean, "PYTHONPATH": str(site), "XDG_CACHE_HOME": str(tmp_path / "xdg"),
                               "TMPDIR": str(tmp_path / "tmp"), **env})
    assert done.returncode == 0, done.stderr[-2000:]
    path, hits, misses = done.stdout.split()
    return Path(path), int(hits), int(misses)


def test_an_unwritable_package_caches_under_the_users_cache_directory(tmp_path):
    """First process compiles and writes its index under $XDG_CACHE_HOME/numba; the second loads it."""
    site = installed_copy(tmp_path)
    path, hits, misses = probe(site, tmp_path)
    assert path.is_relative_to(tmp_path / "xdg" / "numba")
    assert (hits, misses) == (0, 1)
    assert list(path.glob("prox._own_energy-*.nbi")) and list(path.glob("prox._own_energy-*.nbc"))
    assert not list(site.rglob("*.nbi"))
    assert probe(site, tmp_path)[1:] == (1, 0)


def test_a_users_own_numba_cache_dir_wins(tmp_path):
    site = installed_copy(tmp_path)
    path, _, misses = probe(site, tmp_path, NUMBA_CACHE_DIR=str(tmp_path / "mine"))
    assert path.is_relative_to(tmp_path / "mine") and misses == 1
    assert not (tmp_path / "xdg").exists()


def test_without_a_writable_user_cache_the_kernels_cache_in_a_private_temporary_folder(tmp_path):
    """No writable home either (numba alone would refuse to define the kernels): a folder of this user's own
    in the temporary folder, made private, compiled into once and loaded from by the next process."""
    site = installed_copy(tmp_path)
    (tmp_path / "home").write_text("")  # a user cache folder that cannot be made
    (tmp_path / "tmp").mkdir()
    unwritable = {"XDG_CACHE_HOME": str(tmp_path / "home" / "cache")}
    path, hits, misses = probe(site, tmp_path, **unwritable)
    assert path.parent.parent == tmp_path / "tmp" and path.parent.name.startswith("p2p-cosim-numba-")
    assert (hits, misses) == (0, 1)
    assert path.parent.stat().st_mode & 0o077 == 0
    assert probe(site, tmp_path, **unwritable)[1:] == (1, 0)


#: loads the kernels a clearing with each detector needs, one after the other, and counts what is loaded
LOADED = """
from cyber import detector_kernels, forecast_kernels
from cyber.resilient_admm import warm_up
from market.admm import prox
for detector in ("median", "tensor-paper", "tensor"):
    warm_up(detector)
    print(*(len(k.signatures) for k in (prox._balance_root, detector_kernels.ring_scales, forecast_kernels.fit_batch,
                                        detector_kernels.screen_batch, forecast_kernels.predict_batch)))
"""


def test_a_clearing_loads_only_the_kernels_its_detector_runs():
    """On a fresh install every kernel loaded is one compiled: a statistics detector needs only the market step;
    the paper's detector the rings and the fit, the tensor detector also its screening and prediction -- each
    kernel for one signature."""
    done = subprocess.run([sys.executable, "-c", LOADED], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("\n")[:3] == ["1 0 0 0 0", "1 1 1 0 0", "1 1 1 1 1"]
