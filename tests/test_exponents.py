"""The weight-decay-exponent metrics: sv_exponent (measured at the transferred lr, with a CI) against [Fan25]'s
prediction from the applied multipliers (exponents.py), tau, the regret-minimising p with its bootstrap CI
(wd_exponent.py) and the invariance fit (invariance.py), on tables whose answers are known by construction."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from transferbench.exponents import fan_exponent
from transferbench.invariance import fit
from transferbench.metrics import compute_metrics, write_metrics
from transferbench.wd_exponent import tables

GRID = np.arange(-9.0, -1.0, 1.0)
WIDTHS = (32, 64, 128, 256)


def runs(slope_sv: float = 0.25, lr_exp: float = -1.0, wd_exp: float = 0.5, seeds=(0, 1, 2), opt=-5.0,
         recipe: str = "r", noise: float = 0.02, tau: float = 4.0) -> pd.DataFrame:
    """Loss minimal at log2 lr ``opt`` at every width; log2 top SV = slope_sv log2 w + seed noise at the
    lr nearest ``opt`` and a different width law elsewhere (so only the transferred lr gives slope_sv)."""
    rng = np.random.default_rng(0)
    rows = []
    for w in WIDTHS:
        m = w / WIDTHS[0]
        for x in GRID:
            for s in seeds:
                sv = slope_sv * math.log2(w) if x == opt else 2.0 * math.log2(w)
                rows.append({
                    "workload": "mlp", "recipe": recipe, "wd": 1.0, "width": w, "base_width": WIDTHS[0],
                    "log2_lr": x, "seed": s, "init_loss": 9.0, "eval_loss": 1.0 + 0.1 * (x - opt) ** 2,
                    "diverged": False, "log2_top_sv": sv + noise * rng.standard_normal(),
                    "hidden_lr_mult": m**lr_exp, "hidden_wd_mult": m**wd_exp, "tau": tau * (1 + (x - opt)),
                })
    return pd.DataFrame(rows)


def test_sv_exponent_is_the_slope_at_the_transferred_lr_with_a_ci() -> None:
    _, t = compute_metrics(runs(slope_sv=0.25), n_boot=200)
    row = t.iloc[0]
    assert row["sv_exponent"] == pytest.approx(0.25, abs=0.03)
    assert row["sv_exponent_lo"] < 0.25 < row["sv_exponent_hi"] and row["sv_exponent_hi"] - row["sv_exponent_lo"] < 0.2
    assert row["tau"] == pytest.approx(4.0) and row["tau_widest"] == pytest.approx(4.0)


@pytest.mark.parametrize(("lr_exp", "wd_exp", "want"), [(0, 0, 0.75), (-1, 0, 0.25), (-1, 1, -0.25), (-1, 0.5, 0.0),
                                                        (-1, 0.25, 0.125)])
def test_fan_prediction_from_the_applied_multipliers(lr_exp: float, wd_exp: float, want: float) -> None:
    _, t = compute_metrics(runs(lr_exp=lr_exp, wd_exp=wd_exp), n_boot=0)
    assert t["sv_exponent_fan"].iloc[0] == pytest.approx(want)
    assert fan_exponent(WIDTHS, [m**lr_exp for m in (1, 2, 4, 8)], [m**wd_exp for m in (1, 2, 4, 8)]) == \
        pytest.approx(want)


def test_no_weight_decay_means_no_prediction() -> None:
    assert math.isnan(fan_exponent(WIDTHS, [1, 1, 1, 1], [0, 0, 0, 0]))


def _p_sweep(best: float, ps=(0.0, 0.25, 0.5, 0.75, 1.0)) -> pd.DataFrame:
    """wd-power[p] rows whose widest-width curve is shifted so that regret grows as (p - best)^2."""
    parts = []
    for p in ps:
        r = runs(recipe=f"wd-power[p={p:g}]", noise=0.0)
        shift = 2.0 * (p - best)  # the widest width's optimum moves by this many octaves
        wide = r["width"] == WIDTHS[-1]
        r.loc[wide, "eval_loss"] = 1.0 + 0.1 * (r.loc[wide, "log2_lr"] + 5.0 - shift) ** 2 + 0.01 * r.loc[wide, "seed"]
        parts.append(r)
    return pd.concat(parts, ignore_index=True)


@pytest.mark.parametrize("best", [0.4, 0.6])
def test_best_p_minimises_regret_with_a_bootstrap_ci(tmp_path, best: float) -> None:
    write_metrics(_p_sweep(best), tmp_path, n_boot=200)
    rows, top = pd.read_csv(tmp_path / "wd_exponent.csv"), pd.read_csv(tmp_path / "wd_exponent_best.csv")
    assert list(rows["p"]) == [0.0, 0.25, 0.5, 0.75, 1.0] and (rows["variant"] == "-").all()
    assert rows["sv_exponent_fan"].notna().all()
    assert len(top) == 1
    b = top.iloc[0]
    assert b["best_p"] == pytest.approx(best, abs=0.08) and not b["best_p_edge"]
    assert b["best_p_lo"] <= b["best_p"] <= b["best_p_hi"]
    assert b["grid_best_p"] == 0.5 and b["n_seeds"] == 3


def test_best_p_on_the_edge_is_flagged() -> None:
    from transferbench.metrics import _all_metrics

    _, transfer, _, samples, _ = _all_metrics(_p_sweep(-0.5), 100, 0)
    _, top = tables(transfer, samples)
    assert top["best_p"].iloc[0] == 0.0 and bool(top["best_p_edge"].iloc[0])


def test_other_recipes_and_variants_stay_apart() -> None:
    from transferbench.metrics import _all_metrics

    # a variant: an instance option other than p (wd-power has none since its vector_wd became the run setting
    # decay_roles; a plugin's `wd-power`-like recipe or a future option may)
    mixed = pd.concat([_p_sweep(0.5), runs(recipe="mup"), runs(recipe="wd-power[p=0.5,q=1]")])
    _, transfer, _, samples, _ = _all_metrics(mixed, 50, 0)
    rows, top = tables(transfer, samples)
    assert "mup" not in set(rows["recipe"]) and set(rows["variant"]) == {"-", "q=1"}
    assert len(top) == 1  # the variant with a single p has no parabola


def test_invariance_slope_is_one_when_sv_follows_eta_over_lambda() -> None:
    rows = []
    for width in (64, 256):
        for log2_k in (-2, -1, 0, 1, 2):
            for seed in (0, 1, 2):
                rows.append({"workload": "mlp", "recipe": "wd-power[p=0.5]", "width": width, "seed": seed,
                             "log2_k": log2_k, "log2_top_sv": 3 + log2_k + 0.01 * seed * log2_k, "capped": 0.2,
                             "diverged": False, "tau": 6.0})
    fits = fit(pd.DataFrame(rows), n_boot=100)
    assert list(fits["width"]) == [64, 256]
    assert fits["sv_slope"].tolist() == pytest.approx([1.01, 1.01])
    assert (fits["sv_slope_lo"] < 1.01).all() and (fits["sv_slope_hi"] > 1.01).all()
