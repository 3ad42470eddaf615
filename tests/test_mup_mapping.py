"""Our μP rows against microsoft/mup (the PyPI package, test-only): for every workload at the base width
and at 4x, `set_base_shapes` + `MuAdamW` (norm gains and biases in a weight_decay=0 group) give every
parameter the lr and weight decay that our recipes give it, and `MuReadout`'s 1/width_mult multiplier:

- `mup-independent-wd` = `MuAdamW` as mup 1.0.0 ships it (matrix-like: lr / m, weight_decay x m);
- `mup` = the same with the hidden weight decay not scaled (`MuAdamW(decoupled_wd=True)`, which only
  mup's unreleased source has: 1.0.0 passes the argument on to torch's AdamW, which raises);
- `readout_init=mureadout` keeps the readout std constant in width, like `MuReadout`.
"""

from __future__ import annotations

import mup
import pytest
import torch

from transferbench.config import resolve_run_config
from transferbench.groups import build_groups
from transferbench.recipes import get_recipe
from transferbench.recipes.checked import resolve
from transferbench.workloads import build_workload

ETA, LAM = 2.0**-6, 0.1
SMALL = {
    "llama": {"base_width": 16, "batch_size": 2, "seq_len": 16, "depth": 1},
    "resnet": {"base_width": 4, "batch_size": 4, "image_size": 8},
    "mlp": {"base_width": 16, "batch_size": 4, "depth": 2},
}


def ours(workload: str, recipe: str, m: int, **options: str) -> tuple[torch.nn.Module, dict, float]:
    """Our model at m x the base width, {param name: (lr, weight_decay, role)} and the readout multiplier."""
    small = SMALL[workload]
    cfg = resolve_run_config({"workload": workload, "recipe": recipe, "recipe_options": options, "log2_lr": -6,
                              "wd": LAM, "steps": 4, "width": small["base_width"] * m, **small})
    resolved = resolve(get_recipe(recipe, **options), cfg["width_mult"], [cfg["lr"]] * 4, cfg["wd"])
    torch.manual_seed(0)
    model = build_workload(cfg, resolved.output_mult, torch.device("cpu")).model
    groups = build_groups(model, resolved, cfg)
    per_param = {n: (g["lr"], g["weight_decay"], g["role"]) for g in groups for n in g["names"]}
    return model, per_param, resolved.output_mult


def theirs(model: torch.nn.Module, base: torch.nn.Module, roles: dict) -> tuple[dict, dict]:
    """mup's per-parameter (lr, weight_decay) and each parameter's infshape, after set_base_shapes."""
    # Our readout is a plain nn.Linear (the recipe supplies its multiplier), hence do_assert=False.
    mup.set_base_shapes(model, base, rescale_params=False, do_assert=False)
    named = dict(model.named_parameters())
    decayed = [p for n, p in named.items() if roles[n][2] != "vector"]
    vectors = [p for n, p in named.items() if roles[n][2] == "vector"]
    opt = mup.MuAdamW([{"params": decayed, "weight_decay": LAM}, {"params": vectors, "weight_decay": 0.0}], lr=ETA)
    by_id = {id(p): (g["lr"], g["weight_decay"]) for g in opt.param_groups for p in g["params"]}
    return {n: by_id[id(p)] for n, p in named.items()}, {n: p.infshape for n, p in named.items()}


@pytest.mark.parametrize("workload", ["llama", "resnet", "mlp"])
@pytest.mark.parametrize("m", [1, 4])
def test_mup_independent_wd_is_pypi_muadamw(workload: str, m: int) -> None:
    base, _, _ = ours(workload, "mup-independent-wd", 1)
    model, mine, out_mult = ours(workload, "mup-independent-wd", m)
    lr_wd, shapes = theirs(model, base, mine)
    for name, (lr, wd, role) in mine.items():
        assert lr_wd[name] == pytest.approx((lr, wd), rel=1e-12), (workload, m, name, role)
    readout = next(n for n, v in mine.items() if v[2] == "output" and n.endswith("weight"))
    assert out_mult == pytest.approx(1.0 / shapes[readout].width_mult())  # MuReadout's forward multiplier


@pytest.mark.parametrize("workload", ["llama", "resnet", "mlp"])
def test_mup_is_muadamw_without_the_hidden_wd_scaling(workload: str) -> None:
    base, _, _ = ours(workload, "mup", 1)
    model, mine, _ = ours(workload, "mup", 4)
    lr_wd, shapes = theirs(model, base, mine)
    for name, (lr, wd, role) in mine.items():
        their_lr, their_wd = lr_wd[name]
        matrix_like = shapes[name].ninf() == 2
        assert lr == pytest.approx(their_lr, rel=1e-12), name
        # decoupled_wd=True (unreleased): matrix-like weight decay is left at lambda, not lambda * m
        assert wd == pytest.approx(their_wd / 4 if matrix_like else their_wd, rel=1e-12), (name, role)
    assert any(s.ninf() == 2 for s in shapes.values())  # the hidden matrices exist and were compared


def test_pypi_mup_has_no_decoupled_wd() -> None:
    """Why `mup` cannot be produced with the PyPI release: its MuAdamW passes decoupled_wd to AdamW."""
    base, _, _ = ours("mlp", "mup", 1)
    model, mine, _ = ours("mlp", "mup", 4)
    mup.set_base_shapes(model, base, rescale_params=False, do_assert=False)
    try:
        mup.MuAdamW(model.parameters(), lr=ETA, decoupled_wd=True)
    except TypeError:
        return
    pytest.skip(f"mup {getattr(mup, '__version__', '?')} accepts decoupled_wd: compare `mup` against it")


def test_the_comparison_can_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    """Guards the guard: with a wrong hidden wd multiplier, the per-parameter comparison fails."""
    from transferbench.recipes.builtin import MuPIndependentWD

    monkeypatch.setattr(MuPIndependentWD, "hidden_wd", lambda self, m: 1.0)
    with pytest.raises(AssertionError):
        test_mup_independent_wd_is_pypi_muadamw("mlp", 4)


def readout_std(recipe_options: dict, m: int) -> float:
    model, mine, _ = ours("llama", "mup-independent-wd", m, **recipe_options)
    name = next(n for n, v in mine.items() if v[2] == "output")
    return float(dict(model.named_parameters())[name].detach().std())


def test_mureadout_option_keeps_the_readout_std_constant_like_mureadout() -> None:
    class Head(torch.nn.Module):
        def __init__(self, d: int) -> None:
            super().__init__()
            self.out = mup.MuReadout(d, 64)

    torch.manual_seed(0)
    narrow, wide = Head(64), Head(256)
    mup.set_base_shapes(narrow, Head(64))
    mup.set_base_shapes(wide, Head(64))
    theirs_ratio = float(wide.out.weight.detach().std()) / float(narrow.out.weight.detach().std())
    assert theirs_ratio == pytest.approx(1.0, rel=0.1)
    ours_ratio = readout_std({"readout_init": "mureadout"}, 4) / readout_std({"readout_init": "mureadout"}, 1)
    assert ours_ratio == pytest.approx(theirs_ratio, rel=0.1)
    fan_in = readout_std({"readout_init": "fan_in"}, 4) / readout_std({"readout_init": "fan_in"}, 1)
    assert fan_in == pytest.approx(0.5, rel=0.1)  # 1/sqrt(4): standard's readout, not MuReadout's
