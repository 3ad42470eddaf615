"""The leaderboard (docs/design.md §7): its rows as one table (leaderboard.csv) and the files it is written to.

Two headline ranks per recipe (headline.py): by **transferred loss**, what a user who tunes at the base width
gets at the widest width, and by **out-of-sample regret**, how well the tuned lr transfers; ties are a 95%
model confidence set, identical trainings are one row with their aliases, and workloads out of the papers'
regime (regime.py) are shown but not ranked overall. Every number comes from the tables the metrics stage
wrote (seed_scores.csv, transfer.csv, regime.csv) and runs.csv, so a reader can rebuild the board from them;
``recipes_meta`` only adds one-line recipe descriptions. Every row names the result bundles its runs came from
(``bundles``, board_provenance.py: empty for a board of local runs). Rendering: board_render.py (Markdown),
board_html.py (the sortable page, with each row's provenance and each workload's plots). Never imports torch.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from transferbench import board_provenance, board_wd
from transferbench.aggregate import with_axis
from transferbench.board_html import plot_links, to_html
from transferbench.board_render import to_markdown
from transferbench.citation import bibtex, board_title, finite, sweep_hash, versions  # noqa: F401 (re-exported)
from transferbench.headline import headline

#: transfer.csv columns copied onto a workload row of the board (the secondary metrics).
TRANSFER_FIELDS = ["regret_oos_rel", "regret_oos_rel_lo", "regret_oos_rel_hi", "transferred_by_scale",
                   "wider_better", "retuned_loss", "drift", "drift_lo", "drift_hi", "drift_edge", "sensitivity",
                   "scales", "crossfit", "recipe_arxiv", "recipe_distribution", "recipe_version"]
CSV_COLUMNS = ["scope", "workload", "axis", "wd", "recipe", "aliases", "in_regime",
               "rank_transferred", "in_set_transferred", "p_transferred", "transferred_mean", "transferred_lo",
               "transferred_hi", "transferred_vs_best_lo", "transferred_vs_best_hi",
               "rank_regret", "in_set_regret", "p_regret", "regret_mean", "regret_lo", "regret_hi",
               "regret_vs_best_lo", "regret_vs_best_hi", "set_decided", "n_seeds", *TRANSFER_FIELDS,
               "base_model", "profile", "sweep_hash", "bundles"]


def base_models(runs: pd.DataFrame) -> dict[str, str]:
    """Per recipe, how its base model differs from the shared one ("" = shared; runs.csv ``base_model``,
    a plugin recipe's declaration, recipes/base.py)."""
    if "base_model" not in runs:
        return {}
    col = runs["base_model"].fillna("").astype(str).replace("nan", "")
    return {str(r): ", ".join(sorted(set(v) - {""})) for r, v in col.groupby(runs["recipe"])}


def tables_for(transfer: pd.DataFrame, runs: pd.DataFrame, seed_scores: pd.DataFrame | None = None,
               regime: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(seed_scores, regime) as the metrics stage writes them; recomputed from ``runs`` when not given."""
    if seed_scores is None or regime is None:
        from transferbench.metrics import _all_metrics
        from transferbench.regime import regime_table

        optima, _, optima_wd, _, scores = _all_metrics(runs, 200, 0)
        seed_scores = scores if seed_scores is None else seed_scores
        regime = regime_table(transfer, optima, runs, optima_wd) if regime is None else regime
    return seed_scores, regime


def joint_for(transfer: pd.DataFrame, runs: pd.DataFrame, joint_scores: pd.DataFrame | None) -> pd.DataFrame | None:
    """seed_scores_joint.csv as the metrics stage writes it; recomputed from ``runs`` when not given and some
    workload sweeps wd (board_wd.py); None otherwise."""
    if joint_scores is not None or not board_wd.swept(transfer):
        return joint_scores
    from transferbench.metrics import prepared
    from transferbench.wd_transfer import wd_tables

    return wd_tables(prepared(runs), 200, 0)[2]


def leaderboard_table(transfer: pd.DataFrame, runs: pd.DataFrame, profile: str = "",
                      seed_scores: pd.DataFrame | None = None, regime: pd.DataFrame | None = None,
                      joint_scores: pd.DataFrame | None = None) -> pd.DataFrame:
    """The CSV: overall rows (scope "overall", in-regime workloads only) then each workload's rows, both
    rankings side by side; every row names the profile and the sweep hash it was scored in, and the bundles its
    runs came from (runs.csv ``bundle``; empty without that column). Where a workload
    sweeps wd, its rows also carry the weight-decay transfer columns (board_wd.COLUMNS, at the end)."""
    runs = with_axis(runs)  # a runs table of before the axes is a width sweep
    seed_scores, regime = tables_for(transfer, runs, seed_scores, regime)
    board = headline(seed_scores, runs, regime)
    t = transfer.reindex(columns=["workload", "recipe", "wd", *TRANSFER_FIELDS])
    board = board.merge(t, on=["workload", "recipe", "wd"], how="left")
    meta = (transfer.drop_duplicates("recipe").set_index("recipe")
            [["recipe_arxiv", "recipe_distribution", "recipe_version"]])
    for col in meta.columns:  # the overall rows have no transfer row: their citation by recipe
        board[col] = board[col].fillna(board["recipe"].map(meta[col]))
    bm = base_models(runs)
    board["base_model"] = board["recipe"].map(lambda r: bm.get(r, ""))
    board["axis"] = board["workload"].map(runs.groupby("workload")["axis"].first()).fillna("width")
    board["profile"] = profile or None
    board["sweep_hash"] = sweep_hash(runs)
    board = board_wd.add_columns(board, transfer, joint_for(transfer, runs, joint_scores), runs)
    board["bundles"] = board_provenance.bundles_column(board, runs, regime)
    board["_overall"] = board["scope"] != "overall"
    board = board.sort_values(["_overall", "scope", "rank_transferred", "transferred_mean", "recipe"], kind="stable")
    return board.reindex(columns=CSV_COLUMNS + [c for c in board_wd.COLUMNS if c in board]).reset_index(drop=True)


def write_leaderboard(transfer: pd.DataFrame, runs: pd.DataFrame, out_stem: Path,
                      recipes_meta: dict | None = None, profile: str = "", seed_scores: pd.DataFrame | None = None,
                      regime: pd.DataFrame | None = None, joint_scores: pd.DataFrame | None = None,
                      plots_dir: Path | None = None) -> None:
    """Write ``{out_stem}.md``, ``.csv`` and ``.html``. The page links each workload's plots: those in
    ``plots_dir`` when given (existing files only), else the names the DAG draws in ``plots/`` beside it."""
    seed_scores, regime = tables_for(transfer, runs, seed_scores, regime)
    table = leaderboard_table(transfer, runs, profile, seed_scores, regime, joint_scores)
    out_stem = Path(out_stem)
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    path = out_stem.parent / out_stem.name  # the stem may hold dots: append, never replace, a suffix
    Path(f"{path}.md").write_text(to_markdown(table, regime, runs, recipes_meta, profile))
    table.to_csv(f"{path}.csv", index=False)
    links = plot_links(table, runs, path.parent, Path(plots_dir) if plots_dir is not None else None)
    Path(f"{path}.html").write_text(to_html(table, regime, runs, recipes_meta, profile, links))
