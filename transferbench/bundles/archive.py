"""A bundle's file format: a gzip tar whose ``bundle.json`` lists the sha256 of every other member.

Writing is deterministic for the same members (sorted, fixed mtime and owner), so a bundle's own sha256 can be
cited. Reading never trusts the archive: a member whose path is absolute or climbs out (``../``), a link, a
device, a duplicate name, a truncated stream or a file that is not a gzip tar is one :class:`BundleError` naming
the file and the member, raised before anything is extracted. Pure Python.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

#: The member that describes the bundle (its format, environment, protocols and the members' sha256).
INDEX = "bundle.json"
FORMAT = "transferbench-bundle"
#: Bumped when a reader of this version could not read what a newer writer writes.
FORMAT_VERSION = 1
#: A fixed mtime for every member: the same sweep bundles to the same bytes.
MTIME = 0


class BundleError(ValueError):
    """A bundle that cannot be read; the message names the file and, where there is one, the member."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write(path: Path, members: dict[str, bytes], index: dict[str, Any]) -> dict[str, Any]:
    """Write ``members`` (name -> bytes) and the index, with every member's sha256 and size added to it, as a
    gzip tar at ``path`` (via a temporary file: never half a bundle); return that index."""
    index = {**index, "members": {n: {"sha256": sha256_bytes(b), "bytes": len(b)} for n, b in sorted(members.items())}}
    tmp = path.with_name(f".{path.name}.tmp")
    # no file name in the gzip header and a fixed mtime: the bytes depend on the members only; level 6 is gzip's
    # usual trade (level 9 took twice as long for a few per cent)
    with open(tmp, "wb") as raw, \
            gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=MTIME, compresslevel=6) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in [(INDEX, json.dumps(index, indent=1, sort_keys=True).encode()), *sorted(members.items())]:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), MTIME, 0o644
            tar.addfile(info, io.BytesIO(data))
    tmp.replace(path)
    return index


def _safe_name(name: str, where: str) -> str:
    p = PurePosixPath(name)
    if not name or p.is_absolute() or ".." in p.parts or "\\" in name or name.startswith("~"):
        raise BundleError(f"{where}: member {name!r} has a path that escapes the archive; refusing to read it")
    return str(p)


def members(path: Path) -> Iterator[tuple[str, bytes]]:
    """Every regular member of the bundle at ``path`` as (name, bytes), in archive order, after checking it is
    safe (see the module docstring). Raises BundleError naming the file and the problem."""
    where = str(path)
    if not Path(path).is_file():
        raise BundleError(f"{where}: no such file")
    seen: set[str] = set()
    try:
        with tarfile.open(path, mode="r:gz") as tar:
            for info in tar:
                name = _safe_name(info.name, where)
                if info.isdir():
                    continue
                if not info.isfile():
                    raise BundleError(f"{where}: member {name!r} is a link or a device, not a file; refusing it")
                if name in seen:
                    raise BundleError(f"{where}: member {name!r} appears twice")
                seen.add(name)
                fh = tar.extractfile(info)
                data = fh.read() if fh is not None else b""
                if len(data) != info.size:
                    raise BundleError(f"{where}: member {name!r} is truncated")
                yield name, data
    except BundleError:
        raise
    except (tarfile.ReadError, gzip.BadGzipFile) as exc:
        if "truncat" in str(exc).lower() or "unexpected end" in str(exc).lower():
            raise BundleError(f"{where}: the archive is truncated or corrupt ({exc})") from None
        raise BundleError(f"{where}: not a transferbench bundle (not a gzip tar archive: {exc})") from None
    except (EOFError, zlib.error, OSError) as exc:
        raise BundleError(f"{where}: the archive is truncated or corrupt ({type(exc).__name__}: {exc})") from None


def read(path: Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    """(index, members without the index) of a bundle; raises BundleError if it has no readable index."""
    found = dict(members(path))
    if INDEX not in found:
        raise BundleError(f"{path}: not a transferbench bundle (no {INDEX} member; make one with "
                          "`python -m transferbench bundle RESULTS_DIR -o FILE.tar.gz`)")
    try:
        index = json.loads(found.pop(INDEX))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path}: {INDEX}: not JSON ({exc})") from None
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise BundleError(f"{path}: not a transferbench bundle ({INDEX} does not say format: {FORMAT})")
    if not isinstance(index.get("members"), dict):
        raise BundleError(f"{path}: {INDEX}: no members table")
    return index, found
