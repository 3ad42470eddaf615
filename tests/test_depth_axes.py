"""The depth and horizon axes: what the depth recipes (depth-mup, completep) and the horizon option make the
optimizer and the model do, and how profiles, jobs, manifests and runs.csv carry the axis.

The expected numbers are typed in here from [Dey25] Table 1 (arXiv 2505.01618; α = 1/2 is Depth-μP, arXiv
2310.02244) and the horizon rule wd x T0/T, never computed by the recipes' own methods: the lr, weight decay
and Adam eps read back from torch's AdamW after a real step, the residual branch multiplier checked in the
forward of the LLaMA blocks and ResNet BasicBlocks, trainer fingerprints, config hashes, the depth and horizon
profiles and their jobs, a tiny depth sweep aggregated into runs.csv, ``show-recipe``/``recipes``, and the
plain mlp refusing a branch multiplier."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from transferbench import shared
from transferbench.__main__ import main
from transferbench.aggregate import load_record, record_row
from transferbench.cli_analysis import _manifest_records
from transferbench.config import ConfigError, resolve_run_config
from transferbench.config.grid import jobs
from transferbench.config.profile import check_profile, load_profile
from transferbench.config.run import config_hash
from transferbench.train import State, setup, step
from transferbench.workloads.llama.model import rope_tables

REPO = Path(__file__).parents[1]
ETA, LAM, EPS = 2.0**-6, 0.1, 1e-8
#: recipe id -> (recipe, recipe_options, alpha of the depth rule (None: none), μP with independent wd in width)
RECIPES = {"standard": ("standard", {}, None, False), "mup-independent-wd": ("mup-independent-wd", {}, None, True),
           "depth-mup": ("depth-mup", {}, 0.5, True), "completep": ("completep", {}, 1.0, True),
           "completep[alpha=0.75]": ("completep", {"alpha": 0.75}, 0.75, True)}
#: workload -> (width, base_width, depth, base_depth, its own settings): m = 2, m_L = 4
SHAPES = {"llama": (64, 32, 8, 2, {"seq_len": 16}), "resnet": (16, 8, 4, 1, {"image_size": 8})}


def cfg(recipe: str, workload: str = "llama", **kw):
    name, options, _, _ = RECIPES[recipe]
    width, base_width, depth, base_depth, own = SHAPES[workload]
    return resolve_run_config({
        "workload": workload, "recipe": name, "recipe_options": options, "width": width, "base_width": base_width,
        "depth": depth, "base_depth": base_depth, "log2_lr": -6, "wd": LAM, "steps": 8, "batch_size": 4,
        "schedule": "constant", "warmup_frac": 0.0, "eval_batches": 1, "diag_points": 1, "coord_steps": 0,
        "seed": 0, **own, **kw})


def expected(recipe: str, role: str, m: float, m_l: float) -> tuple[float, float, float]:
    """(lr, weight_decay, eps) of ``role`` from the tables: μP width rule hidden lr η/m, hidden wd λm; depth rule
    on the blocks' roles (hidden, vector) lr x m_L^(α-1), eps ε/m x m_L^-α; vectors never decayed."""
    _, _, alpha, mup = RECIPES[recipe]
    lr = ETA / m if mup and role == "hidden" else ETA
    wd = 0.0 if role == "vector" else LAM * m if mup and role == "hidden" else LAM
    eps = EPS
    if alpha is not None and role in ("hidden", "vector"):
        lr, eps = lr * m_l ** (alpha - 1), EPS / m * m_l ** -alpha
    return lr, wd, eps


def branch(recipe: str, m_l: float) -> float:
    alpha = RECIPES[recipe][2]
    return 1.0 if alpha is None else m_l ** -alpha


def stepped(c):
    """A run set up and stepped once: its optimizer holds what step 0 applied (constant schedule: the peak)."""
    run = setup(c)
    assert step(run, State(), 0)
    return run


@pytest.mark.parametrize("workload", SHAPES)
@pytest.mark.parametrize("recipe", RECIPES)
def test_applied_lr_wd_eps_and_branch_mult_match_the_tables(recipe: str, workload: str) -> None:
    run = stepped(cfg(recipe, workload))
    assert (run.cfg.width_mult, run.cfg.depth_mult) == (2.0, 4.0)
    roles = set()
    for pg in run.opt.param_groups:
        lr, wd, eps = expected(recipe, pg["role"], 2.0, 4.0)
        where = (recipe, workload, pg["role"])
        assert pg["lr"] == pytest.approx(lr, rel=1e-12), where
        assert pg["weight_decay"] == pytest.approx(wd, rel=1e-12, abs=0), where
        assert pg["eps"] == pytest.approx(eps, rel=1e-12), where
        roles.add(pg["role"])
    assert roles == {"input", "hidden", "output", "vector"}
    b = branch(recipe, 4.0)
    model = run.wl.model
    assert run.branch_mult == pytest.approx(b, rel=1e-12)
    blocks = list(model.blocks) if workload == "llama" else [blk for stage in model.stages for blk in stage]
    held = [model.branch_mult] if workload == "llama" else [blk.branch_mult for blk in blocks]
    assert held == pytest.approx([b] * len(held), rel=1e-12)


def _captured(model: torch.nn.Module, blocks: list, x: torch.Tensor) -> list[tuple]:
    """Every block's (args, output) in one forward."""
    seen: list[tuple] = []
    hooks = [blk.register_forward_hook(lambda _m, args, out: seen.append((args, out))) for blk in blocks]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return seen


def test_llama_blocks_add_the_branches_times_the_multiplier() -> None:
    run = setup(cfg("completep"))
    model, x = run.wl.model.eval(), run.wl.eval_batches[0][0]
    rope = rope_tables(x.shape[1], model.inv_freq)
    seen = _captured(model, list(model.blocks), x)
    assert len(seen) == 8
    with torch.no_grad():
        for blk, (args, out) in zip(model.blocks, seen, strict=True):
            h = args[0] + 0.25 * blk.attn(blk.attn_norm(args[0]), rope)  # [Dey25]: h + m_L^-1 F(norm(h))
            h = h + 0.25 * blk.mlp(blk.mlp_norm(h))
            assert torch.allclose(out, h, rtol=1e-5, atol=1e-6)
            unscaled = args[0] + blk.attn(blk.attn_norm(args[0]), rope)
            assert not torch.allclose(out, unscaled + blk.mlp(blk.mlp_norm(unscaled)), atol=1e-4)
        model.set_branch_mult(0.0)  # every block the identity
        assert torch.allclose(model(x), model.output_mult * model.head(model.norm(model.embed(x))), atol=1e-6)


def test_resnet_blocks_add_the_branch_times_the_multiplier() -> None:
    run = setup(cfg("depth-mup", "resnet"))
    model, x = run.wl.model.eval(), run.wl.eval_batches[0][0]
    blocks = [blk for stage in model.stages for blk in stage]
    for b in (0.5, 0.0):  # depth-mup at m_L = 4 (set by setup): m_L^-1/2; then 0: every block relu(shortcut(x))
        if b == 0.0:
            model.set_branch_mult(b)
        seen = _captured(model, blocks, x)
        assert len(seen) == 12
        with torch.no_grad():
            for blk, (args, out) in zip(blocks, seen, strict=True):
                want = torch.relu(b * blk.branch(args[0]) + blk.shortcut(args[0]))
                assert torch.allclose(out, want, rtol=1e-5, atol=1e-6), (b, blk)
                assert not torch.allclose(out, torch.relu(blk.branch(args[0]) + blk.shortcut(args[0])), atol=1e-4)


SAME = ("role", "names", "lr", "weight_decay", "init_std", "lr_mult", "wd_mult", "init_mult")


def test_at_the_base_depth_a_depth_recipe_is_mup_independent_wd_but_for_its_eps() -> None:
    """m_L = 1 and m = 1: one training. At m = 2 only the blocks' eps differs: ε/m (Table 1's eps has a width
    factor, so the depth rule is not the identity at m_L = 1 unless m = 1 too)."""
    for width in (32, 64):
        base = setup(cfg("mup-independent-wd", width=width, depth=2, base_depth=2))
        for recipe in ("depth-mup", "completep", "completep[alpha=0.75]"):
            run = setup(cfg(recipe, width=width, depth=2, base_depth=2))
            assert run.branch_mult == 1.0 and run.lrs == base.lrs and run.wds == base.wds, recipe
            for g, b in zip(run.groups, base.groups, strict=True):
                assert [g[k] for k in SAME] == [b[k] for k in SAME], (recipe, width)
                want = b["eps"] * 32 / width if g["role"] in ("hidden", "vector") else b["eps"]
                assert g["eps"] == pytest.approx(want, rel=1e-12), (recipe, width, g["role"])
            assert (shared.fingerprint(run) == shared.fingerprint(base)) == (width == 32), (recipe, width)


def test_completep_and_standard_differ_by_branch_and_eps_alone_at_width_mult_1() -> None:
    std, cp = (setup(cfg(r, width=32, depth=8, base_depth=2)) for r in ("standard", "completep"))
    assert std.lrs == cp.lrs and std.wds == cp.wds  # alpha = 1, m = 1: the same lrs and wds
    assert all(torch.equal(a, b) for a, b in zip(std.wl.model.state_dict().values(),
                                                 cp.wl.model.state_dict().values(), strict=True))
    base, eps = shared.fingerprint(std), [g["eps"] for g in cp.groups]
    assert shared.fingerprint(cp) != base and cp.branch_mult == 0.25 and min(eps) == EPS / 4
    for g in cp.groups:
        g["eps"] = EPS
    assert shared.fingerprint(cp) != base  # the branch multiplier alone
    cp.branch_mult = 1.0
    assert shared.fingerprint(cp) == base
    for g, e in zip(cp.groups, eps, strict=True):
        g["eps"] = e
    assert shared.fingerprint(cp) != base  # the eps alone


@pytest.mark.parametrize("horizon", ["fixed-tau", "fixed-wd"])
def test_the_horizon_rule_scales_every_decayed_roles_wd(horizon: str) -> None:
    c = cfg("mup-independent-wd", recipe_options={"horizon": horizon}, depth=2, base_depth=0, steps=800,
            base_steps=200)
    run = stepped(c)
    assert c.steps_mult == 4.0
    scale = 0.25 if horizon == "fixed-tau" else 1.0  # wd x T0/T (Wang & Aitchison 2024)
    for i, pg in enumerate(run.opt.param_groups):
        lr, wd, eps = expected("mup-independent-wd", pg["role"], 2.0, 1.0)
        assert pg["lr"] == pytest.approx(lr, rel=1e-12) and pg["eps"] == EPS, pg["role"]
        assert pg["weight_decay"] == pytest.approx(wd * scale, rel=1e-12, abs=0), pg["role"]
        assert set(run.wds[i]) == {pg["weight_decay"]}  # every step's


def test_the_horizon_option_at_its_default_keeps_the_config_hash() -> None:
    base = {"workload": "llama", "recipe": "mup-independent-wd", "width": 64, "base_width": 32, "log2_lr": -6,
            "steps": 800, "base_steps": 200}
    plain = resolve_run_config(base)
    default = resolve_run_config({**base, "recipe_options": {"horizon": "fixed-wd"}})
    tau = resolve_run_config({**base, "recipe_options": {"horizon": "fixed-tau"}})
    assert "horizon" not in default.recipe_options and config_hash(default) == config_hash(plain)
    assert tau.recipe_options["horizon"] == "fixed-tau" and config_hash(tau) != config_hash(plain)
    label = resolve_run_config({**base, "recipe": "mup-independent-wd[horizon=fixed-tau]"})
    assert label.recipe_options == tau.recipe_options
    for bad in ({"recipe_options": {"horizon": "fixed-lambda"}}, {"recipe": "standard[horizon=fixed-lambda]"}):
        with pytest.raises(ConfigError, match="horizon.*fixed-lambda"):
            resolve_run_config({**base, **bad})


def test_the_depth_and_horizon_profiles_make_their_jobs() -> None:
    for name, axis, flag, base_flag, tag in (("depth", "depth", "--depth", "--base-depth", "_L"),
                                             ("horizon", "steps", "--steps", "--base-steps", "_T")):
        profile = load_profile(REPO / "config" / f"{name}.yaml")
        js = jobs(profile)
        values = "depths" if axis == "depth" else "horizons"
        assert len(js) == sum(len(profile["recipes"]) * len(s[values]) for s in profile["workloads"].values())
        for j in js:
            spec = profile["workloads"][j.workload]
            base = spec["base_depth" if axis == "depth" else "base_steps"]
            args = list(j.args)
            assert j.axis == axis and j.width == spec["widths"][0], j.key
            assert f"/w{j.width}{tag}{j.scale}_wd" in j.line and f"{tag}{j.scale}_wd" in j.records[0]
            assert args.count(flag) == 1 and args[args.index(flag) + 1] == str(j.scale)
            assert args.count(base_flag) == 1 and args[args.index(base_flag) + 1] == str(base)
            assert args[args.index("--axis") + 1] == axis and args[args.index("--width") + 1] == str(j.width)
    lines = {j.line for j in jobs(load_profile(REPO / "config" / "depth.yaml"))}
    assert "llama/completep/w32_L4_wd1" in lines and "resnet/depth-mup/w8_L4_wd0.1" in lines


def _llama(p: dict, **change: object) -> dict:
    out = copy.deepcopy(p)
    out["workloads"]["llama"].update(change)
    out["workloads"]["llama"] = {k: v for k, v in out["workloads"]["llama"].items() if v is not None}
    return out


@pytest.mark.parametrize(("change", "message"), [
    ({"depths": None}, "workloads.llama.depths: required with axis: depth"),
    ({"axis": None}, r"workloads.llama.depths: only with axis: depth \(this workload's axis is width\)"),
    ({"widths": [32, 64]}, "workloads.llama.widths: a sweep along depth trains one width"),
    ({"settings": {"steps": 8, "depth": 4}}, "workloads.llama.settings.depth: set by the depth axis"),
])
def test_bad_axis_keys_are_named(change: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        check_profile(_llama(load_profile(REPO / "config" / "depth.yaml"), **change))


@pytest.fixture(scope="module")
def depth_sweep(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """Two tiny completep lines along depth (2 = the base, 4), width 16: their manifests."""
    tmp, out = tmp_path_factory.mktemp("depth"), {}
    for depth in (2, 4):
        line = tmp / "runs" / f"w16_L{depth}"
        assert main(["train", "--workload", "llama", "--recipe", "completep", "--width", "16", "--base-width", "16",
                     "--depth", str(depth), "--base-depth", "2", "--axis", "depth", "--log2-lr", "-6", "--seed", "0",
                     "--steps", "8", "--batch-size", "4", "--seq-len", "16", "--eval-batches", "1",
                     "--diag-points", "1", "--coord-steps", "1", "--out", f"{line}_s{{seed}}/lr{{log2_lr}}",
                     "--manifest", str(line / "job.json"), "--no-progress"]) == 0
        out[depth] = line / "job.json"
    return out


def test_a_depth_lines_manifest_and_record(depth_sweep: dict[int, Path]) -> None:
    for depth, manifest in depth_sweep.items():
        line = json.loads(manifest.read_text())["line"]
        assert (line["axis"], line["scale"]) == ("depth", depth)
        paths, axis = _manifest_records(manifest)
        rec = load_record(paths[0])
        assert rec["branch_mult"] == pytest.approx(2.0 / depth, rel=1e-12)  # m_L^-1
        for a in rec["applied"]:
            for g in a["groups"]:
                want = EPS * 2.0 / depth if g["role"] in ("hidden", "vector") else EPS
                assert g["eps"] == pytest.approx(want, rel=1e-12), (depth, g["role"])
        row = record_row(rec, paths[0], axis)
        assert (row["axis"], row["scale"], row["base_scale"], row["depth"], row["base_depth"]) == (
            "depth", depth, 2, depth, 2)


def test_aggregate_of_depth_manifests_writes_the_axis(depth_sweep: dict[int, Path], tmp_path: Path) -> None:
    assert main(["aggregate", *map(str, depth_sweep.values()), "--out-dir", str(tmp_path)]) == 0
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert list(runs["axis"]) == ["depth", "depth"]
    assert list(runs["scale"]) == [2, 4] and list(runs["base_scale"]) == [2, 2]
    assert list(runs["depth"]) == [2, 4] and list(runs["base_depth"]) == [2, 2] and list(runs["width"]) == [16, 16]


def test_show_recipe_and_recipes_show_the_depth_rules(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show-recipe", "completep", "--workload", "llama", "--width", "32", "--base-width", "32",
                 "--depth-mult", "4"]) == 0
    text = capsys.readouterr().out
    assert "residual branch multiplier: 0.25" in text and "depth 8, depth_mult m_L = 4" in text
    rows = {line.split()[0]: line.split() for line in text.splitlines() if line.split()[:1] in (["hidden"],
                                                                                                ["input"])}
    assert rows["hidden"][-2] == "2.5e-09" and rows["input"][-2] == "1e-08"  # eps = 1e-8 / m / m_L
    assert main(["recipes"]) == 0
    listed = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert "2310.02244" in listed["depth-mup"] and "2505.01618" in listed["completep"]


def test_the_plain_mlp_refuses_a_branch_multiplier(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    mlp = {"workload": "mlp", "recipe": "depth-mup", "width": 16, "base_width": 16, "log2_lr": -6, "steps": 8,
           "batch_size": 4, "eval_batches": 1}
    with pytest.raises(ConfigError, match="'depth-mup' multiplies residual branches by 0.707107 at depth_mult 2 .*"
                       "workload 'mlp' has no residual branches"):
        resolve_run_config({**mlp, "depth": 4, "base_depth": 2})  # refused before torch loads
    assert setup(resolve_run_config({**mlp, "depth": 2, "base_depth": 2})).branch_mult == 1.0  # m_L = 1: fine
    argv = ["train", "--workload", "mlp", "--recipe", "completep", "--width", "16", "--base-width", "16", "--depth",
            "4", "--base-depth", "2", "--log2-lr", "-6", "--steps", "8", "--batch-size", "4", "--eval-batches", "1",
            "--out", str(tmp_path / "s{seed}" / "lr{log2_lr}"), "--no-progress"]
    assert main(argv) == 2
    assert "mlp" in caplog.text and "branch" in caplog.text
    assert not any(tmp_path.iterdir())  # refused before anything is made: no empty run directory
