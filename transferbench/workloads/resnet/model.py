"""A CIFAR-style ResNet with BatchNorm (He et al. 2016, arXiv 1512.03385, Sec. 4.2), width-scaled.

Stem conv3x3(3 -> w) + BN + ReLU; three stages of ``depth`` BasicBlocks with w, 2w, 4w channels
(stride 2 entering stages 2 and 3; a 1x1 conv + BN shortcut where the shape changes); global average
pool; ``output_mult`` times the pooled features, then Linear(4w -> num_classes) with bias: the
multiplier scales the readout's input, not its bias, as mup's MuReadout does. Convs have no bias (BN follows).
Width means the channels of stage 1 (docs/design.md §4). The model knows no recipe.

``build(cfg, output_mult)`` is the spec's model builder.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from transferbench.models.specs import specs_from_roles
from transferbench.roles import ParamSpec

if TYPE_CHECKING:
    from transferbench.settings import RunConfig


def conv_bn(c_in: int, c_out: int, kernel: int, stride: int) -> list[nn.Module]:
    return [
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
    ]


class Branch(nn.Module):
    """The residual branch of a BasicBlock: conv3x3-BN-ReLU-conv3x3-BN."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1, self.bn1 = conv_bn(c_in, c_out, 3, stride)
        self.conv2, self.bn2 = conv_bn(c_out, c_out, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))


class BasicBlock(nn.Module):
    """relu(branch(x) + shortcut(x)); the shortcut is the identity unless the shape changes."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.branch = Branch(c_in, c_out, stride)
        self.branch_mult = 1.0  # a recipe's depth rule (ResNet.set_branch_mult)
        changes = stride != 1 or c_in != c_out
        self.shortcut = nn.Sequential(*conv_bn(c_in, c_out, 1, stride)) if changes else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.branch_mult * self.branch(x) + self.shortcut(x))


class ResNet(nn.Module):
    """Images (B, 3, H, W) -> logits (B, num_classes).

    Roles (docs/design.md §2): stem conv = input (fan_in 27, fixed), every other conv incl. shortcuts =
    hidden, classifier weight = output, BN weights/biases and the classifier bias = vector (BN starts
    at weight 1, bias 0; the classifier bias at 0).
    """

    #: its name before it moved here (workloads/), kept in the trainer fingerprint (shared.py) so that earlier
    #: fingerprints stand
    fingerprint_name = "transferbench.models.resnet.ResNet"

    def __init__(
        self,
        width: int,
        depth: int = 1,
        num_classes: int = 10,
        in_channels: int = 3,
        output_mult: float = 1.0,
    ) -> None:
        super().__init__()
        self.width, self.depth = width, depth
        self.output_mult = float(output_mult)
        self.stem = nn.Sequential(*conv_bn(in_channels, width, 3, 1), nn.ReLU())
        stages, c_in = [], width
        for i, c_out in enumerate((width, 2 * width, 4 * width)):
            blocks = []
            for j in range(depth):
                blocks.append(BasicBlock(c_in, c_out, 2 if (i > 0 and j == 0) else 1))
                c_in = c_out
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.fc = nn.Linear(4 * width, num_classes)
        nn.init.zeros_(self.fc.bias)

    @property
    def readout(self) -> nn.Linear:
        """The classifier (the trainer hooks it)."""
        return self.fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        for stage in self.stages:
            h = stage(h)
        # Scale the input, not the output: the bias must not shrink with width (MuReadout, Yang et al. 2022).
        return self.fc(self.output_mult * h.mean(dim=(2, 3)))

    def set_branch_mult(self, branch_mult: float) -> None:
        """The forward multiplier of every BasicBlock's residual branch (a recipe's depth rule)."""
        for stage in self.stages:
            for block in stage:
                block.branch_mult = float(branch_mult)

    def param_specs(self) -> dict[str, ParamSpec]:
        return specs_from_roles(self, inputs=[self.stem[0]], outputs=[self.fc])

    def sublayers(self) -> list[tuple[str, nn.Module]]:
        """Each BasicBlock's residual branch: its input is the block input, its output what the
        block adds to the (possibly projected) shortcut."""
        return [
            (f"stages.{i}.{j}.branch", block.branch)
            for i, stage in enumerate(self.stages)
            for j, block in enumerate(stage)
        ]


def build(cfg: RunConfig, output_mult: float) -> nn.Module:
    """The spec's model builder: the ResNet of a resolved run config."""
    return ResNet(int(cfg.width), int(cfg.depth), num_classes=cfg.settings.num_classes, output_mult=output_mult)
