"""The ``mlp`` workload, [Fan25]'s minimal setting: a stack of normalized linear layers (model.py) regressing
a random teacher network (data.py). This module is its spec, pure Python: settings, FLOPs formula, cluster
resources and builders named as strings (docs/design.md §4)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from transferbench.setting_types import COUNT, NONNEG, setting
from transferbench.workloads import WorkloadSpec


@dataclass(frozen=True)
class MLPSettings:
    """mlp's own settings."""

    # at 32 the student barely beat the best linear fit in 400 steps; at 16 width helps
    in_dim: int = setting(16, "input dimension", COUNT)
    out_dim: int = setting(8, "output dimension", COUNT)
    teacher_width: int = setting(64, "the teacher network's width", COUNT)
    teacher_depth: int = setting(2, "the teacher network's hidden layers", COUNT)
    label_noise: float = setting(0.05, "std of the noise on the targets (MSE floor: its square)", NONNEG)


#: Per sample: 6·(in·d + depth·d² + d·out) − 2·in·d (training = 3 x forward; no gradient for the inputs).
FORMULA = "6*(in*d + depth*d^2 + d*out) - 2*in*d per sample"


def mlp_flops(d: int, depth: int, d_in: int, d_out: int) -> float:
    """Model FLOPs per sample of one training step (:data:`FORMULA`)."""
    return 6.0 * (d_in * d + depth * d * d + d * d_out) - 2.0 * d_in * d


def flops_per_item(cfg: Any) -> float:
    """:func:`mlp_flops` of a resolved run config."""
    return mlp_flops(cfg.width, cfg.depth, cfg.settings.in_dim, cfg.settings.out_dim)


SPEC = WorkloadSpec(
    name="mlp", summary="[Fan25]'s minimal setting: normalized linear layers regressing a random teacher",
    settings=MLPSettings, overrides={"depth": 3, "batch_size": 128},
    model=f"{__name__}.model:build", sources={"generated": f"{__name__}.data:teacher_source"},
    loss="transferbench.workloads.build:regression_loss", loss_unit="MSE", throughput_unit="samples/s",
    items_per_batch=lambda c: c["batch_size"], priority=0,
    flops_per_item=flops_per_item, flops_formula=FORMULA,
    resources={"slurm_partition": "gpu", "runtime": 240, "mem_mb": 16000},
)
