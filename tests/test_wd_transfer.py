"""Weight-decay transfer (wd_transfer.py) on synthetic lr x wd surfaces whose answers are known: the optimal
wd and its drift with width (also along a diagonal AdamW-like valley and on the sparse surface a 2-D search
leaves), the vectorised local fit against fit.py's, and the cross-fitted joint-transfer regret by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from transferbench.fit import fitted_min, parabola_optimum
from transferbench.metrics import compute_metrics, prepared, write_metrics
from transferbench.wd_transfer import WD_TRANSFER_COLUMNS, local_optima, surface_loss, wd_tables

LRS = np.arange(-9.0, -1.0, 1.0)
LOG2_WDS = np.arange(-7.0, 1.0, 1.0)


def runs_of(loss, widths=(32, 64, 128), seeds=(0, 1, 2), keep=None, base_width=32, recipe="mup") -> pd.DataFrame:
    """A runs table of loss(width, log2 lr, log2 wd, seed); ``keep(width, x, y)`` says which points were trained."""
    rows = []
    for w in widths:
        for y in LOG2_WDS:
            for x in LRS:
                if keep is not None and not keep(w, x, y):
                    continue
                for s in seeds:
                    rows.append({"workload": "mlp", "recipe": recipe, "wd": 2.0**y, "width": w,
                                 "base_width": base_width, "log2_lr": x, "seed": s, "init_loss": 9.0,
                                 "eval_loss": loss(w, x, y, s), "diverged": False, "log2_top_sv": np.nan})
    return pd.DataFrame(rows)


def wd_opt(w: float, drift: float = 0.5) -> float:
    return -3.3 + drift * math.log2(w / 32)


def valley(drift: float = 0.5, noise: float = 0.0):
    """AdamW-like: the lr optimum moves against the wd (lr x wd matters, [Kos25] §3), the wd optimum drifts."""
    rng = np.random.default_rng(1)
    cache: dict = {}

    def loss(w, x, y, s):
        key = (w, x, y, s)
        if key not in cache:
            v = wd_opt(w, drift)
            cache[key] = (2.0 + 0.2 * (x + 5.1 + 0.4 * (y - v)) ** 2 + 0.1 * (y - v) ** 2
                          + noise * rng.normal() + 0.01 * s)
        return cache[key]
    return loss


@pytest.mark.parametrize("drift", [0.5, -0.25, 0.0])
def test_wd_drift_recovers_a_known_drift_of_the_wd_optimum(drift):
    optima, summary, _ = wd_tables(prepared(runs_of(valley(drift))), n_boot=0)[:3]
    assert summary["wd_drift"].iloc[0] == pytest.approx(drift, abs=0.03)
    truth = [wd_opt(w, drift) for w in (32, 64, 128)]
    assert np.allclose(optima["opt_log2_wd"], truth, atol=0.05)
    assert np.allclose(optima["opt_log2_lr"], -5.1, atol=0.05)  # the 2-D optimum: lr* at wd*, on the valley floor
    assert not optima["edge"].any() and not optima["lr_edge"].any()


def test_wd_drift_ci_covers_the_truth_with_noisy_seeds():
    _, summary, _ = wd_tables(prepared(runs_of(valley(0.5, noise=0.01), seeds=range(5))), n_boot=300)[:3]
    row = summary.iloc[0]
    assert row["wd_drift_lo"] < 0.5 < row["wd_drift_hi"] and row["wd_drift_hi"] - row["wd_drift_lo"] < 0.5


def test_the_sparse_surface_of_a_2d_search_gives_the_same_optimum():
    """Only the 3x3 lattice neighbourhood of each width's optimum (plus the transferred point's) trained."""
    def keep(w, x, y):
        near = abs(y - round(wd_opt(w))) <= 1 and abs(x + 5) <= 1
        return near or (abs(y - round(wd_opt(32))) <= 1 and abs(x + 5) <= 1)
    full, s_full, _ = wd_tables(prepared(runs_of(valley())), n_boot=0)[:3]
    sparse, s_sparse, _ = wd_tables(prepared(runs_of(valley(), keep=keep)), n_boot=0)[:3]
    assert np.allclose(sparse["opt_log2_wd"], full["opt_log2_wd"], atol=0.1)
    assert s_sparse["wd_drift"].iloc[0] == pytest.approx(0.5, abs=0.05)


def test_edge_flag_when_the_wd_optimum_is_off_the_grid():
    optima, summary, _ = wd_tables(prepared(runs_of(lambda w, x, y, s: 2 + 0.1 * (x + 5) ** 2 + 0.1 * (y - 3) ** 2)),
                                   n_boot=0)[:3]
    assert optima["edge"].all() and (optima["opt_log2_wd"] == LOG2_WDS.max()).all()
    assert bool(summary["wd_drift_edge"].iloc[0])


def test_the_vectorised_local_fit_is_fit_py_on_curves_with_holes():
    rng = np.random.default_rng(0)
    curves = rng.normal(size=(400, len(LRS))) + 0.3 * (LRS + 5) ** 2
    curves[rng.random(curves.shape) < 0.3] = np.nan
    curves[0] = np.nan  # an empty curve
    opt, low, fmin, edge = local_optima(LRS, curves)
    for c, o, lo, f, e in zip(curves, opt, low, fmin, edge, strict=True):
        ref = parabola_optimum(LRS, c)
        assert np.allclose([o, lo, f], [ref[0], ref[1], fitted_min(LRS, c)], equal_nan=True)
        assert bool(e) == bool(ref[2])


A, B = 0.2, 0.1  # curvature in log2 lr and in log2 wd
OPT = {32: (-5.2, -3.3), 64: (-4.7, -2.8)}  # each width's optimum: the same lattice cell, so the fits are exact
JIT = (0.0, 0.1, -0.1)  # seed s's lr optimum is shifted by JIT[s]; its loss by 0.01 s


def separable(w, x, y, s):
    x0, y0 = OPT[w]
    return 1.0 + 0.01 * s + A * (x - x0 - JIT[s]) ** 2 + B * (y - y0) ** 2


def test_joint_regret_by_hand():
    """Leaving seed s out, the other seeds' mean surface has its lr optimum at OPT + mean of their JIT (a mean of
    equal-curvature parabolas), so seed s trains at x_b = -5.2 + m_s, y_b = -3.3 and re-tunes at -4.7 + m_s,
    -2.8; on its own surface the regret is A [(x_b - x_s)^2 - (x_w - x_s)^2] + B (0.5)^2, x_s = -4.7 + JIT[s]."""
    runs = runs_of(separable, widths=(32, 64))
    _, summary, seeds = wd_tables(prepared(runs), n_boot=0)[:3]
    hand = []
    for s in range(3):
        m = np.mean([JIT[i] for i in range(3) if i != s])
        xs = -4.7 + JIT[s]
        hand.append(A * ((-5.2 + m - xs) ** 2 - (-4.7 + m - xs) ** 2) + B * 0.5**2)
    wide = seeds[seeds["largest"]].set_index("seed")
    assert wide["regret"].to_numpy() == pytest.approx(hand, abs=1e-9)
    assert wide["transfer_log2_wd"].to_numpy() == pytest.approx([-3.3] * 3, abs=1e-9)
    row = summary.iloc[0]
    assert row["regret_joint"] == pytest.approx(np.mean(hand), abs=1e-9)
    assert row["regret_joint_lo"] < np.mean(hand) < row["regret_joint_hi"]
    retuned = [1.0 + 0.01 * s + A * (np.mean([JIT[i] for i in range(3) if i != s]) - JIT[s]) ** 2 for s in range(3)]
    assert row["joint_retuned_loss"] == pytest.approx(np.mean(retuned), abs=1e-9)


def test_a_perfect_joint_transfer_off_the_grid_scores_zero():
    runs = runs_of(lambda w, x, y, s: 1.0 + 0.01 * s + A * (x + 5.2) ** 2 + B * (y + 3.3) ** 2, widths=(32, 64))
    _, summary, _ = wd_tables(prepared(runs), n_boot=0)[:3]
    assert summary["regret_joint"].iloc[0] == pytest.approx(0.0, abs=1e-12)
    assert summary["wd_drift"].iloc[0] == pytest.approx(0.0, abs=1e-9)


def test_surface_loss_reads_rows_that_span_the_lr_only():
    surface = np.full((3, len(LRS)), np.nan)
    surface[0, :3] = [5.0, 4.0, 5.0]  # trained far from x = -4: left out
    surface[1, 3:6] = [2.0, 1.0, 2.0]
    surface[2, 3:6] = [3.0, 2.0, 3.0]
    assert surface_loss(LRS, np.array([-2.0, -1.0, 0.0]), surface, -5.0, -1.0) == pytest.approx(1.0)


def test_one_wd_leaves_the_wd_columns_empty_and_two_fill_them(tmp_path):
    one = runs_of(separable, widths=(32, 64))
    one = one[one["wd"] == 2.0**-3]
    _, transfer = compute_metrics(one, n_boot=0)
    assert transfer[WD_TRANSFER_COLUMNS].isna().all().all()
    write_metrics(runs_of(separable, widths=(32, 64)), tmp_path, n_boot=10)
    transfer = pd.read_csv(tmp_path / "transfer.csv")
    # on every wd row, and on the joint scope's row (wd empty, scopes.py) that follows them
    assert len(transfer) == len(LOG2_WDS) + 1 and transfer["regret_joint"].notna().all()
    joint = transfer[transfer["wd"].isna()].iloc[0]
    assert joint["regret_oos"] == pytest.approx(joint["regret_joint"]) and joint["drift"] == pytest.approx(0.5)
    scores = pd.read_csv(tmp_path / "seed_scores.csv")
    assert len(scores[scores["wd"].isna()]) == 3 * 2  # the joint scope's per-seed scores, per width
    assert len(pd.read_csv(tmp_path / "seed_scores_joint.csv")) == 3 * 2
    assert len(pd.read_csv(tmp_path / "optima_wd.csv")) == 2
