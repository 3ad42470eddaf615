"""Every run setting, typed and documented in one place, and the typed run config itself.

:class:`RunConfig` is the frozen dataclass a run is described by: its fields are the settings shared
by every workload, and ``settings`` holds the workload's own settings, an instance of the frozen
dataclass its :class:`~transferbench.workloads.WorkloadSpec` names. Every field's metadata is a
:class:`Setting`: default, range (:class:`Bound`) or choices, and one line of help, which becomes the
``train --help`` text of its flag and the profile-key reference (docs/settings.md, written by
``transferbench settings``; a test keeps it in sync). ``config.resolve_run_config`` is the one place
that validates and builds a RunConfig. :class:`Setting`, :class:`Bound` and :func:`setting` live in
setting_types.py (a workload's spec declares its settings with them; this module imports it) and are
re-exported here. Pure Python.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from transferbench import workloads
from transferbench.setting_types import (  # noqa: F401  (re-exported: workloads and plugins import them here)
    COUNT,
    COUNT0,
    NONNEG,
    POSITIVE,
    Bound,
    Setting,
    setting,
    settings_of,
)

#: Values of ``decay_roles``: every subset of the matrix roles (roles.py) in their canonical order, or none.
DECAY_ROLES: tuple[str, ...] = ("input,hidden,output", "input,hidden", "input,output", "hidden,output", "input",
                                "hidden", "output", "none")


def decayed_roles(value: str) -> frozenset[str]:
    """The matrix roles a ``decay_roles`` value decays: ``"input,output"`` -> {input, output}, none -> {}."""
    return frozenset() if value == "none" else frozenset(value.split(","))


@dataclass(frozen=True)
class NoSettings:
    """A workload without settings of its own."""


@dataclass(frozen=True, kw_only=True)
class RunConfig(Mapping):
    """One run's resolved and validated settings (config.resolve_run_config builds it).

    Typed attributes for the common settings (``cfg.steps``), the workload's own settings as a frozen
    dataclass of its spec (``cfg.settings.seq_len``), the derived ``lr`` and ``width_mult``, and the
    Mapping protocol over the flat key space (``cfg["seq_len"]``, ``dict(cfg)``), which is what the
    record stores and the config hash covers. Field metadata is each key's Setting (help and range).
    """

    workload: str = setting(None, "which workload to train (see `transferbench workloads`)", kind=str)
    recipe: str = setting(None, "which scaling recipe (see `transferbench recipes`)", kind=str)
    recipe_options: dict[str, Any] = setting({}, "the recipe's options, KEY=VALUE (flag --recipe-option, "
                                             "repeatable)")
    width: int = setting(None, "model width d (d_model, stage-1 channels or hidden width)", COUNT, kind=int)
    base_width: int = setting(None, "the width d0 the base lr and wd are tuned at; width_mult m = d/d0", COUNT,
                              kind=int)
    depth: int = setting(2, "the model's depth in its workload's unit: blocks, blocks per stage or hidden layers",
                         COUNT)
    base_depth: int = setting(0, "the depth L0 the base lr and wd are tuned at; depth_mult m_L = depth/base_depth "
                              "feeds the recipe's depth rule; 0 = the run's own depth (m_L = 1)", COUNT0)
    log2_lr: float = setting(None, "log2 of the base peak learning rate (several values: a sweep line)",
                             Bound(-64, 16), kind=float)
    wd: float = setting(0.1, "base AdamW weight-decay coefficient (per-step decay lr*wd)", NONNEG)
    seed: int = setting(0, "init and data-order seed", COUNT0)
    steps: int = setting(400, "optimizer steps", COUNT)
    base_steps: int = setting(0, "the horizon T0 the base lr and wd are tuned at; steps_mult = steps/base_steps "
                              "feeds the recipe's horizon rule; 0 = the run's own steps (steps_mult = 1)", COUNT0)
    batch_size: int = setting(32, "sequences or samples per step", COUNT)
    schedule: str = setting("linear", "decay after the linear warmup", choices=("cosine", "linear", "constant"))
    warmup_frac: float = setting(0.1, "fraction of the steps with linear warmup ([Kos25]: 10%)",
                                 Bound(0, 1, hi_open=True))
    min_lr_frac: float = setting(0.0, "final lr as a fraction of the peak", Bound(0, 1))
    grad_clip: float = setting(0.0, "global-norm gradient clip; 0 = off (a global norm depends on width)", NONNEG)
    adam_beta1: float = setting(0.9, "AdamW beta1", Bound(0, 1, hi_open=True))
    adam_beta2: float = setting(0.95, "AdamW beta2", Bound(0, 1, hi_open=True))
    adam_eps: float = setting(1e-8, "AdamW epsilon", POSITIVE)
    sigma: float = setting(1.0, "matrix init std is sigma/sqrt(fan_in) x the recipe's init multiplier", POSITIVE)
    readout_init: str = setting("normal", "the readout matrix's init, shared by every recipe: normal = std "
                                "sigma/sqrt(fan_in) at the base width like every matrix (the recipe's width rule "
                                "scales it), zero = zero at every width (the papers' muP runs, mup's "
                                "readout_zero_init=True)", choices=("normal", "zero"))
    decay_roles: str = setting("input,hidden,output", "which matrix roles get weight decay at all, shared by every "
                               "recipe: a subset of input,hidden,output in this order, or none (vectors never); "
                               "hidden = [Fan25]'s embedding and readout without decay", choices=DECAY_ROLES)
    data_seed: int = setting(0, "seed of the generated task (the same for every run of a sweep)", COUNT0)
    data_source: str = setting("generated", "where the data come from: a source of the workload's spec "
                               "(`transferbench workloads` lists them)")
    data_path: str = setting("", "a prepared data set's manifest.json (data_source tokens or cifar10; "
                             "`transferbench prepare-data`, or a profile's data: section)")
    eval_batches: int = setting(4, "fixed held-out batches for eval_loss", COUNT)
    log_every: int = setting(0, "record the training loss every N steps; 0 = about 100 points", COUNT0)
    diag_points: int = setting(4, "diagnostic snapshots (singular values, gains) during training", COUNT)
    coord_steps: int = setting(5, "first steps recorded for the coordinate check; 0 = none", COUNT0)
    device: str = setting("cpu", "cpu, cuda or auto", choices=("cpu", "cuda", "auto"))
    compile: bool = setting(False, "torch.compile the training step (opt-in: 1.1-1.4x at steady state, 17-30 s "
                            "cold compile per graph on a CPU; for long runs and GPUs)")
    autocast: str = setting("bf16", "mixed precision on CUDA: bf16 autocast of the forward and loss, fp32 master "
                            "weights and AdamW state; off = fp32 throughout (a CPU run is fp32 either way)",
                            choices=("bf16", "off"))
    tf32: bool = setting(True, "TF32 tensor cores for the fp32 matmuls and convolutions outside autocast, on CUDA "
                         "(no effect on CPU)")
    fused_adamw: bool = setting(True, "AdamW's fused kernel wherever torch has one for the device (CUDA; CPU since "
                                "torch 2.4); false: the foreach kernel on CUDA, the per-parameter loop on CPU")
    sdpa_backend: str = setting("auto", "kernel of scaled_dot_product_attention (an attention model's): auto = torch's "
                                "choice (flash on CUDA where it applies); flash and math also run on CPU, efficient "
                                "and cudnn only on CUDA", choices=("auto", "flash", "efficient", "cudnn", "math"))
    threads: int = setting(1, "torch threads (1 per job: jobs side by side beat threads on a small CPU)", COUNT)
    checkpoint_every: int = setting(0, "save the run's full state to checkpoint.pt in its directory every N steps, "
                                    "and resume from it when rerun; 0 = never (SIGTERM and SIGUSR1 always save)",
                                    COUNT0)
    checkpoint_minutes: float = setting(0.0, "save the run's full state every this many minutes of training; 0 = "
                                        "never (the GPU profiles: 10)", NONNEG)
    keep_checkpoints: bool = setting(False, "keep a finished run's checkpoint.pt (its final state) rather than "
                                     "delete it")
    #: The workload's own settings: an instance of its spec's settings dataclass.
    settings: Any = field(default_factory=NoSettings)
    lr: float = field(init=False)  # 2 ** log2_lr
    width_mult: float = field(init=False)  # width / base_width
    depth_mult: float = field(init=False)  # depth / base_depth (1 when base_depth is 0)
    steps_mult: float = field(init=False)  # steps / base_steps (1 when base_steps is 0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "lr", 2.0 ** self.log2_lr)
        object.__setattr__(self, "width_mult", self.width / self.base_width)
        object.__setattr__(self, "depth_mult", self.depth / self.base_depth if self.base_depth else 1.0)
        object.__setattr__(self, "steps_mult", self.steps / self.base_steps if self.base_steps else 1.0)

    def _own(self) -> list[str]:
        return [f.name for f in fields(self.settings)]

    def __getitem__(self, key: str) -> Any:
        if key in _FLAT and key != "settings":
            return getattr(self, key)
        if key in self._own():
            return getattr(self.settings, key)
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter([*(k for k in _FLAT if k != "settings"), *self._own()])

    def __len__(self) -> int:
        return len(_FLAT) - 1 + len(self._own())

    def as_dict(self) -> dict[str, Any]:
        """The flat dict the record stores (and the config hash covers)."""
        return {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in self.items()}


_FLAT = [f.name for f in fields(RunConfig)]
#: Settings shared by every workload (docs/design.md §2 vocabulary), from RunConfig's field metadata.
COMMON: dict[str, Setting] = settings_of(RunConfig)

def all_settings() -> dict[str, tuple[Setting, list[str]]]:
    """Every setting of every registered workload: {key: (setting, the workloads that own it, or [] when
    common)}. For the CLI's flags and the profile-key reference."""
    out: dict[str, tuple[Setting, list[str]]] = {k: (s, []) for k, s in COMMON.items()}
    for spec in workloads.specs():
        for key, one in settings_of(spec.settings).items():
            out.setdefault(key, (one, []))[1].append(spec.name)
    return out
