"""The board's weight-decay transfer (docs/design.md §6): where a profile sweeps the weight decay, how far each
recipe's optimal wd drifts with width and what transferring the 2-D optimum (lr, wd) from the base width costs.

Per workload that sweeps two or more positive wds (transfer.csv's ``wd_drift`` finite), every recipe gets its
``wd_drift`` with CI (wd_transfer.py) and its cross-fitted joint-transfer regret from seed_scores_joint.csv,
ranked with the same 95% model confidence set as the lr's regret (headline._ranked, mcs.py: paired by seed,
the worst point estimate eliminated first); recipes that are the same trainings at every (width, lr, wd, seed)
share one confidence-set row (headline.alias_groups over the whole workload). The columns are added to the
workload rows of leaderboard.csv only when some workload sweeps wd, so every other board is unchanged; the
regime verdicts are not touched. pandas/numpy only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from transferbench.headline import _matrix, _ranked, alias_groups

NAME = "regret_joint"
RANK_COLUMNS = [f"rank_{NAME}", f"in_set_{NAME}", f"p_{NAME}", f"{NAME}_mean", f"{NAME}_lo", f"{NAME}_hi",
                f"{NAME}_vs_best_lo", f"{NAME}_vs_best_hi"]
#: transfer.csv columns copied onto the board next to the ranks (wd_transfer.WD_TRANSFER_COLUMNS).
FIELDS = ["wd_drift", "wd_drift_lo", "wd_drift_hi", "wd_drift_edge", "joint_transferred_loss",
          "joint_transferred_loss_lo", "joint_transferred_loss_hi", "regret_joint_rel", "regret_joint_rel_lo",
          "regret_joint_rel_hi"]
COLUMNS = FIELDS + RANK_COLUMNS
NOTE = ("Weight-decay transfer (workloads that sweep the weight decay): wd drift is how many octaves the optimal "
        "base wd moves per doubling of width (0 = the recipe's wd rule transfers; † = an optimum on the wd grid's "
        "edge); joint regret is the loss at the widest width at the (lr, wd) tuned at the base width minus the "
        "loss there at its own 2-D optimum, cross-fitted over seeds; =1: in its 95% model confidence set.")


def swept(transfer: pd.DataFrame) -> list[str]:
    """The workloads whose transfer.csv rows have a wd drift (two or more positive wds swept)."""
    if "wd_drift" not in transfer:
        return []
    drift = pd.to_numeric(transfer["wd_drift"], errors="coerce")
    return sorted(transfer.loc[drift.notna(), "workload"].astype(str).unique())


def joint_ranks(joint_scores: pd.DataFrame, runs: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Per (workload, recipe): the joint regret's mean, CI, confidence set and rank (RANK_COLUMNS)."""
    rows: list[dict[str, Any]] = []
    groups = alias_groups(runs.assign(wd=0.0))  # one key per workload: the same trainings over every wd
    for wl, sc in joint_scores.groupby("workload", sort=True):
        gs = [g for g in groups.get((wl, 0.0), []) if set(g) & set(sc["recipe"])]
        names = [g[0] for g in gs]
        ranked = _ranked(_matrix(sc, names, "regret")[0], seed)
        for i, group in enumerate(gs):
            values = {f"rank_{NAME}": int(ranked["rank"][i]), f"in_set_{NAME}": bool(ranked["in_set"][i]),
                      f"p_{NAME}": ranked["p"][i], f"{NAME}_mean": ranked["mean"][i], f"{NAME}_lo": ranked["lo"][i],
                      f"{NAME}_hi": ranked["hi"][i], f"{NAME}_vs_best_lo": ranked["vs_lo"][i],
                      f"{NAME}_vs_best_hi": ranked["vs_hi"][i]}
            rows += [{"workload": wl, "recipe": r, **values} for r in group]
    return pd.DataFrame(rows, columns=["workload", "recipe", *RANK_COLUMNS])


def add_columns(board: pd.DataFrame, transfer: pd.DataFrame, joint_scores: pd.DataFrame | None,
                runs: pd.DataFrame) -> pd.DataFrame:
    """leaderboard.csv with COLUMNS on its workload rows (empty on the overall rows and for a workload without
    a wd sweep); the board as it was when no workload sweeps wd."""
    if not swept(transfer) or joint_scores is None:
        return board
    fields = transfer.reindex(columns=["workload", "recipe", *FIELDS]).drop_duplicates(["workload", "recipe"])
    extra = fields.merge(joint_ranks(joint_scores, runs), on=["workload", "recipe"], how="left")
    out = board.merge(extra, on=["workload", "recipe"], how="left")
    workload_rows = out["scope"] != "overall"
    out[COLUMNS] = out[COLUMNS].where(workload_rows, np.nan)  # also without overall rows (a bool column)
    return out


def sections(table: pd.DataFrame, fmt_ci: Any, fmt: Any, rank: Any, recipe: Any, yes: Any) -> list[tuple]:
    """(title, text, header, rows) of a "Weight-decay transfer" table per workload that sweeps wd, rendered with
    board_render's cell formatters (passed in: this module is imported by it)."""
    if f"rank_{NAME}" not in table:
        return []
    out = []
    t = table[(table["scope"] != "overall") & pd.to_numeric(table["wd_drift"], errors="coerce").notna()]
    for wl, g in t.groupby("workload", sort=True):
        g = g.drop_duplicates("recipe").sort_values([f"rank_{NAME}", f"{NAME}_mean", "recipe"])
        n_in = int(g[f"in_set_{NAME}"].map(yes).sum())
        rows = [[rank(r, NAME, n_in), recipe(r),
                 fmt_ci(r["wd_drift"], r["wd_drift_lo"], r["wd_drift_hi"], "{:+.2f}")
                 + (" †" if yes(r["wd_drift_edge"]) else ""),
                 fmt_ci(r["joint_transferred_loss"], r["joint_transferred_loss_lo"], r["joint_transferred_loss_hi"],
                        "{:.4f}"),
                 fmt_ci(r[f"{NAME}_mean"], r[f"{NAME}_lo"], r[f"{NAME}_hi"], "{:+.4f}"),
                 fmt_ci(r["regret_joint_rel"], r["regret_joint_rel_lo"], r["regret_joint_rel_hi"], "{:+.2%}")]
                for _, r in g.iterrows()]
        out.append((f"Weight-decay transfer: {wl}",
                    "Tune (lr, wd) at the base width, train the widest model there: does the optimal weight decay "
                    "stay put, and what does the transfer cost? Ranked by joint regret (95% confidence set, "
                    "paired by seed).",
                    ["rank: joint regret", "recipe", "wd drift (oct/doubling) [95% CI]",
                     "transferred loss at (lr, wd) [95% CI]", "joint regret [95% CI]", "joint regret (relative)"],
                    rows))
    return out
