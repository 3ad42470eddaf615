"""The cost verb: FLOPs formulas against torch's own count on small models, GPU-hours that add up, and
the numbers the README states are what `transferbench cost` prints."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from transferbench.config import resolve_run_config
from transferbench.config.grid import jobs
from transferbench.config.profile import load_profile
from transferbench.cost import PEAK_BF16, profile_cost
from transferbench.workloads.build import build_workload
from transferbench.workloads.llama import llama_flops
from transferbench.workloads.mlp import mlp_flops
from transferbench.workloads.resnet import resnet_flops

REPO = Path(__file__).resolve().parents[1]


def counted(cfg) -> float:
    """torch's count of one training step (forward + backward), per item."""
    torch.manual_seed(0)
    wl = build_workload(cfg, 1.0, torch.device("cpu"))
    x, y = wl.train_batch(0)
    # SDPA's math backend is plain matmuls, which the counter sees (the fused CPU kernel it does not)
    with FlopCounterMode(display=False) as counter, sdpa_kernel(SDPBackend.MATH):
        wl.loss_fn(wl.model(x).float(), y).backward()
    items = x.numel() if cfg.workload == "llama" else x.shape[0]
    return counter.get_total_flops() / items


@pytest.mark.parametrize(("workload", "settings", "formula"), [
    ("llama", {"width": 64, "depth": 2, "seq_len": 64, "vocab_size": 128, "batch_size": 2},
     lambda c: llama_flops(64, 2, c.settings.ffn_ratio, 128, 64)),
    ("resnet", {"width": 8, "depth": 1, "image_size": 16, "batch_size": 4},
     lambda c: resnet_flops(8, 1, 16, 10)),
    ("mlp", {"width": 64, "depth": 3, "batch_size": 8},
     lambda c: mlp_flops(64, 3, c.settings.in_dim, c.settings.out_dim)),
])
def test_the_formulas_match_torchs_count(workload: str, settings: dict, formula) -> None:
    cfg = resolve_run_config({"workload": workload, "recipe": "standard", "base_width": settings["width"],
                              "log2_lr": -6, **settings})
    # torch counts matmuls and convolutions, exactly what the formulas count (not norms or activations)
    assert formula(cfg) == pytest.approx(counted(cfg), rel=1e-9)


def test_gpu_hours_add_up() -> None:
    profile = load_profile(REPO / "config" / "paper.yaml")
    rows = {r["workload"]: r for r in profile_cost(profile, "H100-SXM", 0.4)}
    assert rows["llama"]["runs"] == 5 * 5 * 9 * 3  # recipes x widths x lrs x seeds
    assert rows["llama"]["gpu_hours"] == pytest.approx(rows["llama"]["flops"] / (PEAK_BF16["H100-SXM"] * 0.4) / 3600)
    # a width's own budget: the widest runs cost more than 4x the next (20 tokens per parameter)
    slower = {r["workload"]: r for r in profile_cost(profile, "A100", 0.4)}
    assert slower["llama"]["gpu_hours"] == pytest.approx(rows["llama"]["gpu_hours"] * 989 / 312)
    with pytest.raises(ValueError, match="mfu: must be in"):
        profile_cost(profile, "A100", 1.5)


def test_a_2d_search_counts_every_lattice_point() -> None:
    """wd_search adaptive: a job may train any (lr, wd) of its lattice, so the bound counts lrs x wds x seeds."""
    profile = load_profile(REPO / "config" / "wd-transfer.yaml")
    rows = {r["workload"]: r for r in profile_cost(profile, "H100-SXM", 0.4)}
    for wl, spec in profile["workloads"].items():
        want = sum(len(j.seeds) * len(j.log2_lrs) * len(spec["log2_wds"]) for j in jobs(profile) if j.workload == wl)
        assert len(spec["log2_wds"]) >= 2 and rows[wl]["runs"] == want, wl


@pytest.mark.parametrize("profile", ["paper.yaml", "paper-small.yaml"])
def test_the_readme_states_what_cost_prints(profile: str) -> None:
    out = subprocess.run([sys.executable, "-m", "transferbench", "cost", str(REPO / "config" / profile)],
                         capture_output=True, text=True, check=True).stdout
    total = re.search(r"^total\s+\d+\s+[\d,]+\s+([\d,.]+)", out, re.M).group(1)
    readme = (REPO / "README.md").read_text()
    assert f"{total} GPU-hours" in readme, (profile, total)


def test_the_formulas_against_a_hand_count() -> None:
    """Each formula against the count written out by hand for a small model: training = 3 x forward (the
    backward pass costs two forwards: gradients of the inputs and of the weights), 2 FLOPs a multiply-add."""
    # llama d=32, L=1, ffn_ratio 3, V=16, T=8, per token. Forward matmuls: q, k, v, o 4*32*32 = 4096, gate, up,
    # down 3*96*32 = 9216, head 32*16 = 512 -> 2*13824 = 27648; attention scores QK^T and the weighted values
    # 2*(2*T*d) = 2*2*8*32 = 1024. Train: 3*(27648 + 1024) = 86016 (= 6N + 12LTd, N = 13824).
    assert llama_flops(32, 1, 3, 16, 8) == 86016
    # resnet w=4, one block per stage, 8x8 images, 10 classes. Forward convs (2*k^2*C_in*C_out*H*W):
    # stem 3->4 at 8x8: 2*9*3*4*64 = 13824; stage 1 two 4->4 at 8x8: 2*18432 = 36864; stage 2 at 4x4: 4->8
    # 9216, 8->8 18432, 1x1 shortcut 4->8 1024 = 28672; stage 3 at 2x2: 8->16 9216, 16->16 18432, shortcut
    # 1024 = 28672. Sum 108032; x3 = 324096, minus the stem's input gradient 13824 (the images need none)
    # = 310272; the classifier 16->10: 6*16*10 = 960. Per image: 311232.
    assert resnet_flops(4, 1, 8, 10) == 311232
    # mlp d=8, two hidden layers, in 4, out 3: weights 4*8 + 2*64 + 8*3 = 184. Forward 2*184 = 368, weight
    # gradients 368, input gradients of every layer but the first 2*(184 - 32) = 304. Per sample: 1040.
    assert mlp_flops(8, 2, 4, 3) == 1040
