"""Paired-by-seed comparisons (transferbench/ties.py) on hand-made runs tables whose per-seed regrets are
known: a consistent per-seed offset smaller than the seed-to-seed noise is *not* a tie (the recipes' own
CIs overlap, the paired difference's does not), pure noise is; every recipe of a workload draws the same
seed ids, also when one lacks a seed; one seed claims no tie. These columns are still written to transfer.csv;
the board's ties are now the model confidence set of headline.py (mcs.py), checked here on the same tables: a
prefix of the recipes by mean, shown as "=1" (more in test_headline.py).

The runs: at the tuning width (64) and below, loss = 2 + 0.1 (x + 5)^2, so the transferred log2 lr is -5
exactly; at the widest width (128), loss = 2 + c_s (x + 4.6)^2 with a per-seed curvature c_s. A seed mean
of these parabolas is the parabola of the mean curvature, the local fit through -6, -5, -4 is exact, so on
every resample regret = mean(c) * 0.4^2 and regret_rel = regret / (2 + regret): the seed noise in c_s is
the noise of the regret, and a recipe whose c_s is another's plus delta differs by the same amount on
every seed (a paired difference without noise).
"""

from __future__ import annotations

from html import escape as html_escape

import numpy as np
import pandas as pd
import pytest

from transferbench.aggregate import read_table
from transferbench.board_render import SEED_NOTE, TIE_NOTE
from transferbench.bootstrap import resamples, stream
from transferbench.leaderboard import leaderboard_table, write_leaderboard
from transferbench.metrics import COLUMN_HOOKS, compute_metrics, write_metrics
from transferbench.ties import TIE_COLUMNS, add_tie_columns

GRID = np.arange(-9.0, -1.0, 1.0)
NOISE = (0.05, 0.10, 0.15)  # c_s of seeds 0, 1, 2: seed-to-seed sd 0.05
OFFSET = tuple(c + 0.01 for c in NOISE)  # the same seeds, worse by 0.01 < 0.05 on every seed
SHUFFLED = (0.17, 0.06, 0.11)  # worse on average (0.113 vs 0.100), but better on two seeds of three


def runs_of(curvatures: dict[str, tuple], workloads=("llama",), seeds=(0, 1, 2)) -> pd.DataFrame:
    """A runs table; ``curvatures[recipe][s]`` is c_s (None: the recipe has no run of seed s)."""
    rows = []
    for wl in workloads:
        for recipe, cs in curvatures.items():
            for w in (32, 64, 128):
                for x in GRID:
                    for s in seeds:
                        if cs[s] is None:
                            continue
                        loss = 2.0 + (cs[s] * (x + 4.6) ** 2 if w == 128 else 0.1 * (x + 5.0) ** 2)
                        rows.append({
                            "workload": wl, "recipe": recipe, "wd": 0.1, "width": w, "base_width": 64,
                            "log2_lr": x, "seed": s, "init_loss": 50.0, "eval_loss": loss, "diverged": False,
                            "log2_top_sv": np.nan, "config_hash": f"{len(rows):016x}", "package_version": "0.2.0",
                            "git_commit": "abc", "recipe_arxiv": "2203.03466",
                            "recipe_distribution": "transferbench", "recipe_version": "0.2.0",
                        })
    return pd.DataFrame(rows)


def transfer_of(curvatures: dict[str, tuple], **kw) -> pd.DataFrame:
    return compute_metrics(runs_of(curvatures, **kw), n_boot=1000, seed=0)[1].set_index(["workload", "recipe"])


def overlap(t: pd.DataFrame, a: tuple, b: tuple) -> bool:
    lo, hi = t["regret_rel_lo"], t["regret_rel_hi"]
    return lo[a] <= hi[b] and lo[b] <= hi[a]


def test_the_construction_has_the_regret_it_claims():
    t = transfer_of({"a": NOISE, "b": OFFSET})
    assert t.loc[("llama", "a"), "regret"] == pytest.approx(np.mean(NOISE) * 0.16, rel=1e-9)
    assert t.loc[("llama", "b"), "regret"] == pytest.approx(np.mean(OFFSET) * 0.16, rel=1e-9)


def test_consistent_offset_smaller_than_the_seed_noise_is_not_a_tie():
    t = transfer_of({"a": NOISE, "b": OFFSET})
    a, b = ("llama", "a"), ("llama", "b")
    assert overlap(t, a, b)  # unpaired, the two recipes' own CIs cannot tell them apart...
    gap = t.loc[b, "regret_rel"] - t.loc[a, "regret_rel"]
    assert t.loc[a, "regret_rel_hi"] - t.loc[a, "regret_rel_lo"] > 10 * gap
    # ... paired by seed, b is worse on every resample by the same amount: a CI far from 0
    assert 0 < t.loc[b, "vs_best_lo"] <= gap <= t.loc[b, "vs_best_hi"]
    assert t.loc[b, "vs_best_hi"] - t.loc[b, "vs_best_lo"] < 0.1 * t.loc[b, "vs_best_lo"]
    assert t.loc[a, "tied_with_best"] is True and t.loc[b, "tied_with_best"] is False
    assert (t.loc[a, "vs_best_lo"], t.loc[a, "vs_best_hi"]) == (0.0, 0.0)  # the best against itself


def test_pure_seed_noise_is_a_tie():
    t = transfer_of({"a": NOISE, "c": SHUFFLED})
    a, c = ("llama", "a"), ("llama", "c")
    assert t.loc[c, "regret_rel"] > t.loc[a, "regret_rel"]  # a is the best on the point estimate
    assert t.loc[c, "vs_best_lo"] < 0 < t.loc[c, "vs_best_hi"]
    assert t.loc[a, "tied_with_best"] is True and t.loc[c, "tied_with_best"] is True
    lo, hi = t.loc[a, "regret_rel_lo"], t.loc[a, "regret_rel_hi"]
    assert 0 <= lo <= t.loc[a, "regret_rel"] <= hi and np.isfinite(hi)


def test_every_recipe_of_a_workload_draws_the_same_seed_ids_even_when_one_lacks_a_seed(monkeypatch):
    """One resample matrix over the workload's seed ids {0, 1, 2}, from the (workload, wd) stream, for
    every recipe: the one without seed 1 gets NaN there, so its mean on a resample is over the drawn
    copies of seeds 0 and 2 only, and row 0 is its mean over the seeds it has."""
    seen = {}
    monkeypatch.setitem(COLUMN_HOOKS, "_probe", lambda ctx: seen.setdefault(ctx["summary"]["recipe"], ctx["means"]))
    compute_metrics(runs_of({"full": NOISE, "gap": (NOISE[0], None, NOISE[2])}), n_boot=200, seed=7)
    weights = resamples(3, 200, stream(7, ("llama", 0.1)))  # (1 + B, 3): what both recipes must have used
    widest = lambda c: 2.0 + c * (GRID[0] + 4.6) ** 2  # noqa: E731  (the widest width, at the first lr)
    for name, present in (("full", [0, 1, 2]), ("gap", [0, 2])):
        w = weights[:, present]
        with np.errstate(invalid="ignore", divide="ignore"):
            expect = (w * widest(np.array(NOISE)[present])).sum(1) / w.sum(1)
        np.testing.assert_allclose(seen[name][:, 2, 0], expect, rtol=1e-12)  # NaN where no seed was drawn


def test_a_recipe_missing_a_seed_still_gets_intervals_ties_and_ranks():
    gap = (NOISE[0] + 1.0, None, NOISE[2] + 1.0)  # 2 seeds shared with the best: a t interval with df = 1
    t = transfer_of({"a": NOISE, "b": OFFSET, "gap": gap}, workloads=("llama", "mlp"))
    assert t.loc[("llama", "gap"), "n_seeds"] == 2 and t.loc[("llama", "a"), "n_seeds"] == 3
    for key in (("llama", "gap"), ("mlp", "gap")):
        cis = t.loc[key, ["regret_rel_lo", "regret_rel_hi", "vs_best_lo", "vs_best_hi"]].astype(float)
        assert np.isfinite(cis).all()
        assert t.loc[key, "tied_with_best"] is False  # far worse on both of its seeds
    assert t.loc[("llama", "b"), "tied_with_best"] is False  # the others' pairing is intact
    ranks = t.xs("llama")["overall_mean_rank"]
    assert ranks.to_dict() == {"a": 1.0, "b": 2.0, "gap": 3.0}
    assert np.isfinite(t[["overall_mean_rank_lo", "overall_mean_rank_hi"]].astype(float)).all().all()


def test_overall_tie_columns_pair_the_mean_ranks():
    t = transfer_of({"a": NOISE, "b": OFFSET, "c": SHUFFLED}, workloads=("llama", "mlp"))
    for wl in ("llama", "mlp"):  # the same columns on each of a recipe's rows
        assert t.loc[(wl, "a"), "overall_mean_rank"] == 1.0 and t.loc[(wl, "b"), "overall_mean_rank"] == 2.0
        assert t.loc[(wl, "c"), "overall_mean_rank"] == 3.0
    assert t.loc[("llama", "b"), "tied_with_best"] is False and t.loc[("llama", "c"), "tied_with_best"] is True
    over = t.xs("llama")
    assert over["overall_tied_with_best"].to_dict() == {"a": True, "b": False, "c": True}
    # b's own mean-rank CI overlaps a's (c moves both around), its paired difference to a never reaches 0
    assert over.loc["b", "overall_mean_rank_lo"] <= over.loc["a", "overall_mean_rank_hi"]
    for r in ("a", "b", "c"):
        assert 1.0 <= over.loc[r, "overall_mean_rank_lo"] <= over.loc[r, "overall_mean_rank"]
        assert over.loc[r, "overall_mean_rank"] <= over.loc[r, "overall_mean_rank_hi"] <= 3.0


def test_overall_ties_on_hand_made_resamples():
    """add_tie_columns alone: a and c swap on half of the resamples in both workloads (tied), b is last on
    every one (not tied, although its mean rank moves); a resample on which a scored recipe has no value
    is left out, not counted as its loss."""
    swap = np.array([0.0, 1.0, -1.0] * 4)  # column 0: the point estimate
    samples = {}
    for wl in ("w1", "w2"):
        samples[(wl, "a", 0.1)] = 1.0 + 0.1 * swap
        samples[(wl, "c", 0.1)] = 1.0 - 0.1 * swap + 0.01
        samples[(wl, "b", 0.1)] = np.full(len(swap), 9.0)
    samples[("w2", "b", 0.1)][1] = np.nan
    transfer = pd.DataFrame([{"workload": k[0], "recipe": k[1], "wd": k[2], "n_seeds": 10} for k in samples])
    t = add_tie_columns(transfer, samples).set_index(["workload", "recipe"])
    assert list(t.columns[-len(TIE_COLUMNS):]) == TIE_COLUMNS
    over = t.xs("w1")
    assert over["overall_mean_rank"].to_dict() == {"a": 1.0, "c": 2.0, "b": 3.0}
    assert over["overall_tied_with_best"].to_dict() == {"a": True, "c": True, "b": False}
    assert t.loc[("w1", "b"), "vs_best_lo"] > 0 and t.loc[("w2", "c"), "tied_with_best"] is True
    assert over.loc["b", "overall_mean_rank_lo"] == over.loc["b", "overall_mean_rank_hi"] == 3.0  # NaN left out


def read_back(runs: pd.DataFrame, out) -> dict[str, pd.DataFrame]:
    """transfer, seed_scores and regime as metrics writes them and the CLI reads them back."""
    write_metrics(runs, out, n_boot=1000)
    return {n: read_table(out / f"{n}.csv") for n in ("transfer", "seed_scores", "regime")}


def board_files(runs: pd.DataFrame, t: dict[str, pd.DataFrame], stem) -> tuple[str, str, pd.DataFrame]:
    write_leaderboard(t["transfer"], runs, stem, seed_scores=t["seed_scores"], regime=t["regime"])
    return (stem.parent / f"{stem.name}.md").read_text(), (stem.parent / f"{stem.name}.html").read_text(), \
        read_table(stem.parent / f"{stem.name}.csv")


def test_one_seed_claims_no_tie_and_no_interval(tmp_path):
    t = transfer_of({"a": NOISE, "b": OFFSET, "c": SHUFFLED}, workloads=("llama", "mlp"), seeds=(0,))
    for col in ("regret_rel_lo", "regret_rel_hi", "vs_best_lo", "vs_best_hi", "overall_mean_rank_lo",
                "overall_mean_rank_hi"):
        assert t[col].astype(float).isna().all(), col
    assert t["tied_with_best"].isna().all() and t["overall_tied_with_best"].isna().all()  # not even the best
    assert t.xs("llama")["overall_mean_rank"].to_dict() == {"a": 1.0, "b": 2.0, "c": 3.0}
    runs = runs_of({"a": NOISE, "b": OFFSET}, seeds=(0,))
    tables = read_back(runs, tmp_path)
    assert tables["transfer"]["tied_with_best"].isna().all()  # empty in the CSV, never a fake True or False
    md, html, board = board_files(runs, tables, tmp_path / "leaderboard")
    assert SEED_NOTE in md and "| =1 |" not in md and "<td class=\"num\">=1</td>" not in html
    # the board decides nothing with one seed: no set, every recipe rank 1, no interval
    assert not board["set_decided"].any() and (board["rank_transferred"] == 1).all()
    assert board[["transferred_lo", "transferred_hi", "transferred_vs_best_lo"]].isna().all().all()


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    """The tables as written and read back, with a best (a), a consistently worse recipe (b) and a noisy one
    (c: worse than b on the point estimate, better on two seeds of three) in two workloads."""
    runs = runs_of({"a": NOISE, "b": OFFSET, "c": SHUFFLED}, workloads=("llama", "mlp"))
    return read_back(runs, tmp_path_factory.mktemp("tables")), runs


def test_the_boards_ties_are_a_prefix_by_mean_where_the_paired_ci_is_not(board, tmp_path):
    """ties.py (transfer.csv) ties c but not b, which is better than c: not monotone. The board's confidence
    set cannot exclude c (its seed noise), so it keeps b too: a, b and c share rank 1, listed by mean."""
    tables, runs = board
    t = tables["transfer"].set_index(["workload", "recipe"])
    assert t.loc[("llama", "b"), "vs_best_lo"] > 0 and t.loc[("llama", "c"), "vs_best_lo"] < 0
    assert bool(t.loc[("llama", "b"), "tied_with_best"]) is False and bool(t.loc[("llama", "c"), "tied_with_best"])
    _, _, csv = board_files(runs, tables, tmp_path / "leaderboard")
    assert set(csv["scope"]) == {"llama", "mlp"}  # wider is not better at the widest width: none in regime
    for scope in ("llama", "mlp"):
        rows = csv[csv["scope"] == scope].set_index("recipe")
        assert list(rows.index) == ["a", "b", "c"] and rows["transferred_mean"].is_monotonic_increasing
        for name in ("transferred", "regret"):
            assert rows[f"in_set_{name}"].astype(bool).all() and (rows[f"rank_{name}"] == 1).all(), (scope, name)
        # per seed, the cross-fitted regret is c_s times 0.4^2 (the construction's)
        assert rows["regret_mean"].to_dict() == pytest.approx({r: np.mean(c) * 0.16 for r, c in
                                                               (("a", NOISE), ("b", OFFSET), ("c", SHUFFLED))})


def test_shared_ranks_render_as_eq1_in_markdown_and_html(board, tmp_path):
    tables, runs = board
    md, html, _ = board_files(runs, tables, tmp_path / "leaderboard")
    assert TIE_NOTE in md and html_escape(TIE_NOTE) in html and SEED_NOTE not in md
    for recipe in ("a", "b", "c"):
        assert md.count(f"| =1 | =1 | {recipe} |") == 2  # one row per workload
        eq1 = '<td class="num" data-sort="1">=1</td>'  # the sort key of "=1" is 1 (board_html.py)
        assert html.count(f'<tr>{eq1}{eq1}<td data-sort="{recipe}"') == 2


def test_leaderboard_rebuilds_from_the_csv_tables_alone(board, tmp_path):
    """The CSV round trip (read_table) renders the same leaderboard as the tables computed in memory."""
    from transferbench.metrics import _all_metrics
    from transferbench.regime import regime_table

    tables, runs = board
    optima, transfer, _, _, scores = _all_metrics(runs, 1000, 0)
    fresh = {"transfer": transfer, "seed_scores": scores, "regime": regime_table(transfer, optima, runs)}
    md, html, csv = board_files(runs, fresh, tmp_path / "fresh")
    md2, html2, csv2 = board_files(runs, tables, tmp_path / "read")
    assert md == md2 and html == html2
    pd.testing.assert_frame_equal(csv.astype(str), csv2.astype(str))
    table = leaderboard_table(transfer, runs, "", fresh["seed_scores"], fresh["regime"])
    assert table.to_csv(index=False) == (tmp_path / "fresh.csv").read_text()


def test_a_lone_best_is_rank_1_without_the_eq_mark(tmp_path):
    """Shared ranks only when something shares them: b is worse than a by 0.0016 on every seed (a paired
    difference without noise), so the set is {a} and a is plain "1"."""
    runs = runs_of({"a": NOISE, "b": OFFSET})
    tables = read_back(runs, tmp_path)
    md, _, _ = board_files(runs, tables, tmp_path / "leaderboard")
    assert "| 1 | 1 | a |" in md and "| 2 | 2 | b |" in md and "| =1 |" not in md
    assert tables["transfer"]["tied_with_best"].tolist() == [True, False]  # ties.py agrees here
