"""Workload name -> model + data + loss (docs/design.md §4): what ``train.py`` needs to run one workload.

The model is built under the caller's ``torch.manual_seed`` (the trainer seeds first), so it is
deterministic; the data come from ``data/`` (numpy, seeded by (data_seed, stream, seed, step)) and
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

from transferbench import data
from transferbench.models import Llama, NormalizedMLP, ResNet

Tensors = tuple[torch.Tensor, torch.Tensor]


@dataclass
class Workload:
    """One workload, ready to train: model, batches on the device, loss and throughput unit."""

    model: nn.Module
    train_batch: Callable[[int], Tensors]  # step -> (inputs, targets), already on the device
    eval_batches: list[Tensors]  # cfg["eval_batches"] fixed held-out batches, on the device
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (output, targets) -> mean loss
    items_per_batch: int  # tokens (llama) or samples per training batch
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


def build_source(cfg: dict[str, Any]) -> data.Source:
    """The data generator of ``cfg["workload"]`` (numpy; no model)."""
    kind, bs, ds = cfg["workload"], int(cfg["batch_size"]), int(cfg["data_seed"])
    if kind == "llama":
        return data.MarkovTokens(
            cfg["vocab_size"], cfg["seq_len"], bs, order=cfg["markov_order"],
            branching=cfg["markov_branching"], zipf_exponent=cfg["zipf_exponent"], data_seed=ds,
        )
    if kind == "resnet":
        return data.TemplateImages(
            cfg["image_size"], cfg["num_classes"], bs, noise=cfg["image_noise"], data_seed=ds
        )
    if kind == "mlp":
        return data.TeacherRegression(
            cfg["in_dim"], cfg["out_dim"], bs, teacher_width=cfg["teacher_width"],
            teacher_depth=cfg["teacher_depth"], label_noise=cfg["label_noise"], data_seed=ds,
        )
    raise ValueError(f"workload: unknown value {kind!r}")


def build_model(cfg: dict[str, Any], output_mult: float = 1.0) -> nn.Module:
    """The model of ``cfg["workload"]`` at ``cfg["width"]`` (PyTorch default init for matrices)."""
    kind, width, depth = cfg["workload"], int(cfg["width"]), int(cfg["depth"])
    if kind == "llama":
        return Llama(
            cfg["vocab_size"], width, depth, head_dim=cfg["head_dim"], ffn_ratio=cfg["ffn_ratio"],
            rope_base=cfg["rope_base"], output_mult=output_mult,
        )
    if kind == "resnet":
        return ResNet(width, depth, num_classes=cfg["num_classes"], output_mult=output_mult)
    if kind == "mlp":
        return NormalizedMLP(cfg["in_dim"], width, cfg["out_dim"], depth, output_mult=output_mult)
    raise ValueError(f"workload: unknown value {kind!r}")


def _to_device(batch: tuple[np.ndarray, np.ndarray], device: torch.device) -> Tensors:
    return tuple(torch.from_numpy(np.ascontiguousarray(a)).to(device) for a in batch)  # type: ignore[return-value]


def build_workload(cfg: dict[str, Any], output_mult: float, device: torch.device) -> Workload:
    """Model (built under the caller's torch seed), data streams and loss of one resolved config."""
    model = build_model(cfg, output_mult).to(device)
    source = build_source(cfg)
    seed = int(cfg["seed"])

    def train_batch(step: int) -> Tensors:
        return _to_device(source.train_batch(seed, step), device)

    evals = [_to_device(source.eval_batch(i), device) for i in range(int(cfg["eval_batches"]))]
    kind, bs = cfg["workload"], int(cfg["batch_size"])
    if kind == "llama":
        loss_fn, items, unit = lm_loss, bs * int(cfg["seq_len"]), "tokens/s"
    elif kind == "resnet":
        loss_fn, items, unit = classification_loss, bs, "samples/s"
    else:
        loss_fn, items, unit = regression_loss, bs, "samples/s"
    return Workload(model, train_batch, evals, loss_fn, items, unit, source.info())
