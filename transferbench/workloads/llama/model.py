"""A LLaMA-style decoder (docs/design.md §4): pre-norm blocks with RMSNorm, rotary position embeddings,
causal multi-head attention and a SwiGLU MLP; no biases; untied embedding and LM head.

Width scaling follows docs/design.md §2: the head dimension is fixed, so the number of heads is width/head_dim
and the attention scale 1/sqrt(head_dim) does not change with width; the SwiGLU hidden size is exactly
``ffn_ratio * width``. The model knows no recipe: the recipe's readout multiplier arrives as the plain
number ``output_mult`` (logits = output_mult * head(norm(h))).

``build(cfg, output_mult)`` is the spec's model builder.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from transferbench.models.specs import specs_from_roles
from transferbench.roles import ParamSpec

if TYPE_CHECKING:
    from transferbench.settings import RunConfig


def rope_tables(seq_len: int, inv_freq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables, shape (seq_len, head_dim), of rotary embeddings (Su et al. 2021,
    arXiv 2104.09864) in the "rotate half" layout used by LLaMA implementations."""
    t = torch.arange(seq_len, device=inv_freq.device, dtype=inv_freq.dtype)
    freqs = torch.outer(t, inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate (B, H, T, head_dim) queries or keys by position."""
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin


class Attention(nn.Module):
    """Causal multi-head self-attention with RoPE; heads = width / head_dim."""

    def __init__(self, width: int, head_dim: int) -> None:
        super().__init__()
        if width % head_dim:
            raise ValueError(f"width {width} is not a multiple of head_dim {head_dim}")
        self.head_dim, self.heads = head_dim, width // head_dim
        self.q = nn.Linear(width, width, bias=False)
        self.k = nn.Linear(width, width, bias=False)
        self.v = nn.Linear(width, width, bias=False)
        self.o = nn.Linear(width, width, bias=False)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        b, t, d = x.shape

        def split(y: torch.Tensor) -> torch.Tensor:
            return y.view(b, t, self.heads, self.head_dim).transpose(1, 2)

        cos, sin = rope
        q, k = apply_rope(split(self.q(x)), cos, sin), apply_rope(split(self.k(x)), cos, sin)
        v = split(self.v(x))
        # Fixed head_dim, so the usual 1/sqrt(head_dim) scale is width independent (docs/design.md §2).
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=1.0 / math.sqrt(self.head_dim))
        return self.o(y.transpose(1, 2).reshape(b, t, d))


class SwiGLU(nn.Module):
    """down(silu(gate(x)) * up(x)) (Shazeer 2020, arXiv 2002.05202), hidden = ffn_ratio * width."""

    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.gate = nn.Linear(width, hidden, bias=False)
        self.up = nn.Linear(width, hidden, bias=False)
        self.down = nn.Linear(hidden, width, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.silu(self.gate(x)) * self.up(x))


class Block(nn.Module):
    """Pre-norm residual block: h + b * attn(norm(h)), then h + b * mlp(norm(h)), b the branch multiplier
    (1 unless a recipe's depth rule sets it, e.g. CompleteP's m_L^-1, arXiv 2505.01618 Table 1)."""

    def __init__(self, width: int, head_dim: int, ffn_ratio: int, eps: float) -> None:
        super().__init__()
        self.attn_norm = nn.RMSNorm(width, eps=eps)
        self.attn = Attention(width, head_dim)
        self.mlp_norm = nn.RMSNorm(width, eps=eps)
        self.mlp = SwiGLU(width, ffn_ratio * width)

    def forward(self, h: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], branch_mult: float = 1.0
                ) -> torch.Tensor:
        h = h + branch_mult * self.attn(self.attn_norm(h), rope)
        return h + branch_mult * self.mlp(self.mlp_norm(h))


class Llama(nn.Module):
    """Token ids (B, T) -> logits (B, T, vocab_size).

    Roles (docs/design.md §2): embedding = input (fan_in 1), q/k/v/o and gate/up/down = hidden, head = output,
    RMSNorm gains = vector. Vector params start at 1; matrices keep PyTorch's default init because the
    trainer re-initialises them per recipe.
    """

    #: its name before it moved here (workloads/), kept in the trainer fingerprint (shared.py) so that earlier
    #: fingerprints stand
    fingerprint_name = "transferbench.models.llama.Llama"

    def __init__(
        self,
        vocab_size: int,
        width: int,
        depth: int,
        head_dim: int = 16,
        ffn_ratio: int = 3,
        rope_base: float = 10000.0,
        output_mult: float = 1.0,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        self.width, self.depth, self.head_dim = width, depth, head_dim
        self.output_mult = float(output_mult)
        self.branch_mult = 1.0
        self.embed = nn.Embedding(vocab_size, width)
        self.blocks = nn.ModuleList(Block(width, head_dim, ffn_ratio, eps) for _ in range(depth))
        self.norm = nn.RMSNorm(width, eps=eps)
        self.head = nn.Linear(width, vocab_size, bias=False)
        inv_freq = rope_base ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    @property
    def readout(self) -> nn.Linear:
        """The LM head (the trainer hooks it)."""
        return self.head

    @property
    def heads(self) -> int:
        return self.width // self.head_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rope = rope_tables(x.shape[1], self.inv_freq)
        h = self.embed(x)
        for block in self.blocks:
            h = block(h, rope, self.branch_mult)
        return self.output_mult * self.head(self.norm(h))

    def set_branch_mult(self, branch_mult: float) -> None:
        """The forward multiplier of every attention and MLP branch (a recipe's depth rule)."""
        self.branch_mult = float(branch_mult)

    def param_specs(self) -> dict[str, ParamSpec]:
        return specs_from_roles(self, inputs=[self.embed], outputs=[self.head])

    def sublayers(self) -> list[tuple[str, nn.Module]]:
        """Each block's attention and MLP: their first input is the normed residual stream, so
        output RMS / input RMS is the sublayer gain of [Fan25]."""
        out: list[tuple[str, nn.Module]] = []
        for i, block in enumerate(self.blocks):
            out += [(f"blocks.{i}.attn", block.attn), (f"blocks.{i}.mlp", block.mlp)]
        return out


def build(cfg: RunConfig, output_mult: float) -> nn.Module:
    """The spec's model builder: the decoder of a resolved run config."""
    own = cfg.settings
    return Llama(own.vocab_size, int(cfg.width), int(cfg.depth), head_dim=own.head_dim, ffn_ratio=own.ffn_ratio,
                 rope_base=own.rope_base, output_mult=output_mult)
