"""Records -> tables: every ``record.json`` becomes one row of ``runs.csv`` and a few rows of the long
``coord_check.csv`` (column definitions: docs/record.md). Also writes ``data_info.csv``, the numeric
facts about each workload's data (e.g. ``optimal_loss`` of the synthetic token stream, ``noise_floor``
of the MLP teacher), whose best achievable loss the plots draw as a floor.

Reads JSON and writes CSV only: this module never imports torch (docs/design.md §8 layering).
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from transferbench.config import axes
from transferbench.recipes.base import arxiv_id  # pure Python: the recipe contract, no torch
from transferbench.validate import RecordError, validate_record

log = logging.getLogger(__name__)

#: Columns of runs.csv, in order (docs/record.md).
RUN_COLUMNS: list[str] = [
    "workload", "recipe", "axis", "scale", "base_scale", "width", "base_width", "width_mult", "depth", "base_depth",
    "log2_lr", "lr", "wd", "seed", "steps", "base_steps", "init_loss", "final_loss", "eval_loss", "diverged",
    "diverged_step", "failure", "top_sv",
    "log2_top_sv",
    "rel_update", "sublayer_gain", "hidden_lr_mult", "hidden_wd_mult", "tau", "lr_factor_end", "wall_time",
    "throughput", "config_hash", "package_version",
    "git_commit", "recipe_distribution", "recipe_version", "recipe_arxiv", "base_model", "run_dir",
    "trainer_fingerprint", "shared_with",
]
#: Columns of coord_check.csv (long format, docs/record.md).
COORD_COLUMNS: list[str] = [
    "workload", "recipe", "width", "base_width", "log2_lr", "wd", "seed", "step", "quantity", "value",
]
COORD_QUANTITIES: tuple[str, ...] = ("logits_rms", "hidden_rms")
#: Columns of data_info.csv: one row per (workload, numeric key of the record's ``data``).
DATA_COLUMNS: list[str] = ["workload", "key", "value"]
#: Keys of ``data`` that are the best loss any model can reach, in order of preference.
FLOOR_KEYS: tuple[str, ...] = ("best_loss", "optimal_loss", "entropy_rate", "noise_floor")

SORT_KEYS: list[str] = ["workload", "recipe", "wd", "axis", "scale", "width", "log2_lr", "seed"]
#: axis -> (the run's setting that is its value on the axis, the setting of the axis' base value)
AXIS_KEYS = {axis: (key, base) for axis, (_, base, key) in axes.KEYS.items()}
DIAGNOSTIC_KEYS: tuple[str, ...] = ("top_sv", "log2_top_sv", "rel_update", "sublayer_gain")
def arxiv_from(recipe: dict[str, Any]) -> str | None:
    """The arXiv id of a record's recipe: ``recipe["arxiv"]``, else the first id in the citation."""
    for text in (recipe.get("arxiv"), recipe.get("citation")):
        found = arxiv_id(str(text or ""))
        if found:
            return found
    return None


def base_model_from(rec: dict[str, Any]) -> str:
    """How the run's model at m = 1 differs from the shared base model (recipes/basemodel.py): the recipe's
    declaration in the record, "" for the shared one. A record from before the shared base model (no
    ``recipe.base_model``) says it through its recipe options: the μP family's zero readout and sqrt-d's (or
    ``vector_wd: none``'s) undecayed input and output, which are now the run settings readout_init and
    decay_roles."""
    recipe = rec.get("recipe")
    if isinstance(recipe, dict) and "base_model" in recipe:
        return str(recipe["base_model"] or "")
    cfg = rec["config"]
    options, name = cfg.get("recipe_options") or {}, str(cfg["recipe"]).partition("[")[0]
    old = ["readout zero init"] if options.get("readout_init") == "zero" else []
    if name == "sqrt-d" or options.get("vector_wd") == "none":
        old.append("no wd on input and output")
    return ", ".join(old)


def _num(x: Any) -> float:
    """JSON null (how the trainer writes NaN/inf) becomes NaN."""
    if x is None:
        return math.nan
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def load_record(path: Path) -> dict[str, Any]:
    """Parse and validate one record.json (validate.py); any problem raises :class:`RecordError` naming
    ``path`` and the field."""
    try:
        with open(path) as fh:
            rec = json.load(fh)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecordError(f"{path}: cannot read record: {exc}") from exc
    validate_record(rec, path)
    return rec


def record_row(rec: dict[str, Any], path: Path, axis: str = "width") -> dict[str, Any]:
    """One runs.csv row of a parsed record, on the scale ``axis`` of the sweep that listed it: ``scale`` is the
    run's value on that axis and ``base_scale`` the axis' base (a base of 0, "the run's own", is the run's)."""
    cfg, s = rec["config"], rec["summary"]
    prov = rec.get("provenance") or {}
    recipe = rec.get("recipe") or {}
    snaps = rec.get("diagnostics") or []
    # Diagnostics are the means of the last snapshot, i.e. at the end of training (docs/record.md).
    means = (snaps[-1].get("means") or {}) if snaps else {}
    width = int(cfg["width"])
    base = cfg.get("base_width", width)
    log2_lr = float(cfg["log2_lr"])
    row: dict[str, Any] = {
        "workload": str(cfg["workload"]),
        "recipe": str(cfg["recipe"]),
        "width": width,
        "base_width": int(base) if base is not None else width,
        "width_mult": _num(cfg.get("width_mult", width / int(base or width))),
        "depth": cfg.get("depth"),
        "log2_lr": log2_lr,
        "lr": _num(cfg.get("lr", 2.0**log2_lr)),
        "wd": _num(cfg.get("wd", 0.0)),
        "seed": int(cfg["seed"]),
        "steps": cfg.get("steps"),
        "init_loss": _num(s.get("init_loss")),
        "final_loss": _num(s.get("final_loss")),
        "eval_loss": _num(s.get("eval_loss")),
        "diverged": s["diverged"],  # a JSON boolean (validate.py): never bool("false")
        "diverged_step": s.get("diverged_step"),
        "failure": s.get("failure"),
        **{k: _num(means.get(k)) for k in DIAGNOSTIC_KEYS},
        **hidden_mults(rec.get("param_groups") or []),
        "tau": _num(s.get("tau")),
        "lr_factor_end": _num(s.get("lr_factor_end")),  # NaN: no per-step lr factor, or an older record
        "wall_time": _num(s.get("wall_time")),
        "throughput": _num(s.get("throughput")),
        "config_hash": rec.get("config_hash"),
        "package_version": prov.get("package_version"),
        "git_commit": prov.get("git_commit"),
        "recipe_distribution": prov.get("recipe_distribution", recipe.get("distribution")),
        "recipe_version": prov.get("recipe_version", recipe.get("version")),
        "recipe_arxiv": arxiv_from(recipe),
        "base_model": base_model_from(rec),
        "run_dir": str(Path(path).parent),
        # shared.py: the fingerprint of what the trainer did, and the run that trained it if not this one
        "trainer_fingerprint": rec.get("trainer_fingerprint"), "shared_with": rec.get("shared_with"),
        "base_depth": int(cfg.get("base_depth") or 0) or cfg.get("depth"),
        "base_steps": int(cfg.get("base_steps") or 0) or cfg.get("steps"),
    }
    if axis not in AXIS_KEYS:
        raise RecordError(f"{path}: axis {axis!r} is not one of {', '.join(AXIS_KEYS)}")
    key, base_key = AXIS_KEYS[axis]
    row.update(axis=axis, scale=row[key], base_scale=row[base_key])
    return row


def hidden_mults(groups: list[dict[str, Any]]) -> dict[str, float]:
    """The hidden matrices' peak lr and weight-decay multipliers (geometric mean over hidden groups, which
    differ only in fan_in): what the recipe applied to them, read from the record's ``param_groups``."""
    out = {}
    for key, col in (("lr_mult", "hidden_lr_mult"), ("wd_mult", "hidden_wd_mult")):
        values = [_num(g.get(key)) for g in groups if g.get("role") == "hidden"]
        ok = [v for v in values if math.isfinite(v)]
        if not ok or len(ok) < len(values):
            out[col] = math.nan
        elif any(v <= 0 for v in ok):
            out[col] = 0.0 if all(v == 0 for v in ok) else math.nan
        else:
            out[col] = math.exp(sum(math.log(v) for v in ok) / len(ok))
    return out


def coord_rows(rec: dict[str, Any]) -> list[dict[str, Any]]:
    """Long-format coordinate-check rows of a parsed record (empty if the record has none)."""
    cfg = rec["config"]
    cc = rec.get("coord_check") or {}
    steps = cc.get("step") or []
    key = {
        "workload": str(cfg["workload"]), "recipe": str(cfg["recipe"]), "width": int(cfg["width"]),
        "base_width": int(cfg.get("base_width") or cfg["width"]), "log2_lr": float(cfg["log2_lr"]),
        "wd": _num(cfg.get("wd", 0.0)), "seed": int(cfg["seed"]),
    }
    rows = []
    for q in COORD_QUANTITIES:
        for step, value in zip(steps, cc.get(q) or [], strict=False):
            rows.append({**key, "step": int(step), "quantity": q, "value": _num(value)})
    return rows


def data_rows(rec: dict[str, Any]) -> list[dict[str, Any]]:
    """The numeric entries of a record's ``data`` description."""
    data = rec.get("data") or {}
    wl = str(rec["config"]["workload"])
    return [
        {"workload": wl, "key": str(k), "value": float(v)}
        for k, v in data.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    ]


def aggregate(record_paths: Iterable[Path], out_dir: Path, skip_bad: bool = False,
              axes: dict[Path, str] | None = None) -> pd.DataFrame:
    """Read and validate every record, then write ``out_dir``/{runs,coord_check,data_info,bad_records}.csv
    and return the runs table. ``axes`` gives a record's scale axis (from its job's manifest; default width).

    A bad record raises RecordError (file and field named) before anything is written, so the tables
    of an earlier run survive; with ``skip_bad`` it is left out, logged, and listed in bad_records.csv
    (written always, header only when every record is good, so the DAG's outputs are fixed).
    """
    paths = sorted(Path(p) for p in record_paths)
    if not paths:
        raise ValueError("aggregate: no record.json files given")
    runs, coord, data, bad = [], [], [], []
    for path in paths:
        try:
            rec = load_record(path)
            row, cc, info = record_row(rec, path, (axes or {}).get(path, "width")), coord_rows(rec), data_rows(rec)
        except (KeyError, TypeError, ValueError) as exc:
            err = exc if isinstance(exc, RecordError) else RecordError(f"{path}: malformed record: {exc!r}")
            if not skip_bad:
                raise err from None
            log.warning("aggregate: skipping %s", err)
            field = str(err)[len(str(path)) + 2:].partition(": ")[0]
            bad.append({"path": str(path), "field": field, "error": str(err)})
            continue
        runs.append(row)
        coord.extend(cc)
        data.extend(info)
    table = runs_frame(runs)
    dup = table.duplicated(["workload", "recipe", "wd", "axis", "scale", "log2_lr", "seed"], keep=False)
    if dup.any():
        # Metrics average duplicates as one cell; say so rather than hide it.
        log.warning("aggregate: %d records share (workload, recipe, wd, axis, scale, log2_lr, seed): %s",
                    int(dup.sum()), ", ".join(table.loc[dup, "run_dir"].head(4)))
    failed = table[table["failure"].notna()]
    for _, r in failed.iterrows():
        log.warning("aggregate: %s failed (%s); it counts as diverged", r["run_dir"], r["failure"])
    cc = pd.DataFrame(coord, columns=COORD_COLUMNS)
    cc = cc.sort_values([*(k for k in SORT_KEYS if k in COORD_COLUMNS), "quantity", "step"],
                        kind="stable").reset_index(drop=True)
    info = pd.DataFrame(data, columns=DATA_COLUMNS).drop_duplicates(["workload", "key"])
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv_atomic(table, out_dir / "runs.csv")
    write_csv_atomic(cc, out_dir / "coord_check.csv")
    write_csv_atomic(info.sort_values(["workload", "key"]), out_dir / "data_info.csv")
    write_csv_atomic(pd.DataFrame(bad, columns=["path", "field", "error"]), out_dir / "bad_records.csv")
    return table


def runs_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """runs.csv's table of :func:`record_row` rows: its columns, in its order."""
    return pd.DataFrame(rows, columns=RUN_COLUMNS).sort_values(SORT_KEYS, kind="stable").reset_index(drop=True)


def write_csv_atomic(table: pd.DataFrame, path: Path) -> None:
    """Write a table via a temp file in the same directory and os.replace: never half a table."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        table.to_csv(tmp, index=False)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: Text columns of every table: read as strings, or "2401.10000" becomes 2401.1, a version "0.10"
#: becomes 0.1 and an all-digit config hash loses its leading zeros.
TEXT_COLUMNS: tuple[str, ...] = (
    "workload", "recipe", "config_hash", "package_version", "git_commit", "recipe_distribution",
    "recipe_version", "recipe_arxiv", "base_model", "run_dir", "trainer_fingerprint", "shared_with",
    "widths", "scales", "axis", "scope", "quantity", "key", "failure", "path",
    "field", "error",
)
FLAG_COLUMNS: tuple[str, ...] = ("diverged", "edge", "drift_edge", "wd_drift_edge")


def read_table(path: Path) -> pd.DataFrame:
    """Read any table this package writes (runs, coord_check, optima, transfer, ...) with the right
    dtypes: text columns as strings, flags as bool. Always use this, never a bare ``pd.read_csv``. A runs
    table of before the scale axes gets its axis columns (:func:`with_axis`)."""
    header = pd.read_csv(path, nrows=0).columns
    table = pd.read_csv(path, dtype={c: str for c in TEXT_COLUMNS if c in header})
    for col in FLAG_COLUMNS:
        if col in table:
            table[col] = as_flag(table[col])
    return with_axis(table) if {"width", "base_width", "log2_lr", "eval_loss"} <= set(table.columns) else table


def with_axis(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs table with its scale-axis columns: a table of before the axes (or a test's) is a width sweep,
    ``axis`` width, ``scale`` its width and ``base_scale`` its base width. Unchanged when it has them."""
    if "scale" in runs and "axis" in runs:
        return runs
    runs = runs.copy()
    runs["axis"] = "width"
    runs["scale"] = runs["width"]
    runs["base_scale"] = runs["base_width"] if "base_width" in runs else np.nan
    return runs


def axis_column(table: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """``table`` with an ``axis`` column after ``workload``: each workload's scale axis in ``runs`` (a profile
    sweeps one axis per workload)."""
    if "workload" not in table or "axis" in table:
        return table
    axes = with_axis(runs).groupby("workload")["axis"].first() if len(runs) else pd.Series(dtype=str)
    out = table.copy()
    out.insert(int(list(out.columns).index("workload")) + 1, "axis", out["workload"].map(axes).fillna("width"))
    return out


def as_flag(values: pd.Series) -> pd.Series:
    """A flag column as bool, whether it holds bools or the strings a CSV gives back ("True", "1")."""
    return values.astype(str).str.strip().str.lower().isin(("true", "1", "1.0"))


def best_loss_by_workload(data_info: pd.DataFrame | Path | None) -> dict[str, float]:
    """Best achievable loss per workload from data_info.csv (first of :data:`FLOOR_KEYS` present)."""
    if data_info is None:
        return {}
    info = read_table(data_info) if isinstance(data_info, (str, Path)) else data_info
    out: dict[str, float] = {}
    for wl, g in info.groupby("workload"):
        values = dict(zip(g["key"], g["value"], strict=True))
        for key in FLOOR_KEYS:
            if key in values and math.isfinite(values[key]):
                out[str(wl)] = float(values[key])
                break
    return out
