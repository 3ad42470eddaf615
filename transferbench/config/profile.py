"""A profile (config/*.yaml): read it, check it against the JSON schema and against everything the
schema cannot say (recipe names and options, every run of the grid resolved against config.py), and
report any problem as one line naming the file, the key and the value.

Pure Python (the Snakefile and the ``grid`` verb import it; no torch).
"""

from __future__ import annotations

import difflib
import itertools
import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from transferbench.config import axes
from transferbench.config.data_grid import check_data, workload_data
from transferbench.config.grid import PROFILE_RUN_KEYS, fmt, lr_refine, run_settings
from transferbench.config.run import ConfigError, check_plain, check_recipe, defaults_for, resolve_run_config
from transferbench.config.search_keys import check_wd_search, lr_wd_pairs, wd_search
from transferbench.recipes.instance import profile_options

#: Grid keys of a workload's spec -> the run setting each of their values becomes.
_GRID_KEYS = {"widths": "width", "log2_lrs": "log2_lr", "wds": "wd", "seeds": "seed", "base_width": "base_width"}
#: Settings the grid itself sets. A workload's ``settings`` may not set them: jobs() would pass both flags
#: and the later one would win silently, so the record would sit under a path that names another run.
_SET_BY_GRID = ("workload", "recipe", "recipe_options", "width", "base_width", "log2_lr", "wd", "seed", "lr",
                "width_mult")


def _values(where: str, value: Any) -> list[Any]:
    """A grid list: a list without repeats (a repeat would train, and count, the same run twice)."""
    if not isinstance(value, list):
        raise ConfigError(f"{where}: expected a list, got {value!r}")
    seen: dict[str, Any] = {}
    for x in value:
        # fmt: -6 and -6.0 (and -6.0000001) name the same run directory.
        key = fmt(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else repr(x)
        if key in seen:
            if seen[key] == x:
                raise ConfigError(f"{where}: repeated value {x!r} in {value!r}")
            raise ConfigError(f"{where}: {seen[key]!r} and {x!r} name the same run directory ({key})")
        seen[key] = x
    return value


def _locate(exc: ConfigError, where: str, spec: dict[str, Any], profile: dict[str, Any]) -> str:
    """Rewrite ``key: problem`` from resolve_run_config as the profile key the value came from."""
    key, _, problem = str(exc).partition(": ")
    by_setting = {v: k for k, v in _GRID_KEYS.items()}
    if key in by_setting:
        return f"{where}.{by_setting[key]}: {problem}"
    if key in (spec.get("settings") or {}):
        return f"{where}.settings.{key}: {problem}"
    if key in PROFILE_RUN_KEYS and key in profile:
        return f"{key}: {problem}"
    return f"{where}.{exc}"


def check_profile(profile: dict[str, Any]) -> None:
    """Everything the JSON schema cannot check: recipe names against the registry, recipe options, every
    run of the grid resolved against config.py (every width x lr x wd x seed x recipe, with the profile's
    settings), no repeated grid values, and a non-empty grid. Raises ConfigError naming key and value."""
    from transferbench.recipes import names

    if not isinstance(profile, dict):
        raise ConfigError(f"profile: expected a mapping of keys, got {type(profile).__name__}")
    workloads = profile.get("workloads") or {}
    if not workloads or not isinstance(workloads, dict):
        raise ConfigError("workloads: empty; the grid has no runs")
    if not profile.get("recipes"):
        raise ConfigError("recipes: empty; the grid has no runs")
    known = names()
    recipes = _known_recipes("recipes", profile["recipes"], known)
    if profile.get("seeds") is not None:
        _values("seeds", profile["seeds"])
    used = dict.fromkeys(recipes)
    check_wd_search(profile)  # first: a wd-searched workload gives log2_wds, not wds
    for workload, spec in workloads.items():
        used.update(dict.fromkeys(_check_workload(workload, spec, profile, known)))
    _check_options(profile.get("recipe_options") or {}, used)
    for workload, spec in workloads.items():
        _check_runs(workload, spec, profile, recipes)
    _check_search(profile)
    check_data(profile)
    _check_invariance(profile, known)


def _check_invariance(profile: dict[str, Any], known: list[str]) -> None:
    """The invariance study (grid.invariance_jobs): a swept workload, a known recipe, every run resolved."""
    study = profile.get("invariance")
    if not study:
        return
    if not isinstance(study, dict) or study.get("workload") not in profile["workloads"]:
        raise ConfigError(f"invariance.workload: {study.get('workload') if isinstance(study, dict) else study!r} "
                          "is not one of the profile's workloads")
    _known_recipes("invariance.recipe", [study.get("recipe")], known)
    for key in ("widths", "log2_ks"):
        _values(f"invariance.{key}", study.get(key))
    wl, spec = study["workload"], profile["workloads"][study["workload"]]
    flags, _ = workload_data(profile, wl, spec)
    data = {flags[i].lstrip("-").replace("-", "_"): flags[i + 1] for i in range(0, len(flags), 2)}
    try:
        for width, log2_k in itertools.product(study["widths"], study["log2_ks"]):
            resolve_run_config({
                "workload": wl, "recipe": study["recipe"],
                "recipe_options": profile_options(profile.get("recipe_options"), study["recipe"]),
                "width": width, "base_width": spec.get("base_width"), "log2_lr": study["log2_lr"] + log2_k,
                "wd": study["wd"] / 2.0**log2_k, "seed": 0, **run_settings(profile, wl, spec, width), **data})
    except (ConfigError, TypeError) as exc:
        raise ConfigError(f"invariance: {exc}") from None


def _check_search(profile: dict[str, Any]) -> None:
    """lr_search: adaptive chooses lrs inside one line job, from a start inside the lattice, refined at
    ``lr_refine`` octaves."""
    if profile.get("lr_search", "grid") not in ("grid", "adaptive"):
        raise ConfigError(f"lr_search: {profile['lr_search']!r} is not one of grid, adaptive")
    # Checked whatever lr_search says: the schema's default fills it in for grid profiles too (ignored there).
    lr_refine(profile)
    for workload, spec in profile["workloads"].items():
        lr_refine(profile, workload)
        if spec.get("lr_refine") is not None and profile.get("lr_search", "grid") != "adaptive":
            raise ConfigError(f"workloads.{workload}.lr_refine: only used with lr_search: adaptive")
        start = spec.get("log2_lr_start")
        if start is None:
            continue
        if profile.get("lr_search", "grid") != "adaptive":
            raise ConfigError(f"workloads.{workload}.log2_lr_start: only used with lr_search: adaptive")
        lo, hi = min(spec["log2_lrs"]), max(spec["log2_lrs"])
        if isinstance(start, bool) or not isinstance(start, (int, float)) or not lo <= start <= hi:
            raise ConfigError(f"workloads.{workload}.log2_lr_start: {start!r} is not a number within log2_lrs "
                              f"[{fmt(lo)}, {fmt(hi)}]")
    if profile.get("lr_search") == "adaptive" and profile.get("sweep_per_job") is False:
        raise ConfigError("lr_search: 'adaptive' needs sweep_per_job: true (a line chooses its lrs as it runs, "
                          "inside one job); use lr_search: grid for one job per run")


def _known_recipes(where: str, values: Any, known: list[str]) -> list[str]:
    """Recipe names or instance labels (``wd-power[p=0.5]``, recipes/instance.py), each listed once."""
    from transferbench.recipes import instance

    seen: dict[str, str] = {}
    for recipe in _values(where, values):
        try:
            name, label = instance.base_name(str(recipe)), instance.canonical(str(recipe))
        except instance.InstanceError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        if name not in known:
            raise ConfigError(f"{where}: unknown recipe {name!r}; known recipes are {', '.join(known)}")
        if label in seen:
            raise ConfigError(f"{where}: {recipe!r} is the same recipe instance as {seen[label]!r}")
        seen[label] = recipe
    return list(values)


def _check_workload(workload: str, spec: Any, profile: dict[str, Any], known: list[str]) -> list[str]:
    """One workload's lists (non-empty, no repeats), its recipes and settings; returns its own recipes."""
    defaults_for(workload)  # unknown workload -> ConfigError naming it
    where = f"workloads.{workload}"
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: expected a mapping, got {spec!r}")
    for key in ("widths", "log2_lrs", *(("wds",) if wd_search(profile, workload) != "adaptive" else ())):
        if not spec.get(key):
            raise ConfigError(f"{where}.{key}: empty; the grid has no runs")
        _values(f"{where}.{key}", spec[key])
    if not (spec.get("seeds") or profile.get("seeds")):
        raise ConfigError(f"{where}.seeds: empty; the grid has no runs")
    if spec.get("seeds"):
        _values(f"{where}.seeds", spec["seeds"])
    clash = sorted(set(spec.get("settings") or {}) & set(_SET_BY_GRID))
    if clash:
        raise ConfigError(f"{where}.settings.{clash[0]}: set by the grid, not by settings")
    problem = axes.check(where, spec)
    if problem:
        raise ConfigError(problem)
    if axes.axis_of(spec) != "width":
        _values(f"{where}.{axes.KEYS[axes.axis_of(spec)][0]}", spec[axes.KEYS[axes.axis_of(spec)][0]])
    return _known_recipes(f"{where}.recipes", spec["recipes"], known) if spec.get("recipes") else []


def _check_options(options: Any, used: dict[str, None]) -> None:
    """recipe_options: a mapping of used recipes to plain options that each recipe accepts."""
    from transferbench.recipes import RecipeError

    if not isinstance(options, dict):
        raise ConfigError(f"recipe_options: expected a mapping of recipe -> options, got {options!r}")
    from transferbench.recipes import instance

    for name in options:  # a recipe's name (all its instances) or one listed label
        if name not in used and name not in {instance.base_name(u) for u in used}:
            raise ConfigError(f"recipe_options: {name!r} is not in recipes")
        if not isinstance(options[name] or {}, dict):
            raise ConfigError(f"recipe_options.{name}: expected a mapping of option -> value, got {options[name]!r}")
        check_plain(f"recipe_options.{name}", options[name] or {})
    for name in used:
        try:
            check_recipe(name, instance.profile_options(options, name), where=f"recipe_options.{name}")
        except RecipeError as exc:  # a broken plugin: one line, not a traceback from the Snakefile
            raise ConfigError(f"recipes: {exc}") from None


def _check_runs(workload: str, spec: dict[str, Any], profile: dict[str, Any], recipes: list[str]) -> None:
    """Every run of one workload's grid resolved: each value is checked in the company of the others."""
    options = profile.get("recipe_options") or {}
    extra = sorted(set(spec.get("width_settings") or {}) - {int(w) for w in spec["widths"]})
    if extra:
        raise ConfigError(f"workloads.{workload}.width_settings: width {extra[0]} is not in widths")
    axis, base = axes.axis_of(spec), axes.base_of(spec)
    grid = itertools.product(spec.get("recipes") or recipes, axes.values_of(spec), lr_wd_pairs(profile, workload),
                             spec.get("seeds") or profile["seeds"])
    flags, _ = workload_data(profile, workload, spec)  # data: NAME sets data_source and data_path
    data = {flags[i].lstrip("-").replace("-", "_"): flags[i + 1] for i in range(0, len(flags), 2)}
    try:
        for recipe, scale, (log2_lr, wd), seed in grid:
            width = scale if axis == "width" else int(spec["widths"][0])
            resolve_run_config({
                "workload": workload, "recipe": recipe, "recipe_options": profile_options(options, recipe),
                "width": width, "base_width": spec.get("base_width"), "log2_lr": log2_lr, "wd": wd,
                "seed": seed, **run_settings(profile, workload, spec, width), **axes.settings_at(axis, scale, base),
                **data,
            })
    except ConfigError as exc:
        raise ConfigError(_locate(exc, f"workloads.{workload}", spec, profile)) from None


#: The profile schema, shipped inside the package (package data), so an installed wheel checks it too; the
#: Snakefile's validate() reads it from here (and workflow/schemas/config.schema.yaml links to it).
SCHEMA = Path(__file__).resolve().with_name("schema.yaml")


class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load, except that a repeated mapping key is an error (PyYAML keeps the last one silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"repeated key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_profile(path: str | Path) -> dict[str, Any]:
    """Read a profile, check it against the JSON schema and check_profile, and return it.

    Raises ConfigError with one line naming the file: ``FILE:LINE:COL: YAML syntax error: ...``,
    ``FILE: empty profile``, ``FILE: workloads.mlp: additional property 'widhts' is not allowed ...``.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        profile = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError(f"{where}: YAML syntax error: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: YAML syntax error: {exc}") from None
    if profile is None:
        raise ConfigError(f"{path}: empty profile")
    problem = schema_problem(profile)
    if problem:
        raise ConfigError(f"{path}: {problem}")
    try:
        check_profile(profile)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return profile


def command_line_lists(profile: dict[str, Any]) -> dict[str, list[Any]]:
    """Top-level lists whose items are strings that read as numbers (``--config seeds=[0]`` gives ['0']),
    with those items as numbers; other lists are left alone."""
    out = {}
    for key, value in profile.items():
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            parsed = [yaml.safe_load(v) for v in value]
            if all(isinstance(p, (int, float)) and not isinstance(p, bool) for p in parsed):
                out[key] = parsed
    return out


def schema_problem(profile: Any) -> str | None:
    """The first violation of the profile schema (:data:`SCHEMA`) as ``key.path: message``, or None."""
    validator = jsonschema.Draft202012Validator(yaml.safe_load(SCHEMA.read_text()))
    # Shallowest first; at one place a stray key (a typo) says more than the required key it misspells.
    errors = sorted(validator.iter_errors(profile),
                    key=lambda e: (len(e.absolute_path), e.validator != "additionalProperties"))
    if not errors:
        return None
    error = errors[0]
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".")
    message = error.message
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = list(error.schema.get("properties") or {})
        patterns = list(error.schema.get("patternProperties") or {})
        extra = [k for k in error.instance if k not in allowed and not any(re.search(p, str(k)) for p in patterns)]
        if extra:
            close = difflib.get_close_matches(str(extra[0]), allowed, n=1)
            message = f"additional property {extra[0]!r} is not allowed" + (
                f" (did you mean {close[0]!r}?)" if close else f"; allowed: {', '.join(allowed or patterns)}")
    return f"{where or '(top level)'}: {message}"
