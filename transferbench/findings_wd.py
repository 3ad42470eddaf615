"""findings.md's "Does the optimal weight decay transfer?" section, from leaderboard.csv's weight-decay columns
(board_wd.py), written only where a profile sweeps the weight decay.

Per workload: each recipe's wd drift with its 95% CI and what it says (the optimum stays put: CI inside
±claims.FLAT octave per doubling; it moves: CI outside; else the data cannot decide), the 95% confidence set
by joint-transfer regret, and the rule the data favour: a recipe whose wd optimum stays put and that is in that
set. Several such recipes, or none whose optimum is known to stay put, and the section says the data cannot
decide. Every number is a table cell formatted by findings.fmt (tests/test_wd_board.py). pandas only.
"""

from __future__ import annotations

import pandas as pd

from transferbench.board_render import _yes
from transferbench.claims import FLAT, drift_verdict

TITLE = "## Does the optimal weight decay transfer?"


def _says(lo: float, hi: float) -> str:
    if drift_verdict("flat", lo, hi) == "supported":
        return "stays put"
    if drift_verdict("up", lo, hi) == "supported":
        return "rises with width"
    if drift_verdict("down", lo, hi) == "supported":
        return "falls with width"
    return "the data cannot say whether it moves"


def section(board: pd.DataFrame, fmt_ci, fmt) -> list[str]:
    """The section's lines (empty without a wd sweep); ``fmt_ci``, ``fmt``: findings' cell formatters."""
    if "rank_regret_joint" not in board:
        return []
    t = board[(board["scope"] != "overall") & pd.to_numeric(board["wd_drift"], errors="coerce").notna()]
    if not len(t):
        return []
    lines = [TITLE, "",
             "The optimal *base* weight decay per width (each recipe scales it with width by its own rule), from "
             "the profile over lr; wd drift is its slope in octaves per doubling of width (0: the rule transfers; "
             f"'stays put': the 95% CI inside ±{FLAT:g}). Joint regret: the loss at the widest width at the (lr, "
             "wd) tuned at the base width, minus the widest width's own 2-D optimum, cross-fitted over seeds.", ""]
    for wl, g in t.groupby("workload", sort=True):
        g = g.drop_duplicates("recipe").sort_values(["rank_regret_joint", "regret_joint_mean", "recipe"])
        lines.append(f"### {wl}")
        lines.append("")
        flat = []
        for _, r in g.iterrows():
            says = _says(float(r["wd_drift_lo"]), float(r["wd_drift_hi"]))
            edge = " (an optimum on the wd grid's edge: a bound)" if _yes(r["wd_drift_edge"]) else ""
            lines.append(f"- `{r['recipe']}`: the optimal wd {says}, wd drift "
                         f"{fmt_ci(r['wd_drift'], r['wd_drift_lo'], r['wd_drift_hi'], 'drift')}{edge}; joint regret "
                         f"{fmt_ci(r['regret_joint_mean'], r['regret_joint_lo'], r['regret_joint_hi'], 'regret')}.")
            if says == "stays put":
                flat.append(str(r["recipe"]))
        decided = bool(g["set_decided"].map(_yes).any()) if "set_decided" in g else False
        in_set = [str(r) for r, s in zip(g["recipe"], g["in_set_regret_joint"], strict=True) if _yes(s)]
        names = ", ".join(f"`{r}`" for r in in_set)
        if not decided:
            lines.append("- With one seed the data cannot rank the rules by joint regret.")
        else:
            lines.append(f"- 95% confidence set by joint regret: {names}.")
        favoured = [r for r in flat if r in in_set] if decided else []
        if len(favoured) == 1:
            lines.append(f"- **The data favour `{favoured[0]}`'s weight-decay rule**: its optimal wd stays put and "
                         "no other rule transfers (lr, wd) measurably better.")
        elif favoured:
            lines.append(f"- **The data cannot decide** between {', '.join(f'`{r}`' for r in favoured)}: each one's "
                         "optimal wd stays put and their joint regrets are in one confidence set.")
        else:
            lines.append("- **The data cannot decide** which rule transfers: no rule in the confidence set has a wd "
                         "optimum known to stay put.")
        lines.append("")
    return lines
