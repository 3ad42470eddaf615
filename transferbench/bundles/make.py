"""``bundle``: one results directory's sweep -> one self-contained, checkable archive (archive.py's format).

Members:

    bundle.json                   format, label, date, environment, protocol per workload, members' sha256
    profile.yaml                  the resolved profile the DAG ran (written by the Snakefile's `profile` rule)
    runs/<job>/job.json           every sweep job's manifest (the records it lists, the sweep's axis)
    runs/<line>_s<seed>/lr<x>/record.json   every record a manifest lists (a shared run's content, not a link)
    data/<name>/manifest.json     each prepared data set's manifest (its arrays' sha256 identify the data)
    tables/*.csv, leaderboard.csv, leaderboard.md, findings.md   derived: verify rebuilds and compares them

Every path is relative to the results directory. Pure Python, no torch.
"""

from __future__ import annotations

import datetime
import json
import platform
import socket
from pathlib import Path
from typing import Any

import yaml

from transferbench import __version__
from transferbench.bundles.archive import FORMAT, FORMAT_VERSION, BundleError, write
from transferbench.bundles.protocol import VERSION, protocol, protocol_hash
from transferbench.config import ConfigError, layout

#: The resolved profile's name in a results directory (the Snakefile's `profile` rule writes it).
PROFILE = "profile.yaml"
#: Derived files a bundle carries when they exist (nothing downstream trusts them; verify compares).
DERIVED = ("leaderboard.csv", "leaderboard.md", "findings.md")


def strip_prefix(path: str, prefix: str) -> str | None:
    """``path`` relative to the results directory the profile names (``prefix``, as the DAG spelled it in every
    manifest and in runs.csv's run_dir), or None if it does not start with it."""
    p, pre = path.replace("\\", "/"), prefix.replace("\\", "/").rstrip("/")
    if pre in ("", "."):
        return p.removeprefix("./")
    return p[len(pre) + 1:] if p.startswith(pre + "/") else None


def relative(path: str, results_dir: Path, prefix: str) -> str:
    """A path a manifest wrote (``{results_dir}/runs/...`` as the DAG spelled it, or absolute) relative to the
    results directory."""
    stripped = strip_prefix(path, prefix)
    if stripped is not None:
        return stripped
    try:  # an absolute path (a profile whose results_dir was absolute, spelled otherwise)
        if not Path(path).is_absolute():
            raise ValueError(path)
        return Path(path).resolve().relative_to(results_dir.resolve()).as_posix()
    except ValueError:
        raise BundleError(f"{path}: not under the results directory {results_dir}") from None


def load_profile(results_dir: Path, configfile: Path | None) -> dict[str, Any]:
    path = configfile or results_dir / PROFILE
    if not path.is_file():
        raise BundleError(f"{path}: no resolved profile; rerun `snakemake` (it writes {PROFILE} beside the "
                          "tables) or pass --configfile with the profile the sweep ran")
    from transferbench.config.profile import load_profile as load

    try:
        profile = load(path)  # checked against the schema and check_profile
    except (ConfigError, OSError) as exc:
        raise BundleError(f"{path}: {exc}") from None
    return profile


def environment(records: list[dict[str, Any]]) -> dict[str, Any]:
    """What the records say they ran with, and the bundling machine's own versions."""
    def uniq(key: str, where: str = "provenance") -> list[str]:
        return sorted({str((r.get(where) or {}).get(key)) for r in records if (r.get(where) or {}).get(key)})

    devices = sorted({str((r.get("provenance") or {}).get("device") or "unknown")
                      + (f" ({g['name']})" if isinstance(g := (r.get("provenance") or {}).get("gpu"), dict)
                         and g.get("name") else "") for r in records})
    recipes = sorted({(str(r["config"]["recipe"]), str((r.get("recipe") or {}).get("distribution")),
                       str((r.get("recipe") or {}).get("version"))) for r in records})
    return {"package_versions": uniq("package_version"), "torch_versions": uniq("torch_version"),
            "python_versions": uniq("python_version"), "devices": devices, "git_commits": uniq("git_commit"),
            "recipes": [{"recipe": n, "distribution": d, "version": v} for n, d, v in recipes],
            "bundled_by": {"transferbench": __version__, "python": platform.python_version(),
                           "platform": platform.platform()}}


def collect(results_dir: Path, profile: dict[str, Any]) -> tuple[dict[str, bytes], list[dict[str, Any]]]:
    """(members, parsed records) of every sweep job of the profile; a missing manifest or record is an error
    naming it (a bundle is of a finished sweep)."""
    from transferbench.config.grid import jobs

    prefix = str(profile.get("results_dir", "results"))
    out: dict[str, bytes] = {}
    records: list[dict[str, Any]] = []
    for job in jobs(profile):
        name = relative(job.manifest, results_dir, prefix)
        path = results_dir / name
        if not path.is_file():
            raise BundleError(f"{path}: missing: the sweep is not finished (run snakemake to finish it)")
        data = path.read_bytes()
        out[name] = data
        try:
            listed = [r["record"] for r in json.loads(data)["records"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise BundleError(f"{path}: not a train job's manifest ({exc})") from None
        for rec in listed:
            rname = relative(str(rec), results_dir, prefix)
            rpath = results_dir / rname
            if not rpath.is_file():
                raise BundleError(f"{rpath}: listed by {name} but missing")
            out[rname] = rpath.read_bytes()
            try:
                records.append(json.loads(out[rname]))
            except ValueError as exc:
                raise BundleError(f"{rpath}: not JSON ({exc})") from None
    return out, records


def data_manifests(results_dir: Path, profile: dict[str, Any]) -> tuple[dict[str, bytes], dict[str, Any]]:
    """The prepared data sets' manifests the workloads read: (members, name -> parsed manifest)."""
    members, parsed = {}, {}
    for name in sorted({s.get("data") for s in profile["workloads"].values() if s.get("data")}):
        path = Path(layout.data_manifest(str(results_dir), name))
        if not path.is_file():
            raise BundleError(f"{path}: missing: the data set {name!r} the sweep trained on")
        members[f"data/{name}/manifest.json"] = path.read_bytes()
        parsed[name] = json.loads(members[f"data/{name}/manifest.json"])
    return members, parsed


def bundle(results_dir: Path, out: Path, label: str | None = None, date: str | None = None,
           configfile: Path | None = None, derived: bool = True) -> dict[str, Any]:
    """Write the bundle of ``results_dir`` to ``out`` and return its index."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise BundleError(f"{results_dir}: no such results directory")
    profile = load_profile(results_dir, configfile)
    members, records = collect(results_dir, profile)
    data_members, manifests = data_manifests(results_dir, profile)
    members.update(data_members)
    members[PROFILE] = yaml.safe_dump(profile, sort_keys=True, allow_unicode=True).encode()
    if derived:
        tables = Path(layout.tables(str(results_dir)))
        for p in sorted(tables.glob("*.csv")) if tables.is_dir() else []:
            members[f"tables/{p.name}"] = p.read_bytes()
        for name in DERIVED:
            if (results_dir / name).is_file():
                members[name] = (results_dir / name).read_bytes()
    protocols = {}
    for w in profile["workloads"]:
        try:
            proto = protocol(profile, w, manifests)
        except ConfigError as exc:
            raise BundleError(f"{results_dir / PROFILE}: workloads.{w}: {exc}") from None
        protocols[w] = {"hash": protocol_hash(proto), "protocol": proto}
    index = {"format": FORMAT, "format_version": FORMAT_VERSION, "package_version": __version__,
             "label": label or socket.gethostname(),
             "date": date or datetime.datetime.now(datetime.timezone.utc).date().isoformat(),
             "profile": profile.get("profile") or "", "records": len(records), "protocol_version": VERSION,
             "environment": environment(records), "protocols": protocols}
    out.parent.mkdir(parents=True, exist_ok=True)
    return write(out, members, index)
