"""The ``resnet`` workload: a CIFAR-style ResNet with BatchNorm (model.py) on generated class-template images
or prepared CIFAR-10 (data.py). This module is its spec, pure Python: settings, FLOPs formula, cluster
resources and builders named as strings (docs/design.md §4)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from transferbench.data.kinds import CIFAR10
from transferbench.setting_types import COUNT, NONNEG, Bound, setting
from transferbench.workloads import WorkloadSpec


@dataclass(frozen=True)
class ResNetSettings:
    """resnet's own settings."""

    image_size: int = setting(16, "image side in pixels", COUNT)
    num_classes: int = setting(10, "classes", Bound(2))
    image_noise: float = setting(1.0, "pixel noise on the class templates (eval ~0.4 nats at d=8, 400 steps)",
                                 NONNEG)
    augment: bool = setting(True, "cifar10: random crop and flip, drawn from (seed, step)")


#: Per image: 3 x Σ over convolutions of 2·k²·C_in·C_out·H_out·W_out, plus 6·4w·classes for the classifier
#: (He et al. 2016's CIFAR ResNet: stem 3x3, stages of w, 2w, 4w channels at S, S/2, S/4, a 1x1 shortcut where
#: the shape changes), minus the stem's input gradient (the images need none); BatchNorm and ReLU are not counted.
FORMULA = ("3 * sum over convolutions of 2*k^2*C_in*C_out*H_out*W_out - the stem's input gradient + 6*4w*classes "
           "per image")


def resnet_flops(w: int, depth: int, size: int, classes: int) -> float:
    """Model FLOPs per image of one training step (:data:`FORMULA`)."""
    def conv(k: int, cin: int, cout: int, side: int) -> float:
        return 2.0 * k * k * cin * cout * side * side

    fwd = conv(3, 3, w, size)
    cin, side = w, size
    for stage, cout in enumerate((w, 2 * w, 4 * w)):
        for block in range(depth):
            if stage > 0 and block == 0:
                side //= 2
            fwd += conv(3, cin, cout, side) + conv(3, cout, cout, side)
            if cin != cout:
                fwd += conv(1, cin, cout, side)
            cin = cout
    stem = conv(3, 3, w, size)
    return 3.0 * fwd - stem + 6.0 * 4 * w * classes


def flops_per_item(cfg: Any) -> float:
    """:func:`resnet_flops` of a resolved run config."""
    return resnet_flops(cfg.width, cfg.depth, cfg.settings.image_size, cfg.settings.num_classes)


SPEC = WorkloadSpec(
    name="resnet", summary="CIFAR-style ResNet with BatchNorm on generated 10-class template images",
    settings=ResNetSettings, overrides={"depth": 1, "batch_size": 128},
    model=f"{__name__}.model:build", sources={"generated": f"{__name__}.data:image_source",
                                             "cifar10": f"{__name__}.data:cifar_source"},
    loss="transferbench.workloads.build:classification_loss", loss_unit="nats", throughput_unit="samples/s",
    items_per_batch=lambda c: c["batch_size"], priority=1, residual=True,
    flops_per_item=flops_per_item, flops_formula=FORMULA,
    resources={"slurm_partition": "gpu", "runtime": 720, "mem_mb": 32000}, reads={"cifar10": CIFAR10},
)
