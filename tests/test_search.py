"""The adaptive lr search (search.py): replayed offline on a full-grid sweep it finds the same optima,
regrets and edge flags, and trains a stated share less; refined (lr_refine) on a synthetic sweep with a
known optimum, its optima are local and its metrics a full half-octave grid's; and its policy steps, unit by unit.

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
from transferbench.metrics import capped_loss, compute_metrics, parabola_optimum, regret_at

FULL = Path(__file__).parent / "data" / "full_grid_runs.csv"
LATTICE = (-8.0, -7.0, -6.0, -5.0, -4.0, -3.0)


def replay(runs: pd.DataFrame, refine: float = 0.0, lattice: tuple[float, ...] | None = None) -> pd.DataFrame:
    """The runs an adaptive search would have trained, read off a full grid (the plans line.py makes):
    on ``lattice`` (default every lr of the grid) refined at ``refine`` octaves."""
    runs = runs.assign(diverged=as_flag(runs["diverged"]))
    runs = runs.assign(capped=capped_loss(runs))
    keep = []
    for (wl, recipe, wd), g in runs.groupby(["workload", "recipe", "wd"]):
        widths = sorted(int(w) for w in g["width"].unique())
        tune = int(g["base_width"].iloc[0])
        lat = lattice or tuple(sorted(float(x) for x in g["log2_lr"].unique()))
        previous, tuning = None, None
        for w in [tune, *(x for x in widths if x != tune)]:
            curve = g[g["width"] == w].groupby("log2_lr")["capped"].mean().to_dict()
            plan = search.make_plan(lat, w, previous, tuning, widest=w == widths[-1], refine=refine)
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
    return full, replay(full, refine=0.0)  # lr_refine 0: the search as it was before refinement


def test_replay_finds_the_full_grids_optima_and_regrets(both: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    full, sub = both
    (opt_f, tr_f), (opt_a, tr_a) = compute_metrics(full, n_boot=0), compute_metrics(sub, n_boot=0)
    o = opt_f.merge(opt_a, on=["workload", "recipe", "wd", "scale"], suffixes=("_full", "_adaptive"))
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


# -- refinement (lr_refine) ---------------------------------------------------------------------------------
# A synthetic sweep with a known optimum: a smooth lr curve, asymmetric as real ones are (steeper above the
# optimum), whose optimum o(width, seed) drifts with width; evaluated on a dense 0.25-octave grid, of which
# the search sees the 1-octave lattice and, refined, the half-octave points.
WIDTHS, SEEDS = (32, 64, 128, 256), (0, 1, 2)
COARSE = tuple(float(x) for x in range(-10, -1))  # the profile's log2_lrs: 1 octave apart
DENSE = np.arange(-10.0, -2.0 + 1e-9, 0.25)


def surface(x: np.ndarray, width: int, seed: int, drift: float, o0: float) -> np.ndarray:
    """c + a (e^(ku) - ku - 1) / k^2 with u = log2 lr - o(width, seed): a u^2 / 2 near the optimum."""
    u = x - (o0 + drift * math.log2(width / 32) + 0.03 * (seed - 1))
    return 3.0 - 0.1 * math.log2(width / 32) + 0.01 * seed + 0.08 * (np.exp(1.6 * u) - 1.6 * u - 1) / 1.6**2


def synthetic(drift: float, o0: float, noise: float = 2e-4) -> pd.DataFrame:
    """A full dense-grid runs table of the surface, with a little seed noise."""
    rng = np.random.default_rng(0)
    rows = [("mlp", "syn", w, 32, x, 2.0**x, 0.1, s, 5.0, float(surface(x, w, s, drift, o0)) + noise * rng.normal(),
             False, 0.01 * x, 1.0) for w in WIDTHS for s in SEEDS for x in DENSE]
    cols = ["workload", "recipe", "width", "base_width", "log2_lr", "lr", "wd", "seed", "init_loss", "eval_loss",
            "diverged", "log2_top_sv", "wall_time"]
    return pd.DataFrame(rows, columns=cols)


def truth(width: int, drift: float, o0: float) -> tuple[np.ndarray, np.ndarray]:
    """The noise-free seed-mean curve on a 1e-4-octave grid: (x, loss)."""
    x = np.linspace(-10.0, -2.0, 80001)
    return x, np.mean([surface(x, width, s, drift, o0) for s in SEEDS], axis=0)


def curves(sub: pd.DataFrame) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per width, the seed-mean curve over the lrs the search trained."""
    means = sub.groupby(["width", "log2_lr"])["eval_loss"].mean()
    return {int(w): (m.index.get_level_values(1).to_numpy(float), m.to_numpy(float)) for w, m in means.groupby(level=0)}


SCENARIOS = [(drift, o0) for drift in (-0.1, -0.2, -0.3) for o0 in (-6.0, -5.75, -5.5, -5.25)]


def test_refined_optima_are_within_a_tenth_of_an_octave_of_the_truth() -> None:
    err = {0.0: 0.0, 0.5: 0.0}
    runs = {0.0: [], 0.5: []}
    for drift, o0 in SCENARIOS:
        full = synthetic(drift, o0)
        for refine in err:
            sub = replay(full, refine, COARSE)
            runs[refine].append(len(sub) / len(SEEDS) / len(WIDTHS))
            for w, (x, y) in curves(sub).items():
                tx, ty = truth(w, drift, o0)
                err[refine] = max(err[refine], abs(parabola_optimum(x, y)[0] - tx[np.argmin(ty)]))
    print("max |fitted - true optimum| (octaves):", err, "lrs per line:", {r: np.mean(n) for r, n in runs.items()})
    # Measured: 0.069 octave refined, 0.258 on the 1-octave lattice; 5.8 lrs per line refined, 3.7 without.
    assert err[0.5] <= 0.1 < 0.2 < err[0.0]


def test_refined_parabola_and_grid_agree_on_the_regret() -> None:
    """The reviewer's case: 0.00% regret on the 1-octave grid (the same argmin at both widths) but about
    1% from the parabola, whose vertex was a quarter octave off; refined, the two agree with the truth."""
    drift, o0 = -0.2, -5.5
    full = synthetic(drift, o0)
    tx, ty = truth(WIDTHS[0], drift, o0)
    wx, wy = truth(WIDTHS[-1], drift, o0)
    true = (np.interp(tx[np.argmin(ty)], wx, wy) - wy.min()) / wy.min()
    out = {}
    for refine in (0.0, 0.5):
        c = curves(replay(full, refine, COARSE))
        at = parabola_optimum(*c[WIDTHS[0]])[0]  # the transferred lr
        x, y = c[WIDTHS[-1]]
        parabola = regret_at(x, y, at) / y.min()
        grid = (y[np.argmin(np.abs(x - at))] - y.min()) / y.min()  # the loss at the trained lr nearest to it
        out[refine] = parabola, grid
    print("regret (parabola, grid) by lr_refine:", out, "true:", true)
    (p0, g0), (p1, g1) = out[0.0], out[0.5]
    assert g0 == 0.0 and p0 > 0.009  # measured 1.03% vs 0.00%; the truth is 0.75%
    assert abs(p1 - g1) < 0.002 and abs(p1 - true) < 0.002 and abs(g1 - true) < 0.002  # 0.63%, 0.74%
    assert abs(p1 - g1) < abs(p0 - g0) / 5


def test_a_refined_search_gives_a_full_half_octave_grids_metrics() -> None:
    """As the lattice search gives a full lattice's metrics: here against every half-octave lr trained. At a
    drift of -0.6 the transferred lr lands outside the refined optima (its fine bracket is read); at both
    the widest width's argmin is a fine point (the sensitivity reads the window's fine points)."""
    for drift in (-0.3, -0.6):
        full = synthetic(drift, -5.5)
        half = full[(full["log2_lr"] * 2) % 1 == 0]
        sub = replay(full, 0.5, COARSE)
        (opt_f, tr_f), (opt_a, tr_a) = compute_metrics(half, n_boot=0), compute_metrics(sub, n_boot=0)
        print("runs:", len(sub), "of", len(half), "half-octave,", len(replay(full, 0.0, COARSE)), "unrefined")
        np.testing.assert_allclose(opt_a["opt_log2_lr"], opt_f["opt_log2_lr"], atol=1e-9)
        assert (opt_a["edge"] == opt_f["edge"]).all()
        for col in ("regret", "drift", "sensitivity", "wider_worse_frac", "sv_spread"):
            np.testing.assert_allclose(tr_a[col], tr_f[col], atol=1e-9, err_msg=col)


def settle(plan: search.Plan, curve: dict[float, float], seen: dict[float, float] | None = None) -> list[list[float]]:
    """Run the search on ``curve`` (from ``seen``); return its batches."""
    seen, batches = dict(seen or {}), []
    while todo := search.next_lrs(plan, seen):
        batches.append(todo)
        seen.update({x: curve[x] for x in todo})
    return batches


def test_the_refinement_asks_for_the_argmins_fine_neighbours() -> None:
    done = {-7.0: 3.0, -6.0: 2.0, -5.0: 2.5}  # the lattice search is done: -6 has a higher loss either side
    assert search.next_lrs(search.Plan(LATTICE, -6.0), done) == []  # lr_refine 0: nothing more
    plan = search.Plan(LATTICE, -6.0, refine=0.5)
    assert search.next_lrs(plan, done) == [-6.5, -5.5]  # both sides at once
    assert search.next_lrs(plan, {**done, -6.5: 1.9, -5.5: 2.2}) == []  # -6.5's neighbours are -7 and -6
    # a quarter octave: a fine argmin needs its own fine neighbours, and the search walks with it
    quarter = search.Plan(LATTICE, -6.0, refine=0.25)
    curve = {**done, -6.25: 1.9, -6.5: 1.8, -6.75: 1.85, -5.75: 2.1}
    assert settle(quarter, curve, done) == [[-6.25, -5.75], [-6.5], [-6.75]]
    assert search.fine_lattice((-8.0, -6.0, -4.0), 0.5) == (-8.0, -7.5, -7.0, -6.5, -6.0, -5.5, -5.0, -4.5, -4.0)
    assert search.fine_lattice(LATTICE, 0.0) == LATTICE


def test_an_edge_stays_an_edge() -> None:
    plan = search.Plan(LATTICE, -8.0, refine=0.5)
    done = {-8.0: 1.0, -7.0: 2.0}  # the lattice ends at the argmin
    assert search.next_lrs(plan, done) == [-7.5]  # the inner side only: nothing below -8
    seen = {**done, -7.5: 1.5}
    assert search.next_lrs(plan, seen) == [] and search.fitted_optimum(seen) == (-8.0, True)
    top = {-3.0: 1.0, -4.0: 2.0}
    assert settle(search.Plan(LATTICE, -3.0, refine=0.5), {-3.5: 1.5}, top) == [[-3.5]]


def test_the_transferred_lr_is_bracketed_on_the_fine_lattice() -> None:
    done = {-7.0: 3.0, -6.0: 2.0, -5.0: 2.5, -6.5: 2.2, -5.5: 2.1}  # refined around -6
    plan = search.Plan(LATTICE, -6.0, transfer=-4.3, refine=0.5)
    assert search.next_lrs(plan, done) == [-4.0]  # the lattice's bracket first (-5 and -4)
    assert search.next_lrs(plan, {**done, -4.0: 2.9}) == [-4.5]  # then the fine one (-4.5 and -4)
    assert search.next_lrs(plan, {**done, -4.0: 2.9, -4.5: 2.6}) == []
    at_tuning = search.Plan(LATTICE, -6.0, refine=0.5)  # the tuning width transfers nothing
    assert search.next_lrs(at_tuning, done) == []
    # the widest width: the sensitivity window's fine points around a fine argmin (what a half-octave grid reads)
    widest = search.Plan(LATTICE, -6.0, widest=True, refine=0.5)
    seen = {-7.0: 3.0, -6.0: 2.0, -5.0: 2.1, -5.5: 1.8, -6.5: 2.5}
    assert search.next_lrs(widest, seen) == [-4.5]  # -6.5 .. -4.5 around -5.5


def test_lr_refine_reaches_the_train_command_and_not_the_config_hash(tmp_path: Path) -> None:
    import yaml

    from transferbench.__main__ import build_parser
    from transferbench.config import ConfigError, config_hash
    from transferbench.config.grid import LR_REFINE, jobs
    from transferbench.config.profile import SCHEMA, check_profile, schema_problem
    from transferbench.line import Line

    assert yaml.safe_load(SCHEMA.read_text())["properties"]["lr_refine"]["default"] == LR_REFINE == 0.5
    smoke = yaml.safe_load((Path(__file__).parents[1] / "config" / "smoke.yaml").read_text())
    assert all("--lr-refine 1 " in j.command() + " " for j in jobs(smoke))  # the profile's own (2-octave lattice)
    assert all("--lr-refine 0.5" in j.command() for j in jobs({k: v for k, v in smoke.items() if k != "lr_refine"}))
    assert all("--lr-refine 0.25" in j.command() for j in jobs({**smoke, "lr_refine": 0.25}))
    assert all("--lr-refine" not in j.command() for j in jobs({**smoke, "lr_search": "grid"}))
    for bad in (0.3, 2, -0.5):
        with pytest.raises(ConfigError, match=rf"lr_refine: {bad} is not 0 or a step that divides one octave into "
                                              r"whole steps \(0.5, 0.25, ...\)"):
            check_profile({**smoke, "lr_refine": bad})
    assert schema_problem({**smoke, "lr_refine": -0.5}) == "lr_refine: -0.5 is less than the minimum of 0"
    check_profile({**smoke, "lr_refine": 0})
    # a workload's own lr_refine overrides the profile's for its jobs only, and is checked with its key
    wl = next(iter(smoke["workloads"]))
    own = {**smoke, "workloads": {**smoke["workloads"], wl: {**smoke["workloads"][wl], "lr_refine": 0}}}
    check_profile(own)
    assert {("--lr-refine 0 " in j.command() + " ") == (j.workload == wl) for j in jobs(own)} == {True}
    with pytest.raises(ConfigError, match=rf"workloads\.{wl}\.lr_refine: 0.3 is not 0"):
        check_profile({**own, "workloads": {**own["workloads"], wl: {**own["workloads"][wl], "lr_refine": 0.3}}})
    problem = schema_problem({**own, "workloads": {**own["workloads"], wl: {**own["workloads"][wl], "lr_refine": -1}}})
    assert problem == f"workloads.{wl}.lr_refine: -1 is less than the minimum of 0"
    base = ["train", "--workload", "mlp", "--recipe", "mup", "--width", "16", "--base-width", "16", "--log2-lr", "-8",
            "--out", "x"]
    assert build_parser().parse_args(base).lr_refine == 0.5
    assert build_parser().parse_args([*base, "--lr-refine", "0"]).lr_refine == 0.0
    hashes = {}
    for refine in (0.0, 0.5):
        line = Line({"workload": "mlp", "recipe": "mup", "width": 16, "base_width": 16, "wd": 0.1}, [0, 1],
                    [-8.0, -7.0, -6.0], str(tmp_path / "s{seed}" / "lr{log2_lr}"), lr_search="adaptive",
                    lr_refine=refine)
        line.check()
        assert line.plan().refine == refine
        hashes[refine] = {k: config_hash(c) for k, c in line.configs.items()}
    assert set(hashes[0.5]) == {(s, x) for s in (0, 1) for x in (-8.0, -7.5, -7.0, -6.5, -6.0)}
    assert {k: hashes[0.5][k] for k in hashes[0.0]} == hashes[0.0]  # a lattice run's hash does not move
    with pytest.raises(ConfigError, match="lr_refine: 0.4 is not 0"):
        Line({"workload": "mlp"}, [0], [-8.0], "x", lr_search="adaptive", lr_refine=0.4).check()
