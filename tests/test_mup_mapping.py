"""Our μP rows against microsoft/mup (the PyPI package, test-only), per parameter, on every workload.

The mapping checked (eta, lambda = base lr and wd; m = width / base width; matrix-like = a parameter
with two infinite dims after ``mup.set_base_shapes``, i.e. exactly our ``hidden`` role; everything else,
embedding/stem and readout included, is vector-like; our ``vector`` role goes in a weight_decay=0 group):

- ``mup-independent-wd`` = ``MuAdamW`` as mup 1.0.0 ships it: matrix-like lr eta/m and weight_decay
  lambda*m, vector-like eta and lambda (or 0); readout forward multiplier 1/m = ``MuReadout``'s;
- ``mup`` = the same with matrix-like weight_decay left at lambda (``MuAdamW(decoupled_wd=True)``,
  which only mup's unreleased source has: 1.0.0 passes the argument on to torch's AdamW, which raises);
- the readout is ``MuReadout``: its default init (``readout_init: normal``) keeps the std constant in width,
  sigma/sqrt(base fan_in), which with sigma = 1/sqrt(3) is ``MuReadout``'s own std at every width (PyTorch's
  default Linear init, std 1/sqrt(3 fan_in), times sqrt(width_mult)); ``readout_init: zero`` is its
  ``readout_zero_init=True``.

At m = 1 everything coincides. ``test_the_comparison_can_fail`` shows that a wrong multiplier is caught.
"""

from __future__ import annotations

from dataclasses import dataclass

import mup
import pytest
import torch
from torch import nn

from transferbench.config import resolve_run_config
from transferbench.groups import build_groups
from transferbench.recipes import get_recipe
from transferbench.recipes.checked import resolve
from transferbench.workloads.build import Workload, build_workload

LOG2_ETA, LAM, M = -6, 0.1, 4
ETA = 2.0**LOG2_ETA
WORKLOADS = ["llama", "resnet", "mlp"]
SMALL: dict[str, dict[str, int]] = {
    "llama": {"base_width": 16, "batch_size": 2, "seq_len": 16, "depth": 1},  # width: a multiple of head_dim 16
    "resnet": {"base_width": 4, "batch_size": 4, "image_size": 8},
    "mlp": {"base_width": 16, "batch_size": 4, "depth": 2},
}


@dataclass
class Ours:
    """One of our runs, set up but not trained: the workload, {name: (lr, weight_decay, role)}, readout mult."""

    workload: Workload
    settings: dict[str, tuple[float, float, str]]
    output_mult: float

    @property
    def readout(self) -> str:
        return next(n for n, (_, _, role) in self.settings.items() if role == "output")


def ours(workload: str, recipe: str, m: int, base_width: int | None = None, **settings: object) -> Ours:
    small = {**SMALL[workload], **({"base_width": base_width} if base_width else {})}
    cfg = resolve_run_config({"workload": workload, "recipe": recipe, "steps": 4, "log2_lr": LOG2_ETA, "wd": LAM,
                              "width": small["base_width"] * m, **small, **settings})
    resolved = resolve(get_recipe(recipe), cfg["width_mult"], [cfg["lr"]] * cfg["steps"], cfg["wd"])
    torch.manual_seed(0)
    wl = build_workload(cfg, resolved.output_mult, torch.device("cpu"))
    groups = build_groups(wl.model, resolved, cfg)
    return Ours(wl, {n: (g["lr"], g["weight_decay"], g["role"]) for g in groups for n in g["names"]},
                resolved.output_mult)


def theirs(run: Ours, base: Ours) -> tuple[dict[str, tuple[float, float]], dict[str, mup.InfShape]]:
    """mup's {name: (lr, weight_decay)} from MuAdamW(lr=eta) and each parameter's infshape."""
    model = run.workload.model
    # Our readout is a plain nn.Linear (the recipe supplies its multiplier), hence do_assert=False.
    mup.set_base_shapes(model, base.workload.model, rescale_params=False, do_assert=False)
    named = dict(model.named_parameters())
    vector = {n for n, (_, _, role) in run.settings.items() if role == "vector"}
    opt = mup.MuAdamW([{"params": [p for n, p in named.items() if n not in vector], "weight_decay": LAM},
                       {"params": [p for n, p in named.items() if n in vector], "weight_decay": 0.0}], lr=ETA)
    by_id = {id(p): (g["lr"], g["weight_decay"]) for g in opt.param_groups for p in g["params"]}
    return {n: by_id[id(p)] for n, p in named.items()}, {n: p.infshape for n, p in named.items()}


@pytest.mark.parametrize("workload", WORKLOADS)
@pytest.mark.parametrize("m", [1, M])
def test_mup_independent_wd_is_pypi_muadamw(workload: str, m: int) -> None:
    run = ours(workload, "mup-independent-wd", m)
    lr_wd, shapes = theirs(run, ours(workload, "mup-independent-wd", 1))
    assert set(lr_wd) == set(run.settings)
    for name, (lr, wd, role) in run.settings.items():
        if m > 1:  # at m = 1 no dim is infinite: everything is vector-like and unscaled
            assert (shapes[name].ninf() == 2) == (role == "hidden"), (name, role, "matrix-like iff hidden")
        assert lr_wd[name] == pytest.approx((lr, wd), rel=1e-12), (workload, m, name, role, "mup vs ours")
    assert {role for _, _, role in run.settings.values()} == {"input", "hidden", "output", "vector"}
    assert run.output_mult == pytest.approx(1.0 / shapes[run.readout].width_mult())  # MuReadout's multiplier
    assert run.output_mult == pytest.approx(1.0 / m)


@pytest.mark.parametrize("workload", WORKLOADS)
def test_mup_is_muadamw_without_the_hidden_wd_scaling(workload: str) -> None:
    run = ours(workload, "mup", M)
    lr_wd, shapes = theirs(run, ours(workload, "mup", 1))
    for name, (lr, wd, role) in run.settings.items():
        their_lr, their_wd = lr_wd[name]
        assert lr == pytest.approx(their_lr, rel=1e-12), (name, role)
        if shapes[name].ninf() == 2:  # matrix-like: decoupled_wd=True leaves lambda, 1.0.0 gives lambda * m
            assert (wd, their_wd) == pytest.approx((LAM, LAM * M), rel=1e-12), (name, role)
        else:
            assert wd == pytest.approx(their_wd, rel=1e-12), (name, role)
    assert any(s.ninf() == 2 for s in shapes.values())  # the hidden matrices exist and were compared
    assert run.output_mult == pytest.approx(1.0 / shapes[run.readout].width_mult())


def test_pypi_mup_has_no_decoupled_wd() -> None:
    """Why `mup` cannot be produced with the PyPI release: its MuAdamW passes decoupled_wd on to AdamW."""
    run = ours("mlp", "mup", M)
    mup.set_base_shapes(run.workload.model, ours("mlp", "mup", 1).workload.model, rescale_params=False,
                        do_assert=False)
    try:
        mup.MuAdamW(run.workload.model.parameters(), lr=ETA, decoupled_wd=True)
    except TypeError:
        return
    pytest.skip(f"mup {getattr(mup, '__version__', '?')} accepts decoupled_wd: compare our `mup` against it")


@pytest.mark.parametrize("patch", ["hidden_wd", "output_mult"])
def test_the_comparison_can_fail(patch: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Guards the guard: with a wrong hidden wd or readout multiplier, the comparison with mup fails."""
    from transferbench.recipes.builtin import MuPIndependentWD

    monkeypatch.setattr(MuPIndependentWD, patch, lambda self, m: 1.0)
    with pytest.raises(AssertionError):
        test_mup_independent_wd_is_pypi_muadamw("mlp", M)


class Head(nn.Module):
    def __init__(self, d: int, out: int, bias: bool = True) -> None:
        super().__init__()
        self.out = mup.MuReadout(d, out, bias=bias)


def readout_std(m: int, readout_init: str = "normal", sigma: float = 1.0) -> float:
    # llama readout: vocab 64 x width, 64 x 64 = 4096 entries at the base width
    run = ours("llama", "mup-independent-wd", m, base_width=64, readout_init=readout_init, sigma=sigma)
    return float(dict(run.workload.model.named_parameters())[run.readout].detach().std())


def mureadout_std(width: int, base: int = 64) -> float:
    torch.manual_seed(0)
    head = Head(width, 64)
    mup.set_base_shapes(head, Head(base, 64), rescale_params=True)
    return float(head.out.weight.detach().std())


def test_our_default_readout_is_mureadouts_default_init() -> None:
    """mup-independent-wd's readout with the default readout_init (normal) is drawn as MuReadout's default:
    std constant in width, and with sigma = 1/sqrt(3) (PyTorch's default Linear init) equal to it at every
    width; standard's readout shrinks as 1/sqrt(m) instead, and readout_init zero is readout_zero_init."""
    for m in (1, M):
        assert readout_std(m, sigma=3**-0.5) == pytest.approx(mureadout_std(64 * m), rel=0.05)
        assert readout_std(m) == pytest.approx(1.0 / 64**0.5, rel=0.05)  # sigma / sqrt(base fan_in)
        assert readout_std(m, "zero") == 0.0
    assert mureadout_std(64 * M) == pytest.approx(mureadout_std(64), rel=0.05)
    standard = ours("llama", "standard", M, base_width=64)
    std = float(dict(standard.workload.model.named_parameters())[standard.readout].detach().std())
    assert std == pytest.approx(readout_std(M) * M**-0.5, rel=0.05)  # SP: unlike mup


@pytest.mark.parametrize("workload", [
    "llama", "mlp",
    "resnet",
])
def test_readout_forward_is_mureadout(workload: str) -> None:
    """The model's output equals a MuReadout (same weights, base shapes at the base width) fed the readout's input."""
    run = ours(workload, "mup-independent-wd", M)  # nonzero readout weights (readout_init normal)
    model, seen = run.workload.model, []
    readout = model.readout
    if readout.bias is not None:
        with torch.no_grad():
            readout.bias.uniform_(-1.0, 1.0)  # zero at init: a trained bias is not
    readout.register_forward_hook(lambda mod, args, out: seen.append(args[0].detach()))
    head = Head(readout.in_features, readout.out_features, bias=readout.bias is not None)
    base = Head(readout.in_features // M, readout.out_features, bias=readout.bias is not None)
    mup.set_base_shapes(head, base, rescale_params=False)
    head.load_state_dict({f"out.{k}": v for k, v in readout.state_dict().items()})
    with torch.no_grad():
        out = model(run.workload.train_batch(0)[0])
        # ResNet applies its multiplier to the readout's input (as MuReadout does); undo it to get the features
        feats = seen[0] / model.output_mult if workload == "resnet" else seen[0]
        assert torch.allclose(out, head.out(feats), rtol=1e-5, atol=1e-6)
