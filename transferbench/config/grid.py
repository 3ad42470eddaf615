"""A checked profile (config/*.yaml; see profile.py) -> the grid of training jobs the DAG runs.

Pure Python (the Snakefile imports it; no torch). A job is one ``python -m transferbench train``
command: by default one sweep line (every lr and every seed of one workload, recipe, width and wd, so
the 3 s torch import is paid once per line, not once per run), or one run per job when the profile
says ``sweep_per_job: false`` (GPU clusters). With ``lr_search: adaptive`` a line chooses its own lrs
from the profile's ``log2_lrs`` (search.py) and needs the manifest of the next narrower width's line
(its start) and of the tuning width's (the transferred lr): a job's ``needs``; ``lr_refine`` reaches it
as ``--lr-refine``.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field, replace
from typing import Any

from transferbench.config import layout
from transferbench.config.data_grid import workload_data
from transferbench.config.run import ConfigError
from transferbench.recipes.instance import profile_options, slug
from transferbench.record import RECORD_NAME

#: Profile-level run settings that apply to every workload unless a workload overrides them.
PROFILE_RUN_KEYS = ("device", "threads", "checkpoint_every", "checkpoint_minutes", "keep_checkpoints")
#: ``lr_refine``'s default (as in workflow/schemas/config.schema.yaml): the adaptive search refines to
#: half an octave around each optimum (search.py). A property of the search, not of a run: not hashed.
LR_REFINE = 0.5


def fmt(x: float) -> str:
    """Numbers as they appear in paths and flags: 0.1, -6, -6.5, 1e-05."""
    return f"{x:g}"


@dataclass(frozen=True)
class Job:
    """One train command, the records it writes and its manifest.

    Its paths come from layout.py, as the rules' patterns do (``layout.job_manifest(R, "{job}")``).
    """

    workload: str
    recipe: str
    width: int
    wd: float
    seeds: tuple[int, ...]
    log2_lrs: tuple[float, ...]
    args: tuple[str, ...] = field(default=(), compare=False)
    results_dir: str = "results"
    #: One run per job (``sweep_per_job: false``) rather than one sweep line per job.
    per_run: bool = False
    #: The manifests this job reads (adaptive search): the narrower width's and the tuning width's lines.
    needs: tuple[str, ...] = field(default=(), compare=False)
    #: ``adaptive``: log2_lrs are a lattice to search, and records are known only from the manifest.
    adaptive: bool = False
    #: A side study outside the lr sweep (``invariance``): its lines live under runs/{study}/ and its
    #: records stay out of runs.csv (invariance.py reads them).
    study: str = ""

    @property
    def line(self) -> str:
        """Path fragment of the sweep line: {workload}/{recipe}/w{width}_wd{wd}, the recipe as a path
        component (``wd-power[p=0.5]`` -> ``wd-power@p=0.5``, recipes/instance.py)."""
        line = f"{self.workload}/{slug(self.recipe)}/w{self.width}_wd{fmt(self.wd)}"
        return f"{self.study}/{line}" if self.study else line

    @property
    def key(self) -> str:
        """What names the job in paths: its sweep line, plus _s{seed}/lr{log2_lr} for a one-run job."""
        return f"{self.line}_s{self.seeds[0]}/lr{fmt(self.log2_lrs[0])}" if self.per_run else self.line

    def _run_dir(self, seed: int | str, log2_lr: str) -> str:
        return layout.run_dir(self.results_dir, self.line, seed, log2_lr)

    def record(self, log2_lr: float, seed: int | None = None) -> str:
        return f"{self._run_dir(self.seeds[0] if seed is None else seed, fmt(log2_lr))}/{RECORD_NAME}"

    @property
    def records(self) -> list[str]:
        """Every record a grid job writes (an adaptive job's are listed in its manifest)."""
        return [self.record(x, s) for s in self.seeds for x in self.log2_lrs]

    @property
    def out_template(self) -> str:
        return self._run_dir("{seed}", "{log2_lr}")

    @property
    def manifest(self) -> str:
        """The job's declared output: written by train once every run of the job has its record."""
        return layout.job_manifest(self.results_dir, self.key)

    @property
    def log(self) -> str:
        return layout.log(self.results_dir, "train", self.key)

    def command(self) -> str:
        return "python -m transferbench train " + " ".join(shlex.quote(a) for a in self.args)


def check_lr_refine(value: Any, where: str = "lr_refine") -> float:
    """``lr_refine`` as octaves: 0 (no refinement) or a step that divides one octave into whole steps
    (1, 0.5, 0.25, ...), so the fine points fall on the same places between every pair of octaves."""
    bad = f"{where}: {value!r} is not 0 or a step that divides one octave into whole steps (0.5, 0.25, ...)"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(bad)
    if value == 0:
        return 0.0
    if not 0 < value <= 1 or abs(1 / value - round(1 / value)) > 1e-6:
        raise ConfigError(bad)
    return float(value)


def lr_refine(profile: dict[str, Any], workload: str | None = None) -> float:
    """``lr_refine`` (checked): the workload's own if it gives one, else the profile's, else the default."""
    spec = profile["workloads"][workload] if workload is not None else {}
    if spec.get("lr_refine") is not None:
        return check_lr_refine(spec["lr_refine"], f"workloads.{workload}.lr_refine")
    value = profile.get("lr_refine")
    return check_lr_refine(LR_REFINE if value is None else value)


def run_settings(profile: dict[str, Any], workload: str, spec: dict[str, Any], width: int | None = None
                 ) -> dict[str, Any]:
    """The settings of a workload's runs: the profile's run keys, its ``settings``, and at ``width`` its
    ``width_settings`` entry for that width (e.g. a token budget per width)."""
    settings = {k: profile[k] for k in PROFILE_RUN_KEYS if k in profile}
    settings.update(spec.get("settings") or {})
    if width is not None:
        settings.update((spec.get("width_settings") or {}).get(int(width)) or {})
    return settings


def gpu_args(settings: dict[str, Any], results_dir: str) -> list[str]:
    """A GPU job's lock directory: its process claims a free GPU there (devices.py), as Snakemake's
    ``--resources gpu=K`` limits how many run at once but assigns no device ids. CPU jobs get nothing."""
    return ["--gpu-locks", layout.gpu_locks(results_dir)] if settings.get("device") in ("cuda", "auto") else []


def tuning_width(spec: dict[str, Any]) -> int:
    """The width whose optimum is transferred: ``base_width`` if swept, else the narrowest (as metrics.py)."""
    widths = [int(w) for w in spec["widths"]]
    return int(spec["base_width"]) if int(spec["base_width"]) in widths else min(widths)


def jobs(profile: dict[str, Any]) -> list[Job]:
    """Every train job of the profile, in a stable order."""
    results_dir = str(profile.get("results_dir", "results"))
    per_line = bool(profile.get("sweep_per_job", True))
    adaptive = profile.get("lr_search", "grid") == "adaptive"
    out: list[Job] = []
    for workload, spec in profile["workloads"].items():
        refine = lr_refine(profile, workload) if adaptive else 0.0
        settings = run_settings(profile, workload, spec)
        data_flags, data_manifest = workload_data(profile, workload, spec)
        seeds = tuple(int(s) for s in spec.get("seeds") or profile["seeds"])
        lrs = tuple(float(x) for x in spec["log2_lrs"])
        chunks = [(seeds, lrs)] if per_line else [((s,), (x,)) for s in seeds for x in lrs]
        tune = tuning_width(spec)
        # Adaptive lines run in width order from the tuning width: each starts from the previous one's optimum.
        order = [tune, *sorted(int(w) for w in spec["widths"] if int(w) != tune)]
        for recipe in spec.get("recipes") or profile["recipes"]:
            options = profile_options(profile.get("recipe_options"), recipe)
            for wd in spec["wds"]:
                previous: Job | None = None
                tuning: Job | None = None
                for width in order:
                    settings = run_settings(profile, workload, spec, width)
                    for chunk_seeds, chunk in chunks:
                        job = Job(workload, recipe, width, float(wd), chunk_seeds, chunk, results_dir=results_dir,
                                  per_run=not per_line, adaptive=adaptive)
                        args = [
                            "--workload", workload, "--recipe", recipe, "--width", str(width),
                            "--base-width", str(spec["base_width"]), "--wd", fmt(wd),
                            "--seed", *(str(s) for s in chunk_seeds), "--log2-lr", *(fmt(x) for x in chunk),
                        ]
                        for key, value in sorted(settings.items()):
                            args += ["--" + key.replace("_", "-"), str(value)]
                        for key, value in sorted(options.items()):
                            args += ["--recipe-option", f"{key}={value}"]
                        args += data_flags
                        args += ["--out", job.out_template, "--manifest", job.manifest,
                                 "--shared-dir", layout.shared_dir(results_dir), *gpu_args(settings, results_dir)]
                        needs: tuple[str, ...] = ()
                        if adaptive:
                            args += ["--lr-search", "adaptive", "--lr-refine", fmt(refine)]
                            if spec.get("log2_lr_start") is not None and previous is None:
                                args += ["--log2-lr-start", fmt(spec["log2_lr_start"])]
                            if previous is not None:
                                args += ["--previous", previous.manifest]
                            if tuning is not None:
                                args += ["--tuning", tuning.manifest]
                            if width == max(order):
                                args.append("--widest")
                            needs = tuple(dict.fromkeys(j.manifest for j in (previous, tuning) if j is not None))
                        if profile.get("replace"):  # after a profile edit: retrain what changed
                            args.append("--replace")
                        if data_manifest is not None:
                            needs = (data_manifest, *needs)
                        out.append(replace(job, args=tuple(args), needs=needs))
                    previous = out[-1]
                    tuning = tuning or out[-1]
    return out


def invariance_jobs(profile: dict[str, Any]) -> list[Job]:
    """The ``invariance`` study's jobs ([Fan25]'s check, invariance.py): at each width and log2 k, one run
    per seed at lr = 2^log2_lr x k and wd = wd / k, so lr x wd (the decay timescale) stays fixed and
    eta/lambda moves by k^2. One job per (width, k), lr_search grid; they share trained runs with the
    sweep where one coincides (shared.py)."""
    study = profile.get("invariance")
    if not study:
        return []
    results_dir = str(profile.get("results_dir", "results"))
    wl = study["workload"]
    spec = profile["workloads"][wl]
    seeds = tuple(int(s) for s in study.get("seeds") or spec.get("seeds") or profile["seeds"])
    options = profile_options(profile.get("recipe_options"), study["recipe"])
    data_flags, data_manifest = workload_data(profile, wl, spec)
    out = []
    for width in study["widths"]:
        settings = run_settings(profile, wl, spec, int(width))
        for log2_k in study["log2_ks"]:
            log2_lr, wd = float(study["log2_lr"]) + float(log2_k), float(study["wd"]) / 2.0 ** float(log2_k)
            job = Job(wl, study["recipe"], int(width), wd, seeds, (log2_lr,), results_dir=results_dir,
                      study="invariance")
            args = ["--workload", wl, "--recipe", study["recipe"], "--width", str(width),
                    "--base-width", str(spec["base_width"]), "--wd", fmt(wd), "--seed", *(str(s) for s in seeds),
                    "--log2-lr", fmt(log2_lr)]
            for key, value in sorted(settings.items()):
                args += ["--" + key.replace("_", "-"), str(value)]
            for key, value in sorted(options.items()):
                args += ["--recipe-option", f"{key}={value}"]
            args += [*data_flags, "--out", job.out_template, "--manifest", job.manifest,
                     "--shared-dir", layout.shared_dir(results_dir), *gpu_args(settings, results_dir)]
            out.append(replace(job, args=tuple(args), needs=(data_manifest,) if data_manifest else ()))
    return out
