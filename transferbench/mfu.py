"""Model FLOPs utilisation of a run: the model FLOP/s it achieved against the peak of the device it ran on.

achieved = flops_per_item (the workload spec's formula, cost.per_item) x items per second, where items
per second counts the items of the steps actually trained over the training loop's wall time (the
diagnostics snapshots, the coordinate check's first steps, checkpoint saves and a compiled step's
compilation are inside that time; the initial and final held-out evaluations are not). So MFU is a
lower bound of the steady state, and it is model FLOPs (no recomputation, no attention halving).

peak: on CUDA the dense bf16 tensor-core peak of :data:`cost.PEAK_BF16`, looked up from
``torch.cuda.get_device_name`` (:func:`gpu_model`; an unknown GPU gives no peak and no MFU, and says
so); on CPU a measured fp32 matmul peak: the best of a few 1024 x 1024 matmuls with the run's thread
count, measured once per process and thread count (about 0.15 s on this project's CPU). A CPU peak
measured while other jobs share the machine is lower than the machine's, so a CPU MFU compares runs
of one process, not machines.
"""

from __future__ import annotations

import re
import time
from typing import Any

import torch

from transferbench.cost import PEAK_BF16, formula, per_item

#: (pattern on the upper-cased device name, PEAK_BF16 key or None for a known-unknown); first match wins.
GPU_NAMES: list[tuple[str, str | None]] = [
    (r"\bH100\b.*\bNVL\b", None),  # H100 NVL: another clock and power limit than SXM or PCIe
    (r"\bH100\b.*\bPCIE\b", "H100-PCIe"),  # "NVIDIA H100 PCIe"
    (r"\bH100\b", "H100-SXM"),  # "NVIDIA H100 80GB HBM3", "NVIDIA H100 SXM5 80GB"
    (r"\bH200\b.*\bNVL\b", None),
    (r"\bH200\b", "H200"),
    (r"\bA100\b", "A100"),  # "NVIDIA A100-SXM4-80GB", "NVIDIA A100 80GB PCIe": the same bf16 peak
    (r"\bL40S\b", "L40S"),
    (r"\bA10G\b", "A10G"),
    (r"\bA10\b", "A10"),
    (r"\bL4\b", "L4"),
]
#: The CPU peak's matmul size and how many are timed (the best counts: the others met a busy core).
CPU_N, CPU_REPEATS = 1024, 5

_cpu_peaks: dict[int, float] = {}


def gpu_model(name: str) -> str | None:
    """The PEAK_BF16 key of a CUDA device name, or None when the table does not have it."""
    upper = name.upper()
    for pattern, key in GPU_NAMES:
        if re.search(pattern, upper):
            return key
    return None


def cpu_peak(threads: int | None = None) -> float:
    """fp32 matmul FLOP/s of this CPU with ``threads`` torch threads (default: torch's current count), measured
    once per process and thread count."""
    threads = int(threads or torch.get_num_threads())
    if threads not in _cpu_peaks:
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            g = torch.Generator().manual_seed(0)
            a, b = torch.randn(CPU_N, CPU_N, generator=g), torch.randn(CPU_N, CPU_N, generator=g)
            a @ b  # warm-up: thread pool and caches
            best = float("inf")
            for _ in range(CPU_REPEATS):
                t0 = time.perf_counter()
                a @ b
                best = min(best, time.perf_counter() - t0)
        finally:
            torch.set_num_threads(before)
        _cpu_peaks[threads] = 2.0 * CPU_N**3 / best
    return _cpu_peaks[threads]


def peak_flops(device: torch.device, threads: int = 1) -> tuple[float | None, str]:
    """(peak FLOP/s or None, where it comes from) of ``device``."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        key = gpu_model(name)
        if key is None:
            return None, f"unknown GPU {name}"
        return PEAK_BF16[key], f"PEAK_BF16[{key}] ({name}, dense bf16)"
    if device.type == "cpu":
        return cpu_peak(threads), f"measured fp32 matmul peak ({CPU_N}x{CPU_N}, {threads} thread(s), best of " \
                                  f"{CPU_REPEATS})"
    return None, f"no peak for device {device.type}"


def performance(cfg: Any, device: torch.device, items: float, train_time: float) -> dict[str, Any]:
    """The record's performance fields (summary): ``items`` trained in ``train_time`` seconds of training loop."""
    rate = items / train_time if train_time > 0 else None
    try:
        flops: float | None = per_item(cfg)[0]
        stated = formula(cfg.workload)
    except ValueError:  # a workload without a formula (a plugin's may have none): no FLOPs, no MFU
        flops, stated = None, None
    achieved = flops * rate if flops is not None and rate is not None else None
    peak, source = peak_flops(device, int(cfg.threads))
    return {
        "items_per_second": rate,
        "flops_per_item": flops,
        "flops_formula": stated,
        "achieved_flops_per_second": achieved,
        "peak_flops_per_second": peak,
        "peak_source": source,
        "mfu": achieved / peak if achieved is not None and peak else None,
    }
