"""The ``sines`` workload, a transferbench plugin: an MLP of width d regressing a fixed random sum of sines
of a 1-D input. This module is its spec (pure Python, no torch: the DAG's planner imports it); the model
and the data are in model.py and data.py, imported only when a run is built."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from transferbench.setting_types import COUNT, NONNEG, setting
from transferbench.workloads import WorkloadSpec


@dataclass(frozen=True)
class SinesSettings:
    """The workload's own settings: each field its default, help and range (train flags, profile keys)."""

    frequencies: int = setting(4, "sines in the target, frequencies 1..frequencies", COUNT)
    noise: float = setting(0.05, "std of the noise on the targets (MSE floor: its square)", NONNEG)


FORMULA = "6*(d + depth*d^2 + d) - 2*d per sample"


def flops_per_item(cfg: Any) -> float:
    """Model FLOPs per sample of one training step: 3 x the forward's matmuls, no input gradient."""
    d, depth = cfg.width, cfg.depth
    return 6.0 * (d + depth * d * d + d) - 2.0 * d


SPEC = WorkloadSpec(
    name="sines", summary="an MLP regressing a random sum of sines of a 1-D input",
    settings=SinesSettings, overrides={"depth": 2, "batch_size": 64},
    model=f"{__name__}.model:build", sources={"generated": f"{__name__}.data:build"},
    loss="transferbench.workloads.build:regression_loss", loss_unit="MSE", throughput_unit="samples/s",
    items_per_batch=lambda c: c["batch_size"],  # c may be the plain dict being validated
    flops_per_item=flops_per_item, flops_formula=FORMULA,
    resources={"runtime": 30, "mem_mb": 2000},  # the train rule's on a cluster: CPU-sized
)
