"""No duplicate runs (shared.py) and sweep lines of several seeds in one process (line.py).

A run is keyed by what the trainer does: recipes that resolve to the same training share one, and the
shared record is number for number what training it would have given; anything that changes the
training (width multiplier, seed, a factor) changes the fingerprint. Seeds trained one after the other
in one process give the same records as each trained alone.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from transferbench import shared
from transferbench.config import resolve_run_config
from transferbench.line import Line
from transferbench.train import setup, train

TINY = {"workload": "mlp", "depth": 2, "steps": 12, "batch_size": 16, "eval_batches": 1, "diag_points": 2,
        "coord_steps": 2, "wd": 0.1, "base_width": 16}
MEASURED = ("summary", "curve", "diagnostics", "coord_check")


def cfg(**kw):
    return resolve_run_config({**TINY, "recipe": "mup", "width": 16, "log2_lr": -6, "seed": 0, **kw})


def fp(**kw) -> str:
    return shared.fingerprint(setup(cfg(**kw)))


def line(tmp: Path, recipe: str, seeds: list[int], width: int = 16, share: bool = True) -> dict:
    ln = Line(settings={**TINY, "recipe": recipe, "width": width}, seeds=seeds, log2_lrs=[-6.0],
              out=str(tmp / recipe / f"w{width}_s{{seed}}" / "lr{log2_lr}"),
              shared_dir=tmp / "_trained" if share else None)
    ln.check()
    return ln.run()


def records(manifest: dict) -> list[dict]:
    return [json.loads(Path(r["record"]).read_text()) for r in manifest["records"]]


def test_recipes_that_train_the_same_share_one_run(tmp_path: Path) -> None:
    # m = 1: every recipe is one training (one base model, docs/design.md §3; tests/test_base_model.py)
    assert fp() == fp(recipe="mup-independent-wd") == fp(recipe="warmup-replacement") == fp(recipe="standard")
    [mup] = records(line(tmp_path, "mup", [0]))
    [indep] = records(line(tmp_path, "mup-independent-wd", [0]))
    assert mup["shared_with"] is None and indep["shared_with"] == str(tmp_path / "mup" / "w16_s0" / "lr-6")
    assert indep["trainer_fingerprint"] == mup["trainer_fingerprint"]
    # its own identity: what a reader joins on is this recipe's
    assert indep["recipe"]["name"] == indep["config"]["recipe"] == "mup-independent-wd"
    assert indep["config_hash"] != mup["config_hash"]
    # and number for number what training it would have given
    alone = train(cfg(recipe="mup-independent-wd"))
    for key in MEASURED[1:]:
        assert indep[key] == json.loads(json.dumps(alone[key])), key
    assert indep["summary"]["eval_loss"] == alone["summary"]["eval_loss"]
    assert [g["per_step_decay"] for a in indep["applied"] for g in a["groups"]] == [
        g["per_step_decay"] for a in alone["applied"] for g in a["groups"]]


def test_anything_that_changes_the_training_changes_the_fingerprint() -> None:
    base = fp()
    assert fp(width=32) != fp(recipe="mup-independent-wd", width=32)  # m = 2: wd scales differently
    assert fp(seed=1) != base and fp(log2_lr=-5) != base and fp(wd=0.2) != base
    assert fp(recipe="sqrt-d") == base and fp(recipe="sqrt-d", width=32) != fp(width=32)  # hidden wd x sqrt(m)
    assert fp(recipe="sqrt-d", width=32) == fp(recipe="wd-power[p=0.5]", width=32)  # one training at every width
    assert fp(recipe="warmup-replacement", width=32) != fp(width=32)  # f_t differs from 1/m's
    assert fp(recipe="standard", width=32) != fp(width=32)  # init and lr differ
    assert fp(threads=2) == base  # not a training setting
    assert fp(readout_init="zero") != base  # the init alone differs
    assert fp(decay_roles="hidden") != base  # the weight decay of input and output alone differs
    # each ingredient on its own: one step's lr or wd, or one initial weight
    run = setup(cfg())
    for change in (lambda: run.lrs[1].__setitem__(5, run.lrs[1][5] * 1.01),
                   lambda: run.wds[1].__setitem__(7, 0.0),
                   lambda: next(run.wl.model.parameters()).data.view(-1)[0].add_(1e-3)):
        before = shared.fingerprint(run)
        change()
        assert shared.fingerprint(run) != before


def test_without_a_shared_directory_every_recipe_trains(tmp_path: Path) -> None:
    line(tmp_path, "mup", [0], share=False)
    [indep] = records(line(tmp_path, "mup-independent-wd", [0], share=False))
    assert indep["shared_with"] is None


def test_seeds_in_one_process_equal_seeds_alone(tmp_path: Path) -> None:
    manifest = line(tmp_path, "standard", [0, 1, 2], width=32, share=False)
    assert [(r["seed"], r["log2_lr"]) for r in manifest["records"]] == [(0, -6.0), (1, -6.0), (2, -6.0)]
    together = records(manifest)
    assert len({r["summary"]["eval_loss"] for r in together}) == 3  # seeds differ
    alone = train(cfg(recipe="standard", width=32, seed=2))
    assert together[2]["curve"] == json.loads(json.dumps(alone["curve"]))
    assert together[2]["summary"]["eval_loss"] == alone["summary"]["eval_loss"]


def test_a_line_refuses_an_out_template_without_seed(tmp_path: Path) -> None:
    from transferbench.config import ConfigError

    ln = Line(settings={**TINY, "recipe": "mup", "width": 16}, seeds=[0, 1], log2_lrs=[-6.0],
              out=str(tmp_path / "lr{log2_lr}"))
    with pytest.raises(ConfigError, match=r"out: with several --seed values, --out must contain '\{seed\}'"):
        ln.check()
