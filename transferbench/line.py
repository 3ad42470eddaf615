"""One train job: a sweep line (workload, recipe, width, wd) with every one of its seeds, in one process.

``lr_search: grid`` trains every lr given; ``adaptive`` asks search.py which lrs to train, batch by
batch, on the seed-mean loss (every seed trains the same lrs, so recipes stay paired by seed), from the
given lattice and, with ``lr_refine``, the fine points between its lrs. The
seeds share the process, so the ~3 s torch import is paid once per line. Every run goes through
:func:`_one`: skip a record of the same config hash, else share the record of an identical training
(shared.py), else train (from the run's checkpoint, if a killed process left one: checkpoint.py). A
run whose fingerprint another process is training is put back and taken up after the rest of the batch.
The manifest (the DAG's output) lists every record and, for the next width's search, this line's curve,
argmin, fitted optimum and drift.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transferbench import checkpoint, rundir, search
from transferbench.config import ConfigError, config_hash, resolve_run_config
from transferbench.config.grid import check_lr_refine, fmt
from transferbench.record import RECORD_NAME, read_record, write_json_atomic
from transferbench.settings import RunConfig

log = logging.getLogger("transferbench")


@dataclass
class Line:
    """A train command's line: its settings (without seed and log2_lr), seeds, lrs and search."""

    settings: dict[str, Any]
    seeds: list[int]
    log2_lrs: list[float]
    out: str
    lr_search: str = "grid"
    previous: Path | None = None  # the narrower width's manifest (adaptive)
    tuning: Path | None = None  # the tuning width's manifest (adaptive, every other width)
    widest: bool = False
    #: The sweep's scale axis (width, depth or steps): the setting whose value orders the lines of a search
    #: and that the manifest names (``scale``), so that aggregate knows each run's axis.
    axis: str = "width"
    start: float | None = None
    lr_refine: float = 0.0  # adaptive: octaves between fine points near the optimum (search.py; CLI default 0.5)
    shared_dir: Path | None = None
    force: bool = False
    replace: bool = False
    progress: bool = False
    configs: dict[tuple[int, float], RunConfig] = field(default_factory=dict)
    dirs: dict[tuple[int, float], Path] = field(default_factory=dict)
    _setups: dict[tuple[int, float], Any] = field(default_factory=dict)

    def check(self) -> None:
        """Resolve every (seed, lr) the line may train and check its directories: before torch loads."""
        if self.lr_search not in ("grid", "adaptive"):
            raise ConfigError(f"lr_search: {self.lr_search!r} is not one of grid, adaptive")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seed: {self.seeds} lists a seed twice")
        self.lr_refine = check_lr_refine(self.lr_refine)
        # An adaptive line may train any point of the fine lattice (search.fine_lattice), so all are resolved.
        lrs = self.log2_lrs if self.lr_search == "grid" else search.fine_lattice(tuple(self.log2_lrs), self.lr_refine)
        for seed in self.seeds:
            cfgs = [resolve_run_config({**self.settings, "seed": seed, "log2_lr": x}) for x in lrs]
            outs = rundir.run_dirs(self.out, cfgs, several_seeds=len(self.seeds) > 1)
            for cfg, out in zip(cfgs, outs, strict=True):
                self.configs[seed, cfg.log2_lr] = cfg
                self.dirs[seed, cfg.log2_lr] = out
        # A grid line trains every directory, so each is made and probed now; an adaptive line only some,
        # so it probes their parents (no empty directories for lrs never tried) and refuses files in the way.
        if self.lr_search == "grid":
            for out in self.dirs.values():
                rundir.check_writable("out", out)
        else:
            for parent in sorted({d.parent for d in self.dirs.values()}):
                rundir.check_writable("out", parent)
            for out in self.dirs.values():
                if out.exists() and not out.is_dir():
                    raise ConfigError(f"out: {out} exists and is not a directory")
        for key in ("previous", "tuning"):
            path = getattr(self, key)
            if path is not None and not Path(path).is_file():
                raise ConfigError(f"{key}: {path} does not exist (the line of the narrower width runs first)")

    def plan(self) -> search.Plan:
        previous = _line_of(self.previous) if self.previous else None
        tuning = _line_of(self.tuning) if self.tuning else None
        return search.make_plan(tuple(self.log2_lrs), int(self.settings[self.axis]), previous, tuning, self.widest,
                                self.start, self.lr_refine)

    @checkpoint.signals_handled()  # SIGTERM checkpoints the run in progress and exits 143; SIGUSR1 checkpoints
    def run(self) -> dict[str, Any]:
        """Train the line; return its manifest. A run that a killed process left half done resumes from its
        checkpoint (checkpoint.py); finished runs are skipped by their record."""
        # torch loads here, before any run's lock is taken: a Ctrl-C during `import torch` could leave its
        # thread pools half made, and the interpreter hung at exit (seen once in CI) instead of exiting 130.
        import transferbench.train  # noqa: F401
        done: dict[tuple, dict[str, Any]] = {}
        step = self._stepper()
        means: dict[Any, float] = {}
        todo = step(means)
        while todo:
            self._batch([self._key(s, x) for x in todo for s in self.seeds], done)
            for x in todo:
                losses = [done[self._key(s, x)]["capped"] for s in self.seeds]
                means[x] = sum(losses) / len(losses)
            todo = step(means)
        return self._manifest(done, means)

    def _stepper(self) -> Callable[[dict[Any, float]], list[Any]]:
        """means so far -> the points to train next (empty: done). A grid line trains every lr at once."""
        if self.lr_search != "adaptive":
            return lambda means: [] if means else sorted(self.log2_lrs)
        plan = self.plan()
        return lambda means: search.next_lrs(plan, means)

    def _key(self, seed: int, point: Any) -> tuple:
        """A run's key in configs and dirs: (seed, log2_lr) here, (seed, log2_lr, log2_wd) in line2d.py."""
        return (seed, point)

    def _batch(self, pending: list[tuple[int, float]], done: dict) -> None:
        for wait in (False, True):  # first pass: skip what another process is training; then wait for it
            later = []
            for key in pending:
                entry = self._one(key, wait)
                if entry is None:
                    later.append(key)
                else:
                    done[key] = entry
            pending = later

    def _one(self, key: tuple[int, float], wait: bool) -> dict[str, Any] | None:
        from transferbench.runlock import run_lock

        cfg, out = self.configs[key], self.dirs[key]
        out.mkdir(parents=True, exist_ok=True)
        with run_lock(out):  # a second writer of this very run is an error, not a turn (runlock.py)
            existing, h = out / RECORD_NAME, config_hash(cfg)
            if rundir.keep_existing(existing, h, self.force, self.replace):
                return _entry(cfg, existing, read_record(existing))
            if self.force:  # --force reruns from scratch: a checkpoint may be of older code
                checkpoint.discard(out)
            record = self._train_or_share(key, wait)
            if record is None:
                return None
        s = record["summary"]
        log.info(
            "%s %s d=%d seed=%d log2_lr=%s wd=%s: eval %.4f diverged=%s%s -> %s",
            cfg.workload,
            cfg.recipe,
            cfg.width,
            cfg.seed,
            fmt(cfg.log2_lr),
            fmt(cfg.wd),
            s["eval_loss"] if s["eval_loss"] is not None else math.nan,
            s["diverged"],
            f" (shared with {record['shared_with']})" if record.get("shared_with") else f" ({s['wall_time']:.1f}s)",
            existing,
        )
        return _entry(cfg, existing, record)

    def _train_or_share(self, key: tuple[int, float], wait: bool) -> dict[str, Any] | None:
        from transferbench import shared
        from transferbench.train import setup, train

        cfg, out = self.configs[key], self.dirs[key]
        run = self._setups.get(key) or setup(cfg)
        fp = shared.fingerprint(run)
        extra = {"trainer_fingerprint": fp, "shared_with": None}
        if self.shared_dir is None:
            return train(cfg, out, progress=self.progress, run=run, extra=extra)
        with shared.claimed(self.shared_dir, fp, wait) as mine:
            if not mine:
                self._setups[key] = run  # keep the set-up run for the second pass
                return None
            self._setups.pop(key, None)
            source = shared.trained_record(self.shared_dir, fp)
            if source is not None:
                record = shared.shared_copy(read_record(source), _identity(run), source.parent)
                write_json_atomic(out / RECORD_NAME, record)
                return record
            with checkpoint.deferred():  # a SIGTERM after the last step exits once the record is remembered
                record = train(cfg, out, progress=self.progress, run=run, extra=extra)
                shared.remember(self.shared_dir, fp, out / RECORD_NAME)
            return record

    def _manifest(self, done: dict, means: dict[float, float]) -> dict[str, Any]:
        width = int(self.settings[self.axis])  # the line's value on its scale axis
        line: dict[str, Any] = {
            "axis": self.axis,
            "scale": width,
            "lr_search": self.lr_search,
            "curve": {fmt(x): means[x] for x in sorted(means)},
        }
        if means:
            best = search.argmin(means)
            opt, edge = search.fitted_optimum(means)
            previous = _line_of(self.previous) if self.previous else None
            line.update(
                argmin=best,
                fitted_opt=opt if math.isfinite(opt) else None,
                edge=edge,
                drift=search.drift_estimate(previous, width, best),
            )
        records = [{k: v for k, v in e.items() if k != "capped"} for _, e in sorted(done.items())]
        return {"records": records, "line": line}


def _entry(cfg: RunConfig, path: Path, record: dict[str, Any]) -> dict[str, Any]:
    return {
        "seed": cfg.seed,
        "log2_lr": cfg.log2_lr,
        "wd": cfg.wd,
        "record": str(path),
        "config_hash": config_hash(cfg),
        "shared_with": record.get("shared_with"),
        "capped": search.capped(record["summary"]),
    }


def _line_of(manifest: Path) -> dict[str, Any]:
    import json

    try:
        return json.loads(Path(manifest).read_text())["line"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{manifest}: not a line manifest with a 'line' section ({exc})") from None


def _identity(run: Any) -> dict[str, Any]:
    """This run's own identity fields, for a record shared from another run (shared.shared_copy)."""
    from transferbench.groups import group_records
    from transferbench.record import provenance

    cfg = run.cfg
    return {
        "config": cfg.as_dict(),
        "config_hash": config_hash(cfg),
        "recipe": run.meta,
        "param_groups": group_records(run.groups),
        "output_mult": run.output_mult,
        "provenance": provenance(str(run.device), int(cfg.threads), run.meta),
        "factors": [(g["lr_factors"], g["wd_factors"]) for g in run.groups],
    }


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    write_json_atomic(Path(path), manifest)
