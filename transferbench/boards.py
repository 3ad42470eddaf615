"""One page with a board per profile: each profile's overall ranking, its sweep hash and a link to its full
leaderboard, from the leaderboard.csv files the DAG wrote (``python -m transferbench boards``).

A profile answers its own question on its own runs (the tiny profile ranks the five recipes; the
wd-exponent profile sweeps the weight-decay exponent), so boards are never merged: each is cited with the
sweep hash of the runs it was scored on. Never imports torch.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from transferbench.aggregate import read_table

INTRO = ("Each profile is its own board, scored on its own runs and cited with its own sweep hash (the sha256 "
         "of its runs' config hashes); rows of different boards are not comparable. Overall ranking: mean rank "
         "by relative transfer regret over the profile's workloads, 95% bootstrap CI; \"=1\": not "
         "distinguishable from the best.")


def _cell(x: object, fmt: str = "{:.2f}") -> str:
    try:
        return fmt.format(float(x)) if pd.notna(x) else "n/a"
    except (TypeError, ValueError):
        return str(x)


def board(csv: Path, out: Path) -> list[str]:
    """The Markdown section of one leaderboard.csv (links relative to ``out``)."""
    t = read_table(csv)
    if "profile" not in t or "sweep_hash" not in t:
        raise ValueError(f"{csv}: no profile/sweep_hash columns (written by transferbench < 0.3); rerun "
                         "`python -m transferbench leaderboard --profile NAME`")
    profile = str(t["profile"].dropna().iloc[0]) if t["profile"].notna().any() else csv.parent.name
    sweep = str(t["sweep_hash"].dropna().iloc[0]) if t["sweep_hash"].notna().any() else "unknown"
    overall = t[t["scope"] == "overall"]
    workloads = [c[len("regret_rel_"):] for c in t.columns if c.startswith("regret_rel_") and c != "regret_rel_lo"
                 and c != "regret_rel_hi"]
    link = os.path.relpath(csv.with_suffix(".md"), out.parent)
    lines = [f"## Profile `{profile}`: sweep {sweep}", "", f"Full board: [{link}]({link})", "",
             "| rank | recipe | mean rank [95% CI] | " + " | ".join(f"regret_rel {w}" for w in workloads) + " |",
             "|---|---|---|" + "---|" * len(workloads)]
    for _, r in overall.iterrows():
        rank = ("=" if bool(r.get("tied_with_best")) and int(r["rank"]) == 1 else "") + str(int(r["rank"]))
        ci = f"{_cell(r['mean_rank'])} [{_cell(r['mean_rank_lo'])}, {_cell(r['mean_rank_hi'])}]"
        regrets = " | ".join(_cell(r.get(f"regret_rel_{w}"), "{:.2%}") for w in workloads)
        lines.append(f"| {rank} | {r['recipe']} | {ci} | {regrets} |")
    return [*lines, ""]


def write_boards(csvs: list[Path], out: Path) -> Path:
    parts = ["# transferbench boards", "", INTRO, ""]
    for csv in csvs:
        parts += board(Path(csv), Path(out))
    Path(out).write_text("\n".join(parts))
    return Path(out)
