"""The ``llama`` workload: a LLaMA-style decoder (model.py) on a generated Markov token stream or a
prepared text corpus (data.py). This module is its spec, pure Python: settings, check, FLOPs formula,
cluster resources and builders named as strings (docs/design.md §4)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from transferbench.data.kinds import TEXT
from transferbench.setting_types import COUNT, NONNEG, POSITIVE, Bound, setting
from transferbench.workloads import WorkloadSpec

#: The generated token stream's table limit (data.py MarkovTokens.max_states; a test checks they agree),
#: checked at parse time so a too-large vocabulary fails before a GPU job is queued.
MARKOV_MAX_STATES = 1 << 22


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


def check(cfg: dict[str, Any]) -> str | None:
    """The settings' problem across keys ("key: problem"), or None."""
    if cfg["width"] % cfg["head_dim"]:
        return f"width: {cfg['width']} is not a multiple of head_dim={cfg['head_dim']}"
    if cfg.get("data_source", "generated") != "generated":
        return None  # a prepared corpus: its vocab is checked against the manifest when the data load
    if cfg["seq_len"] < cfg["markov_order"]:
        return f"seq_len: must be >= markov_order={cfg['markov_order']}, got {cfg['seq_len']}"
    if cfg["vocab_size"] ** cfg["markov_order"] > MARKOV_MAX_STATES:
        return (f"vocab_size: {cfg['vocab_size']}**markov_order={cfg['markov_order']} states exceed the "
                f"generated token stream's limit of {MARKOV_MAX_STATES} (workloads/llama/data.py)")
    return None


#: Per token, training = 3 x forward, a multiply-add = 2 FLOPs: 6·N + 12·L·T·d, with N = L·(4d² + 3·r·d²) + d·V
#: the matmul parameters (attention q, k, v, o; SwiGLU's three r·d x d matrices; the untied output head),
#: embeddings excluded (a lookup is not a matmul), and 12·L·T·d the attention scores QKᵀ and the weighted
#: values at context T, forward and backward (Chowdhery et al. 2022, PaLM, arXiv 2204.02311, App. B; nanoGPT's
#: estimate_mfu; no causal halving, as a dense kernel computes the masked half). Kaplan et al. 2020's 6·L·T·d
#: counts half of it. tests/test_cost.py checks the sum against torch's FlopCounterMode.
FORMULA = "6*N + 12*L*T*d per token, N = L*(4+3*ffn_ratio)*d^2 + d*V (matmul parameters, embeddings excluded)"


def llama_flops(d: int, depth: int, ffn_ratio: int, vocab: int, seq_len: int) -> float:
    """Model FLOPs per token of one training step (:data:`FORMULA`)."""
    n = depth * (4 * d * d + 3 * ffn_ratio * d * d) + d * vocab
    return 6.0 * n + 12.0 * depth * seq_len * d


def flops_per_item(cfg: Any) -> float:
    """:func:`llama_flops` of a resolved run config."""
    s = cfg.settings
    return llama_flops(cfg.width, cfg.depth, s.ffn_ratio, s.vocab_size, s.seq_len)


SPEC = WorkloadSpec(
    name="llama", summary="LLaMA-style decoder (RMSNorm, RoPE, SwiGLU) on a generated Markov token stream",
    settings=LlamaSettings, overrides={"batch_size": 16},
    model=f"{__name__}.model:build", sources={"generated": f"{__name__}.data:markov_source",
                                             "tokens": f"{__name__}.data:token_source"},
    loss="transferbench.workloads.build:lm_loss", loss_unit="nats/token", throughput_unit="tokens/s",
    items_per_batch=lambda c: c["batch_size"] * c["seq_len"], check=check, priority=2, residual=True,
    flops_per_item=flops_per_item, flops_formula=FORMULA,
    resources={"slurm_partition": "gpu", "runtime": 1440, "mem_mb": 64000}, reads={"tokens": TEXT},
)
