"""Results folders that are written whole or not at all.

Everything goes into a sibling temporary folder first; only when every file is written is it renamed into
place, so an interrupted or failed run never leaves a half-written folder behind.
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


def check_target(out: Path, force: bool) -> None:
    """Refuse to overwrite a non-empty folder unless asked to, before any work is done."""
    if out.exists() and not out.is_dir():
        raise ResultsError(f"--out {out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ResultsError(f"--out {out}: folder exists and is not empty (use --force to replace it)")


def write_results(out: Path, files: Mapping[str, str | bytes | dict | pd.DataFrame], force: bool = False) -> Path:
    """Write ``files`` (name -> text, bytes (figures), JSON-able dict or table) atomically into ``out``."""
    check_target(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
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
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
