"""A checked profile (config/*.yaml; see profile.py) -> the grid of training jobs the DAG runs.

Pure Python (the Snakefile imports it; no torch). A job is one ``python -m transferbench train``
command: by default one sweep line (every lr and every seed of one workload, recipe, width and wd, so
the 3 s torch import is paid once per line, not once per run), or one run per job when the profile
says ``sweep_per_job: false`` (GPU clusters). With ``lr_search: adaptive`` a line chooses its own lrs
from the profile's ``log2_lrs`` (search.py) and needs the manifest of the next narrower width's line
(its start) and of the tuning width's (the transferred lr): a job's ``needs``; ``lr_refine`` reaches it
as ``--lr-refine``. With ``wd_search: adaptive`` (config/wd_search.py) a job is one (workload, recipe,
width) searching log2 lr x log2 wd (search2d.py), with the same ``needs``.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field, replace
from typing import Any

from transferbench.config import axes, layout
from transferbench.config.data_grid import workload_data
from transferbench.config.search_keys import check_lr_refine, wd_refine, wd_search
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
    #: The 2-D lr x wd search (``wd_search: adaptive``, search2d.py): the log2 wd lattice it searches; then
    #: ``wd`` is only the search's start (what cost estimates train at), never in a path.
    log2_wds: tuple[float, ...] = ()
    #: The sweep's scale axis (axes.py) and the job's value on it: its width, depth or steps.
    axis: str = "width"
    scale: int = 0

    @property
    def line(self) -> str:
        """Path fragment of the sweep line: {workload}/{recipe}/w{width}_wd{wd}, the recipe as a path
        component (``wd-power[p=0.5]`` -> ``wd-power@p=0.5``, recipes/instance.py); a 2-D job's
        {workload}/{recipe}/w{width}, whose runs each add their own _wd{wd} (:meth:`record`)."""
        line = f"{self.workload}/{slug(self.recipe)}/w{self.width}{axes.tag(self.axis, self.scale)}"
        line = line if self.log2_wds else f"{line}_wd{fmt(self.wd)}"
        return f"{self.study}/{line}" if self.study else line

    @property
    def key(self) -> str:
        """What names the job in paths: its sweep line, plus _s{seed}/lr{log2_lr} for a one-run job."""
        return f"{self.line}_s{self.seeds[0]}/lr{fmt(self.log2_lrs[0])}" if self.per_run else self.line

    def _run_dir(self, seed: int | str, log2_lr: str, wd: str | None = None) -> str:
        line = f"{self.line}_wd{wd}" if self.log2_wds else self.line
        return layout.run_dir(self.results_dir, line, seed, log2_lr)

    def record(self, log2_lr: float, seed: int | None = None, log2_wd: float | None = None) -> str:
        """A run's record; a 2-D job's run also by its log2 wd (default the job's start)."""
        wd = fmt(2.0**log2_wd if log2_wd is not None else self.wd) if self.log2_wds else None
        return f"{self._run_dir(self.seeds[0] if seed is None else seed, fmt(log2_lr), wd)}/{RECORD_NAME}"

    @property
    def records(self) -> list[str]:
        """Every record a grid job writes (an adaptive job's are listed in its manifest; here its lattice's)."""
        wds = self.log2_wds or (None,)
        return [self.record(x, s, y) for s in self.seeds for x in self.log2_lrs for y in wds]

    @property
    def out_template(self) -> str:
        return self._run_dir("{seed}", "{log2_lr}", "{wd}")

    @property
    def manifest(self) -> str:
        """The job's declared output: written by train once every run of the job has its record."""
        return layout.job_manifest(self.results_dir, self.key)

    @property
    def log(self) -> str:
        return layout.log(self.results_dir, "train", self.key)

    def command(self) -> str:
        return "python -m transferbench train " + " ".join(shlex.quote(a) for a in self.args)


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
        axis, base = axes.axis_of(spec), axes.base_of(spec)
        tune = axes.tuning(spec)
        # Adaptive lines run in the axis' order from the tuning value: each starts from the previous one's optimum.
        order = [tune, *sorted(x for x in axes.values_of(spec) if x != tune)]
        # A 2-D job (wd_search: adaptive) searches the log2_wds lattice: one job per width, not per wd.
        log2_wds = tuple(float(y) for y in spec["log2_wds"]) if wd_search(profile, workload) == "adaptive" else ()
        wds = [2.0 ** _wd_start(spec)] if log2_wds else spec["wds"]
        for recipe in spec.get("recipes") or profile["recipes"]:
            options = profile_options(profile.get("recipe_options"), recipe)
            for wd in wds:
                previous: Job | None = None
                tuning: Job | None = None
                for scale in order:
                    width = scale if axis == "width" else int(spec["widths"][0])
                    settings = {**run_settings(profile, workload, spec, width), **axes.settings_at(axis, scale, base)}
                    for chunk_seeds, chunk in chunks:
                        job = Job(workload, recipe, width, float(wd), chunk_seeds, chunk, results_dir=results_dir,
                                  per_run=not per_line, adaptive=adaptive, log2_wds=log2_wds, axis=axis, scale=scale)
                        wd_args = ["--wd-search", "adaptive", "--log2-wd", *(fmt(y) for y in log2_wds)] if log2_wds \
                            else ["--wd", fmt(wd)]
                        args = [
                            "--workload", workload, "--recipe", recipe, "--width", str(width),
                            "--base-width", str(spec["base_width"]), *wd_args,
                            "--seed", *(str(s) for s in chunk_seeds), "--log2-lr", *(fmt(x) for x in chunk),
                        ]
                        for key, value in sorted(settings.items()):
                            args += ["--" + key.replace("_", "-"), str(value)]
                        for key, value in sorted(options.items()):
                            args += ["--recipe-option", f"{key}={value}"]
                        args += data_flags
                        args += ["--axis", axis] if axis != "width" else []
                        args += ["--out", job.out_template, "--manifest", job.manifest,
                                 "--shared-dir", layout.shared_dir(results_dir), *gpu_args(settings, results_dir)]
                        needs: tuple[str, ...] = ()
                        if adaptive:
                            args += ["--lr-search", "adaptive", "--lr-refine", fmt(refine)]
                            if spec.get("log2_lr_start") is not None and previous is None:
                                args += ["--log2-lr-start", fmt(spec["log2_lr_start"])]
                            if log2_wds:
                                args += ["--wd-refine", fmt(wd_refine(profile, workload))]
                                if spec.get("log2_wd_start") is not None and previous is None:
                                    args += ["--log2-wd-start", fmt(spec["log2_wd_start"])]
                            if previous is not None:
                                args += ["--previous", previous.manifest]
                            if tuning is not None:
                                args += ["--tuning", tuning.manifest]
                            if scale == max(order):
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


def _wd_start(spec: dict[str, Any]) -> float:
    """A 2-D job's representative log2 wd (its ``wd``): the tuning width's start, else the lattice's middle."""
    lattice = [float(y) for y in spec["log2_wds"]]
    start = spec.get("log2_wd_start")
    return float(start) if start is not None else (min(lattice) + max(lattice)) / 2


#: The invariance study's directions in (log2 lr, log2 wd) per unit step: ``ratio`` (lr x k, wd / k: lr x wd and
#: so tau fixed, eta / lambda x k^2) and ``product`` (lr x j, wd x j: eta / lambda fixed, tau x j^2).
DIRECTIONS = {"ratio": (1.0, -1.0), "product": (1.0, 1.0)}


def invariance_points(study: dict[str, Any]) -> list[tuple[str, float, float]]:
    """(study name, log2 lr, wd) of every point of the ``invariance`` study: along each of its ``directions``
    (default ``[ratio]``) at every step of ``log2_ks`` (the product direction: of ``log2_js``, default
    ``log2_ks``; its steps below 0 shrink tau by 4^j, out of the steady state the law is about); the product
    direction skips its step 0 (the ratio direction's centre) and trains under its own study name (its lines
    may coincide with the ratio's)."""
    out = []
    directions = study.get("directions") or ["ratio"]
    for direction in directions:
        du, dv = DIRECTIONS[direction]
        steps = study["log2_ks"] if direction == "ratio" else study.get("log2_js") or study["log2_ks"]
        for log2_k in steps:
            if direction != "ratio" and float(log2_k) == 0 and "ratio" in directions:
                continue
            name = "invariance" if direction == "ratio" else f"invariance-{direction}"
            out.append((name, float(study["log2_lr"]) + du * float(log2_k),
                        float(study["wd"]) * 2.0 ** (dv * float(log2_k))))
    return out


def invariance_jobs(profile: dict[str, Any]) -> list[Job]:
    """The ``invariance`` study's jobs ([Fan25]'s check, invariance.py): at each width and each point of
    :func:`invariance_points`, one run per seed; along the ratio direction, lr = 2^log2_lr x k and wd = wd / k,
    so lr x wd (the decay timescale) stays fixed and eta/lambda moves by k^2; along the product direction
    (``directions: [ratio, product]``) lr x j and wd x j, eta/lambda fixed, so the two identify both of the
    law's exponents. One job per (width, point), lr_search grid; they share trained runs with the sweep where
    one coincides (shared.py)."""
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
        for name, log2_lr, wd in invariance_points(study):
            job = Job(wl, study["recipe"], int(width), wd, seeds, (log2_lr,), results_dir=results_dir, study=name)
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
