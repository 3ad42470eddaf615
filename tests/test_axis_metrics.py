"""The transfer metrics along every scale axis (transferbench/metrics.py): optima, drift, transferred loss and
regret are functions of the runs' ``scale`` on their sweep's axis (width, depth or steps), never of ``width``.

The synthetic sweeps hold the width fixed while depth or steps change, so a metric grouped by width would see a
single width (one optimum, no drift): each recovers a known drift per doubling of the axis (parabolic loss in
log2 lr on a half-octave lattice, small seeded noise). Also: workloads on different axes in one table keep their
own axis, and a runs table of before the axes (no ``axis``/``scale`` columns) is a width sweep, number for number.
The noise draws are fixed (``rng_seed``): a 95% interval misses about one draw in twenty (over 60 draws of the
depth table the drift intervals covered 112 of 120 true drifts; rng_seed 0 is one whose flat drift CI misses 0).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from transferbench.aggregate import AXIS_KEYS, read_table
from transferbench.metrics import _all_metrics, compute_metrics, write_metrics

GRID = np.arange(-10.0, -1.75, 0.5)  # log2 lr -10 ... -2, half-octave steps
C = 0.1  # curvature of every parabola
SEEDS = (0, 1, 2, 3)
N_BOOT = 200
FIXED = {"width": 32, "depth": 4, "steps": 200}  # the other axes' values (each its own base)


def runs_of(axis: str, scales: tuple[int, ...], base: int, optima: dict[str, Callable[[float], float]],
            workload: str = "llama", noise: float = 0.003, rng_seed: int = 1) -> pd.DataFrame:
    """A runs table along ``axis``: recipe r's loss at scale s is 2 - 0.05 log2(s / base) + C (x - optima[r](s))^2
    plus N(0, noise) per run; the other axes are fixed at FIXED (and their base)."""
    rng = np.random.default_rng(rng_seed)
    rows = []
    for recipe, opt in optima.items():
        for s in scales:
            settings = {}
            for name, (key, base_key) in AXIS_KEYS.items():
                settings[key], settings[base_key] = (s, base) if name == axis else (FIXED[name], FIXED[name])
            for x in GRID:
                for seed in SEEDS:
                    loss = 2.0 - 0.05 * math.log2(s / base) + C * (x - opt(s)) ** 2 + rng.normal(0.0, noise)
                    rows.append({
                        "workload": workload, "recipe": recipe, "axis": axis, "scale": s, "base_scale": base,
                        **settings, "log2_lr": float(x), "wd": 0.1, "seed": seed, "init_loss": 10.0,
                        "eval_loss": loss, "diverged": False, "log2_top_sv": np.nan, "recipe_arxiv": "2505.01618",
                        "recipe_distribution": "transferbench", "recipe_version": "0.1.0",
                    })
    return pd.DataFrame(rows)


def octaves(rate: float, base: int) -> Callable[[float], float]:
    """The optimum -5 + rate log2(s / base): ``rate`` octaves per doubling of the axis."""
    return lambda s: -5.0 + rate * math.log2(s / base)


DEPTHS = (2, 4, 8)
DEPTH_RUNS = {"flat": octaves(0.0, 2), "moving": octaves(-0.5, 2)}


def check_drift(row: pd.Series, truth: float) -> None:
    assert np.isfinite(row["drift"]), "no drift: the metric saw a single scale"
    assert row["drift"] == pytest.approx(truth, abs=0.1)
    assert row["drift_lo"] <= truth <= row["drift_hi"]
    assert row["drift_hi"] - row["drift_lo"] < 0.5 and not row["drift_edge"]


def test_depth_sweep_drift_and_optima_are_along_depth(tmp_path):
    runs = runs_of("depth", DEPTHS, 2, DEPTH_RUNS)
    assert runs["width"].nunique() == 1  # the width never moves: a width-keyed metric would see one width
    write_metrics(runs, tmp_path, n_boot=N_BOOT, seed=0)
    transfer = read_table(tmp_path / "transfer.csv").set_index("recipe")
    for recipe, truth in (("flat", 0.0), ("moving", -0.5)):
        t = transfer.loc[recipe]
        assert t["axis"] == "depth" and t["scales"] == "2/4/8"
        assert int(t["tuning_scale"]) == 2 and int(t["largest_scale"]) == 8
        check_drift(t, truth)
    assert transfer.loc["moving", "drift"] < -0.3  # the moving optimum is seen to move
    optima = read_table(tmp_path / "optima.csv")
    assert (optima["axis"] == "depth").all()
    for recipe, opt in DEPTH_RUNS.items():
        rows = optima[optima["recipe"] == recipe].set_index("scale")
        assert sorted(rows.index) == list(DEPTHS)  # one row per depth, three per recipe
        assert not rows["edge"].any() and (rows["n_seeds"] == len(SEEDS)).all()
        for depth in DEPTHS:
            assert rows.loc[depth, "opt_log2_lr"] == pytest.approx(opt(depth), abs=0.1)
            assert rows.loc[depth, "opt_log2_lr_lo"] <= opt(depth) <= rows.loc[depth, "opt_log2_lr_hi"]


def test_steps_sweep_recovers_a_drift_of_minus_0_7_octave_per_doubling():
    steps = (100, 200, 400, 800)
    optima, transfer = compute_metrics(runs_of("steps", steps, 100, {"horizon": octaves(-0.7, 100)}),
                                       n_boot=N_BOOT, seed=0)
    t = transfer.set_index("recipe").loc["horizon"]
    assert t["scales"] == "100/200/400/800" and t["tuning_scale"] == 100 and t["largest_scale"] == 800
    check_drift(t, -0.7)
    assert sorted(optima["scale"]) == list(steps)
    np.testing.assert_allclose(optima.sort_values("scale")["opt_log2_lr"],
                               [octaves(-0.7, 100)(s) for s in steps], atol=0.1)


def test_workloads_on_different_axes_keep_their_own_axis(tmp_path):
    depth = runs_of("depth", DEPTHS, 2, {"completep": octaves(-0.5, 2)}, workload="llama")
    width = runs_of("width", (32, 64, 128), 64, {"mup": octaves(-1.0, 64)}, workload="mlp", rng_seed=2)
    write_metrics(pd.concat([depth, width], ignore_index=True), tmp_path, n_boot=N_BOOT, seed=0)
    transfer = read_table(tmp_path / "transfer.csv").set_index("workload")
    assert transfer.loc["llama", "axis"] == "depth" and transfer.loc["mlp", "axis"] == "width"
    assert transfer.loc["llama", "scales"] == "2/4/8" and transfer.loc["mlp", "scales"] == "32/64/128"
    assert int(transfer.loc["llama", "tuning_scale"]) == 2 and int(transfer.loc["mlp", "tuning_scale"]) == 64
    check_drift(transfer.loc["llama"], -0.5)
    check_drift(transfer.loc["mlp"], -1.0)
    for name in ("optima", "seed_scores"):
        table = read_table(tmp_path / f"{name}.csv")
        assert set(zip(table["workload"], table["axis"], strict=True)) == {("llama", "depth"), ("mlp", "width")}
        assert set(table.loc[table["workload"] == "llama", "scale"]) == set(DEPTHS)


def test_a_runs_table_without_axis_columns_is_a_width_sweep(tmp_path):
    explicit = runs_of("width", (32, 64, 128), 64, {"a": octaves(-1.0, 64), "b": octaves(0.0, 64)})
    old = explicit.drop(columns=["axis", "scale", "base_scale"])
    cols = ["recipe", "scales", "tuning_scale", "largest_scale", "drift", "drift_lo", "drift_hi", "drift_edge",
            "regret", "regret_oos", "transferred_loss"]
    new_t = compute_metrics(explicit, n_boot=N_BOOT, seed=0)[1][cols]
    old_t = compute_metrics(old, n_boot=N_BOOT, seed=0)[1][cols]
    pd.testing.assert_frame_equal(old_t, new_t)
    assert new_t.set_index("recipe").loc["a", "drift"] == pytest.approx(-1.0, abs=0.1)
    # the same through the files: an old runs.csv read back gets its axis columns (read_table -> with_axis)
    old.assign(run_dir="x").to_csv(tmp_path / "runs.csv", index=False)
    back = read_table(tmp_path / "runs.csv")
    assert (back["axis"] == "width").all() and (back["scale"] == back["width"]).all()
    write_metrics(back, tmp_path / "m", n_boot=N_BOOT, seed=0)
    written = read_table(tmp_path / "m" / "transfer.csv")
    assert (written["axis"] == "width").all()
    np.testing.assert_allclose(written[["drift", "drift_lo", "drift_hi"]].to_numpy(float),
                               new_t[["drift", "drift_lo", "drift_hi"]].to_numpy(float), rtol=1e-9)


def test_transferred_loss_and_regret_are_at_the_largest_depth(tmp_path):
    runs = runs_of("depth", DEPTHS, 2, DEPTH_RUNS)
    write_metrics(runs, tmp_path, n_boot=N_BOOT, seed=0)
    scores = read_table(tmp_path / "seed_scores.csv")
    scores["largest"] = scores["largest"].astype(str).str.lower() == "true"
    assert set(scores["scale"]) == set(DEPTHS) and (scores["axis"] == "depth").all()
    assert len(scores) == len(DEPTH_RUNS) * len(SEEDS) * len(DEPTHS)
    assert (scores["largest"] == (scores["scale"] == 8)).all()  # the largest depth, not the (fixed) width
    largest, rest = scores[scores["largest"]], scores[~scores["largest"]]
    assert np.isfinite(largest[["regret", "retuned_loss", "transferred_loss"]].to_numpy(float)).all()
    assert rest["regret"].isna().all() and rest["retuned_loss"].isna().all()
    transfer = read_table(tmp_path / "transfer.csv").set_index("recipe")
    for recipe in DEPTH_RUNS:
        mine = largest[largest["recipe"] == recipe]
        t = transfer.loc[recipe]
        assert t["transferred_loss"] == pytest.approx(mine["transferred_loss"].mean(), abs=1e-9)
        assert t["regret_oos"] == pytest.approx(mine["regret"].mean(), abs=1e-9)
        assert len(str(t["transferred_by_scale"]).split("/")) == len(DEPTHS)
        assert float(str(t["transferred_by_scale"]).split("/")[-1]) == pytest.approx(t["transferred_loss"], abs=1e-4)
        # the lr transferred is the base depth's optimum, -5 for both recipes
        assert mine["transfer_log2_lr"].to_numpy() == pytest.approx(-5.0, abs=0.1)
    # at depth 8 the moving recipe's optimum is -6: the transferred -5 pays C (1 octave)^2, the flat one nothing
    assert transfer.loc["moving", "regret_oos"] == pytest.approx(C * 1.0**2, abs=0.02)
    assert transfer.loc["flat", "regret_oos"] == pytest.approx(0.0, abs=0.01)
    # in-memory tables agree with the files
    _, mem, _, _, mem_scores = _all_metrics(runs, N_BOOT, 0)
    assert mem.set_index("recipe").loc["moving", "largest_scale"] == 8
    assert mem_scores.loc[mem_scores["largest"], "scale"].eq(8).all()
