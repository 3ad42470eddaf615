"""Golden values: for every built-in recipe (and warmup-replacement's coupled-decay option), 20 steps of
`mlp` and `llama` at 4x the base width, whose per-step training losses and held-out loss are pinned in
tests/golden.json. Any change to init, groups, schedule, per-step factors, data or the loop moves them,
so it must be made on purpose: regenerate with

    TRANSFERBENCH_UPDATE_GOLDEN=1 pytest tests/test_golden.py

and say in the commit message why the numbers moved. The tolerance (1e-4 relative) absorbs last-bit
differences between CPUs; a wrong multiplier or a skipped factor moves the losses by far more.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from transferbench.config import resolve_run_config
from transferbench.train import train

GOLDEN = Path(__file__).with_name("golden.json")
UPDATE = os.environ.get("TRANSFERBENCH_UPDATE_GOLDEN") == "1"
RTOL = 1e-4
RECIPES = [("standard", {}), ("mup", {}), ("mup-independent-wd", {}), ("sqrt-d", {}),
           ("warmup-replacement", {}), ("warmup-replacement", {"decay": "coupled"})]
SETTINGS = {
    "mlp": {"width": 64, "base_width": 16, "batch_size": 16, "depth": 2, "log2_lr": -5, "wd": 0.5},
    "llama": {"width": 64, "base_width": 16, "batch_size": 4, "seq_len": 32, "depth": 1, "log2_lr": -4,
              "wd": 0.5},
}


def key(workload: str, recipe: str, options: dict) -> str:
    return f"{workload}/{recipe}" + "".join(f"[{k}={v}]" for k, v in sorted(options.items()))


def losses(workload: str, recipe: str, options: dict) -> dict[str, list[float] | float]:
    cfg = resolve_run_config({
        "workload": workload, "recipe": recipe, "recipe_options": options, "steps": 20, "log_every": 1,
        "warmup_frac": 0.2, "eval_batches": 1, "diag_points": 1, "coord_steps": 1, **SETTINGS[workload],
    })
    rec = train(cfg)
    return {"train": rec["curve"]["loss"], "eval": rec["summary"]["eval_loss"]}


CASES = [(w, r, o) for w in SETTINGS for r, o in RECIPES]


@pytest.fixture(scope="module")
def golden() -> dict:
    if UPDATE:
        values = {key(*c): losses(*c) for c in CASES}
        GOLDEN.write_text(json.dumps(values, indent=1) + "\n")
    return json.loads(GOLDEN.read_text())


@pytest.mark.parametrize(("workload", "recipe", "options"), CASES, ids=[key(*c) for c in CASES])
def test_losses_match_the_pinned_values(golden: dict, workload: str, recipe: str, options: dict) -> None:
    pinned = golden[key(workload, recipe, options)]
    got = losses(workload, recipe, options)
    assert len(got["train"]) == len(pinned["train"]) == 20
    assert got["train"] == pytest.approx(pinned["train"], rel=RTOL)
    assert got["eval"] == pytest.approx(pinned["eval"], rel=RTOL)


def test_the_pinned_recipes_really_differ(golden: dict) -> None:
    """Guards the guard: if two recipes gave the same losses at m = 4, a swapped multiplier between
    them would pass. Every pair of recipes must differ by more than the tolerance somewhere."""
    for workload in SETTINGS:
        curves = {k: v["train"] for k, v in golden.items() if k.startswith(workload + "/")}
        names = sorted(curves)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                diff = max(abs(x - y) / abs(y) for x, y in zip(curves[a], curves[b], strict=True))
                assert diff > 10 * RTOL, (a, b, diff)
