"""docs/extending.md stays true: its code blocks are executed here. The toy workload is added in one
place (one register call with its model and data) and trains end to end through `train`, and goes
through the profile check; the metric column appears in transfer.csv; an unknown workload fails loudly.
Also: docs/settings.md is the output of `transferbench settings`."""

from __future__ import annotations

import re
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from transferbench import metrics, workload_specs
from transferbench.config import ConfigError, resolve_run_config
from transferbench.config.profile import check_profile

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "extending.md"


def code_block(section: str) -> str:
    """The first ```python block under the heading ``## section``."""
    text = DOC.read_text()
    body = text[text.index(f"## {section}"):]
    return re.search(r"```python\n(.*?)```", body, re.S).group(1)


@pytest.fixture
def doc_module() -> Iterator[types.ModuleType]:
    """A module to run a doc block in (its builder strings name it), removed afterwards."""
    mod = types.ModuleType("extending_doc_example")
    sys.modules[mod.__name__] = mod
    yield mod
    sys.modules.pop(mod.__name__, None)
    workload_specs._REGISTRY.pop("toy", None)
    metrics.COLUMN_HOOKS.pop("best_width", None)


def test_a_fourth_workload_in_one_place(doc_module: types.ModuleType, tmp_path: Path) -> None:
    from transferbench.train import train

    exec(compile(code_block("Add a workload"), str(DOC), "exec"), doc_module.__dict__)
    assert "toy" in workload_specs.names()
    cfg = resolve_run_config({"workload": "toy", "recipe": "mup-independent-wd", "width": 32, "base_width": 16,
                              "log2_lr": -6, "steps": 15, "eval_batches": 1, "diag_points": 1, "coord_steps": 2})
    assert cfg["batch_size"] == 16 and cfg["in_dim"] == 8  # the spec's override and its own setting
    rec = train(cfg, tmp_path)
    s = rec["summary"]
    assert s["steps_completed"] == 15 and not s["diverged"] and s["eval_loss"] < s["init_loss"]
    roles = {g["role"]: g for g in rec["param_groups"]}
    assert set(roles) == {"input", "hidden", "output", "vector"}
    assert roles["hidden"]["lr"] == pytest.approx(2.0**-6 / 2) and roles["hidden"]["weight_decay"] == 0.2
    assert rec["data"]["kind"] == "linear-map" and rec["diagnostics"][-1]["sublayer_gain"]
    check_profile({"recipes": ["mup"], "seeds": [0], "workloads": {
        "toy": {"widths": [16, 32], "base_width": 16, "log2_lrs": [-7, -6], "wds": [0.1], "settings": {"in_dim": 4}}}})
    with pytest.raises(ConfigError, match="in_dim: must be >= 1"):
        resolve_run_config({**{k: cfg[k] for k in ("workload", "recipe", "width", "base_width", "log2_lr")},
                            "in_dim": 0})


def test_an_unknown_workload_fails_loudly() -> None:
    with pytest.raises(ConfigError, match="workload: unknown value 'toy'; known workloads are llama, resnet, mlp"):
        resolve_run_config({"workload": "toy", "recipe": "mup", "width": 8, "base_width": 8, "log2_lr": -6})
    with pytest.raises(ConfigError, match="unknown value 'toy'"):
        check_profile({"recipes": ["mup"], "seeds": [0], "workloads": {
            "toy": {"widths": [8], "base_width": 8, "log2_lrs": [-6], "wds": [0.1]}}})


def test_a_metric_column_in_one_place(doc_module: types.ModuleType) -> None:
    exec(compile(code_block("Add a metric column"), str(DOC), "exec"), doc_module.__dict__)
    rows = [{"workload": "llama", "recipe": "mup", "wd": 0.1, "width": w, "base_width": 32, "log2_lr": x,
             "seed": 0, "init_loss": 5.0, "eval_loss": 2.0 + 0.1 * (x + 6) ** 2 - 0.01 * np.log2(w),
             "diverged": False, "log2_top_sv": 0.0} for w in (32, 64, 128) for x in (-8.0, -7.0, -6.0, -5.0, -4.0)]
    _, transfer = metrics.compute_metrics(pd.DataFrame(rows), n_boot=0)
    assert list(transfer.columns)[-1] == "best_width" and transfer["best_width"].tolist() == [128]


def test_settings_reference_is_current() -> None:
    from transferbench.cli_analysis import settings_markdown

    doc = (REPO / "docs" / "settings.md").read_text()
    assert settings_markdown() in doc, "docs/settings.md is stale: regenerate it with `transferbench settings`"
