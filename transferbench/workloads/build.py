"""A workload spec (the registry, workloads/__init__.py) -> model + data + loss on a device: what ``train.py``
runs (docs/design.md §4), and the losses specs may name (``transferbench.workloads.build:regression_loss``).

The model is built under the caller's ``torch.manual_seed`` (the trainer seeds first), so it is
deterministic; the data come from the spec's source (numpy, seeded by (data_seed, stream, seed, step)) and
are moved to the device here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from transferbench import data, workloads
from transferbench.settings import RunConfig

Tensors = tuple[torch.Tensor, torch.Tensor]


@dataclass
class Workload:
    """One workload, ready to train: model, batches on the device, loss and throughput unit."""

    model: nn.Module
    train_batch: Callable[[int], Tensors]  # step -> (inputs, targets), already on the device
    eval_batches: list[Tensors]  # cfg.eval_batches fixed held-out batches, on the device
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (output, targets) -> mean loss
    items_per_batch: int  # tokens or samples per training batch
    throughput_unit: str  # "tokens/s" or "samples/s"
    data_info: dict[str, Any] = field(default_factory=dict)


def lm_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy in nats over every position of every sequence."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def classification_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy in nats."""
    return F.cross_entropy(logits, targets)


def regression_loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean squared error over all outputs (the noise floor is label_noise**2)."""
    return F.mse_loss(outputs, targets)


# -- assembly, the same for every workload -------------------------------------------------------------
def build_source(cfg: RunConfig) -> data.Source:
    """The data source ``cfg.data_source`` of the workload's spec (numpy; no model)."""
    spec = workloads.get(cfg.workload)
    name = cfg.data_source
    if name not in spec.sources:
        raise ValueError(f"data_source: {name!r} is not a source of workload {spec.name!r}; "
                         f"known: {', '.join(spec.sources)}")
    return workloads.load(spec.sources[name])(cfg)


def build_model(cfg: RunConfig, output_mult: float = 1.0, branch_mult: float = 1.0) -> nn.Module:
    """The model of ``cfg.workload`` at ``cfg.width`` (PyTorch default init for matrices), its residual branches
    multiplied by ``branch_mult`` (a recipe's depth rule: the model's ``set_branch_mult``; a model without
    residual branches refuses any multiplier but 1)."""
    model = workloads.load(workloads.get(cfg.workload).model)(cfg, output_mult)
    if branch_mult != 1.0:
        setter = getattr(model, "set_branch_mult", None)
        if setter is None:
            raise ValueError(f"recipe {cfg.recipe!r} multiplies residual branches by {branch_mult:g} (its depth "
                             f"rule at depth_mult {cfg.depth_mult:g}), but workload {cfg.workload!r}'s model has no "
                             "set_branch_mult: it has no residual branches to scale")
        setter(branch_mult)
    return model


def _to_device(batch: tuple[np.ndarray, np.ndarray], device: torch.device) -> Tensors:
    return tuple(torch.from_numpy(np.ascontiguousarray(a)).to(device) for a in batch)  # type: ignore[return-value]


def build_workload(cfg: RunConfig, output_mult: float, device: torch.device, branch_mult: float = 1.0) -> Workload:
    """Model (built under the caller's torch seed), data streams and loss of one resolved config."""
    spec = workloads.get(cfg.workload)
    model = build_model(cfg, output_mult, branch_mult).to(device)
    source = build_source(cfg)
    seed = int(cfg.seed)

    def train_batch(step: int) -> Tensors:
        return _to_device(source.train_batch(seed, step), device)

    evals = [_to_device(source.eval_batch(i), device) for i in range(int(cfg.eval_batches))]
    return Workload(model, train_batch, evals, workloads.load(spec.loss), spec.items_per_batch(cfg),
                    spec.throughput_unit, source.info())
