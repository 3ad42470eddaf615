"""``verify``: is a bundle intact and what it says it is? Every problem is one line naming the member.

Checked, in order (a bundle that cannot be read at all is one BundleError instead):
1. the format and the package version: a bundle written by a newer transferbench is refused (upgrade);
2. every member's sha256 and size against bundle.json, and no member missing from it or from the archive;
3. the resolved profile gives the protocols bundle.json states (protocol.py);
4. every record: the record validator (validate.py: fields, types, ``config_hash`` is that of its config),
   its config resolves to itself here (where its recipe is installed), its workload, recipe and seed are the
   profile's, and its config is the protocol's (protocol.run_problems);
5. every record a job manifest lists is in the bundle and every bundled record is listed;
6. the runs table rebuilt from the records (aggregate.py) equals the bundle's ``tables/runs.csv``, if it has one,
   and, for a bundle this version of transferbench wrote, the metric tables recomputed from it (metrics.py, the
   DAG's bootstrap) equal the bundle's (a bundle of another version was scored by other code: its metric tables
   are not compared; merge recomputes them anyway).

Any edit that is not carried through every one of these (a record's ``eval_loss`` changed by hand, with or
without its sha256 updated) fails and names the record. A bundle is not signed: someone who rewrites a record,
its hash and the derived tables consistently is caught only by retraining runs (rerun.py, ``verify --rerun``).
Pure Python, no torch.
"""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from transferbench import __version__
from transferbench.bundles.archive import FORMAT_VERSION, BundleError, read, sha256_bytes
from transferbench.bundles.protocol import VERSION, differences, protocol, protocol_hash, run_problems

RECORD = re.compile(r"^runs/.+/record\.json$")
MANIFEST = re.compile(r"^runs/.+/job\.json$")
#: runs.csv columns compared between the bundle's table and the one rebuilt from its records.
COMPARED = ("config_hash", "workload", "recipe", "seed", "log2_lr", "wd", "scale", "eval_loss", "final_loss",
            "diverged", "init_loss", "top_sv")


@dataclass
class Verified:
    """A read bundle: its index, its parsed records (member name -> record), their axes, and its problems."""

    path: Path
    index: dict[str, Any]
    members: dict[str, bytes]
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    axes: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    #: recipes whose records were checked by their config hash only (not installed here to resolve them)
    unresolved: set[str] = field(default_factory=set)

    @property
    def ok(self) -> bool:
        return not self.problems


def version_tuple(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", str(v).split("+")[0])[:3])


def verify(path: Path) -> Verified:
    """Read and check the bundle at ``path``; raises BundleError only when it cannot be read at all."""
    path = Path(path)
    index, members = read(path)
    v = Verified(path, index, members)
    fv = index.get("format_version")
    if not isinstance(fv, int) or fv > FORMAT_VERSION:
        raise BundleError(f"{path}: bundle format {fv!r} is newer than this transferbench reads ({FORMAT_VERSION}); "
                          "upgrade transferbench")
    made = str(index.get("package_version") or "")
    if version_tuple(made) > version_tuple(__version__):
        raise BundleError(f"{path}: made by transferbench {made}, newer than this one ({__version__}); upgrade "
                          "transferbench (pip install -U transferbench) to verify or merge it")
    _members(v)
    profile = _profile(v)
    _records(v, profile)
    # the results directory as the profile names it: the prefix of every path the manifests and runs.csv hold
    prefix = str((profile or {}).get("results_dir", "results"))
    _manifests(v, prefix)
    if not v.problems:  # the table comparison reads the records: only when each of them is sound
        _tables(v, prefix)
    return v


def _members(v: Verified) -> None:
    listed = v.index["members"]
    for name in sorted(set(v.members) - set(listed)):
        v.problems.append(f"{name}: in the archive but not in bundle.json's members (added after bundling)")
    for name in sorted(set(listed) - set(v.members)):
        v.problems.append(f"{name}: listed in bundle.json but missing from the archive")
    for name in sorted(set(listed) & set(v.members)):
        want = listed[name] if isinstance(listed[name], dict) else {}
        if sha256_bytes(v.members[name]) != want.get("sha256"):
            v.problems.append(f"{_where(name)}: sha256 differs from bundle.json (edited or corrupted after bundling)")


def _where(name: str) -> str:
    """A member as the user knows it: a record by its run directory."""
    return name[: -len("/record.json")] if RECORD.match(name) else name


def _profile(v: Verified) -> dict[str, Any] | None:
    from transferbench.config import ConfigError

    raw = v.members.get("profile.yaml")
    if raw is None:
        v.problems.append("profile.yaml: missing (a bundle carries the profile its sweep ran)")
        return None
    try:
        profile = yaml.safe_load(raw)
        manifests = {n.split("/")[1]: json.loads(b) for n, b in v.members.items()
                     if n.startswith("data/") and n.endswith("/manifest.json")}
        stated = v.index.get("protocols") or {}
        pv = v.index.get("protocol_version", 1)  # the first bundles did not state it
        if not isinstance(pv, int) or pv > VERSION:
            v.problems.append(f"bundle.json: protocol_version {pv!r} is not one this transferbench knows ({VERSION})")
        if pv != VERSION:  # made by an older definition: its protocols stand as stated (records are checked on them)
            return profile
        for w in profile["workloads"]:
            proto = protocol(profile, w, manifests)
            if w not in stated:
                v.problems.append(f"bundle.json: no protocol for workload {w}")
            elif stated[w].get("hash") != protocol_hash(proto) or stated[w].get("protocol") != proto:
                diff = "; ".join(differences(stated[w].get("protocol"), proto)[:4]) or "its hash"
                v.problems.append(f"profile.yaml: workload {w}: its protocol is not bundle.json's ({diff})")
        return profile
    except (ConfigError, KeyError, TypeError, ValueError, yaml.YAMLError) as exc:
        v.problems.append(f"profile.yaml: cannot resolve it here: {exc}")
        return None


def _records(v: Verified, profile: dict[str, Any] | None) -> None:
    from transferbench.validate import RecordError, validate_record

    protocols = {w: p.get("protocol") for w, p in (v.index.get("protocols") or {}).items() if isinstance(p, dict)}
    for name in sorted(n for n in v.members if RECORD.match(n)):
        where = _where(name)
        try:
            rec = json.loads(v.members[name])
            validate_record(rec, where)
        except (UnicodeDecodeError, ValueError) as exc:
            v.problems.append(str(exc) if isinstance(exc, RecordError) else f"{where}: not JSON ({exc})")
            continue
        cfg = rec["config"]
        w = str(cfg["workload"])
        if w not in protocols:
            v.problems.append(f"{where}: workload {w!r} is not one of the bundle's sweeps ({', '.join(protocols)})")
            continue
        v.problems += [f"{where}: {p}" for p in run_problems(cfg, protocols[w])]
        v.problems += [f"{where}: {p}" for p in _resolves(cfg, rec["config_hash"], v)]
        if profile is not None and w in profile.get("workloads", {}):
            spec = profile["workloads"][w]
            recipes = [str(r) for r in spec.get("recipes") or profile.get("recipes") or []]
            seeds = [int(s) for s in spec.get("seeds") or profile.get("seeds") or []]
            if recipes and str(cfg["recipe"]) not in recipes and not _instance_of(str(cfg["recipe"]), recipes):
                v.problems.append(f"{where}: recipe {cfg['recipe']!r} is not in the profile's recipes for {w}")
            if seeds and int(cfg["seed"]) not in seeds:
                v.problems.append(f"{where}: seed {cfg['seed']} is not in the profile's seeds {seeds}")
        v.records[name] = rec


#: Config keys resolution derives (config/run.py): given back to it, they would be checked, not recomputed.
DERIVED_KEYS = ("lr", "width_mult", "depth_mult", "steps_mult")


def _resolves(cfg: dict[str, Any], stated: str, v: Verified) -> list[str]:
    """The record's config is what this transferbench resolves from it (no key missing, none added, every value
    in range) with the config hash the record states. A recipe that is not installed here (another group's
    plugin) cannot be resolved: its records are checked by their hash alone, and counted."""
    from transferbench.config import ConfigError, config_hash, resolve_run_config
    from transferbench.recipes import RecipeError
    from transferbench.recipes.registry import entry

    try:
        entry(str(cfg["recipe"]))
    except RecipeError:
        v.unresolved.add(str(cfg["recipe"]))
        return []
    try:
        resolved = resolve_run_config({k: x for k, x in cfg.items() if k not in DERIVED_KEYS}).as_dict()
    except (ConfigError, RecipeError, ValueError) as exc:
        return [f"config does not resolve here: {exc}"]
    if config_hash(resolved) != stated:
        diff = sorted(k for k in set(resolved) | set(cfg) if resolved.get(k) != cfg.get(k))
        return [f"config is not what it resolves to (config hash {config_hash(resolved)}, the record says {stated}; "
                f"differs in {', '.join(diff[:5]) or 'nothing shown'})"]
    return []


def _instance_of(recipe: str, listed: list[str]) -> bool:
    """A profile lists ``wd-power[p=0.5]``; the record names its canonical form (recipes/instance.py)."""
    from transferbench.recipes import instance

    try:
        return recipe in {instance.canonical(r) for r in listed}
    except instance.InstanceError:
        return False


def _relative(path: str, prefix: str) -> str:
    """A path as the DAG wrote it (``{results_dir}/runs/...``) as the member name it has in the bundle."""
    from transferbench.bundles.make import strip_prefix

    stripped = strip_prefix(path, prefix)
    return stripped if stripped is not None else path.replace("\\", "/")


def _manifests(v: Verified, prefix: str) -> None:
    listed: dict[str, str] = {}
    for name in sorted(n for n in v.members if MANIFEST.match(n)):
        try:
            doc = json.loads(v.members[name])
            axis = str((doc.get("line") or {}).get("axis") or "width")
            for r in doc["records"]:
                listed[_relative(str(r["record"]), prefix)] = axis
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            v.problems.append(f"{name}: not a train job's manifest ({exc})")
    for name in sorted(set(listed) - set(v.members)):
        v.problems.append(f"{_where(name)}: listed by a job manifest but its record is not in the bundle")
    for name in sorted(n for n in v.members if RECORD.match(n) and n not in listed):
        v.problems.append(f"{_where(name)}: a record no job manifest lists")
    v.axes = listed


def _tables(v: Verified, prefix: str) -> None:
    """Rebuild runs.csv from the records and compare it with the bundled one, row by row (by run directory)."""
    import pandas as pd

    rebuilt = runs_table(v)
    raw = v.members.get("tables/runs.csv")
    if raw is None:
        return
    import io

    given = pd.read_csv(io.BytesIO(raw))
    if "run_dir" not in given:
        v.problems.append("tables/runs.csv: no run_dir column: not a runs table")
        return
    given = given.assign(run=given["run_dir"].astype(str).map(lambda d: _relative(d, prefix))).set_index("run")
    for run in sorted(set(rebuilt.index) - set(given.index)):
        v.problems.append(f"{run}: in the records but not in tables/runs.csv")
    for run in sorted(set(given.index) - set(rebuilt.index)):
        v.problems.append(f"{run}: in tables/runs.csv but no record of it is in the bundle")
    for run in sorted(set(given.index) & set(rebuilt.index)):
        for col in (c for c in COMPARED if c in given and c in rebuilt):
            a, b = given.at[run, col], rebuilt.at[run, col]
            if not _same(a, b):
                v.problems.append(f"{run}: tables/runs.csv says {col} {a}, its record says {b}")
    if not v.problems and str(v.index.get("package_version")) == __version__:
        _metric_tables(v, rebuilt)


def _same(a: Any, b: Any) -> bool:
    import numpy as np
    import pandas as pd

    if (pd.isna(a) and pd.isna(b)) or str(a) == str(b):
        return True
    try:
        return bool(np.isclose(float(a), float(b), rtol=1e-9, atol=1e-12))
    except (TypeError, ValueError):
        return False


#: Metric tables verify recomputes and compares, with the columns that name a row.
METRIC_TABLES = {"optima": ("workload", "recipe", "wd", "scale"), "transfer": ("workload", "recipe", "wd"),
                 "regime": ("workload", "wd")}


def _metric_tables(v: Verified, rebuilt: Any) -> None:
    """Recompute the metric tables from the rebuilt runs table and compare those the bundle carries."""
    import io

    import pandas as pd

    from transferbench.metrics import write_metrics

    wanted = [n for n in METRIC_TABLES if f"tables/{n}.csv" in v.members]
    if not wanted:
        return
    with tempfile.TemporaryDirectory(prefix="tb-verify-") as tmp:
        write_metrics(rebuilt.reset_index(drop=True), Path(tmp))
        ours = {n: pd.read_csv(Path(tmp) / f"{n}.csv") for n in wanted}
    for name in wanted:
        given, mine = pd.read_csv(io.BytesIO(v.members[f"tables/{name}.csv"])), ours[name]
        keys = [k for k in METRIC_TABLES[name] if k in given and k in mine]
        if len(given) != len(mine) or list(given.columns) != list(mine.columns):
            v.problems.append(f"tables/{name}.csv: {len(given)} rows, {len(given.columns)} columns; recomputed from "
                              f"the records: {len(mine)} rows, {len(mine.columns)} columns")
            continue
        given, mine = (t.sort_values(keys, kind="stable").reset_index(drop=True) for t in (given, mine))
        for i in range(len(given)):
            bad = [c for c in given.columns if not _same(given.at[i, c], mine.at[i, c])]
            if bad:
                row = ", ".join(f"{k} {given.at[i, k]}" for k in keys)
                v.problems.append(f"tables/{name}.csv: row {row}: {bad[0]} is {given.at[i, bad[0]]}, recomputed "
                                  f"from the records {mine.at[i, bad[0]]}" + (f" (and {len(bad) - 1} more columns)"
                                                                              if len(bad) > 1 else ""))


def runs_table(v: Verified) -> Any:
    """runs.csv rebuilt from the bundle's parsed, validated records (aggregate.py's rows, in memory), indexed by
    the run directory relative to the results directory."""
    from transferbench.aggregate import record_row, runs_frame

    rows = [record_row(rec, Path(name), v.axes.get(name, "width")) for name, rec in v.records.items()]
    table = runs_frame(rows)
    return table.set_index(table["run_dir"].rename("run"))
