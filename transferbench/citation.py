"""A board's identity: the sweep hash that pins its runs, the versions they were made with, its title and its
BibTeX entry; shared by leaderboard.py (the table) and board_render.py (Markdown and HTML). Never imports torch.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import pandas as pd


def sweep_hash(runs: pd.DataFrame) -> str:
    """First 12 hex of sha256 over the sorted unique config_hash values, joined by newlines."""
    hashes = sorted({str(h) for h in runs["config_hash"].dropna()})
    return hashlib.sha256("\n".join(hashes).encode()).hexdigest()[:12]

def versions(runs: pd.DataFrame) -> str:
    return ", ".join(sorted({str(v) for v in runs["package_version"].dropna()})) or "unknown"

def finite(x: Any) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False

def bibtex(runs: pd.DataFrame, profile: str = "") -> str:
    """A BibTeX entry for citing this leaderboard (its sweep hash pins the exact set of runs; each
    profile's board is cited on its own, with its own key and hash)."""
    h, v = sweep_hash(runs), versions(runs)
    key = f"transferbench-{profile}-{h}" if profile else f"transferbench-{h}"
    board = f"profile {profile}, " if profile else ""
    return (
        f"@misc{{{key},\n"
        "  title        = {transferbench: a leaderboard of learning-rate transfer across model widths},\n"
        "  author       = {{transferbench developers}},\n"
        f"  howpublished = {{transferbench {v}, {board}sweep {h}}},\n"
        f"  version      = {{{v}}},\n"
        f"  note         = {{Sweep hash {h} over {len(runs)} runs; headline scores: transferred loss and "
        "out-of-sample transfer regret at the widest width}\n"
        "}"
    )

def board_title(profile: str = "") -> str:
    return f"transferbench leaderboard: profile {profile}" if profile else "transferbench leaderboard"
