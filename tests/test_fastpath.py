"""The GPU fast path on a CPU: every switch reaches the object it switches (the optimizer, the autocast
context, the attention kernel, torch's TF32 flags), a CUDA device is tested through the builders (mocked,
nothing runs on it), impossible combinations are named, and every record carries its performance: items
per second, model FLOPs per item and their formula, achieved and peak FLOP/s, and MFU."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import pytest
import torch

from transferbench import fastpath, mfu
from transferbench.config import ConfigError, config_hash, resolve_run_config
from transferbench.cost import PEAK_BF16
from transferbench.train import setup, train
from transferbench.workloads.llama import llama_flops
from transferbench.workloads.mlp import mlp_flops

CUDA = torch.device("cuda", 0)
LLAMA = {"workload": "llama", "recipe": "mup", "width": 32, "base_width": 16, "log2_lr": -6, "depth": 1, "steps": 6,
         "batch_size": 2, "seq_len": 16, "eval_batches": 1, "diag_points": 1, "coord_steps": 0}


def cfg(**kw):
    return resolve_run_config({**LLAMA, **kw})


def test_new_settings_leave_every_hash_alone_at_their_defaults() -> None:
    base = cfg()
    for key, value in (("autocast", "off"), ("tf32", False), ("fused_adamw", False), ("sdpa_backend", "flash")):
        assert config_hash(cfg(**{key: value})) != config_hash(base), key
    assert config_hash(cfg(autocast="bf16", tf32=True, fused_adamw=True, sdpa_backend="auto")) == config_hash(base)


def test_the_optimizer_and_autocast_flags_reach_what_cuda_would_run(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[tuple] = []

    def fake_autocast(device_type: str, dtype: torch.dtype, enabled: bool) -> contextlib.AbstractContextManager:
        made.append((device_type, dtype, enabled))
        return contextlib.nullcontext()

    monkeypatch.setattr(fastpath.torch, "autocast", fake_autocast)
    fast = fastpath.plan(cfg(), CUDA)
    assert fast.optimizer == {"fused": True} and fast.autocast_dtype == torch.bfloat16
    with fast.context():
        pass
    assert made[-1] == ("cuda", torch.bfloat16, True)
    assert fast.record() == {"autocast": "bfloat16", "tf32": True, "sdpa_backend": "auto"}

    off = fastpath.plan(cfg(autocast="off", fused_adamw=False, tf32=False), CUDA)
    assert off.optimizer == {"foreach": True} and off.autocast_dtype is None
    with off.context():
        pass
    assert made[-1][2] is False and off.record() == {"autocast": None, "tf32": False, "sdpa_backend": "auto"}
    # On a CPU the run is fp32 whatever autocast says, and TF32 is not claimed.
    cpu = fastpath.plan(cfg(), torch.device("cpu"))
    assert cpu.autocast_dtype is None and cpu.record()["tf32"] is False and cpu.optimizer == {"fused": True}


def test_tf32_sets_torchs_cuda_flags_and_never_on_a_cpu_run() -> None:
    matmul, conv = torch.backends.cuda.matmul, torch.backends.cudnn.conv
    saved = matmul.fp32_precision, conv.fp32_precision
    try:
        fastpath.plan(cfg(tf32=False), CUDA).apply_globals()
        assert (matmul.fp32_precision, conv.fp32_precision) == ("ieee", "ieee")
        fastpath.plan(cfg(tf32=True), CUDA).apply_globals()
        assert (matmul.fp32_precision, conv.fp32_precision) == ("tf32", "tf32")
        fastpath.plan(cfg(tf32=False), torch.device("cpu")).apply_globals()
        assert (matmul.fp32_precision, conv.fp32_precision) == ("tf32", "tf32")  # untouched
    finally:
        matmul.fp32_precision, conv.fp32_precision = saved


@pytest.mark.parametrize("backend", ["math", "flash"])
def test_the_attention_kernel_is_the_one_asked_for_inside_every_training_forward(backend: str) -> None:
    run = setup(cfg(sdpa_backend=backend))
    seen: list[tuple[bool, bool]] = []
    attn = run.wl.model.blocks[0].attn
    attn.register_forward_pre_hook(
        lambda *_: seen.append((torch.backends.cuda.flash_sdp_enabled(), torch.backends.cuda.math_sdp_enabled())))
    record = train(run.cfg, run=run)
    assert seen and set(seen) == {(backend == "flash", backend == "math")}  # eval, steps, snapshot
    assert torch.backends.cuda.flash_sdp_enabled() and torch.backends.cuda.math_sdp_enabled()  # restored after
    assert record["provenance"]["fast_path"]["sdpa_backend"] == backend
    auto = train(cfg())
    assert record["curve"]["loss"] == pytest.approx(auto["curve"]["loss"], rel=1e-5)


def test_a_kernel_that_cannot_run_is_named_before_any_step(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="sdpa_backend: 'cudnn' has no kernel on cpu; use one of auto, flash, math"):
        setup(cfg(sdpa_backend="cudnn"))
    with pytest.raises(ConfigError, match="sdpa_backend: 'flash' needs bf16 inputs on CUDA"):
        fastpath.plan(cfg(sdpa_backend="flash", autocast="off"), CUDA)
    from transferbench.__main__ import main

    argv = ["train", "--workload", "mlp", "--recipe", "mup", "--width", "16", "--base-width", "16", "--log2-lr", "-6",
            "--steps", "2", "--out", str(tmp_path / "run"), "--sdpa-backend", "efficient"]
    assert main(argv) == 2 and not (tmp_path / "run" / "record.json").exists()


@pytest.mark.parametrize(("name", "key"), [
    ("NVIDIA H100 80GB HBM3", "H100-SXM"), ("NVIDIA H100 SXM5 80GB", "H100-SXM"), ("NVIDIA H100 PCIe", "H100-PCIe"),
    ("NVIDIA H100 NVL", None), ("NVIDIA H200", "H200"), ("NVIDIA A100-SXM4-80GB", "A100"),
    ("NVIDIA A100 80GB PCIe", "A100"), ("NVIDIA A100-PCIE-40GB", "A100"), ("NVIDIA L40S", "L40S"), ("NVIDIA L40", None),
    ("NVIDIA A10G", "A10G"), ("NVIDIA A10", "A10"), ("NVIDIA L4", "L4"), ("NVIDIA GeForce RTX 4090", None),
    ("Tesla V100-SXM2-16GB", None), ("NVIDIA GH200 480GB", None),
])
def test_gpu_names_map_onto_the_peak_table(name: str, key: str | None) -> None:
    assert mfu.gpu_model(name) == key
    assert key is None or key in PEAK_BF16


def test_mfu_against_a_gpu_named_by_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    c = cfg()
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d=None: "NVIDIA H100 80GB HBM3")
    perf = mfu.performance(c, CUDA, items=3.0e9, train_time=10.0)
    per_token = llama_flops(32, 1, 3, 64, 16)
    assert perf["flops_per_item"] == per_token and perf["items_per_second"] == 3.0e8
    assert perf["achieved_flops_per_second"] == per_token * 3.0e8
    assert perf["peak_flops_per_second"] == 989e12 and perf["mfu"] == pytest.approx(per_token * 3.0e8 / 989e12)
    assert perf["peak_source"] == "PEAK_BF16[H100-SXM] (NVIDIA H100 80GB HBM3, dense bf16)"
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d=None: "NVIDIA GeForce RTX 4090")
    perf = mfu.performance(c, CUDA, items=3.0e9, train_time=10.0)
    assert perf["mfu"] is None and perf["peak_flops_per_second"] is None
    assert perf["peak_source"] == "unknown GPU NVIDIA GeForce RTX 4090" and perf["achieved_flops_per_second"] > 0


def test_the_cpu_peak_is_measured_once_and_quickly() -> None:
    mfu._cpu_peaks.clear()
    t0 = time.perf_counter()
    peak = mfu.cpu_peak(1)
    took = time.perf_counter() - t0
    assert 1e9 < peak < 1e13 and took < 1.5  # ~0.15 s here; generous for a loaded CI machine
    t0 = time.perf_counter()
    assert mfu.cpu_peak(1) == peak and time.perf_counter() - t0 < 1e-3  # cached per process and thread count


def test_every_record_carries_its_performance() -> None:
    c = resolve_run_config({"workload": "mlp", "recipe": "mup", "width": 32, "base_width": 16, "log2_lr": -6,
                            "depth": 2, "steps": 8, "batch_size": 16, "eval_batches": 1, "diag_points": 1})
    s = train(c)["summary"]
    items = 8 * 16
    assert s["items_per_second"] == s["throughput"] == pytest.approx(items / s["wall_time"])
    assert s["flops_per_item"] == mlp_flops(32, 2, 16, 8) and s["flops_formula"].startswith("6*(in*d")
    assert s["achieved_flops_per_second"] == pytest.approx(s["flops_per_item"] * s["items_per_second"])
    assert s["peak_source"].startswith("measured fp32 matmul peak (1024x1024, 1 thread(s)")
    assert s["mfu"] == pytest.approx(s["achieved_flops_per_second"] / s["peak_flops_per_second"])
    assert 0 < s["mfu"] < 1


def test_only_the_steps_trained_count() -> None:
    c = resolve_run_config({"workload": "mlp", "recipe": "standard", "width": 32, "base_width": 16, "log2_lr": 12,
                            "depth": 2, "steps": 30, "batch_size": 16, "eval_batches": 1, "warmup_frac": 0})
    s = train(c)["summary"]
    assert s["diverged"] and s["steps_completed"] < 30  # stopped at a non-finite loss
    assert s["items_per_second"] * s["wall_time"] == pytest.approx(16 * s["steps_completed"])
