"""One run's configuration: resolving overrides against the settings table (settings.py) and the
workload registry (workloads/__init__.py), validated in one place, and the config hash.

Pure Python (no torch): the Snakefile and the CLI import it. Every key is the vocabulary of
docs/design.md §2 and is used verbatim as a CLI flag (``--base-width`` for ``base_width``), a record field and a
table column.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from transferbench import workloads
from transferbench.settings import COMMON, RunConfig, Setting, settings_of

#: Keys that do not change what is computed, left out of the config hash.
_UNHASHED = ("threads", "checkpoint_every", "checkpoint_minutes", "keep_checkpoints")
#: Settings added after record schema 2, left out of the hash while at this value, so that every
#: schema-2 record keeps its hash (a run on another data source is a different run and hashes so).
_HASH_UNLESS = {"data_source": "generated", "compile": False, "data_path": "", "augment": True,
                "autocast": "bf16", "tf32": True, "fused_adamw": True, "sdpa_backend": "auto",
                # the shared base model (docs/design.md §3): at these defaults `standard` trains what it did
                "readout_init": "normal", "decay_roles": "input,hidden,output",
                # the depth and horizon axes (0 = no depth or horizon scaling): a run of before keeps its hash
                "base_depth": 0, "base_steps": 0, "depth_mult": 1.0, "steps_mult": 1.0}


class ConfigError(ValueError):
    """A bad setting: the message names the key and the value."""


def settings_for(workload: str) -> dict[str, Setting]:
    """Every setting of ``workload``: the common ones (with the workload's default overrides) and its own."""
    try:
        spec = workloads.get(workload)
    except workloads.UnknownWorkload as exc:
        raise ConfigError(str(exc)) from None
    common = {k: replace(s, default=spec.overrides[k]) if k in spec.overrides else s for k, s in COMMON.items()}
    return {**common, **settings_of(spec.settings)}


def defaults_for(workload: str) -> dict[str, Any]:
    """All default settings for ``workload`` (None = required)."""
    return {k: s.default for k, s in settings_for(workload).items()}


def check_bounds(cfg: dict[str, Any], settings: dict[str, Setting]) -> None:
    """Raise ConfigError for the first setting of ``cfg`` outside its range or choices."""
    for key, setting in settings.items():
        value = cfg.get(key)
        if value is None:
            continue
        if setting.bound is not None and not setting.bound.holds(value):
            raise ConfigError(f"{key}: must be {setting.bound}, got {value!r}")
        if setting.choices is not None and value not in setting.choices:
            raise ConfigError(f"{key}: unknown value {value!r}; known: {', '.join(setting.choices)}")


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


def resolve_run_config(overrides: Mapping[str, Any]) -> RunConfig:
    """Fill defaults, check keys, types and ranges, and return the typed, frozen RunConfig (with the
    derived ``lr`` and ``width_mult``). The one place where run settings are validated.

    Raises ConfigError naming the offending key and value.
    """
    if "workload" not in overrides or overrides["workload"] is None:
        raise ConfigError("workload: required")
    settings = settings_for(str(overrides["workload"]))
    unknown = sorted(set(overrides) - set(settings) - {"lr", "width_mult", "depth_mult", "steps_mult"})
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown setting for workload {overrides['workload']!r}")
    cfg: dict[str, Any] = {}
    for key, setting in settings.items():
        value = overrides.get(key, setting.default)
        if value is None:
            raise ConfigError(f"{key}: required")
        kind = setting.type
        cfg[key] = _coerce(key, value, kind() if kind is not None and setting.default is None else setting.default)
    check_plain("recipe_options", cfg["recipe_options"])
    check_bounds(cfg, settings)
    problem = workloads.get(cfg["workload"]).check
    if problem is not None and problem(cfg):
        raise ConfigError(problem(cfg))
    # A recipe instance, wd-power[p=0.5], is a recipe of its own: its canonical label is the config's
    # ``recipe`` and its options join recipe_options (recipes/instance.py). A plain name stays as it is.
    from transferbench.recipes import instance  # pure Python: no torch
    from transferbench.recipes.registry import full_options

    try:
        name, options = instance.merged(str(cfg["recipe"]), cfg["recipe_options"])
        cfg["recipe"] = instance.canonical(str(cfg["recipe"]))
    except instance.InstanceError as exc:
        raise ConfigError(str(exc)) from None
    check_recipe(name, options)  # an option the recipe rejects, named
    # Every recipe option, defaults included, is part of the config and its hash (record schema 2):
    # a run of a recipe whose default changed is a different run.
    try:
        cfg["recipe_options"] = full_options(name, options)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    spec = workloads.get(cfg["workload"])
    own = spec.settings
    mine = set(settings_of(own))
    resolved = RunConfig(**{k: v for k, v in cfg.items() if k not in mine},
                         settings=own(**{k: v for k, v in cfg.items() if k in mine}))
    if not spec.residual and resolved.depth_mult != 1.0:
        _check_branches(resolved, name, options, spec.name)
    return resolved


def _check_branches(cfg: RunConfig, name: str, options: dict[str, Any], workload: str) -> None:
    """A recipe whose depth rule scales residual branches at this m_L needs a workload that has them (its spec's
    ``residual``): refused here, naming both, rather than after torch loads in the trainer."""
    from transferbench.recipes import RecipeError, get_recipe

    try:
        mult = get_recipe(name, **options).branch_mult(cfg.depth_mult)
    except (RecipeError, ValueError):
        return  # check_recipe above reported any problem with the recipe itself
    if mult != 1.0:
        raise ConfigError(f"recipe: {cfg.recipe!r} multiplies residual branches by {mult:g} at depth_mult "
                          f"{cfg.depth_mult:g} (its depth rule), but workload {workload!r} has no residual branches "
                          "(its spec's residual is False); use a depth of base_depth, or a recipe without a depth rule")


def hashed(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The settings the config hash sees: a key added since record schema 2 is left out at its old behaviour's
    value, so a config without it and one with it at that value are the same config."""
    return {k: v for k, v in sorted(cfg.items())
            if k not in _UNHASHED and not (k in _HASH_UNLESS and v == _HASH_UNLESS[k])}


def absent_means(key: str) -> Any:
    """The value a setting that :func:`hashed` leaves out stands for (None for a setting it never leaves out)."""
    return _HASH_UNLESS.get(key)


def config_hash(cfg: Mapping[str, Any]) -> str:
    """16 hex digits of sha256 over the canonical JSON of the settings that change the result."""
    text = json.dumps(hashed(cfg), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
