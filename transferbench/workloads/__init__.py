"""The workload registry: one :class:`WorkloadSpec` per workload, holding everything a workload owns.

Name, settings (with defaults, ranges and help) and overrides of the common defaults, the model
builder, the data sources (chosen by the ``data_source`` setting, so real data plug in as a source,
not as a new workload), the loss, units, a cross-setting check, and the DAG priority. Everything
else (config validation, CLI flags, the profile schema check, the trainer, plots, the DAG's job
order) derives from this table, and an unknown name fails loudly. Builders are "module:function"
strings imported on use, so this module never imports torch (the Snakefile imports it).

Adding a workload is one :func:`register` call plus its model and data code (docs/extending.md).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from transferbench.setting_types import COUNT, NONNEG, POSITIVE, Bound, setting


@dataclass(frozen=True)
class WorkloadSpec:
    """One workload. Builders are "module:function" strings, imported only when a run is built:

    - ``model(cfg, output_mult) -> nn.Module`` with ``param_specs()`` and ``sublayers()``;
    - ``sources[name](cfg) -> data.Source`` (``train_batch(seed, step)``, ``eval_batch(i)``, ``info()``);
    - ``loss(output, target) -> scalar tensor``.
    """

    name: str
    summary: str
    settings: type  # a frozen dataclass of the workload's own settings (fields made with settings.setting)
    model: str
    sources: Mapping[str, str]
    loss: str
    loss_unit: str  # the plots' y axis, e.g. "nats/token"
    throughput_unit: str  # "tokens/s" or "samples/s"
    items_per_batch: Callable[[dict[str, Any]], int]
    overrides: Mapping[str, Any] = field(default_factory=dict)  # defaults of common settings
    check: Callable[[dict[str, Any]], str | None] | None = None  # "key: problem" across settings, or None
    priority: int = 0  # DAG: jobs of higher priority start first (the longest workloads)


_REGISTRY: dict[str, WorkloadSpec] = {}


class UnknownWorkload(ValueError):
    """A workload name that is not registered."""


def register(spec: WorkloadSpec) -> WorkloadSpec:
    """Add (or replace, by name) a workload; returns it."""
    _REGISTRY[spec.name] = spec
    return spec


def names() -> list[str]:
    return list(_REGISTRY)


def get(name: str) -> WorkloadSpec:
    if name not in _REGISTRY:
        raise UnknownWorkload(f"workload: unknown value {name!r}; known workloads are {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def load(target: str) -> Any:
    """The object named by a "module:attr" builder string."""
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


# -- the built-in workloads ------------------------------------------------------------------------------
#: The generated token stream's table limit (data/markov.py MarkovTokens.max_states; a test checks they
#: agree), checked at parse time so a too-large vocabulary fails before a GPU job is queued.
MARKOV_MAX_STATES = 1 << 22


def _llama_check(cfg: dict[str, Any]) -> str | None:
    if cfg["width"] % cfg["head_dim"]:
        return f"width: {cfg['width']} is not a multiple of head_dim={cfg['head_dim']}"
    if cfg.get("data_source", "generated") != "generated":
        return None  # a prepared corpus: its vocab is checked against the manifest when the data load
    if cfg["seq_len"] < cfg["markov_order"]:
        return f"seq_len: must be >= markov_order={cfg['markov_order']}, got {cfg['seq_len']}"
    if cfg["vocab_size"] ** cfg["markov_order"] > MARKOV_MAX_STATES:
        return (f"vocab_size: {cfg['vocab_size']}**markov_order={cfg['markov_order']} states exceed the "
                f"generated token stream's limit of {MARKOV_MAX_STATES} (data/markov.py)")
    return None


@dataclass(frozen=True)
class LlamaSettings:
    """llama's own settings."""

    seq_len: int = setting(128, "tokens per sequence", COUNT)
    # 64 tokens, order 2: 4096 contexts a small model can learn in a few hundred steps, so the hidden
    # layers (not only embedding/readout memorisation) decide the loss. With 256 tokens (65536
    # contexts) widths 32 and 128 under muP ended at the same loss after 200 steps.
    vocab_size: int = setting(64, "tokens in the vocabulary", Bound(2))
    head_dim: int = setting(16, "attention head dimension, fixed across widths (heads = width/head_dim)", COUNT)
    ffn_ratio: int = setting(3, "SwiGLU hidden width = ffn_ratio x width", COUNT)
    rope_base: float = setting(10000.0, "RoPE base", POSITIVE)
    markov_order: int = setting(2, "the token stream's Markov order (previous tokens the next one depends on)",
                                COUNT)
    markov_branching: int = setting(8, "successor slots per Markov state", COUNT)
    zipf_exponent: float = setting(1.0, "Zipf exponent of the token popularity", NONNEG)


register(WorkloadSpec(
    name="llama", summary="LLaMA-style decoder (RMSNorm, RoPE, SwiGLU) on a generated Markov token stream",
    settings=LlamaSettings, overrides={"batch_size": 16},
    model="transferbench.workloads:llama_model", sources={"generated": "transferbench.workloads:markov_source",
                                                         "tokens": "transferbench.workloads:token_source"},
    loss="transferbench.workloads:lm_loss", loss_unit="nats/token", throughput_unit="tokens/s",
    items_per_batch=lambda c: c["batch_size"] * c["seq_len"], check=_llama_check, priority=2,
))


@dataclass(frozen=True)
class ResNetSettings:
    """resnet's own settings."""

    image_size: int = setting(16, "image side in pixels", COUNT)
    num_classes: int = setting(10, "classes", Bound(2))
    image_noise: float = setting(1.0, "pixel noise on the class templates (eval ~0.4 nats at d=8, 400 steps)",
                                 NONNEG)
    augment: bool = setting(True, "cifar10: random crop and flip, drawn from (seed, step)")


@dataclass(frozen=True)
class MLPSettings:
    """mlp's own settings."""

    # at 32 the student barely beat the best linear fit in 400 steps; at 16 width helps
    in_dim: int = setting(16, "input dimension", COUNT)
    out_dim: int = setting(8, "output dimension", COUNT)
    teacher_width: int = setting(64, "the teacher network's width", COUNT)
    teacher_depth: int = setting(2, "the teacher network's hidden layers", COUNT)
    label_noise: float = setting(0.05, "std of the noise on the targets (MSE floor: its square)", NONNEG)


register(WorkloadSpec(
    name="resnet", summary="CIFAR-style ResNet with BatchNorm on generated 10-class template images",
    settings=ResNetSettings, overrides={"depth": 1, "batch_size": 128},
    model="transferbench.workloads:resnet_model", sources={"generated": "transferbench.workloads:image_source",
                                                          "cifar10": "transferbench.workloads:cifar_source"},
    loss="transferbench.workloads:classification_loss", loss_unit="nats", throughput_unit="samples/s",
    items_per_batch=lambda c: c["batch_size"], priority=1,
))
register(WorkloadSpec(
    name="mlp", summary="[Fan25]'s minimal setting: normalized linear layers regressing a random teacher",
    settings=MLPSettings, overrides={"depth": 3, "batch_size": 128},
    model="transferbench.workloads:mlp_model", sources={"generated": "transferbench.workloads:teacher_source"},
    loss="transferbench.workloads:regression_loss", loss_unit="MSE", throughput_unit="samples/s",
    items_per_batch=lambda c: c["batch_size"], priority=0,
))
