"""Results folders that are written whole or not at all, and that only ever replace what this tool wrote.

Everything goes into a sibling temporary folder first; only when every file is written is it renamed into
place, so an interrupted or failed run never leaves a half-written folder behind. Every results folder holds a
manifest (:data:`MANIFEST`) listing the files the tool wrote into it. ``--force`` replaces a folder only when
the manifest accounts for everything inside it: a folder the tool did not write, or one a user has since added
files to, is refused and left untouched, and so are the places no results folder may ever replace (the working
directory and its parents, the home folder and its parents, a git repository, this project's own tree).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

#: The file that marks a results folder and lists what the tool wrote into it.
MANIFEST = ".p2p-cosim-results.json"
_PROJECT_ROOT = Path(__file__).resolve().parents[1]


class ResultsError(ValueError):
    """The results folder cannot be written where asked."""


def _jsonable(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return _jsonable(value.item())
    return value


def _protected(folder: Path) -> str | None:
    """Why ``folder`` (resolved) may never be replaced by a results folder, or None."""
    if folder == Path(folder.anchor):
        return "is the file system's root"
    cwd = Path.cwd().resolve()
    if folder == cwd or folder in cwd.parents:
        return "is the working directory or one of its parents"
    home = Path.home().resolve()
    if folder == home or folder in home.parents:
        return "is the home folder or one of its parents"
    if folder == _PROJECT_ROOT or folder in _PROJECT_ROOT.parents:
        return "holds the p2p-cosim project itself"
    if (folder / ".git").exists():
        return "is a git repository"
    return None


def _written_by_us(folder: Path) -> list[str]:
    """The entries of ``folder`` its manifest does not account for (all of them when there is no manifest)."""
    present = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if not p.is_dir() or p.is_symlink())
    try:
        listed = set(json.loads((folder / MANIFEST).read_text())["files"])
    except (OSError, ValueError, KeyError, TypeError):
        return present
    return [name for name in present if name != MANIFEST and name not in listed]


def check_target(out: Path, force: bool) -> None:
    """Refuse, before any work is done, every ``--out`` the results could not be written to or must not replace.

    A missing or empty folder is written; a non-empty one only with ``force`` and only when it is a results
    folder of this tool that holds nothing but what the tool wrote.
    """
    if out.is_symlink():
        raise ResultsError(f"--out {out}: is a symbolic link; name the folder itself")
    target = out.resolve()
    reason = _protected(target)
    if reason is not None:
        raise ResultsError(f"--out {out}: {reason}; a results folder must be a folder of its own")
    if out.exists() and not out.is_dir():
        raise ResultsError(f"--out {out}: exists and is not a folder")
    if not out.exists():
        existing = next(p for p in target.parents if p.exists())  # the root always exists
        if not existing.is_dir():
            raise ResultsError(f"--out {out}: {existing} is a file, so no folder can be made below it")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise ResultsError(f"--out {out}: cannot create folders in {existing} (permission denied)")
        return
    if not os.access(target.parent, os.W_OK | os.X_OK):
        raise ResultsError(f"--out {out}: cannot replace it, {target.parent} is not writable")
    if not any(out.iterdir()):
        return
    foreign = _written_by_us(out)
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        what = ("is not a results folder of cosim" if not (out / MANIFEST).is_file()
                else "holds files cosim did not write")
        raise ResultsError(f"--out {out}: {what} ({shown}); it is left untouched, choose another folder")
    if not force:
        raise ResultsError(f"--out {out}: folder exists and is not empty (use --force to replace it)")


def write_results(out: Path, files: Mapping[str, str | bytes | dict | pd.DataFrame], force: bool = False) -> Path:
    """Write ``files`` (name -> text, bytes (figures), JSON-able dict or table) atomically into ``out``, with the
    manifest that lets a later ``--force`` replace it."""
    check_target(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    old = None
    try:
        for name, content in files.items():
            path = tmp / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, pd.DataFrame):
                content.to_csv(path, index=False, float_format="%.10g")
            elif isinstance(content, bytes):
                path.write_bytes(content)
            elif isinstance(content, dict):
                path.write_text(json.dumps(_jsonable(content), indent=2) + "\n")
            else:
                path.write_text(content)
        (tmp / MANIFEST).write_text(json.dumps({"written_by": "p2p-cosim", "files": sorted(files)}, indent=1))
        if out.exists() and any(out.iterdir()):
            # set the previous run aside first: it is removed only once the new one is in place
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            os.replace(out, old / out.name)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:  # put the previous run back where it was
            if (old / out.name).exists() and not out.exists():
                os.replace(old / out.name, out)
            old.rmdir()
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return out
