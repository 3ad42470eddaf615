"""What the optimizer actually applied, read back from real records and recomputed here from the
recipes' formulas and the schedule, typed in independently of the package: per group and step, the lr,
the weight-decay coefficient and the per-step decay lr x wd. A wrong multiplier, a skipped per-step
factor (f_t), an ignored schedule or the base wd handed to the optimizer each fail these tests."""

from __future__ import annotations

import math

import pytest

from transferbench.config import resolve_run_config
from transferbench.train import train

ETA_LOG2, WD, BASE, M, STEPS, WARMUP = -5.0, 0.5, 16, 4, 20, 0.2
ETA = 2.0**ETA_LOG2


def schedule(t: int) -> float:
    """Linear warmup over round(0.2 x 20) = 4 steps to the peak, then linear decay to 0 at step 20."""
    w = 4
    return (t + 1) / w if t < w else 1.0 - (t - w) / (STEPS - w)


def f_t(t: int, coupled: bool = False) -> float:
    """[Kos25] Eq. 11 with the real schedule: f = (1 + (m^2 - 1) D^2)^(-1/2), D = prod_{tau<t}(1 - decay)
    where decay = eta_tau * wd (independent) or eta_tau * f_tau * wd (coupled: the decay that was applied)."""
    d, f = 1.0, 1.0 / M
    for tau in range(t + 1):
        f = (1 + (M * M - 1) * d * d) ** -0.5
        d *= 1 - ETA * schedule(tau) * (f if coupled else 1.0) * WD
    return f


def expected(recipe: str, role: str, t: int, options: dict,
             decayed: str = "input,hidden,output") -> tuple[float, float]:
    """(lr, weight_decay) the optimizer must hold for ``role`` at step t, from the recipes' tables; a matrix role
    missing from the run setting ``decay_roles`` (``decayed``) gets no weight decay in any recipe."""
    s = schedule(t)
    lr_mult, wd_mult = {
        "standard": {"input": (1, 1), "hidden": (1, 1), "output": (1, 1), "vector": (1, 0)},
        "mup": {"input": (1, 1), "hidden": (1 / M, 1), "output": (1, 1), "vector": (1, 0)},
        "mup-independent-wd": {"input": (1, 1), "hidden": (1 / M, M), "output": (1, 1), "vector": (1, 0)},
        "warmup-replacement": {"input": (1, 1), "hidden": (1, 1), "output": (1, 1), "vector": (1, 0)},
        "sqrt-d": {"input": (1, 1), "hidden": (1 / M, math.sqrt(M)), "output": (1, 1), "vector": (1, 0)},
    }[recipe][role]
    lr, wd = ETA * s * lr_mult, WD * wd_mult * (role in decayed.split(",") or role == "vector")
    if recipe == "warmup-replacement" and role == "hidden":
        coupled = options.get("decay") == "coupled"
        f = f_t(t, coupled)
        lr, wd = lr * f, (wd if coupled else wd / f)
    return lr, wd


CASES = [
    ("standard", {}), ("mup", {}), ("mup-independent-wd", {}), ("sqrt-d", {}),
    ("warmup-replacement", {}), ("warmup-replacement", {"decay": "coupled"}),
]


def run(recipe: str, options: dict, workload: str = "mlp", **base: str) -> dict:
    extra = {"batch_size": 8, "depth": 2} if workload == "mlp" else {"batch_size": 2, "seq_len": 16, "depth": 1}
    cfg = resolve_run_config({
        "workload": workload, "recipe": recipe, "recipe_options": options, "width": BASE * M, "base_width": BASE,
        "log2_lr": ETA_LOG2, "wd": WD, "steps": STEPS, "warmup_frac": WARMUP, "schedule": "linear",
        "eval_batches": 1, "diag_points": 1, "coord_steps": 1, **extra, **base,
    })
    return train(cfg)


@pytest.mark.parametrize(("recipe", "options"), CASES, ids=[f"{r}{o or ''}" for r, o in CASES])
def test_applied_lr_and_wd_match_the_formulas(recipe: str, options: dict) -> None:
    rec = run(recipe, options)
    applied = rec["applied"]
    assert [a["step"] for a in applied] == [0, 3, 10, 19]  # first, end of warmup, middle, last
    for a in applied:
        t = a["step"]
        assert a["lr_mult"] == pytest.approx(schedule(t), rel=1e-12)
        roles = {g["role"] for g in a["groups"]}
        assert roles == {"input", "hidden", "output", "vector"}
        for g in a["groups"]:
            lr, wd = expected(recipe, g["role"], t, options)
            where = (recipe, options, t, g["role"])
            assert g["lr"] == pytest.approx(lr, rel=1e-9, abs=1e-15), where
            assert g["weight_decay"] == pytest.approx(wd, rel=1e-9, abs=1e-15), where
            assert g["per_step_decay"] == pytest.approx(lr * wd, rel=1e-9, abs=1e-15), where


@pytest.mark.parametrize("recipe", ["sqrt-d", "warmup-replacement"])
def test_decay_roles_hidden_applies_no_wd_to_input_and_output(recipe: str) -> None:
    """[Fan25]'s embedding and readout without weight decay: the run setting decay_roles, for any recipe."""
    for a in run(recipe, {}, decay_roles="hidden")["applied"]:
        for g in a["groups"]:
            lr, wd = expected(recipe, g["role"], a["step"], {}, decayed="hidden")
            assert g["lr"] == pytest.approx(lr, rel=1e-9) and g["weight_decay"] == pytest.approx(wd, rel=1e-9)
            assert (g["weight_decay"] == 0) == (g["role"] != "hidden"), (recipe, g["role"])


def test_warmup_replacement_decay_is_the_one_its_formula_assumes() -> None:
    """Default: the hidden per-step decay is eta_t x wd, exactly that of mup-independent-wd, while the
    lr is eta_t x f_t; with decay=coupled the decay is eta_t x f_t x wd and f_t is computed from it."""
    wr, iwd = run("warmup-replacement", {}), run("mup-independent-wd", {})
    coupled = run("warmup-replacement", {"decay": "coupled"})
    for a, b, c in zip(wr["applied"], iwd["applied"], coupled["applied"], strict=True):
        ha, hb, hc = (next(g for g in x["groups"] if g["role"] == "hidden") for x in (a, b, c))
        assert ha["per_step_decay"] == pytest.approx(hb["per_step_decay"], rel=1e-12)
        assert ha["lr_factor"] == pytest.approx(f_t(a["step"]), rel=1e-12)
        assert ha["wd_factor"] == pytest.approx(1 / f_t(a["step"]), rel=1e-12)
        assert hc["per_step_decay"] == pytest.approx(ETA * schedule(c["step"]) * f_t(c["step"], True) * WD)
        assert hc["wd_factor"] is None
    groups = {g["role"]: g for g in wr["param_groups"]}
    assert groups["hidden"]["lr_factor"] == "f_t" and groups["hidden"]["wd_factor"] == "1/f_t"
    assert coupled["config"]["recipe_options"]["decay"] == "coupled"


def test_llama_applies_the_same_settings() -> None:
    """The applied settings do not depend on the workload: llama's groups (several hidden fan_ins)."""
    rec = run("mup-independent-wd", {}, workload="llama")
    for a in rec["applied"]:
        for g in a["groups"]:
            lr, wd = expected("mup-independent-wd", g["role"], a["step"], {})
            assert g["lr"] == pytest.approx(lr, rel=1e-9) and g["weight_decay"] == pytest.approx(wd, rel=1e-9)
