"""What a profile costs: model FLOPs per training item from stated formulas, and GPU-hours at a stated MFU.

Formulas (training = forward + backward = 3 x forward; a multiply-add is 2 FLOPs):
- llama, per token: 6·N + 12·L·T·d, with N = L·(4d² + 3·r·d²) + d·V the matmul parameters (attention
  q, k, v, o; SwiGLU's three r·d x d matrices; the untied output head), embeddings excluded (a lookup
  is not a matmul), and 12·L·T·d the attention scores QKᵀ and the weighted values at context T, forward
  and backward (Chowdhery et al. 2022, PaLM, arXiv 2204.02311, App. B; nanoGPT's estimate_mfu; no
  causal halving, as a dense kernel computes the masked half). Kaplan et al. 2020's 6·L·T·d counts
  half of it. tests/test_cost.py checks the sum against torch's FlopCounterMode.
- resnet, per image: 3 x Σ over convolutions of 2·k²·C_in·C_out·H_out·W_out, plus 6·4w·classes for
  the classifier (He et al. 2016's CIFAR ResNet: stem 3x3, stages of w, 2w, 4w channels at S, S/2, S/4,
  a 1x1 shortcut where the shape changes), minus the stem's input gradient (the images need none);
  BatchNorm and ReLU are not counted.
- mlp, per sample: 6·(in·d + depth·d² + d·out) − 2·in·d (no gradient for the inputs).
GPU-hours = Σ over runs of FLOPs per item x items per run / (peak x MFU) / 3600, with the peak dense
bf16 FLOP/s of :data:`PEAK_BF16` (vendor data sheets, without sparsity). An adaptive lr search trains
a subset of the lattice: the estimate counts every lattice lr, an upper bound. Pure Python.
"""

from __future__ import annotations

from typing import Any

from transferbench.config import resolve_run_config
from transferbench.config.data_grid import workload_data
from transferbench.config.grid import jobs

#: Peak dense bf16 tensor-core FLOP/s (no sparsity), from the vendors' data sheets (H200: H100-SXM's compute;
#: L4: half the 242 TFLOP/s with sparsity). mfu.py maps torch.cuda.get_device_name() onto these keys.
PEAK_BF16 = {"H100-SXM": 989e12, "H100-PCIe": 756e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12,
             "A10G": 125e12, "A10": 125e12, "L4": 121e12}
#: The formula behind each workload's FLOPs per item (the functions below), as the record states it.
FORMULAS = {
    "llama": "6*N + 12*L*T*d per token, N = L*(4+3*ffn_ratio)*d^2 + d*V (matmul parameters, embeddings excluded)",
    "resnet": "3 * sum over convolutions of 2*k^2*C_in*C_out*H_out*W_out - the stem's input gradient + 6*4w*classes "
              "per image",
    "mlp": "6*(in*d + depth*d^2 + d*out) - 2*in*d per sample",
}


def llama_flops(d: int, depth: int, ffn_ratio: int, vocab: int, seq_len: int) -> float:
    n = depth * (4 * d * d + 3 * ffn_ratio * d * d) + d * vocab
    return 6.0 * n + 12.0 * depth * seq_len * d


def resnet_flops(w: int, depth: int, size: int, classes: int) -> float:
    def conv(k: int, cin: int, cout: int, side: int) -> float:
        return 2.0 * k * k * cin * cout * side * side

    fwd = conv(3, 3, w, size)
    cin, side = w, size
    for stage, cout in enumerate((w, 2 * w, 4 * w)):
        for block in range(depth):
            if stage > 0 and block == 0:
                side //= 2
            fwd += conv(3, cin, cout, side) + conv(3, cout, cout, side)
            if cin != cout:
                fwd += conv(1, cin, cout, side)
            cin = cout
    stem = conv(3, 3, w, size)
    return 3.0 * fwd - stem + 6.0 * 4 * w * classes


def mlp_flops(d: int, depth: int, d_in: int, d_out: int) -> float:
    return 6.0 * (d_in * d + depth * d * d + d * d_out) - 2.0 * d_in * d


def per_item(cfg: Any) -> tuple[float, float]:
    """(FLOPs per item, items per run) of one resolved run config."""
    s, steps, bs = cfg.settings, int(cfg.steps), int(cfg.batch_size)
    if cfg.workload == "llama":
        return llama_flops(cfg.width, cfg.depth, s.ffn_ratio, s.vocab_size, s.seq_len), float(steps * bs * s.seq_len)
    if cfg.workload == "resnet":
        return resnet_flops(cfg.width, cfg.depth, s.image_size, s.num_classes), float(steps * bs)
    if cfg.workload == "mlp":
        return mlp_flops(cfg.width, cfg.depth, s.in_dim, s.out_dim), float(steps * bs)
    raise ValueError(f"workload: no FLOPs formula for {cfg.workload!r}")


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
        for seed in job.seeds:
            for x in job.log2_lrs:
                cfg = resolve_run_config({**base, "workload": job.workload, "recipe": job.recipe, "width": job.width,
                                          "base_width": int(args["--base-width"]), "wd": job.wd, "seed": seed,
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
             "formulas in transferbench/cost.py" + (" (adaptive lr search: every lattice lr counted, an upper "
                                                    "bound)" if adaptive else ""),
             f"{'workload':<10}{'runs':>8}{'PFLOP':>14}{'GPU-hours':>12}{'largest run (h)':>18}"]
    for r in rows:
        lines.append(f"{r['workload']:<10}{r['runs']:>8}{r['flops'] / 1e15:>14,.0f}{r['gpu_hours']:>12,.1f}"
                     f"{r['largest_run_h']:>18.2f}")
    total = sum(r["gpu_hours"] for r in rows)
    lines.append(f"{'total':<10}{sum(r['runs'] for r in rows):>8}{sum(r['flops'] for r in rows) / 1e15:>14,.0f}"
                 f"{total:>12,.1f}")
    return "\n".join(lines)
