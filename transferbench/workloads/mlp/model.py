"""The minimal synthetic setting of [Fan25] (arXiv 2510.15262): a stack of normalized linear layers.

x -> W_in x (no bias) -> ``depth`` hidden layers h <- act(W_l RMSNorm(h)) -> output_mult * W_out
RMSNorm(h). Every hidden matrix sees an RMS-normalised input, which is what makes the network
scale-invariant in its matrices, the mechanism [Fan25] study (the steady state of AdamW with weight
decay sets the matrix scale). No biases; RMSNorm gains (init 1) are the only vector parameters.

The exact layer of [Fan25]'s synthetic setting (residual or not, activation) is not something we
could verify; ours is plain (non-residual) with ReLU. ``residual=True`` gives h <- h + act(W_l
RMSNorm(h)). The plain stack is the default: it is the literal "stack of normalized linear layers",
and at the default depth 3 it trained as well as the residual variant in our check (teacher data,
400 steps, lrs 2^-11..2^-5: within 0.02 MSE at width 64, and better at width 256, 0.101 vs 0.110).

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


class NormLinear(nn.Module):
    """One hidden layer without its skip: relu(W RMSNorm(h))."""

    def __init__(self, width: int, eps: float) -> None:
        super().__init__()
        self.norm = nn.RMSNorm(width, eps=eps)
        self.linear = nn.Linear(width, width, bias=False)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return F.relu(self.linear(self.norm(h)))


class NormalizedMLP(nn.Module):
    """Inputs (B, in_dim) -> outputs (B, out_dim).

    Roles (docs/design.md §2): first layer = input (fan_in in_dim, fixed), hidden layers = hidden, readout =
    output, RMSNorm gains = vector.
    """

    #: its name before it moved here (workloads/), kept in the trainer fingerprint (shared.py) so that earlier
    #: fingerprints stand
    fingerprint_name = "transferbench.models.mlp.NormalizedMLP"

    def __init__(
        self,
        in_dim: int,
        width: int,
        out_dim: int,
        depth: int = 3,
        output_mult: float = 1.0,
        residual: bool = False,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        self.width, self.depth, self.residual = width, depth, residual
        self.output_mult = float(output_mult)
        self.branch_mult = 1.0
        self.inp = nn.Linear(in_dim, width, bias=False)
        self.layers = nn.ModuleList(NormLinear(width, eps) for _ in range(depth))
        self.norm = nn.RMSNorm(width, eps=eps)
        self.head = nn.Linear(width, out_dim, bias=False)

    @property
    def readout(self) -> nn.Linear:
        """The readout layer (the trainer hooks it)."""
        return self.head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        for layer in self.layers:
            h = h + self.branch_mult * layer(h) if self.residual else layer(h)
        return self.output_mult * self.head(self.norm(h))

    def set_branch_mult(self, branch_mult: float) -> None:
        """The forward multiplier of every residual layer (a recipe's depth rule); the plain MLP has none."""
        if not self.residual:
            raise ValueError("the mlp workload is not residual (its layers replace h, they do not add to it): no "
                             f"branches for a depth rule's branch multiplier ({branch_mult:g})")
        self.branch_mult = float(branch_mult)

    def param_specs(self) -> dict[str, ParamSpec]:
        return specs_from_roles(self, inputs=[self.inp], outputs=[self.head])

    def sublayers(self) -> list[tuple[str, nn.Module]]:
        """Each hidden layer: input h (un-normalised), output relu(W RMSNorm(h))."""
        return [(f"layers.{i}", layer) for i, layer in enumerate(self.layers)]


def build(cfg: RunConfig, output_mult: float) -> nn.Module:
    """The spec's model builder: the normalized MLP of a resolved run config."""
    return NormalizedMLP(cfg.settings.in_dim, int(cfg.width), cfg.settings.out_dim, int(cfg.depth),
                         output_mult=output_mult)
