"""Validation of one parsed record.json before it becomes a row of the runs table (docs/record.md).

A record is data that anyone can edit, copy or half-write. Every field the tables and metrics use is
checked for type, finiteness and consistency here, and a problem is one :class:`RecordError` that names
the file and the field (``.../record.json: summary.eval_loss: ...``), so a corrupt value never becomes
a quiet NaN, a string read as True, or a negative "best" loss. Pure Python: no torch, no pandas.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from transferbench.config import config_hash

SUPPORTED_SCHEMA = 2


class RecordError(ValueError):
    """A record that cannot be read or fails validation; the message names the file and the field."""


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def validate_record(rec: Any, path: Path | str) -> None:
    """Raise RecordError ``path: field: problem`` unless ``rec`` is a usable record.

    Checked: schema_version; config has a non-empty workload and recipe, integer width >= 1,
    base_width >= 1 and seed >= 0, a finite log2_lr and a finite wd >= 0, integer steps >= 1;
    config_hash is that of the config; summary.diverged is a JSON boolean; init_loss is a finite number
    >= 0; a run that did not diverge has a finite eval_loss >= 0 (every loss here is a cross-entropy or
    a squared error) and a final_loss that is finite or null; steps_completed is an integer in
    [0, steps]; failure is a string or null; lr_factor_end, if there, is a finite number >= 0 or null;
    recipe.base_model, if there, is a string; resumed_from, if there, is a list of steps in [0, steps].
    Unknown extra keys are allowed.
    """

    if not isinstance(rec, dict):
        raise RecordError(f"{path}: a record is a JSON object, got {type(rec).__name__}")
    if rec.get("schema_version") != SUPPORTED_SCHEMA:
        raise _bad(path, "schema_version", f"{rec.get('schema_version')!r} is not supported (expected "
                   f"{SUPPORTED_SCHEMA}; rerun the run with this version of transferbench)")
    for key in ("config", "summary"):
        if not isinstance(rec.get(key), dict):
            raise _bad(path, key, f"missing or not an object ({type(rec.get(key)).__name__})")
    _check_config(rec, path)
    _check_summary(rec["summary"], rec["config"]["steps"], path)
    declared = rec["recipe"].get("base_model") if isinstance(rec.get("recipe"), dict) else None
    if declared is not None and not isinstance(declared, str):
        raise _bad(path, "recipe.base_model", f"expected a string (\"\" for the shared base model), got {declared!r}")
    resumed, steps = rec.get("resumed_from"), rec["config"]["steps"]
    if resumed is not None and (not isinstance(resumed, list)
                                or not all(_is_int(k) and 0 <= k <= steps for k in resumed)):
        raise _bad(path, "resumed_from", f"expected a list of steps in [0, steps={steps}], got {resumed!r}")


def _bad(path: Path | str, field: str, problem: str) -> RecordError:
    return RecordError(f"{path}: {field}: {problem}")


def _check_config(rec: dict[str, Any], path: Path | str) -> None:
    cfg = rec["config"]
    for key in ("workload", "recipe"):
        if not isinstance(cfg.get(key), str) or not cfg.get(key):
            raise _bad(path, f"config.{key}", f"expected a non-empty string, got {cfg.get(key)!r}")
    for key, low in (("width", 1), ("base_width", 1), ("seed", 0), ("steps", 1)):
        if not _is_int(cfg.get(key)) or cfg[key] < low:
            raise _bad(path, f"config.{key}", f"expected an integer >= {low}, got {cfg.get(key)!r}")
    for key, low in (("log2_lr", -math.inf), ("wd", 0.0)):
        x = cfg.get(key)
        if not _is_number(x) or not math.isfinite(x) or x < low:
            need = "a finite number" + (f" >= {low:g}" if math.isfinite(low) else "")
            raise _bad(path, f"config.{key}", f"expected {need}, got {x!r}")
    try:
        expected = config_hash(cfg)
    except (TypeError, ValueError) as exc:
        raise _bad(path, "config", f"cannot be hashed: {exc}") from None
    if rec.get("config_hash") != expected:
        raise _bad(path, "config_hash", f"{rec.get('config_hash')!r} is not the hash of the record's config "
                   f"({expected}): the config or the hash was edited")


def _finite_loss(x: Any) -> bool:
    return _is_number(x) and math.isfinite(x) and x >= 0


def _check_summary(s: dict[str, Any], steps: int, path: Path | str) -> None:
    diverged = s.get("diverged")
    if not isinstance(diverged, bool):
        raise _bad(path, "summary.diverged", f"expected true or false, got {diverged!r}")
    if not _finite_loss(s.get("init_loss")):
        raise _bad(path, "summary.init_loss", f"expected a finite number >= 0, got {s.get('init_loss')!r}")
    if not diverged and not _finite_loss(s.get("eval_loss")):
        raise _bad(path, "summary.eval_loss", f"expected a finite number >= 0 for a run that did not diverge, "
                   f"got {s.get('eval_loss')!r}")
    fl = s.get("final_loss")
    if not diverged and fl is not None and not _finite_loss(fl):
        raise _bad(path, "summary.final_loss", f"expected a finite number >= 0 or null, got {fl!r}")
    for key in ("eval_loss", "final_loss") if diverged else ():
        x = s.get(key)
        if x is not None and not (_is_number(x) and not math.isnan(x)):
            raise _bad(path, f"summary.{key}", f"expected a number or null, got {x!r}")
    done = s.get("steps_completed")
    if done is not None and (not _is_int(done) or not 0 <= done <= steps):
        raise _bad(path, "summary.steps_completed", f"expected an integer in [0, steps={steps}], got {done!r}")
    end = s.get("lr_factor_end")  # absent in older records; null without a per-step lr factor
    if end is not None and not (_is_number(end) and math.isfinite(end) and end >= 0):
        raise _bad(path, "summary.lr_factor_end", f"expected a finite number >= 0 or null, got {end!r}")
    failure = s.get("failure")
    if failure is not None and not isinstance(failure, str):
        raise _bad(path, "summary.failure", f"expected a string or null, got {failure!r}")
    if failure is not None and not diverged:
        raise _bad(path, "summary.diverged", "a failed run (summary.failure is set) must be marked diverged")
