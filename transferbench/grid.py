"""A checked profile (config/*.yaml; see profile.py) -> the grid of training jobs the DAG runs.

Pure Python (the Snakefile imports it; no torch). A job is one ``python -m transferbench train``
command: by default one sweep line (every log2 lr of one workload, recipe, width, wd and seed, so
the 3 s torch import is paid once per line, not once per run), or one run per job when the profile
says ``sweep_per_job: false`` (GPU clusters).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field, replace
from typing import Any

from transferbench.record import RECORD_NAME

#: Profile-level run settings that apply to every workload unless a workload overrides them.
PROFILE_RUN_KEYS = ("device", "threads")


def fmt(x: float) -> str:
    """Numbers as they appear in paths and flags: 0.1, -6, -6.5, 1e-05."""
    return f"{x:g}"


@dataclass(frozen=True)
class Job:
    """One train command, the records it writes and its manifest.

    The only place that spells the paths of runs, manifests and train logs: the rules take them from
    here (:meth:`manifest_for` and :meth:`log_for` with a wildcard give a rule's patterns).
    """

    workload: str
    recipe: str
    width: int
    wd: float
    seed: int
    log2_lrs: tuple[float, ...]
    args: tuple[str, ...] = field(default=(), compare=False)
    results_dir: str = "results"
    #: One run per job (``sweep_per_job: false``) rather than one sweep line per job.
    per_run: bool = False

    @property
    def line(self) -> str:
        """Path fragment of the sweep line: {workload}/{recipe}/w{width}_wd{wd}_s{seed}."""
        return f"{self.workload}/{self.recipe}/w{self.width}_wd{fmt(self.wd)}_s{self.seed}"

    @property
    def key(self) -> str:
        """What names the job in paths: its sweep line, plus /lr{log2_lr} for a one-run job."""
        return f"{self.line}/lr{fmt(self.log2_lrs[0])}" if self.per_run else self.line

    def _run_dir(self, log2_lr: str) -> str:
        return f"{self.results_dir}/runs/{self.line}/lr{log2_lr}"

    def record(self, log2_lr: float) -> str:
        return f"{self._run_dir(fmt(log2_lr))}/{RECORD_NAME}"

    @property
    def records(self) -> list[str]:
        return [self.record(x) for x in self.log2_lrs]

    @property
    def out_template(self) -> str:
        return self._run_dir("{log2_lr}")

    @property
    def manifest(self) -> str:
        """The job's declared output: written by train once every run of the job has its record."""
        return self.manifest_for(self.results_dir, self.key)

    @property
    def log(self) -> str:
        return self.log_for(self.results_dir, self.key)

    # The records are not the job's outputs: Snakemake deletes the outputs of a failed job, and a
    # sweep line that fails at its last lr would lose every finished run. The manifest is the output.
    @staticmethod
    def manifest_for(results_dir: str, key: str) -> str:
        return f"{results_dir}/runs/{key}/job.json"

    @staticmethod
    def log_for(results_dir: str, key: str) -> str:
        return f"{results_dir}/logs/train/{key}.log"

    def command(self) -> str:
        return "python -m transferbench train " + " ".join(shlex.quote(a) for a in self.args)


def run_settings(profile: dict[str, Any], workload: str, spec: dict[str, Any]) -> dict[str, Any]:
    settings = {k: profile[k] for k in PROFILE_RUN_KEYS if k in profile}
    settings.update(spec.get("settings") or {})
    return settings


def jobs(profile: dict[str, Any]) -> list[Job]:
    """Every train job of the profile, in a stable order."""
    results_dir = str(profile.get("results_dir", "results"))
    per_line = bool(profile.get("sweep_per_job", True))
    out: list[Job] = []
    for workload, spec in profile["workloads"].items():
        settings = run_settings(profile, workload, spec)
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
                            job = Job(workload, recipe, int(width), float(wd), int(seed), chunk,
                                      results_dir=results_dir, per_run=not per_line)
                            args += ["--out", job.out_template, "--manifest", job.manifest]
                            if profile.get("replace"):  # after a profile edit: retrain what changed
                                args.append("--replace")
                            out.append(replace(job, args=tuple(args)))
    return out
