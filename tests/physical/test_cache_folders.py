"""Cache folders without a writable home: a private folder in the temporary folder, never a shared one."""

from __future__ import annotations

import os
import tempfile

from physical.cache_folders import data_cache, private_temp_folder


def test_without_a_writable_home_the_data_cache_is_a_private_temporary_folder(tmp_path, monkeypatch):
    (tmp_path / "home").write_text("")  # a home under which no folder can be made
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("P2P_COSIM_CACHE", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    folder = data_cache()
    assert folder.parent == tmp_path / "tmp" and folder.name.startswith("p2p-cosim-")
    assert folder.stat().st_mode & 0o077 == 0
    monkeypatch.setenv("P2P_COSIM_CACHE", str(tmp_path / "mine"))
    assert data_cache() == tmp_path / "mine"  # the user's own choice wins


def test_a_temporary_folder_others_can_write_to_is_not_used(tmp_path, monkeypatch):
    """numba loads its cache with pickle: a folder of that name that others may write is refused."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    owner = str(os.getuid()) if hasattr(os, "getuid") else os.getlogin()
    planted = tmp_path / f"p2p-cosim-numba-{owner}"
    planted.mkdir()
    planted.chmod(0o777)
    assert private_temp_folder("p2p-cosim-numba") is None
    planted.chmod(0o700)
    assert private_temp_folder("p2p-cosim-numba") == planted
