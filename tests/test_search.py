"""The adaptive lr search (search.py): replayed offline on a full-grid sweep it finds the same optima,
regrets and edge flags, and trains a stated share less; and its policy steps, unit by unit.

tests/data/full_grid_runs.csv is the tiny profile's full-grid reference (commit 7cc6842: 365 runs,
every lr of every line, one seed), the runs table the adaptive policy replaces. The replay plays the
DAG's order: the tuning width first, each wider width starting from the previous one's optimum.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from transferbench import search
from transferbench.aggregate import as_flag
from transferbench.metrics import capped_loss, compute_metrics

FULL = Path(__file__).parent / "data" / "full_grid_runs.csv"
LATTICE = (-8.0, -7.0, -6.0, -5.0, -4.0, -3.0)


def replay(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs an adaptive search would have trained, read off a full grid (the plans line.py makes)."""
    runs = runs.assign(diverged=as_flag(runs["diverged"]))
    runs = runs.assign(capped=capped_loss(runs))
    keep = []
    for (wl, recipe, wd), g in runs.groupby(["workload", "recipe", "wd"]):
        widths = sorted(int(w) for w in g["width"].unique())
        tune = int(g["base_width"].iloc[0])
        lattice = tuple(sorted(float(x) for x in g["log2_lr"].unique()))
        previous, tuning = None, None
        for w in [tune, *(x for x in widths if x != tune)]:
            curve = g[g["width"] == w].groupby("log2_lr")["capped"].mean().to_dict()
            plan = search.make_plan(lattice, w, previous, tuning, widest=w == widths[-1])
            seen: dict[float, float] = {}
            while todo := search.next_lrs(plan, seen):
                seen.update({x: curve[x] for x in todo})
            keep += [(wl, recipe, wd, w, x) for x in seen]
            best = search.argmin(seen)
            previous = {"width": w, "argmin": best, "drift": search.drift_estimate(previous, w, best)}
            if w == tune:  # what line.py's manifest says of the tuning width
                tuning = {**previous, "fitted_opt": search.fitted_optimum(seen)[0]}
    chosen = pd.DataFrame(keep, columns=["workload", "recipe", "wd", "width", "log2_lr"])
    return runs.drop(columns="capped").merge(chosen, on=list(chosen.columns))


@pytest.fixture(scope="module")
def both() -> tuple[pd.DataFrame, pd.DataFrame]:
    full = pd.read_csv(FULL)
    return full, replay(full)


def test_replay_finds_the_full_grids_optima_and_regrets(both: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    full, sub = both
    (opt_f, tr_f), (opt_a, tr_a) = compute_metrics(full, n_boot=0), compute_metrics(sub, n_boot=0)
    o = opt_f.merge(opt_a, on=["workload", "recipe", "wd", "width"], suffixes=("_full", "_adaptive"))
    assert len(o) == len(opt_f) == len(opt_a)
    assert (o["opt_log2_lr_full"] - o["opt_log2_lr_adaptive"]).abs().max() <= 0.05
    assert (o["edge_full"] == o["edge_adaptive"]).all()  # an optimum at the grid's edge is still flagged
    t = tr_f.merge(tr_a, on=["workload", "recipe", "wd"], suffixes=("_full", "_adaptive"))
    rel = (t["regret_full"] - t["regret_adaptive"]).abs() / t["best_loss_full"]
    assert rel.max() <= 1e-3
    for col in ("drift", "sensitivity", "wider_worse_frac", "sv_spread"):
        np.testing.assert_allclose(t[f"{col}_adaptive"], t[f"{col}_full"], atol=1e-9, err_msg=col)


def test_replay_saves_a_stated_share_of_the_runs(both: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    full, sub = both
    saved = 1 - sub.groupby("workload").size() / full.groupby("workload").size()
    time_saved = 1 - sub.groupby("workload")["wall_time"].sum() / full.groupby("workload")["wall_time"].sum()
    print("runs saved:", saved.round(3).to_dict(), "core time saved:", time_saved.round(3).to_dict())
    # Measured on the 7cc6842 grid: runs 32% (llama), 46% (mlp), 50% (resnet); core time 33%, 50%, 60%.
    assert saved.min() > 0.2 and len(sub) <= 0.65 * len(full)


def test_one_patience_is_fooled_by_a_second_dip_at_the_tuning_width() -> None:
    """Why line.py searches the tuning width with patience 2 (resnet/standard at d=8 in the reference)."""
    curve = {-9.0: 0.95, -8.0: 0.85, -7.0: 0.79, -6.0: 0.77, -5.0: 0.764, -4.0: 0.79, -3.0: 0.73, -2.0: 0.84}
    lattice = tuple(sorted(curve))
    for patience, found in ((1, -5.0), (2, -3.0)):
        plan, seen = search.Plan(lattice, start=-5.0, patience=patience), {}
        while todo := search.next_lrs(plan, seen):
            seen.update({x: curve[x] for x in todo})
        assert search.argmin(seen) == found


def test_the_search_steps_outwards_until_the_loss_rises_on_both_sides() -> None:
    plan = search.Plan(LATTICE, start=-6.0)
    assert search.next_lrs(plan, {}) == [-7.0, -6.0, -5.0]
    assert search.next_lrs(plan, {-7.0: 3.0, -6.0: 2.0, -5.0: 1.0}) == [-4.0]  # still falling: go on
    assert search.next_lrs(plan, {-7.0: 3.0, -6.0: 2.0, -5.0: 1.0, -4.0: 1.5}) == []
    # a diverged run is a high loss (its initial loss), so the search turns back from it
    assert search.capped({"init_loss": 4.0, "eval_loss": None, "diverged": True}) == 4.0
    assert search.capped({"init_loss": 4.0, "eval_loss": 5.0, "diverged": False}) == 4.0
    # the lattice's end: nothing beyond it, and the metrics flag the optimum as an edge
    assert search.next_lrs(plan, {-4.0: 2.0, -3.0: 1.0}) == []


def test_the_points_the_metrics_read_are_added() -> None:
    seen = {-7.0: 3.0, -6.0: 2.0, -5.0: 2.5}
    assert search.next_lrs(search.Plan(LATTICE, -6.0, transfer=-3.6), seen) == [-4.0, -3.0]
    assert search.next_lrs(search.Plan(LATTICE, -6.0, transfer=-6.0), seen) == []  # on the lattice, seen
    assert search.next_lrs(search.Plan(LATTICE, -6.0, widest=True), seen) == []  # +-1 octave: tried already
    half = (-7.0, -6.5, -6.0, -5.5, -5.0)  # on a half-octave lattice the window is two steps either side
    assert search.next_lrs(search.Plan(half, -6.0, widest=True), {-6.5: 3.0, -6.0: 2.0, -5.5: 2.5}) == [-7.0, -5.0]
    assert search.bracket(LATTICE, -9.5) == [-8.0] and search.bracket(LATTICE, -4.5) == [-5.0, -4.0]


def test_a_wider_line_starts_where_the_drift_so_far_points() -> None:
    assert search.predict_start(LATTICE, 32, None) == -5.5  # the lattice's middle
    assert search.predict_start(LATTICE, 32, None, start=-7.0) == -7.0
    first = {"width": 32, "argmin": -5.0, "drift": 0.0}
    assert search.predict_start(LATTICE, 64, first) == -5.0
    second = {"width": 64, "argmin": -6.0, "drift": search.drift_estimate(first, 64, -6.0)}
    assert second["drift"] == -1.0 and search.predict_start(LATTICE, 128, second) == -7.0
    opt, edge = search.fitted_optimum({-7.0: 2.0, -6.0: 1.0, -5.0: 2.0})
    assert opt == -6.0 and not edge and math.isfinite(opt)
