"""One page with a board per profile: each profile's overall ranking, its sweep hash and a link to its full
leaderboard, from the leaderboard.csv files the DAG wrote (``python -m transferbench boards``).

A profile answers its own question on its own runs (the tiny profile ranks the five recipes; the
wd-exponent profile sweeps the weight-decay exponent), so boards of different profiles are never merged: each is
cited with the sweep hash of the runs it was scored on. Contributed boards (``results/contrib/<name>/``, written
by ``python -m transferbench merge``: results/contrib/README.md) follow, each with the bundles it was merged from.
Never imports torch.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from transferbench.aggregate import read_table
from transferbench.board_render import show_number

INTRO = ("Each profile is its own board, scored on its own runs and cited with its own sweep hash (the sha256 "
         "of its runs' config hashes); rows of different boards are not comparable. Overall: the workloads in "
         "regime only; per seed, the mean over them of the excess transferred loss over each workload's best "
         "recipe and of the regret relative to its best re-tuned loss, 95% t intervals over seeds; \"=1\": in the "
         "95% model confidence set of the best.")


def _cell(x: object, fmt: str = "{:.2f}") -> str:
    """As the board shows it (board_render.show_number): "n/a" for a missing value, zero for one that rounds to zero."""
    try:
        return show_number(float(x), fmt) if pd.notna(x) else "n/a"
    except (TypeError, ValueError):
        return str(x)


def _yes(x: object) -> bool:
    return str(x).strip().lower() in ("true", "1", "1.0")


def _rank(rows: pd.DataFrame, r: pd.Series, name: str) -> str:
    shared = int(rows[f"in_set_{name}"].map(_yes).sum()) > 1 and _yes(r.get("set_decided"))
    return ("=" if shared and _yes(r[f"in_set_{name}"]) else "") + str(int(r[f"rank_{name}"]))


def board(csv: Path, out: Path) -> list[str]:
    """The Markdown section of one leaderboard.csv (links relative to ``out``)."""
    t = read_table(csv)
    if "profile" not in t or "sweep_hash" not in t or "rank_transferred" not in t:
        raise ValueError(f"{csv}: not a leaderboard.csv with the two-rank headline (no profile, sweep_hash or "
                         "rank_transferred column); rerun `python -m transferbench leaderboard --profile NAME`")
    profile = str(t["profile"].dropna().iloc[0]) if t["profile"].notna().any() else csv.parent.name
    sweep = str(t["sweep_hash"].dropna().iloc[0]) if t["sweep_hash"].notna().any() else "unknown"
    link = os.path.relpath(csv.with_suffix(".md"), out.parent)
    rows = t[t["scope"] != "overall"]
    regime = rows.groupby("scope")["in_regime"].first().map(_yes)
    lines = [f"## Profile `{profile}`: sweep {sweep}", "", f"Full board: [{link}]({link})", "",
             f"In regime: {', '.join(s for s, ok in regime.items() if ok) or 'none'}; out of regime: "
             f"{', '.join(s for s, ok in regime.items() if not ok) or 'none'}.", ""]
    overall = t[t["scope"] == "overall"]
    if not len(overall):
        return [*lines, "No workload in regime: no overall ranking.", ""]
    lines += ["| rank: what you get | rank: how well it transfers | recipe | transferred loss vs best [95% CI] | "
              "regret, relative [95% CI] |", "|---|---|---|---|---|"]
    for _, r in overall.iterrows():
        get = f"{_cell(r['transferred_mean'], '{:+.2%}')} [{_cell(r['transferred_lo'], '{:+.2%}')}, " \
              f"{_cell(r['transferred_hi'], '{:+.2%}')}]"
        reg = f"{_cell(r['regret_mean'], '{:+.2%}')} [{_cell(r['regret_lo'], '{:+.2%}')}, " \
              f"{_cell(r['regret_hi'], '{:+.2%}')}]"
        lines.append(f"| {_rank(overall, r, 'transferred')} | {_rank(overall, r, 'regret')} | {r['recipe']} | "
                     f"{get} | {reg} |")
    return [*lines, ""]


def contributed(contrib: Path, out: Path) -> list[str]:
    """The section of every merged board under ``contrib`` (a directory with leaderboard.csv and bundles.csv)."""
    dirs = sorted(d for d in Path(contrib).iterdir()
                  if (d / "leaderboard.csv").is_file() and (d / "bundles.csv").is_file())
    if not dirs:
        return []
    parts = ["# Contributed boards", "", "Merged from result bundles that other machines ran and "
             "`python -m transferbench verify` checked (results/contrib/README.md); each row of a full board names "
             "its bundle.", ""]
    for d in dirs:
        section = board(d / "leaderboard.csv", out)
        section[0] = section[0].replace("## Profile", f"## `{d.name}`: profile", 1)
        bundles = read_table(d / "bundles.csv")
        listed = [f"- {r['label']}: `{r['file']}`, sha256 `{str(r['sha256'])[:16]}…`"
                  + (f", <{r['url']}>" if isinstance(r.get("url"), str) and r["url"] else "")
                  + f", {int(r['kept'])} of {int(r['records'])} runs kept ({r['recipes']})"
                  for _, r in bundles.iterrows()]
        parts += [section[0], "", "Bundles:", "", *listed, *section[1:]]
    return parts


def write_boards(csvs: list[Path], out: Path, contrib: Path | None = None) -> Path:
    parts = ["# transferbench boards", "", INTRO, ""]
    for csv in csvs:
        parts += board(Path(csv), Path(out))
    if contrib is not None and Path(contrib).is_dir():
        parts += contributed(Path(contrib), Path(out))
    Path(out).write_text("\n".join(parts))
    return Path(out)
