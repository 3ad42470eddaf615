"""How the step runs: AdamW's fused kernel where torch has one for the device (the CPU included), and
torch.compile only when asked; both are recorded, and neither changes the losses beyond rounding."""

from __future__ import annotations

import pytest
import torch

from transferbench.config import config_hash, resolve_run_config
from transferbench.fastpath import optimizer_impl
from transferbench.train import setup, train

TINY = {"workload": "mlp", "recipe": "mup", "width": 32, "base_width": 16, "log2_lr": -6, "depth": 2,
        "steps": 20, "batch_size": 16, "eval_batches": 1, "diag_points": 2, "coord_steps": 2}


def test_adamw_is_fused_on_cpu_and_the_record_says_so() -> None:
    cfg = resolve_run_config(TINY)
    run = setup(cfg)
    assert optimizer_impl(torch.device("cpu")) == {"fused": True}
    assert run.opt.defaults["fused"] is True and not run.opt.defaults.get("foreach")
    record = train(cfg, run=run)
    assert record["provenance"]["optimizer"] == {"name": "AdamW", "fused": True}
    assert record["provenance"]["compile"] is False


def test_fused_and_unfused_adamw_agree() -> None:
    cfg = resolve_run_config(TINY)
    fused = train(cfg)["curve"]["loss"]
    loop_cfg = resolve_run_config({**TINY, "fused_adamw": False})
    assert config_hash(loop_cfg) != config_hash(cfg)  # hashed only when off
    loop_run = setup(loop_cfg)
    assert not loop_run.opt.defaults["fused"] and not loop_run.opt.defaults["foreach"]  # the per-parameter loop
    loop = train(loop_cfg, run=loop_run)
    assert loop["provenance"]["optimizer"] == {"name": "AdamW", "foreach": False}
    assert fused == pytest.approx(loop["curve"]["loss"], rel=1e-5)


def test_compile_is_opt_in_recorded_and_gives_the_same_losses() -> None:
    eager_cfg = resolve_run_config(TINY)
    compiled_cfg = resolve_run_config({**TINY, "compile": True})
    assert config_hash(eager_cfg) != config_hash(compiled_cfg)  # hashed only when on
    eager, compiled = train(eager_cfg), train(compiled_cfg)
    assert compiled["provenance"]["compile"] is True and compiled["config"]["compile"] is True
    assert compiled["curve"]["loss"] == pytest.approx(eager["curve"]["loss"], rel=1e-4)
    assert compiled["summary"]["eval_loss"] == pytest.approx(eager["summary"]["eval_loss"], rel=1e-4)
