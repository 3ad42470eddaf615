"""One run's configuration: the defaults, the resolution of overrides, and the config hash.

Pure Python (no torch): the Snakefile and the CLI import it. Every key here is the vocabulary of
DESIGN §2 and is used verbatim as a CLI flag (``--base-width`` for ``base_width``), a record field and a
table column.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

WORKLOADS: tuple[str, ...] = ("llama", "resnet", "mlp")
SCHEDULES: tuple[str, ...] = ("cosine", "linear", "constant")
DEVICES: tuple[str, ...] = ("cpu", "cuda", "auto")

#: Settings shared by every workload. ``None`` means "required" (no default).
COMMON_DEFAULTS: dict[str, Any] = {
    "workload": None,
    "recipe": None,
    "recipe_options": {},
    "width": None,
    "base_width": None,
    "depth": 2,
    "log2_lr": None,
    "wd": 0.1,
    "seed": 0,
    "steps": 400,
    "batch_size": 32,
    # Schedule (DESIGN §5): linear warmup over warmup_frac of the steps, then decay to
    # min_lr_frac * peak. [Kos25] uses 10% linear warmup then linear decay.
    "schedule": "linear",
    "warmup_frac": 0.1,
    "min_lr_frac": 0.0,
    "grad_clip": 0.0,  # 0 = off: clipping by global norm would itself depend on width.
    "adam_beta1": 0.9,
    "adam_beta2": 0.95,
    "adam_eps": 1e-8,
    # Init scale: matrices get sigma / sqrt(fan_in) x the recipe's init multiplier (roles.py).
    "sigma": 1.0,
    "data_seed": 0,
    "eval_batches": 4,
    "log_every": 0,  # 0 = about 100 points per curve
    "diag_points": 4,  # diagnostic snapshots during training (the last one is at the end)
    "coord_steps": 5,  # steps recorded for the coordinate check
    "device": "cpu",
    "threads": 1,
}

#: Per-workload settings and overrides of the common defaults.
WORKLOAD_DEFAULTS: dict[str, dict[str, Any]] = {
    "llama": {
        "batch_size": 16,
        "seq_len": 128,
        # 64 tokens, order 2: 4096 contexts a small model can learn in a few hundred steps, so the
        # hidden layers (not only embedding/readout memorisation) decide the loss. With 256 tokens
        # (65536 contexts) widths 32 and 128 under muP ended at the same loss after 200 steps.
        "vocab_size": 64,
        "head_dim": 16,
        "ffn_ratio": 3,  # SwiGLU hidden = ffn_ratio * width: exactly proportional to width
        "rope_base": 10000.0,
        "markov_order": 2,
        "markov_branching": 8,
        "zipf_exponent": 1.0,
    },
    "resnet": {
        "depth": 1,  # BasicBlocks per stage
        "batch_size": 128,
        "image_size": 16,
        "num_classes": 10,
        "image_noise": 1.0,  # see data.TemplateImages: eval ~0.4 (d=8) / ~0.2 (d=32) nats at 400 steps
    },
    "mlp": {
        "depth": 3,
        "batch_size": 128,
        "in_dim": 16,  # at 32 the student barely beat the best linear fit in 400 steps; at 16 width helps
        "out_dim": 8,
        "teacher_width": 64,
        "teacher_depth": 2,
        "label_noise": 0.05,
    },
}

#: Keys that do not change what is computed, left out of the config hash.
_UNHASHED = ("threads",)


class ConfigError(ValueError):
    """A bad setting: the message names the key and the value."""


def defaults_for(workload: str) -> dict[str, Any]:
    """All default settings for ``workload``."""
    if workload not in WORKLOADS:
        raise ConfigError(f"workload: unknown value {workload!r}; known workloads are {', '.join(WORKLOADS)}")
    return {**COMMON_DEFAULTS, **WORKLOAD_DEFAULTS[workload]}


def _coerce(key: str, value: Any, default: Any) -> Any:
    """Coerce ``value`` to the type of ``default`` (CLI strings, YAML ints for floats)."""
    if default is None or value is None:
        return value
    kind = type(default)
    try:
        if kind is bool:
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes"):
                    return True
                if value.lower() in ("0", "false", "no"):
                    return False
                raise ValueError(value)
            return bool(value)
        if kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if kind is float:
            return float(value)
        if kind is dict:
            if not isinstance(value, dict):
                raise ValueError(value)
            return dict(value)
        return kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: expected {kind.__name__}, got {value!r}") from None


def resolve_run_config(overrides: dict[str, Any]) -> dict[str, Any]:
    """Fill defaults, check keys, types and ranges, and derive ``lr`` and ``width_mult``.

    Raises ConfigError naming the offending key and value.
    """
    if "workload" not in overrides or overrides["workload"] is None:
        raise ConfigError("workload: required")
    base = defaults_for(str(overrides["workload"]))
    unknown = sorted(set(overrides) - set(base) - {"lr", "width_mult"})
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown setting for workload {overrides['workload']!r}")
    cfg: dict[str, Any] = {}
    for key, default in base.items():
        value = overrides.get(key, default)
        cfg[key] = _coerce(key, value, default)
    # Typed required keys.
    for key, kind in (("width", int), ("base_width", int), ("log2_lr", float)):
        if cfg[key] is None:
            raise ConfigError(f"{key}: required")
        cfg[key] = _coerce(key, cfg[key], kind())
    if cfg["recipe"] is None:
        raise ConfigError("recipe: required")
    cfg["recipe"] = str(cfg["recipe"])
    for key in ("width", "base_width", "steps", "batch_size", "depth", "threads", "eval_batches"):
        if cfg[key] < 1:
            raise ConfigError(f"{key}: must be >= 1, got {cfg[key]!r}")
    if not math.isfinite(cfg["log2_lr"]):
        raise ConfigError(f"log2_lr: must be finite, got {cfg['log2_lr']!r}")
    if cfg["wd"] < 0:
        raise ConfigError(f"wd: must be >= 0, got {cfg['wd']!r}")
    if cfg["schedule"] not in SCHEDULES:
        raise ConfigError(f"schedule: unknown value {cfg['schedule']!r}; known: {', '.join(SCHEDULES)}")
    if cfg["device"] not in DEVICES:
        raise ConfigError(f"device: unknown value {cfg['device']!r}; known: {', '.join(DEVICES)}")
    if not 0.0 <= cfg["warmup_frac"] < 1.0:
        raise ConfigError(f"warmup_frac: must be in [0, 1), got {cfg['warmup_frac']!r}")
    if not 0.0 <= cfg["min_lr_frac"] <= 1.0:
        raise ConfigError(f"min_lr_frac: must be in [0, 1], got {cfg['min_lr_frac']!r}")
    if cfg["workload"] == "llama" and cfg["width"] % cfg["head_dim"]:
        raise ConfigError(f"width: {cfg['width']} is not a multiple of head_dim={cfg['head_dim']}")
    cfg["lr"] = 2.0 ** cfg["log2_lr"]
    cfg["width_mult"] = cfg["width"] / cfg["base_width"]
    # Every recipe option, defaults included, is part of the config and its hash (record schema 2):
    # a run of a recipe whose default changed is a different run.
    from transferbench.recipes.checked import full_options  # pure Python: no torch

    try:
        cfg["recipe_options"] = full_options(cfg["recipe"], cfg["recipe_options"])
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return cfg


def config_hash(cfg: dict[str, Any]) -> str:
    """16 hex digits of sha256 over the canonical JSON of the settings that change the result."""
    payload = {k: v for k, v in sorted(cfg.items()) if k not in _UNHASHED}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
