"""Regime verdicts (transferbench/regime.py) on hand-made runs tables: a clean table is in regime, and each
check flips on a table built to fail it, with the reason naming the number (formatted as in regime.csv). An
out-of-regime workload is shown on the board but left out of the overall ranking (headline.py).

The clean table: three recipes on the exact parabolas of tests/headline_tables.py (optimum -5 at every
width, wider better, seed offsets only, so every optimum's CI is 0 octaves); standard keeps AdamW's per-step
decay with tau 3 at the widest width, warmup-replacement with tau 2 and a warmup factor that ends at 1, mup
shrinks the hidden lr with width (lr x wd multiplier 0.5 at width 128) and lives through tau 0.2 only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from headline_tables import GOOD, parabola, runs_of

from transferbench.headline import headline
from transferbench.metrics import _all_metrics
from transferbench.regime import CHECKS, regime_table

D = (-0.01, 0.0, 0.01)
EXTRA = {"standard": {"tau": 3.0},
         "mup": {"tau": 0.2, "hidden_lr_mult": lambda w, x, s: 64 / w},
         "warmup-replacement": {"tau": 2.0, "lr_factor_end": 1.0}}


def clean(curves: dict | None = None, extra: dict | None = None, **kw) -> pd.DataFrame:
    base = {r: parabola(GOOD, offset=D) for r in EXTRA}
    return runs_of({**base, **(curves or {})}, extra={r: {**EXTRA[r], **(extra or {}).get(r, {})} for r in EXTRA},
                   **kw)


def tables(runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(optima, regime, seed_scores) as metrics.write_metrics writes them."""
    optima, transfer, _, _, seed_scores = _all_metrics(runs, 200, 0)
    return optima, regime_table(transfer, optima, runs), seed_scores


def verdict(runs: pd.DataFrame) -> dict:
    """The one regime row, flags as True, False or None."""
    regime = tables(runs)[1]
    assert len(regime) == 1
    return {k: (None if v is None else bool(v)) if k in (*CHECKS, "in_regime") else v
            for k, v in regime.iloc[0].items()}


def test_a_clean_table_is_in_regime_and_mups_small_tau_does_not_fail_it():
    v = verdict(clean())
    assert [v[c] for c in ("wider_better", "optimum_resolved", "wd_acts", "warmup_completes")] == [True] * 4
    assert v["in_regime"] is True and v["reasons"] == ""
    assert v["max_opt_ci"] == pytest.approx(0.0, abs=1e-9)
    # mup (multiplier 0.5 at the widest width) is not asked to reach tau 1: the minimum is over the others
    assert v["min_tau_widest"] == pytest.approx(2.0) and v["min_tau_at"] == "warmup-replacement"
    assert v["min_factor_end"] == pytest.approx(1.0) and v["min_factor_at"] == "warmup-replacement"


def test_wider_not_better_at_the_transferred_lr_is_out_of_regime():
    worse = {r: parabola({32: 2.3, 64: 2.2, 128: 2.4}) for r in EXTRA}
    v = verdict(clean(worse))
    assert v["wider_better"] is False and v["in_regime"] is False
    assert v["transferred_by_scale"] == "2.3000/2.2000/2.4000"
    assert f"wider is not better at the transferred lr ({v['best_recipe']}: 2.3000 → 2.2000 → 2.4000" in v["reasons"]


def test_an_optimum_on_the_grid_edge_is_not_resolved():
    v = verdict(clean({"mup": parabola(GOOD, opt={128: -9.5}, offset=D)}))
    assert v["optimum_resolved"] is False and v["in_regime"] is False and v["max_opt_ci"] == np.inf
    assert "an optimal lr is not resolved: on the lr grid's edge (mup d=128)" in v["reasons"]


def test_an_optimum_whose_ci_spans_an_octave_is_not_resolved():
    """mup's widest optimum moves by 1.2 octaves from seed to seed: its bootstrap CI spans more than 1."""
    runs = clean({"mup": parabola(GOOD, jitter={128: (-1.2, 0.0, 1.2)}, offset=D)})
    optima, _, _ = tables(runs)
    v = verdict(runs)
    row = optima.set_index(["recipe", "scale"]).loc[("mup", 128)]
    half = (row["opt_log2_lr_hi"] - row["opt_log2_lr_lo"]) / 2  # regime.py: the CI's half-width
    assert half >= 1.0 and v["max_opt_ci"] == pytest.approx(half) and v["max_opt_ci_at"] == "mup d=128"
    assert v["optimum_resolved"] is False and v["in_regime"] is False
    assert f"an optimal lr is not resolved: 95% CI ±{half:.2f} octaves, not under ±1 (mup d=128)" in v["reasons"]
    # the same noise, a sixth as large, is resolved
    quiet = verdict(clean({"mup": parabola(GOOD, jitter={128: (-0.2, 0.0, 0.2)}, offset=D)}))
    assert 0 < quiet["max_opt_ci"] < 1 and quiet["optimum_resolved"] is True


def test_weight_decay_that_does_not_act_is_out_of_regime_for_a_recipe_keeping_the_per_step_decay():
    v = verdict(clean(extra={"standard": {"tau": 0.5}}))
    assert v["wd_acts"] is False and v["in_regime"] is False
    assert v["min_tau_widest"] == pytest.approx(0.5) and v["min_tau_at"] == "standard"
    assert "weight decay acts over 0.50 < 1 timescale at the widest width (standard)" in v["reasons"]
    # mup's own tau 0.2 fails it only if mup kept the per-step decay (multiplier 1): by multiplier, not by name
    kept = verdict(clean(extra={"mup": {"hidden_lr_mult": 1.0}}))
    assert kept["wd_acts"] is False and kept["min_tau_at"] == "mup" and "0.20 < 1" in kept["reasons"]
    assert verdict(clean(wd=0.0))["wd_acts"] is None  # no weight decay: nothing to check, not a failure


def test_only_shrinking_recipes_or_no_multipliers_cannot_check_weight_decay():
    only_mup = verdict(runs_of({"mup": parabola(GOOD, offset=D)}, extra={"mup": EXTRA["mup"]}))
    assert only_mup["wd_acts"] is None and only_mup["in_regime"] is True
    old = clean().drop(columns=["hidden_lr_mult", "hidden_wd_mult"])  # a runs table without multipliers
    assert verdict(old)["wd_acts"] is None


def test_a_warmup_that_does_not_complete_at_the_transferred_lr_is_out_of_regime():
    def factor(width: int, lr: float) -> object:
        return lambda w, x, s: 0.5 if (w, x) == (width, lr) else 1.0

    v = verdict(clean(extra={"warmup-replacement": {"lr_factor_end": factor(128, -5.0)}}))
    assert v["warmup_completes"] is False and v["in_regime"] is False and v["min_factor_end"] == pytest.approx(0.5)
    assert "the warmup factor ends at 0.50 < 0.9 (warmup-replacement)" in v["reasons"]
    # read at the widest width and the transferred lr (-5) only
    for width, lr in ((128, -3.0), (64, -5.0)):
        ok = verdict(clean(extra={"warmup-replacement": {"lr_factor_end": factor(width, lr)}}))
        assert ok["warmup_completes"] is True and ok["min_factor_end"] == pytest.approx(1.0), (width, lr)


def test_an_out_of_regime_workload_is_left_out_of_the_overall_ranking():
    """In llama (in regime) a is better than b; in mlp (weight decay does not act: out of regime) b is far
    better. Overall only llama counts: a's per-seed excess over llama's best is 0-ish, b's is +2.4%."""
    llama = runs_of({"a": parabola({32: 2.3, 64: 2.2, 128: 2.05}, offset=D),
                     "b": parabola({32: 2.3, 64: 2.2, 128: 2.10}, offset=D)})
    mlp = runs_of({"a": parabola({32: 2.3, 64: 2.2, 128: 2.15}, offset=D),
                   "b": parabola({32: 2.3, 64: 2.2, 128: 1.50}, offset=D)}, workload="mlp",
                  extra={"a": {"tau": 0.5}, "b": {"tau": 0.5}})
    runs = pd.concat([llama, mlp], ignore_index=True)
    _, regime, scores = tables(runs)
    assert regime.set_index("workload")["in_regime"].to_dict() == {"llama": True, "mlp": False}
    board = headline(scores, runs, regime).set_index(["scope", "recipe"])
    wide = scores[scores["largest"] & (scores["workload"] == "llama")].pivot(index="seed", columns="recipe",
                                                                            values="transferred_loss")
    excess = wide / wide.mean().min() - 1.0  # per seed, relative to llama's best recipe
    for r in ("a", "b"):
        assert board.loc[("overall", r), "transferred_mean"] == pytest.approx(excess[r].mean(), abs=1e-12)
    assert board.loc[("overall", "a"), "rank_transferred"] == 1 and board.loc[("overall", "b"), "rank_transferred"] == 2
    assert board.loc[("mlp", "b"), "rank_transferred"] == 1 and not board.loc[("mlp", "a"), "in_regime"]
    # both in regime: b's mlp advantage enters the overall score
    both = headline(scores, runs, regime.assign(in_regime=True)).set_index(["scope", "recipe"])
    assert both.loc[("overall", "b"), "transferred_mean"] < both.loc[("overall", "a"), "transferred_mean"]
    # none in regime: no overall rows at all
    assert "overall" not in set(headline(scores, runs, regime.assign(in_regime=False))["scope"])


def test_one_base_model_is_checked_at_the_base_width():
    """regime.csv says whether every recipe trained the same model at the base width (64 here): the clean table
    does (equal curves there), a recipe whose base-width losses differ by 0.05 does not, and the spread is
    the number shown; a declared base model is left out of the comparison."""
    ok = verdict(clean())
    assert ok["one_base_model"] and ok["base_spread"] == pytest.approx(0.0) and ok["in_regime"]
    other = {**GOOD, 64: GOOD[64] + 0.05}
    split = verdict(clean({"mup": parabola(other, offset=D)}))
    assert not split["one_base_model"] and split["base_spread"] == pytest.approx(0.05)
    declared = clean({"mup": parabola(other, offset=D)}, extra={"mup": {"base_model": "zero readout"}})
    assert verdict(declared)["one_base_model"]


def test_one_base_model_compares_runs_at_the_same_wd():
    """A joint (lr x wd) scope holds the runs of every wd: two recipes that share each base-width run are one
    base model even though the loss differs from wd to wd (the spread is taken per (seed, lr, wd))."""
    from transferbench.regime import _base_spread

    rows = [{"recipe": r, "width": 32, "base_width": 32, "seed": s, "log2_lr": x, "wd": wd,
             "eval_loss": 2.0 + 0.1 * np.log2(wd) + 0.01 * x + 0.001 * s}
            for r in ("mup", "sqrt-d") for s in (0, 1) for x in (-6.0, -5.0) for wd in (0.25, 0.5, 1.0)]
    assert _base_spread(pd.DataFrame(rows)) == (True, pytest.approx(0.0))


def test_a_joint_scope_is_resolved_on_both_axes_of_its_2d_optimum():
    """optima_wd.csv: the lr CI with ``lr_edge``, the wd CI with ``edge``; either failing fails the scope."""
    from transferbench.regime import EDGES_2D, _resolved

    row = {"recipe": "mup", "scale": 64, "opt_log2_lr_lo": -6.0, "opt_log2_lr_hi": -5.0, "lr_edge": False,
           "opt_log2_wd_lo": -3.0, "opt_log2_wd_hi": -2.5, "edge": False}
    assert _resolved(pd.DataFrame([row]), EDGES_2D) == (True, 0.5, "mup d=64, lr")
    wide = {**row, "opt_log2_wd_lo": -5.0, "opt_log2_wd_hi": -1.0}
    assert _resolved(pd.DataFrame([wide]), EDGES_2D) == (False, 2.0, "mup d=64, wd")
    assert _resolved(pd.DataFrame([{**row, "edge": True}]), EDGES_2D) == (False, np.inf, "mup d=64, wd")
    assert _resolved(pd.DataFrame([{**row, "lr_edge": True}]), EDGES_2D) == (False, np.inf, "mup d=64, lr")
