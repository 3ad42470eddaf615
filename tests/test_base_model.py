"""One base model (docs/design.md §3, recipes/basemodel.py): at m = 1 every built-in recipe, the wd-power
instances included, trains exactly the same model on every workload (same trainer fingerprint, the same
initial tensors, the same losses after a step), under the default base settings and under [Fan25]'s
(``readout_init: zero``, ``decay_roles: hidden``); at m = 2 they differ. The two base settings act on every
recipe alike, as the optimizer applies them. A plugin that trains another model at m = 1 is refused unless
it declares ``base_model``, which then reaches the record and runs.csv. ``lr_factor_end`` is where a
per-step lr factor ended, in the record and runs.csv."""

from __future__ import annotations

import inspect
import json
import math
from pathlib import Path

import pytest
import torch
from test_registry import make_dist

from transferbench import shared
from transferbench.config import ConfigError, resolve_run_config
from transferbench.recipes import Multipliers, Recipe, RecipeError, base_model_of, describe, get_recipe, registry
from transferbench.recipes.checked import base_model_problem, resolve
from transferbench.recipes.warmup import f_decay_product
from transferbench.train import State, setup, step, train

RECIPES = ["standard", "mup", "mup-independent-wd", "warmup-replacement", "sqrt-d",
           "wd-power[p=0]", "wd-power[p=0.5]", "wd-power[p=1]"]
#: Pairs that are one training at every width: the rest differ from each other at m = 2.
TWINS = {"wd-power[p=0]": "mup", "wd-power[p=0.5]": "sqrt-d", "wd-power[p=1]": "mup-independent-wd"}
SMALL = {
    "llama": {"base_width": 16, "batch_size": 2, "seq_len": 16, "depth": 1, "vocab_size": 32},
    "resnet": {"base_width": 4, "batch_size": 4, "image_size": 8},
    "mlp": {"base_width": 16, "batch_size": 4, "depth": 2},
}
PAPERS = {"readout_init": "zero", "decay_roles": "hidden"}  # [Fan25]'s base model, and the papers' μP readout


def config(workload: str, recipe: str, m: int = 1, **base: str):
    small = SMALL[workload]
    return resolve_run_config({"workload": workload, "recipe": recipe, "width": small["base_width"] * m,
                               "log2_lr": -5, "wd": 0.3, "steps": 4, "eval_batches": 1, "diag_points": 1,
                               "coord_steps": 0, **small, **base})


def trained(workload: str, recipe: str, m: int = 1, steps: int = 2, **base: str):
    """(fingerprint, initial state dict, losses of the first ``steps`` steps, the run)."""
    run = setup(config(workload, recipe, m, **base))
    fp = shared.fingerprint(run)
    init = {k: v.detach().clone() for k, v in run.wl.model.state_dict().items()}
    st = State()
    for t in range(steps):
        assert step(run, st, t)
    return fp, init, st.losses, run


@pytest.mark.parametrize("base", [{}, PAPERS], ids=["default", "zero-readout-hidden-decay"])
@pytest.mark.parametrize("workload", ["llama", "resnet", "mlp"])
def test_every_recipe_trains_one_model_at_the_base_width(workload: str, base: dict) -> None:
    ref_fp, ref_init, ref_losses, _ = trained(workload, "standard", **base)
    for recipe in RECIPES[1:]:
        fp, init, losses, _ = trained(workload, recipe, **base)
        assert fp == ref_fp, recipe
        assert init.keys() == ref_init.keys() and all(torch.equal(init[k], ref_init[k]) for k in init), recipe
        assert losses == ref_losses, recipe  # the update of step 0 included: same lr, wd and factors
    # ... and they are width rules: at m = 2 the recipes differ (but for the wd-power twins)
    at2 = {r: shared.fingerprint(setup(config(workload, r, 2, **base))) for r in RECIPES}
    assert len(set(at2.values())) == len(RECIPES) - len(TWINS)
    assert all(at2[a] == at2[b] for a, b in TWINS.items())


@pytest.mark.parametrize("m", [1, 4])
def test_readout_init_zero_zeroes_every_recipes_readout(m: int) -> None:
    for recipe in RECIPES:
        run = setup(config("mlp", recipe, m, readout_init="zero"))
        [out] = [g for g in run.groups if g["role"] == "output"]
        assert out["init_std"] == 0.0 and all(torch.count_nonzero(p) == 0 for p in out["params"]), recipe
        normal = setup(config("mlp", recipe, m))
        [out] = [g for g in normal.groups if g["role"] == "output"]
        assert out["init_std"] > 0 and all(torch.count_nonzero(p) > 0 for p in out["params"]), recipe
        # the μP readout keeps sigma/sqrt(base fan_in); standard's shrinks as 1/sqrt(fan_in)
        want = 1 / math.sqrt(out["fan_in"]) * (1.0 if recipe == "standard" else math.sqrt(m))
        assert out["init_std"] == pytest.approx(want), recipe


@pytest.mark.parametrize(("roles", "decayed"), [
    ("input,hidden,output", {"input", "hidden", "output"}), ("hidden", {"hidden"}), ("none", set()),
    ("input,output", {"input", "output"}),
])
def test_decay_roles_as_the_optimizer_applies_them(roles: str, decayed: set) -> None:
    for recipe in RECIPES:
        _, _, _, run = trained("mlp", recipe, m=2, steps=1, decay_roles=roles)
        for g, pg in zip(run.groups, run.opt.param_groups, strict=True):
            assert (pg["weight_decay"] > 0) == (g["role"] in decayed), (recipe, roles, g["role"])
            assert (g["weight_decay"] > 0) == (g["role"] in decayed)  # the record's param_groups say it too
            if g["role"] not in decayed:
                assert g["weight_decay"] == g["wd_mult"] == g["per_step_decay"] == 0.0


def test_bad_base_settings_name_the_key() -> None:
    with pytest.raises(ConfigError, match="decay_roles: unknown value 'output,input'"):
        config("mlp", "mup", decay_roles="output,input")
    with pytest.raises(ConfigError, match="readout_init: unknown value 'fan_in'; known: normal, zero"):
        config("mlp", "mup", readout_init="fan_in")
    with pytest.raises(ConfigError, match="recipe_options.readout_init: .*run setting readout_init"):
        resolve_run_config({"workload": "mlp", "recipe": "mup", "recipe_options": {"readout_init": "zero"},
                            "width": 32, "base_width": 16, "log2_lr": -6})
    with pytest.raises(ConfigError, match="recipe_options.vector_wd: .*decay_roles"):
        resolve_run_config({"workload": "mlp", "recipe": "wd-power[p=0.5,vector_wd=none]", "width": 32,
                            "base_width": 16, "log2_lr": -6})


class ZeroReadout(Recipe):
    """The old μP rows as a plugin: a zero readout at every width."""

    name = "zero-readout"
    summary = "muP with a zero readout"
    citation = "arXiv:2401.00001"
    options = {"alpha": 1.0}

    def multipliers(self, role, width_mult):
        if role == "hidden":
            return Multipliers(init_std=1.0, lr=self.opts["alpha"] / width_mult, wd=1.0)
        return Multipliers(init_std=0.0 if role == "output" else 1.0, lr=1.0, wd=0.0 if role == "vector" else 1.0)


class Declared(ZeroReadout):
    base_model = "readout zero init"


class Identity(ZeroReadout):
    def multipliers(self, role, width_mult):
        return Multipliers(init_std=1.0, lr=self.opts["alpha"], wd=0.0 if role == "vector" else 1.0)


class SlowStart(Identity):
    def lr_factors(self, role, width_mult, base_lrs, wd):
        return [0.5] + [1.0] * (len(base_lrs) - 1) if role == "hidden" else None


class DecayedGains(Identity):
    def multipliers(self, role, width_mult):
        return Multipliers(init_std=1.0, lr=1.0, wd=1.0)


def test_what_differs_at_the_base_width_is_named() -> None:
    assert "output init ×0 at m = 1" in base_model_problem(ZeroReadout(), "recipe 'x'")
    assert base_model_problem(Declared(), "recipe 'x'") is None
    assert base_model_problem(Identity(), "recipe 'x'") is None
    assert "input lr ×2, hidden lr ×2" in base_model_problem(Identity(alpha=2.0), "recipe 'x'")
    assert "hidden lr factor 0.5 at step 0" in base_model_problem(SlowStart(), "recipe 'x'")
    assert "vector wd ×1" in base_model_problem(DecayedGains(), "recipe 'x'")
    # on the run's own schedule too, where the numbers are checked
    with pytest.raises(RecipeError, match="output init ×0 at m = 1.*base_model"):
        resolve(ZeroReadout(), 2.0, [0.01] * 3, 0.1)
    assert resolve(Declared(), 2.0, [0.01] * 3, 0.1).roles["output"].multipliers.init_std == 0.0
    assert base_model_of(Declared()) == base_model_of(Declared) == "readout zero init"
    for name in ("standard", "mup", "sqrt-d", "wd-power[p=0.25]"):
        assert base_model_of(name) == "" and base_model_problem(get_recipe(name)) is None


# The plugin package's source: the same ZeroReadout class as above (not a copy of it), then its subclasses.
PLUGIN = "from transferbench.recipes import Multipliers, Recipe\n\n\n" + inspect.getsource(ZeroReadout) + '''

class Declared(ZeroReadout):
    name = "declared"
    base_model = "readout zero init"


class Optional(ZeroReadout):
    name = "optional"

    def multipliers(self, role, width_mult):
        if role == "output":
            return Multipliers(init_std=1.0, lr=self.opts["alpha"], wd=1.0)
        return Multipliers(init_std=1.0, lr=1.0, wd=0.0 if role == "vector" else 1.0)
'''


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    make_dist(tmp_path, "base-recipes", "base_recipes", PLUGIN, {
        "zero-readout": "base_recipes:ZeroReadout", "declared": "base_recipes:Declared",
        "optional": "base_recipes:Optional"})
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.clear_cache()
    yield tmp_path
    registry.clear_cache()


def test_an_undeclared_base_model_is_refused_and_a_declared_one_reaches_runs_csv(plugins: Path) -> None:
    from transferbench.aggregate import aggregate

    with pytest.raises(RecipeError, match=r"'zero-readout'.*base-recipes 0\.3.*output init ×0 at m = 1"):
        get_recipe("zero-readout")
    problems = registry.problems()
    assert any("'zero-readout'" in p and "base-recipes 0.3" in p and "output init ×0" in p for p in problems)
    assert "zero-readout" not in [n for n in registry.names() if not any(f"'{n}'" in p for p in problems)]
    for name in ("standard", "mup", "sqrt-d", "declared", "optional"):
        get_recipe(name)  # the refused plugin takes nothing else down
    # options that change the model at m = 1 are refused where they are given
    with pytest.raises(RecipeError, match=r"'optional'.*base-recipes 0\.3.*output lr ×2 at m = 1"):
        config("mlp", "optional[alpha=2]")
    assert describe("declared")["base_model"] == "readout zero init" and describe("mup")["base_model"] == ""
    runs = plugins / "runs"
    for recipe in ("declared", "mup"):
        train(config("mlp", recipe, 2), runs / recipe)
    rec = json.loads((runs / "declared" / "record.json").read_text())
    assert rec["recipe"]["base_model"] == "readout zero init"
    table = aggregate(sorted(runs.rglob("record.json")), plugins / "tables").set_index("recipe")
    assert table.loc["declared", "base_model"] == "readout zero init" and table.loc["mup", "base_model"] == ""


def test_lr_factor_end_is_where_the_factor_ended(tmp_path: Path) -> None:
    from transferbench.aggregate import aggregate, base_model_from
    from transferbench.schedule import lr_multipliers
    from transferbench.validate import RecordError, validate_record

    cfg = config("mlp", "warmup-replacement", 4)
    rec = train(cfg, tmp_path / "wr")
    sched = lr_multipliers(4, cfg.schedule, cfg.warmup_frac, cfg.min_lr_frac)
    want = f_decay_product(4, [cfg.lr * s for s in sched], cfg.wd)[-1]
    assert rec["summary"]["lr_factor_end"] == pytest.approx(want) and want < 0.9  # 4 steps: f_t barely rose
    assert train(config("mlp", "mup", 4), tmp_path / "mup")["summary"]["lr_factor_end"] is None
    table = aggregate(sorted(tmp_path.rglob("record.json")), tmp_path / "tables").set_index("recipe")
    assert table.loc["warmup-replacement", "lr_factor_end"] == pytest.approx(want)
    assert math.isnan(table.loc["mup", "lr_factor_end"])
    for bad in ("x", -0.5, math.inf):
        with pytest.raises(RecordError, match="summary.lr_factor_end"):
            validate_record({**rec, "summary": {**rec["summary"], "lr_factor_end": bad}}, "r.json")
    # a record from before the shared base model says its own through the recipe options it ran with
    old = {**rec, "recipe": {k: v for k, v in rec["recipe"].items() if k != "base_model"}}
    old["config"] = {**rec["config"], "recipe": "sqrt-d", "recipe_options": {"readout_init": "zero"}}
    assert base_model_from(old) == "readout zero init, no wd on input and output"
