"""Cross-fitted transferred loss and out-of-sample regret (transferbench/crossfit.py) on runs tables whose
per-seed answers are known in closed form (tests/headline_tables.py: exact parabolas on a 1-octave grid).

- Out of sample: each seed's noise moves its own base-width argmin. Chosen on all seeds (in sample) the
  transferred lr lands on the widest width's optimum and the regret is 0; chosen on the other seeds, seed s
  transfers -5 - e_s / 2 and pays C (e_s / 2)^2.
- Negative regret: noise in the widest width's argmin makes re-tuning on the other seeds miss by more than
  the transfer does; the regret is reported as measured, never clamped.
- The transferred loss is the widest width's loss at the base width's optimum; wider_better follows it.
- One seed: nothing held out, in-sample values without CIs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from headline_tables import GOOD, GRID, C, parabola, runs_of

from transferbench.metrics import _all_metrics

E = (-0.4, 0.1, 0.3)  # per-seed shift of the base width's argmin (sums to 0: all seeds choose -5)
F = (-0.4, 0.0, 0.4)  # per-seed shift of the widest width's argmin
D = (-0.01, 0.0, 0.01)  # per-seed offset of the widest width's loss (moves no argmin)


def tables(runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(transfer indexed by recipe, seed_scores) as metrics.write_metrics computes them."""
    _, transfer, _, _, seed_scores = _all_metrics(runs, 50, 0)
    return transfer.set_index("recipe"), seed_scores


def wide(seed_scores: pd.DataFrame, recipe: str = "r") -> pd.DataFrame:
    rows = seed_scores[(seed_scores["recipe"] == recipe) & seed_scores["largest"]]
    return rows.set_index("seed")


def vertex(x: np.ndarray, y: np.ndarray) -> float:
    """By hand: the vertex of the parabola through the grid argmin and its two neighbours (1 octave apart)."""
    i = int(np.argmin(y))
    ym, y0, yp = y[i - 1:i + 2]
    return float(x[i] + (ym - yp) / (2 * (ym - 2 * y0 + yp)))


def through(x: np.ndarray, y: np.ndarray, at: float) -> float:
    """By hand: the parabola through the argmin and its neighbours, evaluated at ``at`` (Lagrange form)."""
    i = int(np.argmin(y))
    xs, ys = x[i - 1:i + 2], y[i - 1:i + 2]
    return float(sum(ys[k] * np.prod([(at - xs[j]) / (xs[k] - xs[j]) for j in range(3) if j != k])
                     for k in range(3)))


def noisy_base() -> pd.DataFrame:
    return runs_of({"r": parabola(GOOD, jitter={64: E}, offset=D)})


def test_cross_fit_is_out_of_sample_where_in_sample_regret_is_zero():
    runs = noisy_base()
    transfer, scores = tables(runs)
    rows = wide(scores)
    # In sample the seed noise cancels: the all-seed optimum at the base width is -5, the widest width's
    # optimum too, so every seed (and the mean curve: transfer.csv's in-sample regret) scores 0.
    assert transfer.loc["r", "regret"] == pytest.approx(0.0, abs=1e-12)
    # Out of sample seed s transfers the other seeds' optimum, -5 - e_s / 2, and pays C (e_s / 2)^2.
    expect = np.array([C * (e / 2) ** 2 for e in E])
    np.testing.assert_allclose(rows["transfer_log2_lr"].to_numpy(), [-5 - e / 2 for e in E], atol=1e-12)
    np.testing.assert_allclose(rows["regret"].to_numpy(), expect, atol=1e-12)
    np.testing.assert_allclose(rows["retuned_loss"].to_numpy(), [2.1 + d for d in D], atol=1e-12)
    assert transfer.loc["r", "regret_oos"] == pytest.approx(expect.mean(), abs=1e-12) and expect.mean() > 1e-3
    assert transfer.loc["r", "regret_oos_lo"] < transfer.loc["r", "regret_oos"] < transfer.loc["r", "regret_oos_hi"]
    assert bool(transfer.loc["r", "crossfit"]) is True


def test_one_seed_by_hand_choose_on_the_others_mean_score_on_its_own_curve():
    runs = noisy_base()
    rows = wide(tables(runs)[1])
    x = GRID
    curve = lambda s, w: runs[(runs["seed"] == s) & (runs["width"] == w)].sort_values("log2_lr")  # noqa: E731
    others = np.mean([curve(s, 64)["eval_loss"].to_numpy() for s in (1, 2)], axis=0)
    eta_b = vertex(x, others)  # seed 0's transferred lr, chosen without seed 0
    eta_w = vertex(x, np.mean([curve(s, 128)["eval_loss"].to_numpy() for s in (1, 2)], axis=0))
    own = curve(0, 128)["eval_loss"].to_numpy()
    transferred, retuned = through(x, own, eta_b), through(x, own, eta_w)
    assert eta_b == pytest.approx(-4.8) and eta_w == pytest.approx(-5.0)
    assert rows.loc[0, "transfer_log2_lr"] == pytest.approx(eta_b, abs=1e-12)
    assert rows.loc[0, "transferred_loss"] == pytest.approx(transferred, abs=1e-12)
    assert rows.loc[0, "retuned_loss"] == pytest.approx(retuned, abs=1e-12)
    assert rows.loc[0, "regret"] == pytest.approx(transferred - retuned, abs=1e-12)
    # in sample (chosen on all three seeds, seed 0 included) the same seed would score 0
    eta_all = vertex(x, np.mean([curve(s, 64)["eval_loss"].to_numpy() for s in (0, 1, 2)], axis=0))
    assert through(x, own, eta_all) - retuned == pytest.approx(0.0, abs=1e-12)
    assert rows.loc[0, "regret"] == pytest.approx(C * 0.2**2, abs=1e-12)


def test_regret_can_be_negative_and_is_not_clamped():
    """Re-tuning the widest width on the other seeds misses seed 0's optimum (-5.4) by 0.6 octave, the
    transferred -5 by 0.4: its held-out curve favours the transferred lr, regret C (0.16 - 0.36) < 0."""
    transfer, scores = tables(runs_of({"r": parabola(GOOD, jitter={128: F})}))
    rows = wide(scores)
    expect = [C * (0.4**2 - 0.6**2), 0.0, C * (0.4**2 - 0.6**2)]
    np.testing.assert_allclose(rows["regret"].to_numpy(), expect, atol=1e-12)
    assert transfer.loc["r", "regret_oos"] == pytest.approx(np.mean(expect), abs=1e-12) and np.mean(expect) < 0
    assert transfer.loc["r", "regret_oos_rel"] < 0 and transfer.loc["r", "regret_oos_lo"] < np.mean(expect)
    assert transfer.loc["r", "regret"] >= 0  # the in-sample regret on the mean curve is >= 0 by construction


@pytest.mark.parametrize("wide_opt, better", [(-4.0, True), (-3.0, False)])
def test_transferred_loss_is_the_widest_width_at_the_base_widths_optimum(wide_opt, better):
    """Optima: -6 at width 32, -5 at the base width 64, ``wide_opt`` at 128. The transferred lr is -5 (not
    the narrowest width's -6, nor the widest's own optimum), so width 128 pays C (wide_opt + 5)^2: 0.1 keeps
    it below the base width's 2.2 (wider is better), 0.4 does not."""
    curve = parabola({32: 2.3, 64: 2.2, 128: 2.0}, opt={32: -6.0, 64: -5.0, 128: wide_opt}, offset=D)
    transfer, scores = tables(runs_of({"r": curve}))
    t = transfer.loc["r"]
    pay = C * (wide_opt + 5.0) ** 2
    assert t["transfer_log2_lr"] == pytest.approx(-5.0, abs=1e-12)
    assert t["transferred_loss"] == pytest.approx(2.0 + pay, abs=1e-12)
    assert t["transferred_loss_lo"] < t["transferred_loss"] < t["transferred_loss_hi"]  # the seed offsets D
    assert t["retuned_loss"] == pytest.approx(2.0, abs=1e-12)
    assert t["regret_oos"] == pytest.approx(pay, abs=1e-12)
    assert t["transferred_by_scale"] == f"{2.3 + C:.4f}/2.2000/{2.0 + pay:.4f}"
    assert bool(t["wider_better"]) is better
    per_width = scores[scores["recipe"] == "r"].groupby("scale")["transferred_loss"].mean()
    np.testing.assert_allclose(per_width.to_numpy(), [2.3 + C, 2.2, 2.0 + pay], atol=1e-12)


def test_one_seed_is_in_sample_without_intervals():
    transfer, scores = tables(runs_of({"r": parabola(GOOD, jitter={64: E})}, seeds=(0,)))
    t = transfer.loc["r"]
    assert bool(t["crossfit"]) is False
    # chosen on seed 0 itself: its own base optimum -5 + e_0 = -5.4, read on its own widest curve (optimum -5)
    assert t["transfer_log2_lr"] == pytest.approx(-5.0 + E[0], abs=1e-12)
    assert t["transferred_loss"] == pytest.approx(2.1 + C * E[0] ** 2, abs=1e-12)
    assert t["regret_oos"] == pytest.approx(C * E[0] ** 2, abs=1e-12) and t["retuned_loss"] == pytest.approx(2.1)
    for col in ("transferred_loss_lo", "transferred_loss_hi", "regret_oos_lo", "regret_oos_hi",
                "regret_oos_rel_lo", "regret_oos_rel_hi"):
        assert np.isnan(t[col]), col
    assert len(scores) == 3 and scores["largest"].sum() == 1  # one seed, one row per width
