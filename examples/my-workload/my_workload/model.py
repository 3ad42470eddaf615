"""The model of ``sines``: x (1-D) -> Linear(1, d) -> ``depth`` x [ReLU, Linear(d, d)] -> ReLU -> output_mult *
Linear(d, 1). It knows no recipe: it says which modules are the input and output layers (``param_specs``),
every other matrix is hidden and every bias a vector, and the recipe does the rest."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from transferbench.models import specs_from_roles
from transferbench.roles import ParamSpec


class SinesMLP(nn.Module):
    def __init__(self, width: int, depth: int, output_mult: float) -> None:
        super().__init__()
        self.inp = nn.Linear(1, width)
        self.hidden = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))
        self.head = nn.Linear(width, 1, bias=False)
        self.output_mult = output_mult

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        for layer in self.hidden:
            h = layer(F.relu(h))
        return self.output_mult * self.head(F.relu(h))

    def param_specs(self) -> dict[str, ParamSpec]:
        """Roles: the recipe needs nothing else from the model."""
        return specs_from_roles(self, inputs=[self.inp], outputs=[self.head])

    def sublayers(self) -> list[tuple[str, nn.Module]]:
        """Modules whose output/input RMS ratio the record keeps as a diagnostic."""
        return [(f"hidden.{i}", layer) for i, layer in enumerate(self.hidden)]


def build(cfg: Any, output_mult: float) -> nn.Module:
    """The spec's model builder: ``cfg`` is the run's RunConfig (``cfg.settings``: SinesSettings)."""
    return SinesMLP(int(cfg.width), int(cfg.depth), output_mult)
