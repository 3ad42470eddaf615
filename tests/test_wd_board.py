"""Weight-decay transfer on the board (board_wd.py) and in the findings (findings_wd.py, claims.py): a
three-recipe lr x wd sweep whose wd optima drift by +1, +0.5 and 0 octave per doubling ([Kos25]'s and [Fan25]'s
predictions for mup, sqrt-d and mup-independent-wd under the independent rule), run through metrics ->
leaderboard -> findings; the columns and sections appear only where wd is swept."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from headline_tables import runs_of

from transferbench.aggregate import read_table
from transferbench.board_wd import COLUMNS
from transferbench.findings import write_findings
from transferbench.leaderboard import write_leaderboard
from transferbench.metrics import write_metrics

WDS = tuple(2.0**k for k in range(-6, 0))
DRIFT = {"mup": 1.0, "sqrt-d": 0.5, "mup-independent-wd": 0.0}
JITTER = (0.0, 0.06, -0.05, 0.03)  # per seed, in the wd optimum (octaves)


def surface(recipe: str, wd: float):
    def f(w: int, x: float, s: int) -> float:
        v = -3.2 + DRIFT[recipe] * math.log2(w / 64) + JITTER[s]
        return 2.3 - 0.1 * math.log2(w / 32) + 0.1 * (x + 5.2) ** 2 + 0.05 * (math.log2(wd) - v) ** 2 + 0.002 * s
    return f


def swept_runs() -> pd.DataFrame:
    return pd.concat([runs_of({r: surface(r, wd) for r in DRIFT}, seeds=(0, 1, 2, 3), workload="mlp", wd=wd)
                      for wd in WDS], ignore_index=True)


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("wd")
    runs = swept_runs()
    runs.to_csv(d / "runs.csv", index=False)
    write_metrics(runs, d, n_boot=100)
    t = {n: read_table(d / f"{n}.csv") for n in ("transfer", "seed_scores", "regime", "seed_scores_joint")}
    write_leaderboard(t["transfer"], runs, d / "leaderboard", profile="wd-test", seed_scores=t["seed_scores"],
                      regime=t["regime"], joint_scores=t["seed_scores_joint"])
    write_findings(d, d / "leaderboard.csv", d / "findings.md", "wd-test")
    return d


def test_wd_drift_of_each_rule_recovered_through_the_metrics(made):
    t = read_table(made / "transfer.csv").drop_duplicates("recipe").set_index("recipe")
    for recipe, drift in DRIFT.items():
        assert t.loc[recipe, "wd_drift"] == pytest.approx(drift, abs=0.05)
        assert t.loc[recipe, "wd_drift_lo"] <= drift + 0.05 and t.loc[recipe, "wd_drift_hi"] >= drift - 0.05
    assert t.loc["mup-independent-wd", "regret_joint"] < t.loc["sqrt-d", "regret_joint"] < t.loc["mup", "regret_joint"]


def test_a_wd_sweep_is_one_joint_scope_on_the_board_regime_claims_and_findings(made):
    """The per-wd lr curves of a 2-D sweep are slices (scopes.py): the board, the regime and the claims read the
    joint (lr, wd) scope only, whose numbers are the joint transfer's."""
    transfer = read_table(made / "transfer.csv")
    joint = transfer[transfer["wd"].isna()].set_index("recipe")
    assert sorted(joint.index) == sorted(DRIFT) and len(transfer) == len(joint) * (1 + len(WDS))
    assert np.allclose(joint["regret_oos"], joint["regret_joint"]) and np.allclose(joint["transferred_loss"],
                                                                                   joint["joint_transferred_loss"])
    assert np.allclose(joint["drift"], 0.0, atol=0.05)  # the lr optimum is -5.2 at every width and wd
    regime = read_table(made / "regime.csv")
    assert len(regime) == 1 and pd.isna(regime["wd"].iloc[0]) and str(regime["max_opt_ci_at"].iloc[0])
    board = read_table(made / "leaderboard.csv")
    rows = board[board["scope"] != "overall"]
    assert set(rows["scope"]) == {"mlp (lr × wd)"} and rows["wd"].isna().all()
    by = rows.set_index("recipe")
    assert np.allclose(by.loc[joint.index, "regret_mean"], joint["regret_oos"])
    claims = read_table(made / "claims.csv")
    assert len(claims) and claims["wd"].isna().all()
    lr = claims[claims["statistic"].str.startswith("drift of")]
    assert len(lr) and lr["statistic"].str.contains("lr of the joint optimum").all()
    text = (made / "findings.md").read_text()
    assert "### mlp (lr × wd)" in text and "(wd 0." not in text


def test_board_shows_wd_drift_and_joint_regret_with_ties_only_where_wd_is_swept(made, tmp_path):
    board = read_table(made / "leaderboard.csv")
    assert all(c in board.columns for c in COLUMNS)
    rows = board[board["scope"] != "overall"].drop_duplicates("recipe").set_index("recipe")
    assert rows.loc["mup-independent-wd", "rank_regret_joint"] == 1 and rows.loc["mup", "rank_regret_joint"] == 3
    assert bool(rows.loc["mup-independent-wd", "in_set_regret_joint"]) and not bool(rows.loc["mup",
                                                                                              "in_set_regret_joint"])
    assert board.loc[board["scope"] == "overall", "wd_drift"].isna().all()
    md = (made / "leaderboard.md").read_text()
    assert "## Weight-decay transfer: mlp" in md and "wd drift (oct/doubling)" in md
    html = (made / "leaderboard.html").read_text()
    assert "Weight-decay transfer: mlp" in html
    # one wd: no wd columns on the board, no section
    one = swept_runs()
    one = one[one["wd"] == WDS[3]]
    write_metrics(one, tmp_path, n_boot=20)
    write_leaderboard(read_table(tmp_path / "transfer.csv"), one, tmp_path / "lb",
                      seed_scores=read_table(tmp_path / "seed_scores.csv"), regime=read_table(tmp_path / "regime.csv"),
                      joint_scores=read_table(tmp_path / "seed_scores_joint.csv"))
    lb = pd.read_csv(tmp_path / "lb.csv")
    assert not set(COLUMNS) & set(lb.columns)
    assert "Weight-decay transfer" not in (tmp_path / "lb.md").read_text()


def test_findings_say_which_wd_rule_the_data_favour_from_table_cells(made):
    text = (made / "findings.md").read_text()
    part = text.split("## Does the optimal weight decay transfer?")[1].split("\n## ")[0]
    assert "`mup-independent-wd`" in part and "stays put" in part
    board = read_table(made / "leaderboard.csv")
    claims = read_table(made / "claims.csv")
    cells = {fmt for col in COLUMNS if col in board for fmt in _formats(board[col])}
    cells |= {f for col in ("value", "lo", "hi") for f in _formats(claims[col])}
    bullets = "\n".join(line for line in part.splitlines() if line.startswith("- "))  # the intro quotes FLAT
    for number in re.findall(r"[+-]?\d+\.\d+%?", bullets):
        assert number in cells, number
    wd_claims = claims[claims["statistic"].str.startswith("wd drift")].set_index("statistic")["verdict"]
    assert wd_claims["wd drift of mup-independent-wd (oct/doubling)"] == "supported"
    assert wd_claims["wd drift of sqrt-d (oct/doubling)"] == "contradicted"


def _formats(col: pd.Series) -> set[str]:
    from transferbench.findings import fmt

    values = pd.to_numeric(col, errors="coerce").dropna().to_numpy(float)
    return {fmt(v, k) for v in values for k in ("drift", "loss", "regret", "rel")} | {fmt(v, "drift") for v in
                                                                                     np.round(values, 6)}


def test_wd_plots_are_drawn_only_for_workloads_that_sweep_wd(made, tmp_path):
    from transferbench.metrics import prepared
    from transferbench.plots_wd import make_wd_plots

    runs = prepared(read_table(made / "runs.csv"))
    optima_wd, transfer = read_table(made / "optima_wd.csv"), read_table(made / "transfer.csv")
    paths = make_wd_plots(runs, optima_wd, transfer, tmp_path)
    assert sorted(p.name for p in paths) == ["optimal_wd_mlp.png", "wd_heatmap_mlp.png"]
    assert all(p.stat().st_size > 20_000 for p in paths)
    one = runs[runs["wd"] == WDS[2]]
    assert make_wd_plots(one, optima_wd.iloc[:0], transfer, tmp_path / "one") == []


@pytest.mark.parametrize("drifts, in_set, says", [
    ({"a": (-0.1, 0.1), "b": (0.3, 0.7)}, {"a", "b"}, "The data favour `a`"),  # b's wd optimum moves
    ({"a": (-0.1, 0.1), "b": (-0.2, 0.2)}, {"a", "b"}, "cannot decide** between `a`, `b`"),
    ({"a": (-0.1, 0.6), "b": (0.3, 0.7)}, {"a"}, "no rule in the confidence set has a wd optimum known to stay"),
])
def test_which_rule_the_findings_favour(drifts, in_set, says):
    from transferbench.findings import _ci, fmt
    from transferbench.findings_wd import section

    board = pd.DataFrame([{"scope": "mlp", "workload": "mlp", "recipe": r, "wd_drift": (lo + hi) / 2, "wd_drift_lo": lo,
                           "wd_drift_hi": hi, "wd_drift_edge": False, "rank_regret_joint": 1 if r in in_set else 2,
                           "in_set_regret_joint": r in in_set, "regret_joint_mean": 0.01, "regret_joint_lo": 0.0,
                           "regret_joint_hi": 0.02, "set_decided": True} for r, (lo, hi) in drifts.items()])
    assert says in "\n".join(section(board, _ci, fmt))
