"""Where the compiled kernels keep their machine code, so that they compile once, not in every process.

numba caches a ``cache=True`` kernel beside its source (the package's ``__pycache__``) or, when the package's
folder cannot be written (an installed, read-only site-packages), under the user's cache folder
(``$XDG_CACHE_HOME/numba``, ``~/.cache/numba``); a user's ``NUMBA_CACHE_DIR`` wins over both. When neither can
be written -- a service account without a home, a container run under an arbitrary user id -- numba refuses
to define the kernels at all ("cannot cache function ...: no locator available"), and nothing runs. Then the
kernels cache in a folder of this user's own in the temporary folder (measured: the first clearing of a
process compiles for over a minute on a busy 2-core machine, a cached one loads in a second or two).

Every kernel module calls :func:`ensure_kernel_cache` before it defines its kernels (numba picks a kernel's
cache folder when it is defined).
"""

from __future__ import annotations

import getpass
import os
import stat
import tempfile
from pathlib import Path

from numba.core import config
from numba.misc.appdirs import AppDirs


def _writable(folder: Path) -> bool:
    """Whether ``folder`` exists or can be made, and takes a file (numba's own test of a cache folder)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError:
        return False
    return True


def private_temp_cache() -> Path | None:
    """This user's kernel cache in the temporary folder, made private (0700); ``None`` when it cannot be made or
    is not this user's alone (numba loads its cache with pickle: nobody else may write there)."""
    owner = str(os.getuid()) if hasattr(os, "getuid") else getpass.getuser()
    folder = Path(tempfile.gettempdir()) / f"p2p-cosim-numba-{owner}"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        info = folder.lstat()
    except OSError:
        return None
    others_write = info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    if not stat.S_ISDIR(info.st_mode) or others_write or (hasattr(os, "getuid") and info.st_uid != os.getuid()):
        return None
    return folder if _writable(folder) else None


def ensure_kernel_cache(source: str) -> None:
    """Make sure the kernels of the module at ``source`` (its ``__file__``) have a cache folder: numba's own
    choice where it has one, else :func:`private_temp_cache` (set for this process and the processes it
    starts). A user's ``NUMBA_CACHE_DIR`` is left alone."""
    if config.CACHE_DIR or os.environ.get("NUMBA_CACHE_DIR"):
        return
    user_wide = Path(AppDirs(appname="numba", appauthor=False).user_cache_dir)
    if _writable(Path(source).parent / "__pycache__") or _writable(user_wide):
        return
    fallback = private_temp_cache()
    if fallback is not None:
        config.CACHE_DIR = os.environ["NUMBA_CACHE_DIR"] = str(fallback)
