"""No duplicate runs: a run is keyed by what the trainer does, not by what its recipe is called.

Several recipes resolve to the same training at some widths: every built-in is one and the same run at
the base width (m = 1: one base model, docs/design.md §3), and ``wd-power[p=0.5]`` is ``sqrt-d`` at every
width. The config hash includes the
recipe's name, so it cannot notice; the *trainer fingerprint* hashes what the trainer will actually do:
every setting but the recipe's name and options (model, data, steps, seed, schedule, ...), the model's
class, the forward and residual-branch multipliers, each parameter group's role, members, Adam eps and
per-step lr and weight decay,
and the initial value of every parameter and buffer (so init multipliers and readout init count).

Train each distinct run once. A shared directory (``results/runs/_trained``) maps a fingerprint to the
record that trained it; a later run with the same fingerprint gets a copy of that record that is its
own in everything a reader joins on (config, config hash, recipe, parameter groups, factors) and says
``shared_with``: the run directory it was trained in. A fingerprint's lock file keeps two processes
from training it twice: the second takes the copy when the first is done.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from transferbench.config.run import _HASH_UNLESS
from transferbench.record import RECORD_NAME, read_record, write_json_atomic

#: Settings that name a recipe rather than say what it does (their effect is in the groups and init), or
#: that do not change what is computed (threads, checkpoints).
_NOT_TRAINING = ("recipe", "recipe_options", "threads", "checkpoint_every", "checkpoint_minutes", "keep_checkpoints",
                 # the axes' bases: their effect is in the groups, the branch multiplier and the eps
                 "base_depth", "base_steps", "depth_mult", "steps_mult")
#: Settings added after the fingerprint (the GPU fast path, fastpath.py; the shared base model's readout_init and
#: decay_roles): left out at their defaults, as in the config hash, so that every earlier fingerprint of a
#: training that did not change stands and earlier runs are still shared.
_LATER = ("autocast", "tf32", "fused_adamw", "sdpa_backend", "readout_init", "decay_roles")


def fingerprint(run: Any) -> str:
    """16 hex digits of sha256 over everything the trainer does with one set-up run (train.setup)."""
    h = hashlib.sha256()
    cfg = {k: v for k, v in run.cfg.as_dict().items()
           if k not in _NOT_TRAINING and not (k in _LATER and v == _HASH_UNLESS[k])}
    h.update(json.dumps(cfg, sort_keys=True, default=str).encode())
    h.update(f"{model_name(type(run.wl.model))}|{run.output_mult!r}".encode())
    if run.branch_mult != 1.0:  # a depth rule's (hashed only then, so that every earlier fingerprint stands)
        h.update(f"branch|{run.branch_mult!r}".encode())
    for g in run.groups:
        h.update(json.dumps([g["role"], list(g["names"])]).encode())
        if g["eps"] != float(run.cfg.adam_eps):  # likewise a depth rule's Adam eps
            h.update(f"eps|{g['eps']!r}".encode())
    h.update(np.asarray(run.lrs, np.float64).tobytes())
    h.update(np.asarray(run.wds, np.float64).tobytes())
    for name, tensor in run.wl.model.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().view(-1).view(dtype=_bytes_dtype()).numpy().tobytes())
    return h.hexdigest()[:16]


def model_name(cls: type) -> str:
    """The model class's name in the fingerprint: ``module.qualname``, or the class's ``fingerprint_name`` (a
    built-in model moved to its workload's folder keeps the name it had, so its earlier fingerprints stand)."""
    return getattr(cls, "fingerprint_name", None) or f"{cls.__module__}.{cls.__qualname__}"


def _bytes_dtype() -> Any:
    import torch

    return torch.uint8


@contextlib.contextmanager
def claimed(shared_dir: Path, fp: str, wait: bool) -> Iterator[bool]:
    """Hold the fingerprint's lock; yields False at once if another process holds it and not ``wait``."""
    shared_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(shared_dir / f"{fp}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # releases the flock


def trained_record(shared_dir: Path, fp: str) -> Path | None:
    """The record that trained fingerprint ``fp``, if one was written and still says so."""
    pointer = shared_dir / f"{fp}.json"
    try:
        path = Path(json.loads(pointer.read_text())["record"])
        if read_record(path).get("trainer_fingerprint") == fp and not read_record(path).get("shared_with"):
            return path
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    return None


def remember(shared_dir: Path, fp: str, record_path: Path) -> None:
    write_json_atomic(shared_dir / f"{fp}.json", {"record": str(record_path)})


def shared_copy(source: dict[str, Any], own: dict[str, Any], source_dir: Path) -> dict[str, Any]:
    """``source``'s results under this run's identity: ``own`` holds this run's config, config_hash,
    recipe, param_groups and the factors of its groups; the measured parts are the source's."""
    rec = dict(source)
    for key in ("config", "config_hash", "recipe", "param_groups", "output_mult"):
        rec[key] = own[key]
    prov = dict(source.get("provenance") or {})
    prov.update({k: v for k, v in (own.get("provenance") or {}).items() if k.startswith("recipe")})
    rec["provenance"] = prov
    rec["applied"] = _own_factors(source.get("applied") or [], own["factors"])
    rec["shared_with"] = str(source_dir)
    return rec


def _own_factors(applied: list[dict[str, Any]], factors: list[tuple[Any, Any]]) -> list[dict[str, Any]]:
    """The source's applied values (equal by the fingerprint) with this recipe's factor columns."""
    out = []
    for row in applied:
        t = int(row["step"])
        groups = []
        for g, (lf, wf) in zip(row["groups"], factors, strict=True):
            groups.append({**g, "lr_factor": None if lf is None else lf[t], "wd_factor": None if wf is None else wf[t]})
        out.append({**row, "groups": groups})
    return out


def record_path(run_dir: Path) -> Path:
    return Path(run_dir) / RECORD_NAME
