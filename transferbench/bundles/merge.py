"""``merge``: verified bundles of one sweep -> one set of tables, plots, board and findings, each row naming the
bundle(s) its runs came from.

Bundles combine per workload when their protocols are equal (protocol.py): different recipes, or more seeds of
the same recipe. A workload whose protocols differ is refused, naming it and the differing keys. A run that two
bundles both hold (the same :func:`protocol.run_key`) is kept once, from the first bundle given; its two results
are compared and a difference above ``tolerance`` (relative, on the held-out loss; or one diverged and the other
not) is reported in ``tables/duplicates.csv`` and on stderr, never averaged away. Writes into ``out``:

    runs/<bundle>/...record.json   the records, by bundle (the label's slug)
    tables/, plots/, leaderboard.{md,csv,html}, findings.md   as the DAG writes them, from those records
    bundles.csv                    each bundle: file, sha256, URL, label, date, devices, records kept
    tables/duplicates.csv          every run two bundles share, with both losses and whether they agree

Pure Python, no torch.
"""

from __future__ import annotations

import argparse
import logging
import re
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from transferbench.bundles.archive import BundleError, sha256_file
from transferbench.bundles.protocol import TOLERANCE, agree, differences, held_out_loss, run_key
from transferbench.bundles.verify import Verified, verify

log = logging.getLogger(__name__)

MARKER = "bundles.csv"


class MergeError(ValueError):
    """Bundles that cannot be merged; the message has one line per problem."""


def label_of(v: Verified) -> str:
    """What a board row says of a bundle: lab/machine label · date · device(s)."""
    env = v.index.get("environment") or {}
    devices = ", ".join(env.get("devices") or []) or "unknown device"
    return f"{v.index.get('label') or v.path.name} · {v.index.get('date') or 'undated'} · {devices}"


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "bundle"


def compatible(bundles: list[Verified]) -> None:
    """Refuse bundles whose sweeps of a workload differ, naming the workload and the differing keys."""
    first: dict[str, tuple[Verified, dict[str, Any]]] = {}
    problems = []
    for v in bundles:
        for w, p in sorted((v.index.get("protocols") or {}).items()):
            if w not in first:
                first[w] = (v, p)
            elif first[w][1].get("hash") != p.get("hash"):
                diff = differences(first[w][1].get("protocol"), p.get("protocol"))
                problems.append(f"workload {w}: {first[w][0].path.name} and {v.path.name} ran different sweeps "
                                f"({'; '.join(diff[:6]) or 'protocol hash'}); they cannot be merged")
    if problems:
        raise MergeError("\n".join(problems))


def merge(paths: list[Path], out: Path, tolerance: float = TOLERANCE, urls: list[str] | None = None,
          n_boot: int = 1000) -> dict[str, Any]:
    """Verify every bundle, refuse incompatible sweeps, and write the merged results into ``out``."""
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise MergeError(f"{out}: exists and is not a merge's output (no {MARKER}); choose an empty directory")
    if urls and len(urls) != len(paths):
        raise MergeError(f"--url: {len(urls)} given for {len(paths)} bundles (one per bundle, in order)")
    bundles, problems = [], []
    for p in paths:
        try:
            v = verify(Path(p))
        except BundleError as exc:
            problems.append(str(exc))
            continue
        problems += [f"{p}: {line}" for line in v.problems]
        bundles.append(v)
    if problems:
        raise MergeError("\n".join(problems))
    compatible(bundles)
    labels = [label_of(v) for v in bundles]
    for i, lab in enumerate(labels):  # two bundles with one label stay two
        if labels[:i].count(lab):
            labels[i] = f"{lab} #{labels[:i].count(lab) + 1}"
    if (out / "runs").exists():
        shutil.rmtree(out / "runs")
    kept: dict[str, tuple[int, str, dict[str, Any]]] = {}
    duplicates, written, axes, origin, n_kept = [], [], {}, {}, [0] * len(bundles)
    for i, v in enumerate(bundles):
        for name, rec in sorted(v.records.items()):
            key = run_key(rec["config"])
            if key in kept:
                j, other, first_rec = kept[key]
                ok, rel = agree(first_rec["summary"], rec["summary"], tolerance)
                la, lb = held_out_loss(first_rec["summary"]), held_out_loss(rec["summary"])
                duplicates.append({"run_key": key, "kept": f"{labels[j]}: {other}", "also": f"{labels[i]}: {name}",
                                   "eval_loss_kept": la, "eval_loss_also": lb, "rel_diff": rel, "agree": ok})
                if not ok:
                    log.warning("merge: %s and %s trained the same run with different results (%s vs %s, "
                                "relative difference %s > tolerance %s)", f"{labels[j]}: {other}",
                                f"{labels[i]}: {name}", la, lb, rel, tolerance)
                continue
            kept[key] = (i, name, rec)
            dest = out / "runs" / slug(labels[i]) / name.removeprefix("runs/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(v.members[name])
            written.append(dest)
            axes[dest] = v.axes.get(name, "width")
            origin[str(dest.parent)] = labels[i]
            n_kept[i] += 1
    profile = _profile_name(bundles)
    tables = _analyse(written, axes, origin, out, profile, n_boot)
    pd.DataFrame(duplicates, columns=["run_key", "kept", "also", "eval_loss_kept", "eval_loss_also", "rel_diff",
                                      "agree"]).to_csv(tables / "duplicates.csv", index=False)
    rows = [{"file": v.path.name, "sha256": sha256_file(v.path), "url": (urls or [""] * len(bundles))[i],
             "label": labels[i], "lab": v.index.get("label"), "date": v.index.get("date"),
             "devices": ", ".join((v.index.get("environment") or {}).get("devices") or []),
             "package_version": v.index.get("package_version"), "profile": v.index.get("profile"),
             "records": len(v.records), "kept": n_kept[i],
             "workloads": ", ".join(f"{w}:{p.get('hash')}" for w, p in sorted(v.index["protocols"].items())),
             "recipes": ", ".join(sorted({str(r['config']['recipe']) for r in v.records.values()}))}
            for i, v in enumerate(bundles)]
    pd.DataFrame(rows).to_csv(out / MARKER, index=False)
    bad = [d for d in duplicates if not d["agree"]]
    return {"bundles": rows, "runs": len(written), "duplicates": len(duplicates), "mismatches": len(bad),
            "tolerance": tolerance, "profile": profile}


def _profile_name(bundles: list[Verified]) -> str:
    names = sorted({str(v.index.get("profile") or "") for v in bundles} - {""})
    return names[0] if len(names) == 1 else "merged"


def _analyse(records: list[Path], axes: dict[Path, str], origin: dict[str, str], out: Path, profile: str,
             n_boot: int) -> Path:
    """aggregate -> metrics -> plots -> leaderboard -> findings, as the DAG's rules run them, on the merged records;
    runs.csv gains the ``bundle`` column that the board's rows cite."""
    from transferbench.aggregate import aggregate, write_csv_atomic
    from transferbench.cli_analysis import cmd_findings, cmd_leaderboard, cmd_metrics, cmd_plots
    from transferbench.config import layout

    tables = Path(layout.tables(str(out)))
    runs = aggregate(records, tables, axes=axes)
    runs["bundle"] = runs["run_dir"].astype(str).map(origin)
    write_csv_atomic(runs, tables / "runs.csv")
    ns = argparse.Namespace
    cmd_metrics(ns(tables=str(tables), n_boot=n_boot, seed=0))
    cmd_plots(ns(tables=str(tables), out_dir=layout.plots(str(out))))
    cmd_leaderboard(ns(tables=str(tables), out=layout.leaderboard(str(out)), profile=profile))
    cmd_findings(ns(tables=str(tables), leaderboard=layout.leaderboard(str(out)) + ".csv",
                    out=layout.findings(str(out)), profile=profile))
    return tables
