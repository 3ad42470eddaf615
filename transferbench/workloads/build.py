"""A workload spec (workload_specs.py) -> model + data + loss on a device: what ``train.py`` runs, and
the builders of the three built-in workloads (docs/design.md §4).

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

from transferbench import data, workload_specs
from transferbench.models import Llama, NormalizedMLP, ResNet
from transferbench.settings import RunConfig

Tensors = tuple[torch.Tensor, torch.Tensor]


@dataclass
class Workload:
    """One workload, ready to train: model, batches on the device, loss and throughput unit."""

    model: nn.Module
    train_batch: Callable[[int], Tensors]  # step -> (inputs, targets), already on the device
    eval_batches: list[Tensors]  # cfg.eval_batches fixed held-out batches, on the device
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


# -- the builders the built-in WorkloadSpecs name (workload_specs.py) ---------------------------------
def llama_model(cfg: RunConfig, output_mult: float) -> nn.Module:
    return Llama(cfg.settings.vocab_size, int(cfg.width), int(cfg.depth), head_dim=cfg.settings.head_dim,
                 ffn_ratio=cfg.settings.ffn_ratio, rope_base=cfg.settings.rope_base, output_mult=output_mult)


def resnet_model(cfg: RunConfig, output_mult: float) -> nn.Module:
    return ResNet(int(cfg.width), int(cfg.depth), num_classes=cfg.settings.num_classes, output_mult=output_mult)


def mlp_model(cfg: RunConfig, output_mult: float) -> nn.Module:
    return NormalizedMLP(cfg.settings.in_dim, int(cfg.width), cfg.settings.out_dim, int(cfg.depth),
                         output_mult=output_mult)


def markov_source(cfg: RunConfig) -> data.Source:
    own = cfg.settings
    return data.MarkovTokens(own.vocab_size, own.seq_len, cfg.batch_size, order=own.markov_order,
                             branching=own.markov_branching, zipf_exponent=own.zipf_exponent, data_seed=cfg.data_seed)


def image_source(cfg: RunConfig) -> data.Source:
    return data.TemplateImages(cfg.settings.image_size, cfg.settings.num_classes, int(cfg.batch_size),
                               noise=cfg.settings.image_noise, data_seed=int(cfg.data_seed))


def token_source(cfg: RunConfig) -> data.Source:
    from transferbench.data.tokens import TokenWindows

    return TokenWindows(_data_path(cfg), cfg.settings.seq_len, int(cfg.batch_size), cfg.settings.vocab_size,
                        data_seed=int(cfg.data_seed))


def cifar_source(cfg: RunConfig) -> data.Source:
    from transferbench.data.cifar import CifarImages

    return CifarImages(_data_path(cfg), cfg.settings.image_size, cfg.settings.num_classes, int(cfg.batch_size),
                       augment=cfg.settings.augment, data_seed=int(cfg.data_seed))


def _data_path(cfg: RunConfig) -> str:
    from transferbench.data.prepared import DataError

    if not cfg.data_path:
        raise DataError(f"data_path: data_source {cfg.data_source!r} reads a prepared data set; give its "
                        "manifest.json (transferbench prepare-data)")
    return str(cfg.data_path)


def teacher_source(cfg: RunConfig) -> data.Source:
    return data.TeacherRegression(cfg.settings.in_dim, cfg.settings.out_dim, int(cfg.batch_size),
                                  teacher_width=cfg.settings.teacher_width, teacher_depth=cfg.settings.teacher_depth,
                                  label_noise=cfg.settings.label_noise, data_seed=int(cfg.data_seed))


# -- assembly, the same for every workload -------------------------------------------------------------
def build_source(cfg: RunConfig) -> data.Source:
    """The data source ``cfg.data_source`` of the workload's spec (numpy; no model)."""
    spec = workload_specs.get(cfg.workload)
    name = cfg.data_source
    if name not in spec.sources:
        raise ValueError(f"data_source: {name!r} is not a source of workload {spec.name!r}; "
                         f"known: {', '.join(spec.sources)}")
    return workload_specs.load(spec.sources[name])(cfg)


def build_model(cfg: RunConfig, output_mult: float = 1.0) -> nn.Module:
    """The model of ``cfg.workload`` at ``cfg.width`` (PyTorch default init for matrices)."""
    return workload_specs.load(workload_specs.get(cfg.workload).model)(cfg, output_mult)


def _to_device(batch: tuple[np.ndarray, np.ndarray], device: torch.device) -> Tensors:
    return tuple(torch.from_numpy(np.ascontiguousarray(a)).to(device) for a in batch)  # type: ignore[return-value]


def build_workload(cfg: RunConfig, output_mult: float, device: torch.device) -> Workload:
    """Model (built under the caller's torch seed), data streams and loss of one resolved config."""
    spec = workload_specs.get(cfg.workload)
    model = build_model(cfg, output_mult).to(device)
    source = build_source(cfg)
    seed = int(cfg.seed)

    def train_batch(step: int) -> Tensors:
        return _to_device(source.train_batch(seed, step), device)

    evals = [_to_device(source.eval_batch(i), device) for i in range(int(cfg.eval_batches))]
    return Workload(model, train_batch, evals, workload_specs.load(spec.loss), spec.items_per_batch(cfg),
                    spec.throughput_unit, source.info())
