"""Speed target: the trainer (schedule, per-step recipe factors, coordinate-check hooks, diagnostics,
record) costs at most 25% over a bare AdamW loop on the same model and data. Measured as a ratio
against that baseline in the same run, never as a timed assertion in tests.

    pytest bench/ --benchmark-only        # add --benchmark-json out.json to keep the numbers
"""

from __future__ import annotations

import time

import pytest
import torch

from transferbench.config import resolve_run_config
from transferbench.train import train
from transferbench.workloads import build_workload

STEPS = 60
TARGET = 1.25


def cfg(width: int) -> dict:
    return resolve_run_config({
        "workload": "llama", "recipe": "warmup-replacement", "width": width, "base_width": 32,
        "log2_lr": -6, "steps": STEPS, "eval_batches": 2,
    })


def bare_loop(c: dict) -> float:
    """The baseline: the same model, data and optimizer, nothing else."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    wl = build_workload(c, 1.0, torch.device("cpu"))
    opt = torch.optim.AdamW(wl.model.parameters(), lr=c["lr"], weight_decay=c["wd"], foreach=False)
    t0 = time.perf_counter()
    for t in range(STEPS):
        x, y = wl.train_batch(t)
        loss = wl.loss_fn(wl.model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


@pytest.mark.parametrize("width", [32, 128])
def test_trainer_overhead_against_bare_loop(benchmark, width: int) -> None:
    c = cfg(width)
    baseline = min(bare_loop(c) for _ in range(2))
    record = benchmark.pedantic(lambda: train(c), rounds=2, iterations=1)
    trainer = record["summary"]["wall_time"]
    ratio = trainer / baseline
    benchmark.extra_info.update(baseline_s=baseline, trainer_loop_s=trainer, ratio=ratio, target=TARGET)
    assert ratio < TARGET, f"trainer loop {trainer:.2f}s vs bare loop {baseline:.2f}s: ratio {ratio:.2f}"
