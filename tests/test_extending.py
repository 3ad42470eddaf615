"""docs/extending.md stays true: its code blocks are executed here. The example workload
(examples/my-workload) is the package the doc describes; registered in this process it trains end to end
through `train` and goes through the profile check; the metric column appears in transfer.csv; an unknown
workload fails loudly.
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

from transferbench import metrics, workloads
from transferbench.config import ConfigError, resolve_run_config
from transferbench.config.profile import check_profile

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "extending.md"


def code_block(section: str) -> str:
    """The first ```python block under the heading ``## section``."""
    text = DOC.read_text()
    body = text[text.index(f"## {section}"):]
    return re.search(r"```python\n(.*?)```", body, re.S).group(1)


EXAMPLE = REPO / "examples" / "my-workload"


@pytest.fixture
def doc_module() -> Iterator[types.ModuleType]:
    """A module to run a doc block in, removed afterwards."""
    mod = types.ModuleType("extending_doc_example")
    sys.modules[mod.__name__] = mod
    yield mod
    sys.modules.pop(mod.__name__, None)
    metrics.COLUMN_HOOKS.pop("best_width", None)


@pytest.fixture
def example_spec(monkeypatch: pytest.MonkeyPatch) -> Iterator[workloads.WorkloadSpec]:
    """The example plugin's spec, imported from its folder and registered in this process only."""
    monkeypatch.syspath_prepend(str(EXAMPLE))
    from my_workload import SPEC

    workloads.register(SPEC)
    yield SPEC
    workloads._REGISTRY.pop(SPEC.name, None)
    for name in [m for m in sys.modules if m == "my_workload" or m.startswith("my_workload.")]:
        sys.modules.pop(name)


def test_a_workload_is_the_example_package_the_doc_describes(example_spec: workloads.WorkloadSpec,
                                                             tmp_path: Path) -> None:
    from transferbench.train import train

    text = DOC.read_text()
    section = text[text.index("## Add a workload"):text.index("## Add a metric column")]
    toml = re.search(r"```toml\n(.*?)```", section, re.S).group(1)
    assert toml.strip() in (EXAMPLE / "pyproject.toml").read_text()  # the entry point as the doc shows it
    for name in re.findall(r"`(my_workload/\w+\.py)`", section):
        assert (EXAMPLE / name).is_file(), name
    assert "sines" in workloads.names()
    cfg = resolve_run_config({"workload": "sines", "recipe": "mup-independent-wd", "width": 32, "base_width": 16,
                              "log2_lr": -6, "steps": 15, "eval_batches": 1, "diag_points": 1, "coord_steps": 2})
    assert cfg["batch_size"] == 64 and cfg["frequencies"] == 4  # the spec's override and its own setting
    rec = train(cfg, tmp_path)
    s = rec["summary"]
    assert s["steps_completed"] == 15 and not s["diverged"] and s["eval_loss"] < s["init_loss"]
    assert s["flops_per_item"] == example_spec.flops_per_item(cfg) and s["flops_formula"] == example_spec.flops_formula
    roles = {g["role"]: g for g in rec["param_groups"]}
    assert set(roles) == {"input", "hidden", "output", "vector"}
    assert roles["hidden"]["lr"] == pytest.approx(2.0**-6 / 2) and roles["hidden"]["weight_decay"] == 0.2
    assert rec["data"]["kind"] == "sum-of-sines" and rec["diagnostics"][-1]["sublayer_gain"]
    check_profile({"recipes": ["mup"], "seeds": [0], "workloads": {
        "sines": {"widths": [16, 32], "base_width": 16, "log2_lrs": [-7, -6], "wds": [0.1],
                  "settings": {"frequencies": 2}}}})
    with pytest.raises(ConfigError, match="frequencies: must be >= 1"):
        resolve_run_config({**{k: cfg[k] for k in ("workload", "recipe", "width", "base_width", "log2_lr")},
                            "frequencies": 0})


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


def test_the_depth_rule_example_is_a_checked_recipe(doc_module: types.ModuleType) -> None:
    """The doc's depth-rule plugin resolves as the doc says: at m_L = 4 branch x0.5 and hidden lr x0.5 (with muP's
    1/m), identity at the base depth, and its horizon=fixed-tau option quarters the wd at 4 times the horizon."""
    from transferbench.recipes.checked import resolve

    exec(code_block("Give a recipe a depth rule, or the horizon option"), doc_module.__dict__)
    cls = doc_module.MuPSqrtDepth
    lrs = [0.01] * 8
    at4 = resolve(cls(), 2.0, lrs, 0.1, depth_mult=4.0)
    assert at4.branch_mult == 0.5 and at4.roles["hidden"].depth.lr == 0.5 and at4.roles["input"].depth.lr == 1.0
    assert at4.roles["hidden"].multipliers.lr == 0.5  # the width rule, 1/m at m = 2
    base = resolve(cls(), 1.0, lrs, 0.1)
    assert base.branch_mult == 1.0 and base.roles["hidden"].depth.lr == 1.0
    tau = resolve(cls(horizon="fixed-tau"), 1.0, lrs, 0.1, steps_mult=4.0)
    assert all(tau.roles[r].horizon_wd == 0.25 for r in ("input", "hidden", "output"))
