"""Where the project keeps what it computes once per install -- the numba kernels' machine code and the
SimBench profiles read from CSV -- so that later processes load instead of recomputing.

numba caches a ``cache=True`` kernel beside its source (the package's ``__pycache__``) or, when the package's
folder cannot be written (an installed, read-only site-packages), under the user's cache folder
(``$XDG_CACHE_HOME/numba``, ``~/.cache/numba``); a user's ``NUMBA_CACHE_DIR`` wins over both. When neither can
be written -- a service account without a home, a container run under an arbitrary user id -- numba refuses
to define the kernels at all ("cannot cache function ...: no locator available"), and nothing runs. The
profiles are cached in ``~/.cache/p2p-cosim`` (or ``P2P_COSIM_CACHE``). Without a writable home both go to a
folder of this user's own in the temporary folder (:func:`private_temp_folder`).
"""

from __future__ import annotations

import getpass
import os
import stat
import tempfile
from pathlib import Path


def writable(folder: Path) -> bool:
    """Whether ``folder`` exists or can be made, and takes a file (numba's own test of a cache folder)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError:
        return False
    return True


def private_temp_folder(name: str) -> Path | None:
    """This user's folder ``name-<uid>`` in the temporary folder, made private (0700); ``None`` when it cannot
    be made or is not this user's alone (numba loads its cache with pickle: nobody else may write there)."""
    owner = str(os.getuid()) if hasattr(os, "getuid") else getpass.getuser()
    folder = Path(tempfile.gettempdir()) / f"{name}-{owner}"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        info = folder.lstat()
    except OSError:
        return None
    others_write = info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    if not stat.S_ISDIR(info.st_mode) or others_write or (hasattr(os, "getuid") and info.st_uid != os.getuid()):
        return None
    return folder if writable(folder) else None


def ensure_kernel_cache(source: str) -> None:
    """Make sure the kernels of the module at ``source`` (its ``__file__``) have a cache folder: numba's own
    choice where it has one, else :func:`private_temp_folder` (set for this process and the processes it
    starts). A user's ``NUMBA_CACHE_DIR`` is left alone. Every kernel module calls it before it defines its
    kernels (numba picks a kernel's cache folder when it is defined)."""
    from numba.core import config  # here: the data cache's users need no numba
    from numba.misc.appdirs import AppDirs

    if config.CACHE_DIR or os.environ.get("NUMBA_CACHE_DIR"):
        return
    user_wide = Path(AppDirs(appname="numba", appauthor=False).user_cache_dir)
    if writable(Path(source).parent / "__pycache__") or writable(user_wide):
        return
    fallback = private_temp_folder("p2p-cosim-numba")
    if fallback is not None:
        config.CACHE_DIR = os.environ["NUMBA_CACHE_DIR"] = str(fallback)


def data_cache() -> Path:
    """The folder for the project's own cached data: ``P2P_COSIM_CACHE`` when set (the user's choice, used as
    given), else ``~/.cache/p2p-cosim`` when it can be written, else :func:`private_temp_folder` when that can be
    made (else ``~/.cache/p2p-cosim`` still: what is cached there is then recomputed by every process)."""
    if "P2P_COSIM_CACHE" in os.environ:
        return Path(os.environ["P2P_COSIM_CACHE"])
    home = Path.home() / ".cache" / "p2p-cosim"
    return home if writable(home) else private_temp_folder("p2p-cosim") or home
