"""The headline board (headline.py, leaderboard.py, board_render.py) on hand-made runs tables
(tests/headline_tables.py): identical trainings are one row with their aliases; the transferred-loss
confidence set is monotone on the board (never holds a recipe worse than one it excludes); each (workload, wd)
is shown with its own regime verdict; a profile whose in-regime workloads share no recipe ranks nothing
overall instead of failing.
"""

from __future__ import annotations

import pandas as pd
import pytest
from headline_tables import GOOD, parabola, runs_of

from transferbench.aggregate import read_table
from transferbench.headline import alias_groups, headline
from transferbench.leaderboard import CSV_COLUMNS, leaderboard_table, write_leaderboard
from transferbench.metrics import write_metrics

D = (-0.01, 0.0, 0.01)


def tables(runs: pd.DataFrame, out) -> dict[str, pd.DataFrame]:
    """transfer, seed_scores and regime as written by the metrics stage and read back by the CLI."""
    write_metrics(runs, out, n_boot=200)
    return {n: read_table(out / f"{n}.csv") for n in ("transfer", "seed_scores", "regime")}


def aliased(differ: bool = False) -> pd.DataFrame:
    """mup and wd-power[p=0] are the same trainings (one fingerprint set); standard is its own. ``differ``:
    one of wd-power[p=0]'s runs has a fingerprint of its own."""
    curve = parabola(GOOD, offset=D)
    runs = runs_of({"mup": curve, "wd-power[p=0]": curve, "standard": parabola(GOOD, opt={128: -4.0}, offset=D),
                    "another[p=1]": curve}, fingerprint={"wd-power[p=0]": "mup", "another[p=1]": "mup"})
    if differ:
        i = runs.index[runs["recipe"] == "wd-power[p=0]"][5]
        runs.loc[i, "trainer_fingerprint"] = "trained differently"
    return runs


def test_identical_trainings_are_one_row_named_by_the_plain_recipe(tmp_path):
    runs = aliased()
    assert alias_groups(runs) == {("llama", 0.1): [["mup", "another[p=1]", "wd-power[p=0]"], ["standard"]]}
    t = tables(runs, tmp_path)
    board = headline(t["seed_scores"], runs, t["regime"])
    rows = board[board["scope"] == "llama"].set_index("recipe")
    assert sorted(rows.index) == ["mup", "standard"]
    assert rows.loc["mup", "aliases"] == "another[p=1], wd-power[p=0]" and rows.loc["standard", "aliases"] == ""
    write_leaderboard(t["transfer"], runs, tmp_path / "lb", seed_scores=t["seed_scores"], regime=t["regime"])
    md = (tmp_path / "lb.md").read_text()
    assert "| mup (= another[p=1], wd-power[p=0]) |" in md and "| wd-power[p=0] |" not in md


def test_one_different_fingerprint_is_not_an_alias():
    groups = alias_groups(aliased(differ=True))[("llama", 0.1)]
    assert groups == [["mup", "another[p=1]"], ["standard"], ["wd-power[p=0]"]]
    no_fp = aliased().drop(columns=["trainer_fingerprint"])  # an old runs table: never an alias
    assert len(alias_groups(no_fp)[("llama", 0.1)]) == 4


def monotone_runs() -> pd.DataFrame:
    """Per workload: a and b are equally good (their seeds differ by +-0.01, neither is better on every seed),
    c is worse by 0.2 on every seed."""
    frames = []
    for wl in ("llama", "mlp"):
        frames.append(runs_of({"a": parabola(GOOD, offset=(-0.01, 0.0, 0.01)),
                               "b": parabola(GOOD, offset=(0.0, 0.01, -0.012)),
                               "c": parabola({**GOOD, 128: 2.3}, offset=(-0.01, 0.0, 0.01))}, workload=wl))
    return pd.concat(frames, ignore_index=True)


def test_the_transferred_loss_set_is_monotone_on_the_board(tmp_path):
    runs = monotone_runs()
    t = tables(runs, tmp_path)
    board = leaderboard_table(t["transfer"], runs, "synthetic", t["seed_scores"], t["regime"])
    assert list(board.columns) == CSV_COLUMNS
    assert list(board["scope"].unique()) == ["overall", "llama", "mlp"]  # both workloads in regime
    for scope, g in board.groupby("scope"):
        g = g.set_index("recipe")
        inside = g["in_set_transferred"].astype(bool)
        assert inside.to_dict() == {"a": True, "b": True, "c": False}, scope  # c excluded, the equals kept
        assert g.loc[inside, "transferred_mean"].max() < g.loc[~inside, "transferred_mean"].min(), scope
        assert g["rank_transferred"].to_dict() == {"a": 1, "b": 1, "c": 3}, scope
        assert g.loc["c", "transferred_vs_best_lo"] > 0 and g["set_decided"].all(), scope
    write_leaderboard(t["transfer"], runs, tmp_path / "lb", seed_scores=t["seed_scores"], regime=t["regime"])
    md = (tmp_path / "lb.md").read_text()
    for recipe in ("a", "b"):
        assert md.count(f"| {recipe} |") == 3 and md.count(f"| =1 | =1 | {recipe} |") == 3
    assert md.count("| 3 | =1 | c |") == 3  # as good at transferring (regret 0), a worse model


def test_each_wd_of_a_workload_is_shown_with_its_own_regime_verdict(tmp_path):
    """llama swept at wd 0.1 (weight decay acts: tau 3) and wd 1 (tau 0.5: out of regime); the board and its
    regime table name the wd, and each section carries its own verdict, not the first one of the workload."""
    curves = {"standard": parabola(GOOD, offset=D), "sqrt-d": parabola(GOOD, opt={128: -4.0}, offset=D)}
    runs = pd.concat([runs_of(curves, wd=0.1), runs_of(curves, wd=1.0, extra={r: {"tau": 0.5} for r in curves})],
                     ignore_index=True)
    t = tables(runs, tmp_path)
    assert t["regime"]["in_regime"].tolist() == [True, False]
    write_leaderboard(t["transfer"], runs, tmp_path / "lb", seed_scores=t["seed_scores"], regime=t["regime"])
    md = (tmp_path / "lb.md").read_text()
    assert "| llama (wd 0.1) | in regime |" in md and "| llama (wd 1) | **out of regime** |" in md
    assert "## Overall: workloads in regime (llama (wd 0.1))" in md
    first = md.split("## Workload: llama (wd 0.1)")[1].split("## Workload")[0]
    second = md.split("## Workload: llama (wd 1)")[1]
    assert "\nIn regime.\n" in first and "Out of regime" not in first
    assert "**Out of regime, not ranked overall:** weight decay acts over 0.50 < 1 timescale" in second


def test_in_regime_workloads_without_a_common_recipe_rank_nothing_overall(tmp_path):
    runs = pd.concat([runs_of({"a": parabola(GOOD, offset=D)}),
                      runs_of({"b": parabola(GOOD, offset=D)}, workload="mlp")], ignore_index=True)
    t = tables(runs, tmp_path)
    assert t["regime"]["in_regime"].all()
    board = headline(t["seed_scores"], runs, t["regime"])
    assert sorted(board["scope"]) == ["llama", "mlp"]  # no overall rows (and no IndexError)
    assert board.set_index("scope")["rank_transferred"].to_dict() == {"llama": 1, "mlp": 1}


@pytest.mark.parametrize("n_seeds", [1, 3])
def test_a_lone_recipe_is_rank_1_without_the_eq_mark(tmp_path, n_seeds):
    runs = runs_of({"a": parabola(GOOD, offset=D)}, seeds=tuple(range(n_seeds)))
    t = tables(runs, tmp_path)
    write_leaderboard(t["transfer"], runs, tmp_path / "lb", seed_scores=t["seed_scores"], regime=t["regime"])
    md = (tmp_path / "lb.md").read_text()
    assert md.count("| 1 | 1 | a |") == 2 and "| =1 |" not in md  # overall and llama
    # the best against itself: [0, 0] paired over seeds; with one seed no interval at all
    assert ("| +0.0000 [+0.0000, +0.0000] |" in md) is (n_seeds > 1)
    assert ("| 2.0900 | +0.0000 | yes" in md) is (n_seeds == 1)


def test_boards_page_shows_each_profiles_overall_ranking_with_its_sets(tmp_path):
    """boards.py reads leaderboard.csv's new columns: both ranks, the shared '=1', the in-regime workloads."""
    from transferbench.boards import write_boards

    runs = monotone_runs()
    t = tables(runs, tmp_path)
    write_leaderboard(t["transfer"], runs, tmp_path / "lb", seed_scores=t["seed_scores"], regime=t["regime"],
                      profile="synthetic")
    page = write_boards([tmp_path / "lb.csv"], tmp_path / "boards.md").read_text()
    assert "## Profile `synthetic`: sweep" in page and "In regime: llama, mlp; out of regime: none." in page
    assert "| =1 | =1 | a |" in page and "| =1 | =1 | b |" in page and "| 3 | =1 | c |" in page
    old = tmp_path / "old.csv"
    pd.DataFrame({"scope": ["overall"], "recipe": ["x"], "profile": ["p"], "sweep_hash": ["h"]}).to_csv(old)
    with pytest.raises(ValueError, match="rank_transferred"):
        write_boards([old], tmp_path / "b2.md")


def test_transferred_plot_is_written_per_workload(tmp_path):
    """plots_transfer.py draws every workload from seed_scores.csv (aliases once) and writes a real PNG."""
    from transferbench.plots_transfer import make_transfer_plots

    runs = monotone_runs()
    t = tables(runs, tmp_path)
    paths = make_transfer_plots(t["seed_scores"], runs, tmp_path / "plots")
    assert [p.name for p in paths] == ["transferred_llama.png", "transferred_mlp.png"]
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 10_000
