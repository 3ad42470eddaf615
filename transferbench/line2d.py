"""One train job of the 2-D lr x wd search (``--wd-search adaptive``): a (workload, recipe, width) with
every seed, searching log2 lr x log2 wd (search2d.py) in one process.

It is a :class:`line.Line` whose points are (log2 lr, log2 wd) rather than log2 lrs: the same batches, the
same :meth:`Line._one` per run (skip a record of the same config hash, else share the record of an
identical training across recipes, shared.py, else train), the same manifest format (every record, and a
``line`` section that the next width's search reads). Each run's directory names its wd: ``--out`` holds
``{wd}`` (fmt of the wd, 2^log2_wd) beside ``{seed}`` and ``{log2_lr}``, so a run of a 2-D job lies where
a 1-D line at that wd would put it (config/layout.py). The wd is the *base* wd, as ``--wd`` means it:
each recipe scales it with width by its own rule.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transferbench import rundir, search2d
from transferbench.config import ConfigError, resolve_run_config
from transferbench.config.grid import check_lr_refine
from transferbench.line import Line, _line_of


@dataclass
class Line2D(Line):
    """A 2-D job: ``log2_lrs`` and ``log2_wds`` are the lattices it searches (lr_search must be adaptive)."""

    log2_wds: tuple[float, ...] = ()
    wd_start: float | None = None  # predicted log2 wd optimum at the tuning width (default the lattice middle)
    wd_refine: float = 0.0  # octaves between fine wds near the optimum (0: the lattice only)

    def check(self) -> None:
        """Resolve every (seed, lr, wd) the job may train and check its directories: before torch loads."""
        if self.lr_search != "adaptive":
            raise ConfigError("wd_search: 'adaptive' searches lr and wd together and needs lr_search: adaptive")
        if not self.log2_wds:
            raise ConfigError("log2_wd: empty; --wd-search adaptive searches these log2 wds")
        if self.settings.get("wd") is not None:
            raise ConfigError("wd: set by the 2-D search (--log2-wd), not given with --wd-search adaptive")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seed: {self.seeds} lists a seed twice")
        if len(set(self.log2_wds)) != len(self.log2_wds):
            raise ConfigError(f"log2_wd: {list(self.log2_wds)} lists a value twice")
        self.lr_refine = check_lr_refine(self.lr_refine)
        self.wd_refine = check_lr_refine(self.wd_refine, "wd_refine")
        lrs, wds = search2d.lattices(self._bare_plan())
        for seed in self.seeds:
            cfgs = [resolve_run_config({**self.settings, "seed": seed, "log2_lr": x, "wd": 2.0**y})
                    for x in lrs for y in wds]
            outs = rundir.run_dirs(self.out, cfgs, several_seeds=len(self.seeds) > 1, several_wds=True)
            for (x, y), cfg, out in zip(((x, y) for x in lrs for y in wds), cfgs, outs, strict=True):
                self.configs[seed, x, y] = cfg
                self.dirs[seed, x, y] = out
        # Only some points are trained: probe the parents, refuse files in the way (as an adaptive Line).
        for parent in sorted({d.parent for d in self.dirs.values()}):
            rundir.check_writable("out", parent)
        for out in self.dirs.values():
            if out.exists() and not out.is_dir():
                raise ConfigError(f"out: {out} exists and is not a directory")
        for key in ("previous", "tuning"):
            path = getattr(self, key)
            if path is not None and not Path(path).is_file():
                raise ConfigError(f"{key}: {path} does not exist (the job of the narrower width runs first)")
        for key in ("previous", "tuning"):  # a 1-D line's manifest would start the search nowhere
            if getattr(self, key) is not None and "wd_search" not in _line_of(getattr(self, key)):
                raise ConfigError(f"{key}: {getattr(self, key)} is not the manifest of a 2-D (wd_search) job")

    def _bare_plan(self) -> search2d.Plan2D:
        return search2d.Plan2D(tuple(sorted(self.log2_lrs)), tuple(sorted(self.log2_wds)), (0.0, 0.0),
                               refine_lr=self.lr_refine, refine_wd=self.wd_refine)

    def plan(self) -> search2d.Plan2D:  # type: ignore[override]
        previous = _line_of(self.previous) if self.previous else None
        tuning = _line_of(self.tuning) if self.tuning else None
        return search2d.make_plan(tuple(self.log2_lrs), tuple(self.log2_wds), int(self.settings[self.axis]), previous,
                                  tuning, self.widest, (self.start, self.wd_start), self.lr_refine, self.wd_refine)

    def _stepper(self) -> Callable[[dict[Any, float]], list[Any]]:
        plan = self.plan()
        return lambda means: search2d.next_points(plan, means)

    def _key(self, seed: int, point: Any) -> tuple:
        return (seed, *point)

    def _manifest(self, done: dict, means: dict[Any, float]) -> dict[str, Any]:
        width = int(self.settings[self.axis])  # the line's value on its scale axis
        line: dict[str, Any] = {
            "axis": self.axis,
            "scale": width,
            "lr_search": "adaptive",
            "wd_search": "adaptive",
            # [log2 lr, log2 wd, seed-mean capped loss] per point tried
            "surface": [[x, y, means[x, y]] for x, y in sorted(means)],
        }
        if means and any(math.isfinite(v) for v in means.values()):
            best = search2d.argmin(means)
            opt, edge = search2d.fitted_optimum(means)
            previous = _line_of(self.previous) if self.previous else None
            line.update(argmin=list(best), fitted_opt=[v if math.isfinite(v) else None for v in opt],
                        edge=list(edge), drift=list(search2d.drift_estimate(previous, width, best)))
        records = []
        for (_, _, y), e in sorted(done.items()):
            records.append({**{k: v for k, v in e.items() if k != "capped"}, "log2_wd": y})
        return {"records": records, "line": line}
