"""A profile (config/*.yaml) -> checked settings -> the grid of training jobs the DAG runs.

Pure Python (the Snakefile imports it; no torch). A job is one ``python -m transferbench train``
command: by default one sweep line (every log2 lr of one workload, recipe, width, wd and seed, so
the 3 s torch import is paid once per line, not once per run), or one run per job when the profile
says ``sweep_per_job: false`` (GPU clusters).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any

from transferbench.config import ConfigError, defaults_for, resolve_run_config

#: Profile-level run settings that apply to every workload unless a workload overrides them.
PROFILE_RUN_KEYS = ("device", "threads")


def fmt(x: float) -> str:
    """Numbers as they appear in paths and flags: 0.1, -6, -6.5, 1e-05."""
    return f"{x:g}"


@dataclass(frozen=True)
class Job:
    """One train command and the records it writes."""

    workload: str
    recipe: str
    width: int
    wd: float
    seed: int
    log2_lrs: tuple[float, ...]
    args: tuple[str, ...] = field(compare=False)
    results_dir: str = "results"

    @property
    def line(self) -> str:
        """Path fragment of the sweep line: {workload}/{recipe}/w{width}_wd{wd}_s{seed}."""
        return f"{self.workload}/{self.recipe}/w{self.width}_wd{fmt(self.wd)}_s{self.seed}"

    def record(self, log2_lr: float) -> str:
        return f"{self.results_dir}/runs/{self.line}/lr{fmt(log2_lr)}/record.json"

    @property
    def records(self) -> list[str]:
        return [self.record(x) for x in self.log2_lrs]

    @property
    def out_template(self) -> str:
        return f"{self.results_dir}/runs/{self.line}/lr{{log2_lr}}"

    def command(self) -> str:
        return "python -m transferbench train " + " ".join(shlex.quote(a) for a in self.args)


def _settings(profile: dict[str, Any], workload: str, spec: dict[str, Any]) -> dict[str, Any]:
    settings = {k: profile[k] for k in PROFILE_RUN_KEYS if k in profile}
    settings.update(spec.get("settings") or {})
    return settings


def check_profile(profile: dict[str, Any]) -> None:
    """Everything the JSON schema cannot check: recipe names against the registry, recipe options,
    run settings against config.py, and a non-empty grid. Raises ConfigError naming key and value."""
    from transferbench.recipes import RecipeError, get_recipe, names

    workloads = profile.get("workloads") or {}
    if not workloads:
        raise ConfigError("workloads: empty; the grid has no runs")
    known = names()
    for recipe in profile.get("recipes") or []:
        if recipe not in known:
            raise ConfigError(f"recipes: unknown recipe {recipe!r}; known recipes are {', '.join(known)}")
        try:
            get_recipe(recipe, **(profile.get("recipe_options") or {}).get(recipe, {}))
        except (RecipeError, ValueError) as exc:
            raise ConfigError(f"recipe_options.{recipe}: {exc}") from None
    for name in profile.get("recipe_options") or {}:
        if name not in (profile.get("recipes") or []):
            raise ConfigError(f"recipe_options: {name!r} is not in recipes")
    for workload, spec in workloads.items():
        defaults_for(workload)  # unknown workload -> ConfigError naming it
        for key in ("widths", "log2_lrs", "wds"):
            if not spec.get(key):
                raise ConfigError(f"workloads.{workload}.{key}: empty; the grid has no runs")
        if not (spec.get("seeds") or profile.get("seeds")):
            raise ConfigError(f"workloads.{workload}.seeds: empty; the grid has no runs")
        if len(set(spec["log2_lrs"])) != len(spec["log2_lrs"]):
            raise ConfigError(f"workloads.{workload}.log2_lrs: repeated values {spec['log2_lrs']}")
        try:
            resolve_run_config({
                "workload": workload, "recipe": "standard", "width": spec["widths"][0],
                "base_width": spec["base_width"], "log2_lr": spec["log2_lrs"][0], "wd": spec["wds"][0],
                **_settings(profile, workload, spec),
            })
            for width in spec["widths"]:
                resolve_run_config({
                    "workload": workload, "recipe": "standard", "width": width,
                    "base_width": spec["base_width"], "log2_lr": 0, **_settings(profile, workload, spec),
                })
        except ConfigError as exc:
            raise ConfigError(f"workloads.{workload}.{exc}") from None
    if not profile.get("recipes"):
        raise ConfigError("recipes: empty; the grid has no runs")


def jobs(profile: dict[str, Any]) -> list[Job]:
    """Every train job of the profile, in a stable order."""
    results_dir = str(profile.get("results_dir", "results"))
    per_line = bool(profile.get("sweep_per_job", True))
    out: list[Job] = []
    for workload, spec in profile["workloads"].items():
        settings = _settings(profile, workload, spec)
        seeds = spec.get("seeds") or profile["seeds"]
        lrs = tuple(float(x) for x in spec["log2_lrs"])
        chunks = [lrs] if per_line else [(x,) for x in lrs]
        for recipe in spec.get("recipes") or profile["recipes"]:
            options = (profile.get("recipe_options") or {}).get(recipe, {})
            for width in spec["widths"]:
                for wd in spec["wds"]:
                    for seed in seeds:
                        for chunk in chunks:
                            args = [
                                "--workload", workload, "--recipe", recipe, "--width", str(width),
                                "--base-width", str(spec["base_width"]), "--wd", fmt(wd),
                                "--seed", str(seed), "--log2-lr", *(fmt(x) for x in chunk),
                            ]
                            for key, value in sorted(settings.items()):
                                args += ["--" + key.replace("_", "-"), str(value)]
                            for key, value in sorted(options.items()):
                                args += ["--recipe-option", f"{key}={value}"]
                            job = Job(workload, recipe, int(width), float(wd), int(seed), chunk, (),
                                      results_dir)
                            args += ["--out", job.out_template]
                            out.append(Job(workload, recipe, int(width), float(wd), int(seed), chunk,
                                           tuple(args), results_dir))
    return out
