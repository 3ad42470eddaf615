"""Each built-in recipe resolves to docs/design.md §3's formulas, read back from real training records;
the warmup factor f_t behaves as specified; the schedule is what it says."""

from __future__ import annotations

import math

import pytest

from transferbench.config import resolve_run_config
from transferbench.recipes import get_recipe, names
from transferbench.recipes.checked import resolve
from transferbench.recipes.warmup import decay_products, f_decay_product, f_exponential
from transferbench.schedule import lr_multipliers

ETA_LOG2, WD, SIGMA, BASE = -5.0, 0.1, 1.0, 16


def expected(recipe: str, m: float) -> tuple[dict[str, tuple[float | None, float, float]], float]:
    """(init multiplier, lr multiplier, wd multiplier) per role and the readout multiplier, typed in
    from the table of docs/design.md §3 (not computed by the package), at the default base settings
    (readout_init normal, decay on every matrix). The μP readout keeps its std constant in width (x sqrt(m)
    on sigma/sqrt(fan_in), as mup's MuReadout); every recipe is the identity at m = 1."""
    vec, mu_out = (None, 1.0, 0.0), (math.sqrt(m), 1, 1)
    table = {
        "standard": ({"input": (1, 1, 1), "hidden": (1, 1, 1), "output": (1, 1, 1), "vector": vec}, 1.0),
        "mup": ({"input": (1, 1, 1), "hidden": (1, 1 / m, 1), "output": mu_out, "vector": vec}, 1 / m),
        "mup-independent-wd": (
            {"input": (1, 1, 1), "hidden": (1, 1 / m, m), "output": mu_out, "vector": vec}, 1 / m),
        "warmup-replacement": (
            {"input": (1, 1, 1), "hidden": (1, 1, 1), "output": mu_out, "vector": vec}, 1 / m),
        "sqrt-d": (
            {"input": (1, 1, 1), "hidden": (1, 1 / m, math.sqrt(m)), "output": mu_out, "vector": vec}, 1 / m),
    }
    return table[recipe]


BUILTIN = ["standard", "mup", "mup-independent-wd", "warmup-replacement", "sqrt-d"]


def test_builtins_registered_in_order() -> None:
    assert names()[:5] == BUILTIN


@pytest.mark.parametrize("recipe", BUILTIN)
def test_record_param_groups_follow_the_design_table(recipe: str, tmp_path) -> None:
    from transferbench.record import read_record
    from transferbench.train import train

    for m in (1, 2, 4, 8):
        cfg = resolve_run_config({
            "workload": "mlp", "recipe": recipe, "width": BASE * m, "base_width": BASE,
            "log2_lr": ETA_LOG2, "wd": WD, "steps": 2, "batch_size": 8, "depth": 2,
            "eval_batches": 1, "diag_points": 1, "coord_steps": 1, "sigma": SIGMA,
        })
        train(cfg, tmp_path / f"{recipe}-{m}")
        rec = read_record(tmp_path / f"{recipe}-{m}" / "record.json")
        table, out_mult = expected(recipe, m)
        assert rec["output_mult"] == pytest.approx(out_mult)
        roles_seen = set()
        for g in rec["param_groups"]:
            init, lr, wd = table[g["role"]]
            roles_seen.add(g["role"])
            assert g["lr"] == pytest.approx(2.0**ETA_LOG2 * lr), (recipe, m, g["role"])
            assert g["weight_decay"] == pytest.approx(WD * wd), (recipe, m, g["role"])
            assert g["per_step_decay"] == pytest.approx(2.0**ETA_LOG2 * lr * WD * wd)
            if init is None:
                assert g["init_std"] is None
            else:
                assert g["init_std"] == pytest.approx(SIGMA / math.sqrt(g["fan_in"]) * init)
            assert g["lr_factor"] == ("f_t" if recipe == "warmup-replacement" and g["role"] == "hidden" else None)
        assert roles_seen == {"input", "hidden", "output", "vector"}


@pytest.mark.parametrize(("recipe", "readout_init"), [("standard", "normal"), ("mup", "normal"), ("mup", "zero")])
def test_initialisation_matches_recorded_std(recipe: str, readout_init: str) -> None:
    """The tensors really are drawn with the recorded std (zero readout with readout_init zero)."""
    import torch

    from transferbench.groups import build_groups
    from transferbench.workloads.build import build_workload

    cfg = resolve_run_config({"workload": "mlp", "recipe": recipe, "width": 256, "base_width": 32,
                              "log2_lr": -6, "readout_init": readout_init})
    torch.manual_seed(0)
    model = build_workload(cfg, 1.0, torch.device("cpu")).model
    resolved = resolve(get_recipe(recipe), cfg["width_mult"], [cfg["lr"]] * cfg["steps"], cfg["wd"])
    for g in build_groups(model, resolved, cfg):
        for p in g["params"]:
            if g["init_std"] is None:
                continue
            if g["init_std"] == 0:
                assert torch.count_nonzero(p) == 0
            elif p.numel() >= 1000:
                assert float(p.detach().std()) == pytest.approx(g["init_std"], rel=0.1)


@pytest.mark.parametrize("m", [1, 2, 4, 8, 16])
def test_f_t_rises_from_one_over_m_to_one(m: int) -> None:
    steps = 600
    sched = lr_multipliers(steps, "linear", 0.1, 0.0)
    eta, wd = 2.0**-4, 0.5
    f = f_decay_product(m, [eta * s for s in sched], wd)
    assert f[0] == pytest.approx(1 / m)
    assert all(b >= a - 1e-15 for a, b in zip(f, f[1:])), "f_t must be non-decreasing"
    if m == 1:
        assert all(v == pytest.approx(1.0) for v in f)
    else:
        assert f[-1] > 0.99
        # the closed form against an independent evaluation at one step
        d = math.prod(1 - eta * s * wd for s in sched[:300])
        assert f[300] == pytest.approx((1 + (m * m - 1) * d * d) ** -0.5)


def test_f_t_constant_lr_matches_kosson_eq11() -> None:
    """With a constant lr, D_t = a^t and f_t is exactly [Kos25] Eq. 11's s_t."""
    eta, wd, m = 0.01, 0.1, 4
    a = 1 - eta * wd
    f = f_decay_product(m, [eta] * 50, wd)
    for t in (0, 7, 49):
        assert f[t] == pytest.approx((1 + (m * m - 1) * a ** (2 * t)) ** -0.5)
    assert decay_products([eta] * 3, wd) == pytest.approx([1, a, a * a])


def test_exponential_shape() -> None:
    f = f_exponential(8, 100, 0.5)
    assert f[0] == pytest.approx(1 / 8)
    assert f[25] == pytest.approx(8**-0.5)
    assert f[50] == pytest.approx(1.0) and f[99] == pytest.approx(1.0)
    assert f_exponential(1, 10, 0.5) == pytest.approx([1.0] * 10)


def test_warmup_replacement_factor_only_on_hidden_and_options() -> None:
    r = get_recipe("warmup-replacement")
    lrs = [0.01] * 10
    assert r.lr_factors("hidden", 4, lrs, 0.1)[0] == pytest.approx(0.25)
    for role in ("input", "output", "vector"):
        assert r.lr_factors(role, 4, lrs, 0.1) is None
    e = get_recipe("warmup-replacement", shape="exponential", frac=0.5)
    assert e.lr_factors("hidden", 4, lrs, 0.1) == pytest.approx(f_exponential(4, 10, 0.5))
    with pytest.raises(ValueError, match="shape"):
        get_recipe("warmup-replacement", shape="cosine")
    with pytest.raises(ValueError, match="unknown option 'nope'"):
        get_recipe("mup", nope=1)


@pytest.mark.parametrize("name", ["mup", "mup-independent-wd", "warmup-replacement", "sqrt-d", "wd-power"])
def test_mu_readout_std_is_constant_in_width_and_standard_at_m1(name: str) -> None:
    """The μP family's readout width rule is mup's MuReadout: init multiplier sqrt(m) on sigma/sqrt(fan_in),
    i.e. std sigma/sqrt(base fan_in) at every width, and forward x1/m; both standard's at m = 1. A zero
    readout is no longer a recipe option but the run setting readout_init, and the old option names it."""
    recipe = get_recipe(name)
    for m in (1, 4, 16):
        assert recipe.multipliers("output", m).init_std == pytest.approx(math.sqrt(m))
        # std = sigma / sqrt(fan_in) * sqrt(m) = sigma / sqrt(base fan_in): the same at every width
        assert 1 / math.sqrt(64 * m) * recipe.multipliers("output", m).init_std == pytest.approx(1 / 8)
        assert recipe.output_mult(m) == pytest.approx(1 / m)
    assert recipe.multipliers("output", 1) == get_recipe("standard").multipliers("output", 1)
    with pytest.raises(ValueError, match="unknown option 'readout_init'.*run setting readout_init"):
        get_recipe(name, readout_init="zero")


def test_citations_carry_arxiv_ids() -> None:
    from transferbench.recipes import describe

    ids = {n: describe(n)["arxiv"] for n in BUILTIN}
    assert ids == {"standard": "2510.19093", "mup": "2203.03466", "mup-independent-wd": "2510.19093",
                   "warmup-replacement": "2510.19093", "sqrt-d": "2510.15262"}
    for n in BUILTIN:
        assert describe(n)["citation"].lstrip().startswith("@")


@pytest.mark.parametrize("kind", ["cosine", "linear", "constant"])
def test_schedule_warmup_then_decay(kind: str) -> None:
    s = lr_multipliers(100, kind, 0.1, 0.1)
    assert s[0] == pytest.approx(0.1) and s[9] == pytest.approx(1.0)
    assert all(b > a for a, b in zip(s[:10], s[1:10]))
    if kind == "constant":
        assert s[-1] == pytest.approx(1.0)
    else:  # reaches min_lr_frac at step `steps`, so the last step still learns a little
        assert 0.1 < s[-1] < 0.11
    assert all(b <= a + 1e-12 for a, b in zip(s[10:], s[11:]))


def test_only_the_mup_rows_name_a_mup_library_equivalent() -> None:
    """show-recipe prints `equivalent:`; a subclass must not inherit its parent's claim."""
    said = {n: get_recipe(n).equivalent for n in BUILTIN}
    assert "decoupled_wd=True" in said["mup"] and "mup 1.0.0" in said["mup-independent-wd"]
    assert said["standard"] == said["warmup-replacement"] == said["sqrt-d"] == ""
