"""Speed targets of the trainer and the analysis, each a ratio against a baseline measured in the same
run (never a timed assertion in tests/). Run with

    pytest bench/ -p no:cacheprovider --benchmark-disable-gc -s

and read the printed lines (also in benchmark.extra_info with --benchmark-json out.json). The numbers
of the last run, the machine and the command are in bench/README.md. Everything runs on 1 thread.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from transferbench.config import resolve_run_config
from transferbench.train import setup, train

os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[1]
# The tiny profile's runs (config/config.yaml), full length: the diagnostics' cost is per snapshot,
# not per step, so shorter runs would overstate it.
TINY = {"llama": {"steps": 200, "batch_size": 16, "seq_len": 128, "depth": 2, "vocab_size": 64, "wd": 1.0},
        "resnet": {"steps": 120, "batch_size": 64, "image_size": 16, "depth": 1, "wd": 0.1},
        "mlp": {"steps": 300, "batch_size": 128, "depth": 3, "wd": 1.0}}
BASE = {"llama": 32, "resnet": 8, "mlp": 64}


def cfg(workload: str, width: int, **kw):
    return resolve_run_config({"workload": workload, "recipe": "mup-independent-wd", "width": width,
                               "base_width": BASE[workload], "log2_lr": -6, **TINY[workload], **kw})


def bare_loop(c) -> float:
    """The baseline: the trainer's own model, data and AdamW groups, and nothing else in the loop."""
    run = setup(c)
    model, opt = run.wl.model, run.opt
    model.train()
    t0 = time.perf_counter()
    for t in range(int(c.steps)):
        for i, g in enumerate(opt.param_groups):
            g["lr"], g["weight_decay"] = run.lrs[i][t], run.wds[i][t]
        x, y = run.wl.train_batch(t)
        loss = run.wl.loss_fn(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def interleaved(a, b, reps: int = 2) -> tuple[float, float]:
    """min over reps of a() and of b(), alternating, so drifts of the machine hit both alike."""
    ta, tb = [], []
    for _ in range(reps):
        ta.append(a())
        tb.append(b())
    return min(ta), min(tb)


def report(benchmark, name: str, **values) -> None:
    benchmark.extra_info.update(values)
    print(f"\n[bench] {name}: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                            for k, v in values.items()))


@pytest.mark.parametrize(("workload", "width"), [("llama", 32), ("llama", 128), ("resnet", 8), ("resnet", 32),
                                                 ("mlp", 64), ("mlp", 512)])
def test_trainer_against_a_bare_loop(benchmark, workload: str, width: int) -> None:
    """Target: the trainer's loop (schedule, factors, coordinate check, diagnostics, applied) <= 5% over."""
    c = cfg(workload, width)
    bare, trainer = interleaved(lambda: bare_loop(c), lambda: train(c)["summary"]["wall_time"])
    benchmark.pedantic(lambda: None, rounds=1)
    report(benchmark, f"trainer/bare {workload} d={width}", bare_s=bare, trainer_s=trainer,
           overhead=trainer / bare - 1, target=0.05)


@pytest.mark.parametrize(("workload", "width"), [("llama", 128), ("mlp", 512)])
def test_diagnostics_share_of_a_run(benchmark, workload: str, width: int) -> None:
    """Target: diagnostics (snapshots, coordinate check) <= 2% of a run: the default against the least."""
    full, least = cfg(workload, width), cfg(workload, width, diag_points=1, coord_steps=0)
    t_full, t_least = interleaved(lambda: train(full)["summary"]["wall_time"],
                                  lambda: train(least)["summary"]["wall_time"])
    benchmark.pedantic(lambda: None, rounds=1)
    report(benchmark, f"diagnostics share {workload} d={width}", default_s=t_full, least_s=t_least,
           share=(t_full - t_least) / t_full, target=0.02)


def matmul_peak(n: int = 1024, reps: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    best = min(_timed(lambda: a @ b) for _ in range(reps))
    return 2 * n**3 / best / 1e9


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def test_llama_step_gflops_against_the_matmul_peak(benchmark) -> None:
    """Achieved GFLOP/s of the llama d=128 training step (model FLOPs from cost.py's formula, which
    tests/test_cost.py checks against torch's count) against a 1-thread fp32 matmul peak measured now."""
    from transferbench.cost import per_item

    c = cfg("llama", 128)
    per_token, tokens = per_item(c)
    flops = per_token * tokens / int(c.steps)
    peak = matmul_peak()
    loop = bare_loop(c)
    achieved = flops * int(c.steps) / loop / 1e9
    benchmark.pedantic(lambda: None, rounds=1)
    report(benchmark, "llama d=128 step", flops_per_step=float(flops), achieved_gflops=achieved,
           matmul_peak_gflops=peak, ratio=achieved / peak)


def test_per_job_fixed_cost_against_the_median_job(benchmark, tmp_path: Path) -> None:
    """A `python -m transferbench train` process minus its training loop (import, checks, setup, record),
    against the median sweep-line job of the committed reference run (sum of its runs' wall times)."""
    cmd = [sys.executable, "-m", "transferbench", "train", "--workload", "mlp", "--recipe", "mup",
           "--width", "64", "--base-width", "64", "--log2-lr", "-6", "--steps", "5", "--out", str(tmp_path / "r")]
    costs = []
    for i in range(3):
        t0 = time.perf_counter()
        subprocess.run([*cmd[:-1], str(tmp_path / f"r{i}")], check=True, capture_output=True)
        total = time.perf_counter() - t0
        costs.append(total - json.loads((tmp_path / f"r{i}" / "record.json").read_text())["summary"]["wall_time"])
    runs = pd.read_csv(REPO / "results" / "tables" / "runs.csv")
    lines = runs[runs["shared_with"].isna()] if "shared_with" in runs else runs
    per_line = lines.groupby(["workload", "recipe", "width", "wd"])["wall_time"].sum()
    fixed, median = statistics.median(costs), float(per_line.median())
    benchmark.pedantic(lambda: None, rounds=1)
    report(benchmark, "per-job fixed cost", fixed_s=fixed, median_job_s=median, ratio=fixed / median)


def synthetic_runs(n_target: int = 100_000) -> pd.DataFrame:
    """A runs table in runs.csv's format: 3 workloads x 20 recipes x 5 widths x 11 lrs x 31 seeds."""
    rng = np.random.default_rng(0)
    idx = pd.MultiIndex.from_product([["llama", "resnet", "mlp"], [f"r{i}" for i in range(20)],
                                      [32, 64, 128, 256, 512], np.arange(-10.0, 1.0), range(31)],
                                     names=["workload", "recipe", "width", "log2_lr", "seed"])
    t = idx.to_frame(index=False)
    t = t.iloc[:n_target] if len(t) > n_target else t
    opt = -5 - 0.5 * np.log2(t["width"] / 32)
    t["eval_loss"] = 2 + 0.1 * (t["log2_lr"] - opt) ** 2 + rng.normal(0, 0.01, len(t))
    t = t.assign(base_width=32, wd=0.1, init_loss=4.0, diverged=False, log2_top_sv=1.0, config_hash="x",
                 recipe_arxiv="2401.00001", recipe_distribution="d", recipe_version="1")
    t["width_mult"] = t["width"] / 32
    return t


def test_aggregate_and_metrics_on_100k_records(benchmark, tmp_path: Path) -> None:
    """Target: runs.csv of 100,000 rows -> read + metrics (1000 bootstrap resamples) in under 10 s; the
    baseline is pandas reading the same CSV. (aggregate from 100,000 record.json files is not measured:
    its per-file JSON parse and validation dominate and scale linearly; see bench/README.md.)"""
    from transferbench.aggregate import read_table
    from transferbench.metrics import compute_metrics

    path = tmp_path / "runs.csv"
    synthetic_runs().to_csv(path, index=False)
    t_read = _timed(lambda: pd.read_csv(path))
    t_all = _timed(lambda: compute_metrics(read_table(path), n_boot=1000))
    benchmark.pedantic(lambda: None, rounds=1)
    report(benchmark, "read + metrics, 100k rows", read_csv_s=t_read, read_and_metrics_s=t_all,
           ratio=t_all / t_read, target_s=10.0)
