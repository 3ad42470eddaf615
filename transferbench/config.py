"""One run's configuration: the defaults, the resolution of overrides, and the config hash.

Pure Python (no torch): the Snakefile and the CLI import it. Every key here is the vocabulary of
docs/design.md §2 and is used verbatim as a CLI flag (``--base-width`` for ``base_width``), a record field and a
table column.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any, NamedTuple

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
    # Schedule (docs/design.md §5): linear warmup over warmup_frac of the steps, then decay to
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


class Bound(NamedTuple):
    """The range of a numeric setting: ``lo``/``hi`` (None = unbounded), inclusive unless marked open."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def holds(self, x: float) -> bool:
        above = self.lo is None or (x > self.lo if self.lo_open else x >= self.lo)
        below = self.hi is None or (x < self.hi if self.hi_open else x <= self.hi)
        return above and below

    def __str__(self) -> str:
        if self.lo is not None and self.hi is not None:
            return f"in {'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}{')' if self.hi_open else ']'}"
        if self.lo is not None:
            return f"{'>' if self.lo_open else '>='} {self.lo:g}"
        return f"{'<' if self.hi_open else '<='} {self.hi:g}"


_COUNT, _COUNT0, _POSITIVE, _NONNEG = Bound(1), Bound(0), Bound(0, lo_open=True), Bound(0)

#: The range of every numeric setting (tests/test_bad_inputs.py checks that none is missing).
#: 0 means "off" for grad_clip, log_every and coord_steps; elsewhere counts start at 1.
BOUNDS: dict[str, Bound] = {
    "width": _COUNT, "base_width": _COUNT, "depth": _COUNT, "steps": _COUNT, "batch_size": _COUNT,
    "threads": _COUNT, "eval_batches": _COUNT, "diag_points": _COUNT,
    "log_every": _COUNT0, "coord_steps": _COUNT0, "seed": _COUNT0, "data_seed": _COUNT0,
    # 2**log2_lr must not overflow (2**1024 does) nor be absurd; 12 is a deliberately diverging test run.
    "log2_lr": Bound(-64, 16),
    "wd": _NONNEG,
    "warmup_frac": Bound(0, 1, hi_open=True),
    "min_lr_frac": Bound(0, 1),
    "grad_clip": _NONNEG,
    "adam_beta1": Bound(0, 1, hi_open=True),
    "adam_beta2": Bound(0, 1, hi_open=True),
    "adam_eps": _POSITIVE,
    "sigma": _POSITIVE,
    # llama
    "seq_len": _COUNT, "vocab_size": Bound(2), "head_dim": _COUNT, "ffn_ratio": _COUNT,
    "rope_base": _POSITIVE, "markov_order": _COUNT, "markov_branching": _COUNT, "zipf_exponent": _NONNEG,
    # resnet
    "image_size": _COUNT, "num_classes": Bound(2), "image_noise": _NONNEG,
    # mlp
    "in_dim": _COUNT, "out_dim": _COUNT, "teacher_width": _COUNT, "teacher_depth": _COUNT,
    "label_noise": _NONNEG,
}


#: The generated token stream's table limit (data/markov.py MarkovTokens.max_states; a test checks they
#: agree). Checked here so a too-large vocabulary fails at parse time, not in a queued GPU job.
MARKOV_MAX_STATES = 1 << 22


class ConfigError(ValueError):
    """A bad setting: the message names the key and the value."""


def check_bounds(cfg: dict[str, Any]) -> None:
    """Raise ConfigError for the first setting of ``cfg`` outside its BOUNDS."""
    for key, bound in BOUNDS.items():
        if cfg.get(key) is not None and not bound.holds(cfg[key]):
            raise ConfigError(f"{key}: must be {bound}, got {cfg[key]!r}")


def check_plain(where: str, options: dict[str, Any]) -> None:
    """Recipe options must be plain JSON (finite numbers, strings, booleans, null, lists, mappings): the
    record stores them as JSON, and a YAML date or a NaN would fail there, after training, or be changed."""
    for key, value in options.items():
        try:
            json.dumps({key: value}, allow_nan=False)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}.{key}: {value!r} is not a plain JSON value (finite number, string, "
                              "boolean, null, list or mapping)") from None


def check_recipe(name: str, options: dict[str, Any], where: str = "recipe_options") -> Any:
    """Construct recipe ``name`` with ``options`` and return it. An unknown or broken recipe raises
    RecipeError; an option the recipe rejects raises ConfigError naming ``where.KEY`` and the value."""
    from transferbench.recipes import RecipeError, get_recipe

    try:
        return get_recipe(name, **options)
    except RecipeError:
        raise
    except Exception as exc:  # a plugin's __init__ may raise anything; it is still one bad option
        # The recipe's message need not name the option (float('abc') does not): try them one by one.
        culprit = next((k for k in options if _rejects(name, k, options[k])), None)
        what = f"{culprit}={options[culprit]!r}" if culprit is not None else f"options {options!r}"
        said = str(exc) if name in str(exc) else f"recipe {name!r} rejects {what} ({type(exc).__name__}: {exc})"
        raise ConfigError(f"{where}.{culprit}: {said}" if culprit is not None else f"{where}: {said}") from None


def _rejects(name: str, key: str, value: Any) -> bool:
    from transferbench.recipes import get_recipe

    try:
        get_recipe(name, **{key: value})
    except Exception:  # whatever the recipe raises, this option alone is the cause
        return True
    return False


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
        if kind in (int, float) and isinstance(value, bool):
            raise ValueError(value)  # int(True) == 1: a YAML `yes` must not become a count
        if kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if kind is float:
            out = float(value)
            if not math.isfinite(out):
                raise ConfigError(f"{key}: must be finite, got {value!r}")
            return out
        if kind is dict:
            if not isinstance(value, dict):
                raise ValueError(value)
            return dict(value)
        return kind(value)
    except ConfigError:
        raise
    except (TypeError, ValueError, OverflowError):
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
    check_plain("recipe_options", cfg["recipe_options"])
    check_bounds(cfg)
    if cfg["schedule"] not in SCHEDULES:
        raise ConfigError(f"schedule: unknown value {cfg['schedule']!r}; known: {', '.join(SCHEDULES)}")
    if cfg["device"] not in DEVICES:
        raise ConfigError(f"device: unknown value {cfg['device']!r}; known: {', '.join(DEVICES)}")
    if cfg["workload"] == "llama" and cfg["width"] % cfg["head_dim"]:
        raise ConfigError(f"width: {cfg['width']} is not a multiple of head_dim={cfg['head_dim']}")
    if cfg["workload"] == "llama" and cfg["seq_len"] < cfg["markov_order"]:
        raise ConfigError(f"seq_len: must be >= markov_order={cfg['markov_order']}, got {cfg['seq_len']}")
    if cfg["workload"] == "llama" and cfg["vocab_size"] ** cfg["markov_order"] > MARKOV_MAX_STATES:
        raise ConfigError(f"vocab_size: {cfg['vocab_size']}**markov_order={cfg['markov_order']} states exceed the "
                          f"generated token stream's limit of {MARKOV_MAX_STATES} (data/markov.py)")
    cfg["lr"] = 2.0 ** cfg["log2_lr"]
    cfg["width_mult"] = cfg["width"] / cfg["base_width"]
    check_recipe(cfg["recipe"], cfg["recipe_options"])  # an option the recipe rejects, named
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
