"""Every run setting, typed and documented in one place: default, range and one line of help.

A :class:`Setting` is the single source of a key's default, its allowed range (:class:`Bound`) or
choices, and its help text, which becomes the ``train --help`` text of its flag and the profile-key
reference (docs/settings.md, written by ``transferbench settings --markdown``; a test keeps it in sync).
Settings shared by every workload are :data:`COMMON`; each workload's own settings (and its overrides
of common defaults) live in its :class:`~transferbench.workload_specs.WorkloadSpec`. Pure Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple


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


COUNT, COUNT0, POSITIVE, NONNEG = Bound(1), Bound(0), Bound(0, lo_open=True), Bound(0)


@dataclass(frozen=True)
class Setting:
    """One run setting. ``default`` None means required; its type is the type of the default (or
    ``kind`` when there is no default). ``bound`` ranges numbers; ``choices`` lists allowed strings."""

    default: Any
    help: str
    bound: Bound | None = None
    choices: tuple[str, ...] | None = None
    kind: type | None = None

    @property
    def type(self) -> type | None:
        return self.kind or (type(self.default) if self.default is not None else None)


#: Settings shared by every workload (docs/design.md §2 vocabulary).
COMMON: dict[str, Setting] = {
    "workload": Setting(None, "which workload to train (see `transferbench workloads`)", kind=str),
    "recipe": Setting(None, "which scaling recipe (see `transferbench recipes`)", kind=str),
    "recipe_options": Setting({}, "the recipe's options, KEY=VALUE (flag --recipe-option, repeatable)"),
    "width": Setting(None, "model width d (d_model, stage-1 channels or hidden width)", COUNT, kind=int),
    "base_width": Setting(None, "the width d0 the base lr and wd are tuned at; width_mult m = d/d0", COUNT,
                          kind=int),
    "depth": Setting(2, "blocks (llama), BasicBlocks per stage (resnet) or hidden layers (mlp)", COUNT),
    "log2_lr": Setting(None, "log2 of the base peak learning rate (several values: a sweep line)",
                       Bound(-64, 16), kind=float),
    "wd": Setting(0.1, "base AdamW weight-decay coefficient (per-step decay lr*wd)", NONNEG),
    "seed": Setting(0, "init and data-order seed", COUNT0),
    "steps": Setting(400, "optimizer steps", COUNT),
    "batch_size": Setting(32, "sequences (llama) or samples per step", COUNT),
    "schedule": Setting("linear", "decay after the linear warmup", choices=("cosine", "linear", "constant")),
    "warmup_frac": Setting(0.1, "fraction of the steps with linear warmup ([Kos25]: 10%)",
                           Bound(0, 1, hi_open=True)),
    "min_lr_frac": Setting(0.0, "final lr as a fraction of the peak", Bound(0, 1)),
    "grad_clip": Setting(0.0, "global-norm gradient clip; 0 = off (a global norm depends on width)", NONNEG),
    "adam_beta1": Setting(0.9, "AdamW beta1", Bound(0, 1, hi_open=True)),
    "adam_beta2": Setting(0.95, "AdamW beta2", Bound(0, 1, hi_open=True)),
    "adam_eps": Setting(1e-8, "AdamW epsilon", POSITIVE),
    "sigma": Setting(1.0, "matrix init std is sigma/sqrt(fan_in) x the recipe's init multiplier", POSITIVE),
    "data_seed": Setting(0, "seed of the generated task (the same for every run of a sweep)", COUNT0),
    "data_source": Setting("generated", "where the data come from: a source of the workload's spec"),
    "eval_batches": Setting(4, "fixed held-out batches for eval_loss", COUNT),
    "log_every": Setting(0, "record the training loss every N steps; 0 = about 100 points", COUNT0),
    "diag_points": Setting(4, "diagnostic snapshots (singular values, gains) during training", COUNT),
    "coord_steps": Setting(5, "first steps recorded for the coordinate check; 0 = none", COUNT0),
    "device": Setting("cpu", "cpu, cuda or auto", choices=("cpu", "cuda", "auto")),
    "threads": Setting(1, "torch threads (1 per job: jobs side by side beat threads on a small CPU)", COUNT),
}


def all_settings() -> dict[str, tuple[Setting, list[str]]]:
    """Every setting of every registered workload: {key: (setting, the workloads that own it, or [] when
    common)}. For the CLI's flags and the profile-key reference."""
    from transferbench import workload_specs

    out: dict[str, tuple[Setting, list[str]]] = {k: (s, []) for k, s in COMMON.items()}
    for name in workload_specs.names():
        for key, setting in workload_specs.get(name).settings.items():
            out.setdefault(key, (setting, []))[1].append(name)
    return out
