"""The run record (docs/record.md): provenance, JSON-safe conversion and atomic writes."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import tempfile
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from transferbench import __version__

#: 2: recipe options with their defaults are in the config (and hash); ``applied`` and ``summary.failure``.
SCHEMA_VERSION = 2
RECORD_NAME = "record.json"


def json_safe(obj: Any) -> Any:
    """Non-finite floats become null (JSON has no NaN); tuples become lists."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):  # dicts and the RunConfig
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    """Write via a temp file in the same directory and os.replace: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        # mkstemp creates 0600; a record is as readable as the CSV tables: 0644 minus the umask (the
        # only portable way to read the umask is to set it, so it is put straight back).
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o644 & ~umask)
        with os.fdopen(fd, "w") as fh:
            json.dump(json_safe(payload), fh, indent=1, allow_nan=False)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_record(path: Path) -> dict[str, Any]:
    with open(path) as fh:
        return json.load(fh)


@lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the package's checkout (suffix '-dirty' if modified), or None outside git."""
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no", "--", "."],
            capture_output=True, text=True, timeout=10,
        )
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def provenance(device: str, threads: int, recipe_meta: dict[str, Any]) -> dict[str, Any]:
    import torch

    return {
        "package_version": __version__,
        "git_commit": git_commit(),
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "device": device,
        "threads": threads,
        "recipe_distribution": recipe_meta.get("distribution"),
        "recipe_version": recipe_meta.get("version"),
    }
