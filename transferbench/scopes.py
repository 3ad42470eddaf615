"""The scopes the board, the regime verdicts and the claims speak of: one per (workload, wd), or one joint
(lr x wd) scope for a workload that sweeps the weight decay.

A profile that sweeps one wd per workload (or two, each with its full lr sweep) has a scope per (workload,
wd): the lr is tuned at that wd. A profile that searches log2 lr x log2 wd (search2d.py,
config/wd-transfer.yaml; any sweep of ``MIN_JOINT_WDS`` or more positive wds) trains each wd only near the 2-D
optimum, so a per-wd lr curve is cut off wherever the search did not go, and a verdict or a rank read off it
would be about the search's path, not about a recipe. Its scope is the joint one: the (lr, wd) tuned together
at the base width and carried to the widest (wd_transfer.py). In transfer.csv, seed_scores.csv, regime.csv,
claims.csv and leaderboard.csv that scope has ``wd`` empty (NaN), as the weight-decay claims have always had
(a claim about every wd swept); its per-wd rows stay in transfer.csv and seed_scores.csv as data (the lr-sweep
plots draw them) but are never ranked or judged. pandas only.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

JOINT_LABEL = "lr × wd"
#: A workload swept at this many positive wds or more is a 2-D sweep with a joint scope: three wds bracket a wd
#: optimum (wd_transfer.py's parabola). With two, each wd is its own scope, as with one.
MIN_JOINT_WDS = 3


def joint_workloads(table: pd.DataFrame) -> set[str]:
    """Workloads of ``table`` (any table with ``workload`` and ``wd``) that have a joint scope row (wd empty)."""
    if not len(table) or "wd" not in table:
        return set()
    wd = pd.to_numeric(table["wd"], errors="coerce")
    return set(table.loc[wd.isna(), "workload"].astype(str))


def board_scopes(table: pd.DataFrame, joint: set[str] | None = None) -> pd.DataFrame:
    """The rows of ``table`` that are scopes: a joint workload's joint row only (its per-wd slices dropped),
    every other workload's rows as they are. ``joint``: the joint workloads (default: found in ``table``)."""
    joint = joint_workloads(table) if joint is None else joint
    if not joint:
        return table
    wd = pd.to_numeric(table["wd"], errors="coerce")
    return table[~(table["workload"].astype(str).isin(joint) & wd.notna())]


def wd_key(wd: Any) -> float | None:
    """A scope's wd as a dict key: None for the joint scope (NaN is never equal to itself)."""
    v = pd.to_numeric(pd.Series([wd]), errors="coerce").iloc[0]
    return None if pd.isna(v) else float(v)


def same_wd(column: pd.Series, wd: Any) -> pd.Series:
    """Rows of ``column`` in the scope of ``wd``, the joint scope (NaN) matching NaN."""
    key = wd_key(wd)
    values = pd.to_numeric(column, errors="coerce")
    return values.isna() if key is None else values == key


def label(workload: Any, wd: Any, many: bool) -> str:
    """How a scope is named on the board and in the findings: ``llama (lr × wd)`` for a joint scope,
    ``llama (wd 0.1)`` where a workload has several wd scopes (``many``), else the workload."""
    key = wd_key(wd)
    if key is None:
        return f"{workload} ({JOINT_LABEL})"
    return f"{workload} (wd {key:g})" if many else str(workload)


def many_wds(table: pd.DataFrame) -> bool:
    """Does some workload of ``table`` have more than one scope?"""
    if not len(table):
        return False
    return bool(table.groupby("workload")["wd"].nunique(dropna=False).max() > 1)


def runs_of(runs: pd.DataFrame, workload: str, wd: Any) -> pd.DataFrame:
    """The runs of a scope: the workload's runs at that wd, or, for the joint scope, its runs at every
    positive wd."""
    r = runs[runs["workload"] == workload]
    key = wd_key(wd)
    w = pd.to_numeric(r["wd"], errors="coerce")
    return r[w > 0] if key is None else r[w == key]

