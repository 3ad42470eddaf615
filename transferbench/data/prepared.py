"""Prepared data on disk: the manifest that describes it, and its verification before training.

A prepared data set is a directory with flat arrays and ``manifest.json``: what the data came from
(files and their sha256, or a Hugging Face ``datasets`` name, config, split and revision, with the
loaded dataset's fingerprint), how it was made (tokenizer and its sha256; image normalisation), the
counts, and the sha256 of every array file. ``load_manifest`` checks every file against it before a
run starts, so a missing, truncated or altered file fails with a message that names the file, never
a run that trained on something else. numpy only.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

MANIFEST_NAME = "manifest.json"
#: The manifest's own format version.
FORMAT = 1


class DataError(ValueError):
    """Prepared data that are missing, corrupt or do not fit the run: the message names the file."""


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


@lru_cache(maxsize=64)
def _verified(path: str, size: int, mtime_ns: int, expected: str) -> bool:
    # Keyed by size and mtime too: a sweep line verifies each file once, and a changed file again.
    return sha256_file(Path(path)) == expected


def write_manifest(directory: Path, manifest: dict[str, Any]) -> Path:
    """Add the sha256 and size of every file in ``manifest["files"]`` and write manifest.json (last, so a
    directory with a manifest is a finished one)."""
    from transferbench.record import write_json_atomic

    files = {name: {"sha256": sha256_file(directory / name), "bytes": (directory / name).stat().st_size}
             for name in manifest["files"]}
    out = directory / MANIFEST_NAME
    write_json_atomic(out, {"format": FORMAT, **manifest, "files": files})
    return out


def load_manifest(path: str | Path, kind: str) -> dict[str, Any]:
    """The manifest at ``path`` (a manifest.json or its directory), every file verified; DataError otherwise."""
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST_NAME
    if not path.is_file():
        raise DataError(f"data_path: {path} does not exist (run the prepare_data stage: "
                        "`transferbench prepare-data`)")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise DataError(f"{path}: not a transferbench data manifest of format {FORMAT}")
    if manifest.get("kind") != kind:
        raise DataError(f"{path}: holds {manifest.get('kind')!r} data, this source reads {kind!r}")
    for name, meta in (manifest.get("files") or {}).items():
        f = path.parent / name
        if not f.is_file():
            raise DataError(f"{f}: missing (listed in {path})")
        st = f.stat()
        if st.st_size != meta.get("bytes"):
            raise DataError(f"{f}: {st.st_size} bytes, the manifest {path} says {meta.get('bytes')}")
        if not _verified(str(f), st.st_size, st.st_mtime_ns, str(meta.get("sha256"))):
            raise DataError(f"{f}: sha256 does not match the manifest {path} (the file changed after "
                            "prepare-data; prepare it again)")
    manifest["path"] = str(path)
    manifest["manifest_sha256"] = sha256_file(path)
    return manifest


def memmap(manifest: dict[str, Any], name: str) -> np.ndarray:
    """A read-only memory map of a flat array file of the manifest."""
    meta = manifest["arrays"][name]
    return np.memmap(Path(manifest["path"]).parent / meta["file"], dtype=np.dtype(meta["dtype"]), mode="r",
                     shape=tuple(meta["shape"]))


def manifest_of(cfg: Any) -> str:
    """The prepared data set's manifest.json of a run config (its ``data_path``); DataError if it has none."""
    if not cfg.data_path:
        raise DataError(f"data_path: data_source {cfg.data_source!r} reads a prepared data set; give its "
                        "manifest.json (transferbench prepare-data)")
    return str(cfg.data_path)
