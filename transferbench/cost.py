"""What a profile costs: model FLOPs per training item from stated formulas, and GPU-hours at a stated MFU.

Each workload's spec states its formula (``flops_formula``, in words) and computes it (``flops_per_item``,
per token, image or sample of one training step: training = forward + backward = 3 x forward; a
multiply-add is 2 FLOPs); the built-ins' derivations are in their folders (workloads/<name>/__init__.py),
and tests/test_cost.py checks them against torch's FlopCounterMode.
GPU-hours = Σ over runs of FLOPs per item x items per run / (peak x MFU) / 3600, with the peak dense
bf16 FLOP/s of :data:`PEAK_BF16` (vendor data sheets, without sparsity). An adaptive lr search trains
a subset of the lattice: the estimate counts every lattice lr (and, for the 2-D lr x wd search, every lattice
(lr, wd) point), an upper bound. Pure Python.
"""

from __future__ import annotations

from typing import Any

from transferbench import workloads
from transferbench.config import resolve_run_config
from transferbench.config.data_grid import workload_data
from transferbench.config.grid import jobs

#: Peak dense bf16 tensor-core FLOP/s (no sparsity), from the vendors' data sheets (H200: H100-SXM's compute;
#: L4: half the 242 TFLOP/s with sparsity). mfu.py maps torch.cuda.get_device_name() onto these keys.
PEAK_BF16 = {"H100-SXM": 989e12, "H100-PCIe": 756e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12,
             "A10G": 125e12, "A10": 125e12, "L4": 121e12}


def per_item(cfg: Any) -> tuple[float, float]:
    """(FLOPs per item, items per run) of one resolved run config, from its workload's spec; ValueError for a
    workload without a formula."""
    spec = workloads.get(cfg.workload)
    if spec.flops_per_item is None:
        raise ValueError(f"workload: no FLOPs formula for {cfg.workload!r}")
    return spec.flops_per_item(cfg), float(int(cfg.steps) * spec.items_per_batch(cfg))


def formula(workload: str) -> str | None:
    """The formula behind ``workload``'s FLOPs per item, in words, as the record states it (None: none)."""
    return workloads.get(workload).flops_formula


def profile_cost(profile: dict[str, Any], gpu: str = "H100-SXM", mfu: float = 0.4) -> list[dict[str, Any]]:
    """One row per workload: runs, total FLOPs and GPU-hours, and the largest run's hours."""
    if gpu not in PEAK_BF16:
        raise ValueError(f"gpu: {gpu!r} is not one of {', '.join(PEAK_BF16)}")
    if not 0 < mfu <= 1:
        raise ValueError(f"mfu: must be in (0, 1], got {mfu}")
    rate = PEAK_BF16[gpu] * mfu
    rows: dict[str, dict[str, Any]] = {}
    for job in jobs(profile):
        args = dict(zip(job.args[:10:2], job.args[1:10:2]))  # --workload ... --wd: KEY VALUE pairs
        base = _settings(profile, job.workload, job.width)
        flags, _ = workload_data(profile, job.workload, profile["workloads"][job.workload])
        base.update({flags[i].lstrip("-").replace("-", "_"): flags[i + 1] for i in range(0, len(flags), 2)})
        # A 2-D job (wd_search adaptive) may train any point of its log2 lr x log2 wd lattice.
        wds = [2.0**y for y in job.log2_wds] if job.log2_wds else [job.wd]
        for seed, x, wd in ((s, x, wd) for s in job.seeds for x in job.log2_lrs for wd in wds):
            cfg = resolve_run_config({**base, "workload": job.workload, "recipe": job.recipe, "width": job.width,
                                      "base_width": int(args["--base-width"]), "wd": wd, "seed": seed,
                                      "log2_lr": x})
            flops, items = per_item(cfg)
            row = rows.setdefault(job.workload, {"workload": job.workload, "runs": 0, "flops": 0.0,
                                                 "largest_run_h": 0.0})
            row["runs"] += 1
            row["flops"] += flops * items
            row["largest_run_h"] = max(row["largest_run_h"], flops * items / rate / 3600)
    for row in rows.values():
        row["gpu_hours"] = row["flops"] / rate / 3600
    return list(rows.values())


def _settings(profile: dict[str, Any], workload: str, width: int) -> dict[str, Any]:
    from transferbench.config.grid import run_settings

    settings = run_settings(profile, workload, profile["workloads"][workload], width)
    settings.pop("threads", None)
    return settings


def cost_table(rows: list[dict[str, Any]], gpu: str, mfu: float, adaptive: bool) -> str:
    lines = [f"GPU-hours at {mfu:.0%} MFU of a {gpu} ({PEAK_BF16[gpu] / 1e12:.0f} TFLOP/s dense bf16); "
             "formulas in each workload's spec (transferbench workloads)"
             + (" (adaptive search: every lattice lr, or (lr, wd) point, counted: an upper bound)" if adaptive else ""),
             f"{'workload':<10}{'runs':>8}{'PFLOP':>14}{'GPU-hours':>12}{'largest run (h)':>18}"]
    for r in rows:
        lines.append(f"{r['workload']:<10}{r['runs']:>8}{r['flops'] / 1e15:>14,.0f}{r['gpu_hours']:>12,.1f}"
                     f"{r['largest_run_h']:>18.2f}")
    total = sum(r["gpu_hours"] for r in rows)
    lines.append(f"{'total':<10}{sum(r['runs'] for r in rows):>8}{sum(r['flops'] for r in rows) / 1e15:>14,.0f}"
                 f"{total:>12,.1f}")
    return "\n".join(lines)
