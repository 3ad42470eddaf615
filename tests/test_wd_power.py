"""``wd-power`` (recipes/wd_power.py) and recipe instances (recipes/instance.py): p = 0, 1/2 and 1 resolve to
exactly mup, sqrt-d and mup-independent-wd, group by group and tensor by tensor, in what the trainer builds,
under any base settings; a label is its own recipe in the config, the grid's paths and the runs table."""

from __future__ import annotations

import math

import pytest
import torch

from transferbench.config import ConfigError, config_hash, resolve_run_config
from transferbench.recipes import get_recipe
from transferbench.recipes.instance import InstanceError, canonical, parse, slug

SMALL = {"mlp": {"depth": 2, "batch_size": 8}, "llama": {"depth": 1, "batch_size": 2, "seq_len": 16, "vocab_size": 32}}


def _built(workload: str, recipe: str, m: int = 4, **base: str):
    from transferbench.shared import fingerprint
    from transferbench.train import setup

    width = 16
    cfg = resolve_run_config({"workload": workload, "recipe": recipe, "width": width * m, "base_width": width,
                              "log2_lr": -6, "wd": 0.3, "steps": 4, "eval_batches": 1, **SMALL[workload], **base})
    run = setup(cfg)
    groups = [(g["role"], g["fan_in"], g["lr"], g["weight_decay"], g["init_std"]) for g in run.groups]
    state = {k: v.clone() for k, v in run.wl.model.state_dict().items()}
    return groups, run.output_mult, state, fingerprint(run), run


def _same(a, b) -> None:
    ga, oa, sa, fa, _ = a
    gb, ob, sb, fb, _ = b
    assert ga == gb and oa == ob
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert fa == fb  # one training: trained once (shared.py)


@pytest.mark.parametrize("workload", ["mlp", "llama"])
@pytest.mark.parametrize(("label", "twin"), [
    ("wd-power[p=0]", "mup"), ("wd-power[p=1]", "mup-independent-wd"), ("wd-power[p=0.5]", "sqrt-d"),
])
@pytest.mark.parametrize("m", [2, 4])
def test_special_exponents_are_the_named_recipes(workload: str, label: str, twin: str, m: int) -> None:
    _same(_built(workload, label, m), _built(workload, twin, m))


def test_twins_under_fan_base_model() -> None:
    """[Fan25]'s own base model (embedding and readout undecayed) is a run setting, so sqrt-d with it is still
    wd-power[p=0.5] with it, and differs from sqrt-d without it only on input and output."""
    fan = {"decay_roles": "hidden", "readout_init": "zero"}
    _same(_built("mlp", "wd-power[p=0.5]", **fan), _built("mlp", "sqrt-d", **fan))
    with_fan, without = _built("mlp", "sqrt-d", decay_roles="hidden")[0], _built("mlp", "sqrt-d")[0]
    assert [g for g in with_fan if g[0] in ("hidden", "vector")] == [g for g in without if g[0] in ("hidden", "vector")]
    assert all(g[3] == 0.0 for g in with_fan if g[0] in ("input", "output"))
    assert all(g[3] == 0.3 for g in without if g[0] in ("input", "output"))


def test_hidden_wd_is_lambda_m_to_the_p() -> None:
    for p in (0.0, 0.25, 0.75, 1.0, -0.5):
        for m in (1.0, 2.0, 8.0):
            r = get_recipe("wd-power", p=p).resolve(m)
            assert r["hidden"]["lr"] == pytest.approx(1 / m) and r["hidden"]["wd"] == pytest.approx(m ** p)
            assert r["input"]["wd"] == r["output"]["wd"] == 1.0 and r["vector"]["wd"] == 0.0
            assert r["output"]["init_std"] == pytest.approx(math.sqrt(m))
    groups, out_mult, _, _, _ = _built("mlp", "wd-power[p=0.25]", m=4)
    hidden = [g for g in groups if g[0] == "hidden"]
    assert hidden and all(g[2] == pytest.approx(2**-6 / 4) and g[3] == pytest.approx(0.3 * 4**0.25) for g in hidden)
    assert out_mult == pytest.approx(0.25)


def test_the_optimizer_applies_the_exponent() -> None:
    from transferbench.train import State, step

    _, _, _, _, run = _built("mlp", "wd-power[p=0.75]", m=8)
    step(run, State(), 0)
    hidden = [pg for g, pg in zip(run.groups, run.opt.param_groups) if g["role"] == "hidden"]
    assert hidden and all(pg["weight_decay"] == pytest.approx(0.3 * 8**0.75) for pg in hidden)


@pytest.mark.parametrize(("bad", "key"), [({"p": "x"}, "p"), ({"p": 9}, "p"), ({"vector_wd": "none"}, "vector_wd")])
def test_bad_options_name_the_option(bad: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        resolve_run_config({"workload": "mlp", "recipe": "wd-power", "recipe_options": bad, "width": 32,
                            "base_width": 16, "log2_lr": -6, "wd": 0.1})


def test_labels_parse_and_are_canonical() -> None:
    assert parse("my-recipe[p=0.5, mode=none]") == ("my-recipe", {"p": 0.5, "mode": "none"})
    assert parse("mup") == ("mup", {})
    assert canonical("my-recipe[mode=none,p=.50]") == "my-recipe[mode=none,p=0.5]"
    assert slug("wd-power[p=0.25]") == "wd-power@p=0.25" and slug("mup") == "mup"
    for bad in ("wd-power[]", "wd-power[p]", "wd-power[p=1,p=2]", "wd power", "wd-power[p=[1]]"):
        with pytest.raises(InstanceError, match="recipe"):
            parse(bad)


def test_a_label_is_its_own_recipe_in_the_config() -> None:
    base = {"workload": "mlp", "width": 32, "base_width": 16, "log2_lr": -6, "wd": 0.1}
    a = resolve_run_config({**base, "recipe": "wd-power[p=.50]"})
    b = resolve_run_config({**base, "recipe": "wd-power", "recipe_options": {"p": 0.5}})
    assert a.recipe == "wd-power[p=0.5]" and b.recipe == "wd-power"
    assert a.recipe_options == b.recipe_options and config_hash(a) != config_hash(b)
    plain = resolve_run_config({**base, "recipe": "mup"})
    assert plain.recipe == "mup"  # a plain name is its own label: no hash of an old record moves
    with pytest.raises(ConfigError, match=r"recipe_options\.p: 0.25 conflicts"):
        resolve_run_config({**base, "recipe": "wd-power[p=0.5]", "recipe_options": {"p": 0.25}})
    with pytest.raises(ConfigError, match="unknown option 'q'"):
        resolve_run_config({**base, "recipe": "wd-power[q=1]"})


def test_profile_instances_are_rows_with_their_own_paths() -> None:
    import yaml

    from transferbench.config.grid import jobs
    from transferbench.config.profile import check_profile

    profile = yaml.safe_load(open("config/smoke.yaml"))
    profile["recipes"] = ["mup", "wd-power[p=0]", "wd-power[p=0.5]", "warmup-replacement[frac=0.5]"]
    profile["recipe_options"] = {"warmup-replacement": {"shape": "exponential"},
                                 "warmup-replacement[frac=0.5]": {"decay": "coupled"}}
    check_profile(profile)
    got = {(j.recipe, j.line.split("/")[1]) for j in jobs(profile)}
    assert ("wd-power[p=0.5]", "wd-power@p=0.5") in got and ("wd-power[p=0]", "wd-power@p=0") in got
    cmd = next(j for j in jobs(profile) if j.recipe == "warmup-replacement[frac=0.5]").command()
    assert "--recipe-option decay=coupled" in cmd and "--recipe-option shape=exponential" in cmd
    profile["recipes"] = ["mup", "wd-power[p=0.5]", "wd-power[p=.5]"]
    with pytest.raises(ConfigError, match="same recipe instance"):
        check_profile(profile)


def test_fan_prediction_of_the_exponent() -> None:
    from transferbench.exponents import fan_exponent

    want = {"standard": 0.75, "mup": 0.25, "mup-independent-wd": -0.25, "sqrt-d": 0.0,
            "wd-power[p=0.25]": 0.125, "wd-power[p=0.75]": -0.125}
    for recipe, slope in want.items():
        lr = [get_recipe(recipe).resolve(m)["hidden"]["lr"] for m in (1, 2, 4)]
        wd = [get_recipe(recipe).resolve(m)["hidden"]["wd"] for m in (1, 2, 4)]
        assert fan_exponent([1, 2, 4], lr, wd) == pytest.approx(slope), recipe
    assert math.isnan(fan_exponent([1, 2], [1, 1], [0, 0]))


def test_tau_is_the_applied_hidden_decay_summed_over_steps() -> None:
    """summary.tau = sum_t lr_t x wd_t of the hidden groups, here eta/m x schedule(t) x lambda m^p, computed
    from the schedule typed in (linear warmup then linear decay), not from the trainer's tables."""
    from transferbench.train import train

    steps, eta, lam, m, p = 20, 2.0**-6, 0.3, 4, 0.75
    cfg = resolve_run_config({"workload": "mlp", "recipe": f"wd-power[p={p}]", "width": 64, "base_width": 16,
                              "log2_lr": -6, "wd": lam, "steps": steps, "eval_batches": 1, "depth": 2,
                              "batch_size": 8, "schedule": "linear", "warmup_frac": 0.1, "min_lr_frac": 0.0})
    warm = 2
    sched = [(t + 1) / warm if t < warm else 1 - (t - warm) / (steps - warm) for t in range(steps)]
    want = sum(eta / m * s * lam * m**p for s in sched)
    assert train(cfg)["summary"]["tau"] == pytest.approx(want, rel=1e-9)
