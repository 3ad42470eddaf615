"""The GPU fast path of a run, switched by its settings and recorded: what train.setup builds the step with.

- ``autocast`` bf16 (default): the forward and the loss under ``torch.autocast(bfloat16)`` on CUDA,
  fp32 master weights and AdamW state; ``off`` is fp32 throughout. A CPU run is fp32 either way.
- ``tf32`` (default on): TF32 tensor cores for the fp32 matmuls and convolutions left outside autocast,
  on CUDA only; CPU numerics are never touched (the CPU's float32 matmul precision stays torch's default).
- ``fused_adamw`` (default on): AdamW's fused kernel wherever torch has one for the device (CUDA, and
  the CPU since torch 2.4), else the foreach kernel on CUDA and the per-parameter loop on CPU.
- ``sdpa_backend``: the kernel of ``F.scaled_dot_product_attention`` (llama's attention), through
  ``torch.nn.attention.sdpa_kernel``; ``auto`` leaves the choice to torch (flash on CUDA where it applies).
- ``compile`` (opt-in) is applied by train.setup (``torch.compile`` of the model).

:func:`plan` turns the settings and the device into a :class:`FastPath`, which builds the step's context
(:meth:`FastPath.context`) and the optimizer's keyword arguments, and says what ran (:meth:`FastPath.record`).
A combination that cannot run is a ConfigError naming the setting, before any step.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from transferbench.config import ConfigError

#: sdpa_backend's values and torch's backends (torch.nn.attention.SDPBackend member names).
SDPA_BACKENDS = {"flash": "FLASH_ATTENTION", "efficient": "EFFICIENT_ATTENTION", "cudnn": "CUDNN_ATTENTION",
                 "math": "MATH"}
#: The kernels torch has for each device type (efficient and cudnn attention are CUDA-only).
_SDPA_ON = {"cpu": ("flash", "math"), "cuda": tuple(SDPA_BACKENDS)}


def optimizer_impl(device: torch.device, fused: bool = True) -> dict[str, bool]:
    """AdamW's fused kernel wherever torch has one for the device (CPU since torch 2.4: 1.00-1.17x faster
    here, losses within 2e-7 relative after 20 steps), else the foreach kernel on CUDA, else the loop."""
    if fused:
        try:
            from torch.optim.optimizer import _get_fused_kernels_supported_devices

            if device.type in _get_fused_kernels_supported_devices():
                return {"fused": True}
        except ImportError:  # an older torch without the helper: no fused kernel on CPU there
            pass
    return {"foreach": device.type == "cuda"}


@dataclass(frozen=True)
class FastPath:
    """How one run's step runs on its device."""

    device_type: str
    autocast_dtype: torch.dtype | None  # None: fp32
    sdpa_backend: str  # auto, or a key of SDPA_BACKENDS
    tf32: bool  # TF32 for fp32 matmuls and convolutions (applied on CUDA only)
    optimizer: dict[str, bool]  # AdamW's fused / foreach keyword

    @contextlib.contextmanager
    def context(self) -> Iterator[None]:
        """Autocast (when on) and the attention kernel (when chosen): around every forward."""
        with contextlib.ExitStack() as stack:
            dtype = self.autocast_dtype or torch.bfloat16
            stack.enter_context(torch.autocast(self.device_type, dtype=dtype, enabled=self.autocast_dtype is not None))
            if self.sdpa_backend != "auto":
                from torch.nn.attention import SDPBackend, sdpa_kernel

                stack.enter_context(sdpa_kernel(getattr(SDPBackend, SDPA_BACKENDS[self.sdpa_backend])))
            yield

    def apply_globals(self) -> None:
        """TF32 is process-wide state in torch: set it for this run (CUDA only; a CPU run leaves it alone)."""
        if self.device_type != "cuda":
            return
        mode = "tf32" if self.tf32 else "ieee"
        if hasattr(torch.backends.cuda.matmul, "fp32_precision"):  # torch >= 2.9; mixing with allow_tf32 raises
            torch.backends.cuda.matmul.fp32_precision = mode
            torch.backends.cudnn.conv.fp32_precision = mode
        else:
            torch.backends.cuda.matmul.allow_tf32 = self.tf32
            torch.backends.cudnn.allow_tf32 = self.tf32

    def record(self) -> dict[str, Any]:
        """What ran, for the record's provenance (``fast_path``)."""
        return {"autocast": None if self.autocast_dtype is None else str(self.autocast_dtype).removeprefix("torch."),
                "tf32": self.tf32 and self.device_type == "cuda", "sdpa_backend": self.sdpa_backend}


def plan(cfg: Any, device: torch.device) -> FastPath:
    """The fast path of a run config on ``device``; ConfigError for a combination that cannot run."""
    kind = device.type
    dtype = torch.bfloat16 if cfg.autocast == "bf16" and kind == "cuda" else None
    backend = str(cfg.sdpa_backend)
    if backend != "auto" and backend not in _SDPA_ON.get(kind, ()):
        raise ConfigError(f"sdpa_backend: {backend!r} has no kernel on {kind}; use one of "
                          f"{', '.join(('auto', *_SDPA_ON.get(kind, ())))}")
    if backend == "flash" and kind == "cuda" and dtype is None:
        raise ConfigError("sdpa_backend: 'flash' needs bf16 inputs on CUDA (autocast bf16), got autocast 'off'")
    return FastPath(kind, dtype, backend, bool(cfg.tf32), optimizer_impl(device, bool(cfg.fused_adamw)))
