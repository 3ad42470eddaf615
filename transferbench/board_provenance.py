"""Which runs stand behind each leaderboard row, and what they record about where they came from.

A workload row's runs are its recipe's runs in the row's scope (scopes.runs_of: the workload at the row's wd, or
at every positive wd for a joint lr × wd scope); an overall row's are its recipe's runs in every in-regime scope
(regime.csv ``in_regime``), the scopes its overall rank averages over. From those runs: the result bundles they
were merged from (runs.csv's optional ``bundle`` column, e.g. ``lab-a · 2026-12-06 · cpu``; absent or empty for
a board of local runs), the run, seed and config-hash counts, the package versions and the git commits.
leaderboard.py writes the bundles into leaderboard.csv; board_render.py and board_html.py show them, and
board_html.py each row's full provenance. Nothing here ranks or scores. pandas only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from transferbench import scopes

#: How many hex digits of a git commit the provenance shows.
COMMIT_HEX = 10


def _yes(x: Any) -> bool:
    """A regime flag (bool, or its CSV text); board_render._yes is not imported: board_render imports this."""
    return str(x).strip().lower() in ("true", "1", "1.0")


def _scope_runs(runs: pd.DataFrame, workload: Any, wd: Any) -> pd.DataFrame:
    if "wd" not in runs:  # a runs table without wds (hand-made): the workload is the scope
        return runs[runs["workload"] == workload]
    return scopes.runs_of(runs, workload, wd)


def runs_behind(row: pd.Series, runs: pd.DataFrame, regime: pd.DataFrame, joint: bool = False) -> pd.DataFrame:
    """The runs a board row's numbers come from. ``joint``: the row's workload at every positive wd (the
    weight-decay transfer table ranks the (lr, wd) tuned jointly, whatever the row's own scope)."""
    mine = runs[runs["recipe"] == row["recipe"]]
    if row["scope"] != "overall":
        return _scope_runs(mine, row["workload"], np.nan if joint else row.get("wd"))
    parts = [_scope_runs(mine, r["workload"], r.get("wd")) for _, r in regime.iterrows() if _yes(r["in_regime"])]
    return mine[mine.index.isin(pd.concat(parts).index)] if parts else mine.iloc[:0]  # each run once


def _texts(runs: pd.DataFrame, column: str) -> list[str]:
    """The sorted unique non-empty text values of a column ([] without the column)."""
    if column not in runs:
        return []
    return sorted({str(v) for v in runs[column].dropna() if str(v).strip() and str(v) != "nan"})


def bundles(runs: pd.DataFrame) -> str | None:
    """``"; "``-joined sorted bundle labels of ``runs``; None when runs.csv has no ``bundle`` column."""
    return "; ".join(_texts(runs, "bundle")) if "bundle" in runs else None


def bundles_column(table: pd.DataFrame, runs: pd.DataFrame, regime: pd.DataFrame) -> list[str | None]:
    """leaderboard.csv's ``bundles``: per board row, the bundles of the runs behind it."""
    if "bundle" not in runs:
        return [None] * len(table)
    return [bundles(runs_behind(r, runs, regime)) for _, r in table.iterrows()]


def _meta(row: pd.Series, runs: pd.DataFrame, column: str) -> str:
    """The recipe's distribution, version or arXiv id: the board row's cell, else its runs'."""
    v = row.get(column)
    if isinstance(v, str) and v and v != "nan":
        return v
    return ", ".join(_texts(runs, column)) or "—"


def facts(row: pd.Series, runs: pd.DataFrame, regime: pd.DataFrame, joint: bool = False) -> list[tuple[str, str]]:
    """(label, value) pairs of a board row's provenance, in the order board_html.py shows them; the first two
    are the run and seed counts."""
    mine = runs_behind(row, runs, regime, joint)
    seeds = sorted({int(s) for s in pd.to_numeric(mine.get("seed", pd.Series(dtype=float)), errors="coerce").dropna()})
    labels = _texts(mine, "bundle")
    wd = scopes.wd_key(row.get("wd"))
    if row["scope"] == "overall":
        where = "overall: " + (", ".join(sorted({str(w) for w in mine["workload"]})) or "no in-regime runs")
    elif joint or wd is None:
        where = f"{row['workload']}, every positive wd (lr × wd)"
    else:
        where = f"{row['workload']}, wd {wd:g}"
    commits = sorted({c[:COMMIT_HEX] for c in _texts(mine, "git_commit")})
    arxiv = _meta(row, mine, "recipe_arxiv")
    return [("runs", str(len(mine))),
            ("seeds", f"{len(seeds)} ({', '.join(map(str, seeds))})" if seeds else "0"),
            ("bundles", "; ".join(labels) if labels else "local runs (no bundle label)"),
            ("scope", where),
            ("transferbench", ", ".join(_texts(mine, "package_version")) or "unknown"),
            ("git commit", ", ".join(commits) or "unknown"),
            ("recipe", f"{row['recipe']} from {_meta(row, mine, 'recipe_distribution')} "
                       f"{_meta(row, mine, 'recipe_version')}"),
            ("citation", f"arXiv:{arxiv}" if arxiv != "—" else "—"),
            ("config hashes", str(mine["config_hash"].nunique()) if "config_hash" in mine else "0")]
