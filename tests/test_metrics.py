"""Transfer metrics on hand-made runs tables whose answers are known in closed form: parabola vertex,
drift slope, regret on the local fit (zero for a perfect transfer off the grid), edge flags, Wortsman
sensitivity with diverged runs capped at L0, bootstrap CIs that shrink with seeds, wider-is-better and
singular-value spread."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from transferbench.bootstrap import bootstrap_ci, t975
from transferbench.metrics import (
    OPTIMA_COLUMNS,
    TRANSFER_COLUMNS,
    WD_TRANSFER_COLUMNS,
    compute_metrics,
    compute_wd_metrics,
    parabola_optimum,
    slope,
    wider_worse_frac,
    write_metrics,
)
from transferbench.ties import TIE_COLUMNS

GRID = np.arange(-9.0, -1.0, 1.0)  # log2 lr: -9 ... -2


def table(loss, widths=(32, 64, 128), lrs=GRID, seeds=(0,), wds=(0.1,), init=6.0, base_width=64,
          recipe="standard", sv=None) -> pd.DataFrame:
    """A runs table: loss(width, log2_lr, seed, wd) -> eval loss (NaN = diverged)."""
    rows = []
    for wd in wds:
        for w in widths:
            for x in lrs:
                for s in seeds:
                    value = loss(w, x, s, wd)
                    rows.append({
                        "workload": "llama", "recipe": recipe, "wd": wd, "width": w, "base_width": base_width,
                        "log2_lr": x, "seed": s, "init_loss": init, "eval_loss": value,
                        "diverged": not (value <= init), "log2_top_sv": sv(w, x) if sv else np.nan,
                        "recipe_arxiv": "2510.19093", "recipe_distribution": "transferbench",
                        "recipe_version": "0.1.0",
                    })
    return pd.DataFrame(rows)


def quad(opt_of_width, curvature=0.1, floor=2.0):
    return lambda w, x, s, wd: floor + curvature * (x - opt_of_width(w)) ** 2


def test_parabola_vertex_recovered_exactly_off_grid():
    for grid in (GRID, np.array([-9.0, -7.0, -6.0, -5.5, -4.0, -2.0])):  # uniform and non-uniform
        y = 2.0 + 0.3 * (grid + 5.37) ** 2
        x, fx, edge = parabola_optimum(grid, y)
        assert x == pytest.approx(-5.37, abs=1e-9)
        assert fx == y.min() and not edge
    optima, _ = compute_metrics(table(quad(lambda w: -5.37)), n_boot=0)
    assert list(optima.columns) == OPTIMA_COLUMNS
    assert np.allclose(optima["opt_log2_lr"], -5.37, atol=1e-9)
    assert not optima["edge"].any()
    # opt_loss is the best seed-averaged grid loss, not the parabola's minimum.
    assert optima["opt_loss"].iloc[0] == pytest.approx(2.0 + 0.1 * 0.37**2)


def test_missing_grid_point_uses_nearest_available_neighbours():
    y = 1.0 + (GRID + 5.2) ** 2
    y[GRID == -4.0] = np.nan  # the right neighbour of the argmin (-5) is missing
    assert parabola_optimum(GRID, y)[0] == pytest.approx(-5.2)


def test_drift_is_the_slope_of_optima_on_a_known_line():
    line = lambda w: -5.2 - 1.3 * math.log2(w / 64)  # noqa: E731
    runs = table(quad(line), widths=(32, 64, 128, 256), lrs=np.arange(-12.0, 0.0))
    optima, transfer = compute_metrics(runs, n_boot=0)
    assert list(transfer.columns) == TRANSFER_COLUMNS + TIE_COLUMNS + WD_TRANSFER_COLUMNS
    assert transfer[WD_TRANSFER_COLUMNS].isna().all().all()  # one wd swept: the wd columns are empty
    t = transfer.iloc[0]
    assert t["drift"] == pytest.approx(-1.3, abs=1e-9)
    assert not t["drift_edge"] and t["scales"] == "32/64/128/256" and t["tuning_scale"] == 64
    assert math.isnan(t["drift_lo"]) and math.isnan(t["drift_hi"])  # one seed: no CI
    assert slope([0, 1, 2], [1.0, 3.0, 5.0]) == pytest.approx(2.0)
    assert math.isnan(slope([5], [1.0]))


def test_regret_is_the_local_fit_at_the_transferred_lr_minus_its_minimum():
    wide = dict(zip(GRID, [3.0, 2.8, 2.6, 2.4, 2.2, 2.6, 3.0, 3.5], strict=True))  # best 2.2 at -5

    def loss(w, x, s, wd):
        return 2.0 + 0.1 * (x + 5.5) ** 2 if w == 64 else wide[x]  # base width optimum at -5.5

    _, transfer = compute_metrics(table(loss, widths=(64, 256)), n_boot=0)
    t = transfer.iloc[0]
    # The parabola through (-6, 2.4), (-5, 2.2), (-4, 2.6) is p(x) = 2.2 + 0.1 (x+5) + 0.3 (x+5)^2:
    # p(-5.5) = 2.225, its minimum 2.2 - 0.1^2 / (4 * 0.3) = 2.191667, so the regret is 0.033333.
    # (Linear interpolation would say 2.3 - 2.2 = 0.1, three times more.)
    assert t["regret"] == pytest.approx(2.225 - (2.2 - 0.01 / 1.2))
    assert t["best_loss"] == pytest.approx(2.2)  # the observed best, citable from runs.csv
    assert t["regret_rel"] == pytest.approx(t["regret"] / 2.2)
    assert t["largest_scale"] == 256 and t["tuning_scale"] == 64


@pytest.mark.parametrize("opt", [-5.0, -5.37, -5.5])  # on a grid point, between, half-way
@pytest.mark.parametrize("shape", ["quadratic", "convex"])
def test_a_perfect_transfer_scores_zero_regret_on_or_off_the_grid(opt: float, shape: str):
    """Every width has the same convex curve, so the transferred lr lands exactly on the widest
    width's optimum: the regret must be 0 whether or not that optimum is a grid point (the former
    interpolation-minus-grid-minimum estimate gave a positive regret off the grid)."""
    def curve(x):
        if shape == "quadratic":
            return 2.0 + 0.1 * (x - opt) ** 2
        return 2.0 + 0.05 * abs(x - opt) ** 1.5 + 0.02 * math.cosh(x - opt)  # convex, not a parabola

    _, transfer = compute_metrics(table(lambda w, x, s, wd: curve(x), widths=(64, 128, 256)), n_boot=0)
    t = transfer.iloc[0]
    assert t["regret"] == pytest.approx(0.0, abs=1e-12)
    assert t["drift"] == pytest.approx(0.0, abs=1e-12)


def test_regret_is_positive_when_the_optimum_moves():
    _, transfer = compute_metrics(table(quad(lambda w: -5.5 - math.log2(w / 64)), widths=(64, 256)), n_boot=0)
    # widest optimum at -7.5, transferred -5.5: on an exact parabola the local fit is exact inside its
    # window, and outside it the curve is the linear interpolation of the grid
    t = transfer.iloc[0]
    assert t["regret"] == pytest.approx(np.interp(-5.5, GRID, 2.0 + 0.1 * (GRID + 7.5) ** 2) - 2.0)


def test_tuning_width_falls_back_to_the_narrowest_when_base_width_is_not_swept():
    _, transfer = compute_metrics(table(quad(lambda w: -5.5), widths=(128, 256), base_width=64), n_boot=0)
    assert transfer["tuning_scale"].iloc[0] == 128


def test_edge_optimum_is_flagged_and_propagates_to_drift():
    assert parabola_optimum(GRID, (GRID + 1.0) ** 2) == (-2.0, 1.0, True)
    optima, transfer = compute_metrics(table(quad(lambda w: -1.0 if w == 128 else -5.5)), n_boot=0)
    row = optima.set_index("scale").loc[128]
    assert bool(row["edge"]) and row["opt_log2_lr"] == -2.0  # the edge grid value, flagged
    assert not optima.set_index("scale").loc[32, "edge"]
    assert bool(transfer["drift_edge"].iloc[0])


def test_sensitivity_caps_diverged_runs_at_the_initial_loss():
    losses = {-6.0: 3.0, -5.0: 2.0, -4.0: 1.5, -3.0: np.nan, -2.0: 9.0}  # NaN: diverged; 9 > L0 = 4

    def loss(w, x, s, wd):
        return losses[x]

    _, transfer = compute_metrics(table(loss, widths=(64,), lrs=list(losses), init=4.0), n_boot=0)
    t = transfer.iloc[0]
    capped = np.array([2.0, 1.5, 4.0])  # within one octave of the argmin -4; -3 diverged, so it counts as L0
    assert t["sensitivity"] == pytest.approx(np.mean(capped - 1.5))
    # Within two octaves of the argmin only: a wider grid does not dilute or inflate the number.
    more = {-9.0: 4.0, -8.0: 3.9, **losses}
    _, wider = compute_metrics(table(lambda w, x, s, wd: more[x], widths=(64,), lrs=list(more), init=4.0), n_boot=0)
    assert wider.iloc[0]["sensitivity"] == pytest.approx(t["sensitivity"])
    assert math.isnan(t["regret"]) and math.isnan(t["drift"])  # one width: nothing transferred


def test_diverged_flag_alone_counts_as_initial_loss():
    runs = table(quad(lambda w: -5.5), widths=(64,), init=4.0)
    runs.loc[runs["log2_lr"] == -5.0, "diverged"] = True  # finite loss, but flagged (e.g. above L0 late)
    optima, _ = compute_metrics(runs, n_boot=0)
    assert optima["opt_loss"].iloc[0] == pytest.approx(2.0 + 0.1 * 0.5**2)  # -6 is the best left
    assert optima["opt_log2_lr"].iloc[0] < -5.5


def test_a_recipe_whose_every_run_diverged_gets_no_score():
    optima, transfer = compute_metrics(table(lambda w, x, s, wd: np.nan), n_boot=50)
    assert optima["opt_log2_lr"].isna().all()
    t = transfer.iloc[0]
    assert math.isnan(t["regret"]) and math.isnan(t["regret_rel"]) and math.isnan(t["drift"])


def _noisy(n_seeds: int, rng_seed: int) -> pd.DataFrame:
    noise = np.random.default_rng(rng_seed).normal(0.0, 0.08, size=(4, len(GRID), n_seeds))
    widths = (32, 64, 128, 256)

    def loss(w, x, s, wd):
        return 2.0 + 0.1 * (x + 5.3) ** 2 + noise[widths.index(w), int(x - GRID[0]), s]

    return table(loss, widths=widths, seeds=tuple(range(n_seeds)))


def test_bootstrap_ci_shrinks_with_more_seeds():
    drift_ci = {2: [], 8: []}
    for rng_seed in range(4):  # four fixed noise draws
        opt_ci = {}
        for n in (2, 8):
            optima, transfer = compute_metrics(_noisy(n, rng_seed), n_boot=300, seed=0)
            assert (optima["opt_log2_lr_lo"] <= optima["opt_log2_lr"]).all()
            assert (optima["opt_log2_lr"] <= optima["opt_log2_lr_hi"]).all()
            opt_ci[n] = (optima["opt_log2_lr_hi"] - optima["opt_log2_lr_lo"]).mean()
            drift_ci[n].append(transfer["drift_hi"].iloc[0] - transfer["drift_lo"].iloc[0])
        assert opt_ci[8] < opt_ci[2]
    # The drift's 2-seed interval rests on 3 distinct resamples, so compare it on average.
    assert np.mean(drift_ci[8]) < np.mean(drift_ci[2])


def test_bootstrap_t_interval_of_a_mean_is_students_interval():
    # With 2 seeds a, b the 4 equally likely resamples have means a, (a+b)/2, (a+b)/2, b.
    a, b = 1.0, 2.0
    lo, hi = bootstrap_ci(1.5, np.array([a, 1.5, 1.5, b]), n_seeds=2)
    student = 12.706 * np.std([a, b], ddof=1) / math.sqrt(2)  # t_{1, 0.975} s / sqrt(n)
    assert (lo, hi) == (pytest.approx(1.5 - student), pytest.approx(1.5 + student))
    plain = bootstrap_ci(1.5, np.array([a, 1.5, 1.5, b]), n_seeds=2, method="percentile")
    assert a <= plain[0] < plain[1] <= b  # never wider than the two seeds themselves
    assert all(math.isnan(v) for v in bootstrap_ci(1.0, np.array([1.0, 2.0]), n_seeds=1))
    assert t975(1000) == pytest.approx(1.9623, abs=1e-3)


def test_bootstrap_is_deterministic_and_nan_with_one_seed():
    a = compute_metrics(_noisy(4, 0), n_boot=100, seed=3)[1]
    b = compute_metrics(_noisy(4, 0), n_boot=100, seed=3)[1]
    pd.testing.assert_frame_equal(a, b)
    assert np.isfinite(a[["regret_lo", "regret_hi", "drift_lo", "drift_hi"]].to_numpy(float)).all()
    optima, _ = compute_metrics(_noisy(1, 0), n_boot=100)
    assert optima["opt_log2_lr_lo"].isna().all() and optima["opt_log2_lr_hi"].isna().all()


def test_wider_worse_fraction_on_a_constructed_case():
    floors = {32: 2.0, 64: 1.9, 128: 1.95}  # only (64 -> 128) gets worse: 1 of 3 pairs
    _, transfer = compute_metrics(table(lambda w, x, s, wd: floors[w] + 0.1 * (x + 5.5) ** 2), n_boot=0)
    assert transfer["wider_worse_frac"].iloc[0] == pytest.approx(1 / 3)
    assert wider_worse_frac([32, 64, 128], [3.0, 2.0, 1.0]) == 0.0
    assert math.isnan(wider_worse_frac([64], [1.0]))


def test_singular_value_spread_at_the_grid_lr_nearest_the_transferred_lr():
    # Optimum -5.3 at every width -> the nearest grid lr is -5; sv depends on width only there.
    sv = lambda w, x: 0.75 * math.log2(w) if x == -5.0 else 100.0  # noqa: E731
    _, transfer = compute_metrics(table(quad(lambda w: -5.3), sv=sv), n_boot=0)
    assert transfer["sv_spread"].iloc[0] == pytest.approx(0.75 * 2)


def test_weight_decay_optimum_and_drift_from_a_2d_sweep():
    v = lambda w: -3.0 + 0.5 * math.log2(w / 64)  # noqa: E731

    def loss(w, x, s, wd):
        return 2.0 + 0.2 * (x + 5.0) ** 2 + 0.1 * (math.log2(wd) - v(w)) ** 2

    runs = table(loss, wds=tuple(2.0**k for k in range(-6, 1)))
    optima_wd, wd_t = compute_wd_metrics(runs, n_boot=0)
    assert np.allclose(optima_wd.set_index("scale")["opt_log2_wd"], [v(32), v(64), v(128)])
    assert wd_t["wd_drift"].iloc[0] == pytest.approx(0.5)
    _, transfer = compute_metrics(runs, n_boot=0)
    # seven per-wd rows and the joint (lr x wd) scope's row (wd empty, scopes.py), each with the recipe's wd drift
    assert len(transfer) == 7 + 1 and transfer["wd"].isna().sum() == 1 and np.allclose(transfer["wd_drift"], 0.5)


def test_write_metrics_fills_the_wd_table_only_when_wd_is_swept(tmp_path):
    names = [p.name for p in write_metrics(table(quad(lambda w: -5.5)), tmp_path / "a", n_boot=10)]
    assert names == ["optima.csv", "transfer.csv", "optima_wd.csv", "wd_exponent.csv", "wd_exponent_best.csv",
                     "seed_scores.csv", "regime.csv", "seed_scores_joint.csv", "sv_law.csv"]
    assert len(pd.read_csv(tmp_path / "a" / "optima_wd.csv")) == 0  # header only: a fixed DAG output
    assert len(pd.read_csv(tmp_path / "a" / "seed_scores_joint.csv")) == 0
    assert pd.read_csv(tmp_path / "a" / "transfer.csv")["wd_drift"].isna().all()  # a column, empty
    write_metrics(table(quad(lambda w: -5.5), wds=(0.05, 0.1, 0.2)), tmp_path / "b", n_boot=10)
    assert len(pd.read_csv(tmp_path / "b" / "optima_wd.csv")) == 3
    assert "wd_drift" in pd.read_csv(tmp_path / "b" / "transfer.csv").columns
