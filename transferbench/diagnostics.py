"""Width diagnostics of one run: top singular values, RMS and relative updates of hidden matrices
([Fan25] arXiv 2510.15262: top singular values should match across widths), sublayer gain
‖y‖rms/‖x‖rms, and the activation scales of the coordinate check (microsoft/mup)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn


def rms(t: torch.Tensor) -> float:
    return float(t.detach().float().pow(2).mean().sqrt())


def as_matrix(w: torch.Tensor) -> torch.Tensor:
    """A conv kernel (out, in, kh, kw) as the (out, in*kh*kw) matrix it applies."""
    return w.detach().float().reshape(w.shape[0], -1)


def top_singular_value(w: torch.Tensor) -> float:
    return float(torch.linalg.matrix_norm(as_matrix(w), ord=2))


@contextmanager
def record_io(modules: Iterable[tuple[str, nn.Module]], store: dict[str, tuple[float, float]]):
    """While active, store[name] = (rms of the module's first input, rms of its output)."""
    handles = []

    def hook_for(name: str):
        def hook(_mod: nn.Module, args: tuple, out: Any) -> None:
            if args and isinstance(args[0], torch.Tensor) and isinstance(out, torch.Tensor):
                store[name] = (rms(args[0]), rms(out))

        return hook

    for name, module in modules:
        handles.append(module.register_forward_hook(hook_for(name)))
    try:
        yield store
    finally:
        for h in handles:
            h.remove()


def _mean(values: list[float]) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return sum(finite) / len(finite) if finite else None


def snapshot(
    step: int,
    hidden: dict[str, nn.Parameter],
    before: dict[str, torch.Tensor] | None,
    gains: dict[str, tuple[float, float]],
) -> dict[str, Any]:
    """One diagnostics entry of the record (docs/record.md)."""
    matrices: dict[str, dict[str, float | None]] = {}
    for name, p in hidden.items():
        w = p.detach().float()
        norm = float(w.norm())
        rel = None
        if before is not None and name in before and norm > 0:
            rel = float((w - before[name]).norm()) / float(before[name].norm() or 1.0)
        matrices[name] = {"top_sv": top_singular_value(w), "rms": rms(w), "rel_update": rel}
    gain = {name: (o / i if i > 0 else None) for name, (i, o) in gains.items()}
    sv = [m["top_sv"] for m in matrices.values()]
    means = {
        "top_sv": _mean(sv),
        "log2_top_sv": _mean([math.log2(v) for v in sv if v and v > 0]),
        "rms": _mean([m["rms"] for m in matrices.values()]),
        "rel_update": _mean([m["rel_update"] for m in matrices.values()]),
        "sublayer_gain": _mean(list(gain.values())),
    }
    return {"step": step, "matrices": matrices, "sublayer_gain": gain, "means": means}


def diag_steps(steps: int, points: int) -> list[int]:
    """Steps after which a snapshot is taken: ``points`` evenly spaced, the last one the final step."""
    points = max(1, min(points, steps))
    return sorted({max(0, round(k * steps / points) - 1) for k in range(1, points + 1)})
