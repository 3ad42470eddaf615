"""The leaderboard (docs/design.md §7): Markdown, CSV and self-contained HTML from the committed tables.

Primary score: relative transfer regret at the widest width (docs/design.md §6), lower is better. Every number,
citation and the sweep hash come from transfer.csv and runs.csv, so a reader can rebuild the leaderboard
from those two tables; ``recipes_meta`` only adds one-line recipe descriptions. Never imports torch.
"""

from __future__ import annotations

import hashlib
import html
import math
from pathlib import Path
from typing import Any

import pandas as pd

from transferbench.aggregate import as_flag
from transferbench.ties import as_bool, plain_rank, shared_rank

CSV_COLUMNS = ["scope", "rank", "tied_with_best", "recipe", "wd", "mean_rank", "mean_rank_lo", "mean_rank_hi",
               "regret_rel", "regret_rel_lo", "regret_rel_hi", "vs_best_lo", "vs_best_hi", "regret", "regret_lo",
               "regret_hi",
               "drift", "drift_lo", "drift_hi", "drift_edge", "sensitivity", "best_loss", "widths", "n_seeds",
               "n_workloads", "recipe_arxiv", "recipe_distribution", "recipe_version", "profile", "sweep_hash"]
EDGE_NOTE = ("† an optimal lr lies on the edge of the lr grid for some width: the number is a bound, "
             "not an estimate (widen the lr grid)")
NA_NOTE = ("n/a: no score, because every run at the tuning width or at the widest width diverged (or the "
           "sweep has a single width); such rows are ranked last.")
TIE_NOTE = ("=1: not distinguishable from the best at 95% (paired bootstrap over seeds, CI of the difference "
            "includes 0): every recipe is resampled with the same seed draws (a seed is the same data and init "
            "for every recipe), and the difference is in regret_rel (overall: in mean rank). Such recipes share "
            "rank 1; the others are ranked after them by point estimate.")
SEED_NOTE = ("One seed per run, so no confidence intervals: a regret_rel difference of the size of the "
             "seed-to-seed noise (unmeasured here) is a tie, not a ranking. Add seeds to the profile "
             "(seeds: [0, 1, 2]) for bootstrap intervals.")
INTRO = ("How well does a learning rate tuned at the base width transfer to the widest width? "
         "regret = loss at the widest width when trained with the tuning width's optimal lr, minus the best "
         "loss at the widest width, both read off the same local parabola in log2 lr through the best grid "
         "point and its neighbours (so a perfect transfer scores 0 even between grid points); regret_rel = "
         "regret / best observed loss at the widest width; drift = octaves the optimal lr moves per doubling "
         "of width (0 = perfect); sensitivity = lr sensitivity of Wortsman et al. 2023 (arXiv 2309.14322) "
         "at the widest width; regret in the workload's loss unit (nats, or MSE for mlp). "
         "The overall ranking is the mean of each recipe's rank (by regret_rel) within every workload: the "
         "workloads' losses live on unrelated scales (nats of a token stream, MSE of a regression with a "
         "small noise floor), so their regrets are not averaged; the per-workload regret_rel is shown beside it.")
STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:70em;color:#222;padding:0 1em}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}th,td{border:1px solid #ccc;padding:.3em .6em}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr:nth-child(even){background:#fafafa}
.edge{color:#b22222}pre{background:#f6f6f6;padding:1em;overflow-x:auto}footer{color:#555;font-size:.9em}"""


def sweep_hash(runs: pd.DataFrame) -> str:
    """First 12 hex of sha256 over the sorted unique config_hash values, joined by newlines."""
    hashes = sorted({str(h) for h in runs["config_hash"].dropna()})
    return hashlib.sha256("\n".join(hashes).encode()).hexdigest()[:12]


def _versions(runs: pd.DataFrame) -> str:
    return ", ".join(sorted({str(v) for v in runs["package_version"].dropna()})) or "unknown"


def _finite(x: Any) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def _flag(x: Any) -> bool:
    return bool(as_flag(pd.Series([x])).iloc[0])


def _tied_col(t: pd.DataFrame, col: str) -> pd.Series:
    return t[col] if col in t else pd.Series([None] * len(t), index=t.index, dtype=object)


def workload_ranking(transfer: pd.DataFrame, workload: str) -> pd.DataFrame:
    """The rows of one workload, ranked by regret_rel within each wd (lower is better), recipes tied
    with the best sharing rank 1."""
    t = transfer[transfer["workload"] == workload].copy()
    t["regret_rel"] = pd.to_numeric(t["regret_rel"], errors="coerce")
    tied = _tied_col(t, "tied_with_best")
    ranks = [shared_rank(g["regret_rel"], tied.loc[g.index]) for _, g in t.groupby("wd")]
    t.insert(0, "rank", pd.concat(ranks).reindex(t.index).astype(int) if len(t) else [])
    t.insert(0, "scope", workload)
    return t.sort_values(["rank", "regret_rel", "recipe", "wd"]).reset_index(drop=True)


def overall_ranking(transfer: pd.DataFrame) -> pd.DataFrame:
    """Per recipe: the mean of its ranks within every (workload, wd), ranked, lower is better.

    Ranks, not regrets, are averaged: a relative regret in nats of a token stream and one in MSE of a
    regression with a 0.0025 noise floor are not on one scale. Each workload's regret_rel is kept in a
    column ``regret_rel_<workload>`` (the mean over wd values when several were swept).
    """
    ranked = pd.concat([workload_ranking(transfer, wl) for wl in sorted(transfer["workload"].unique())],
                       ignore_index=True) if len(transfer) else transfer.assign(rank=[], scope=[])
    ranked["plain_rank"] = ranked.groupby(["workload", "wd"])["regret_rel"].transform(plain_rank) if len(ranked) else []
    workloads = sorted(transfer["workload"].unique())
    rows = []
    for recipe, g in ranked.groupby("recipe", sort=True):
        # ties.py ranks on every resample by point regret_rel; the plain mean of the shown ranks would
        # count a shared "=1" as a win, so the overall score is its overall_mean_rank when present.
        row = {"scope": "overall", "recipe": recipe, "mean_rank": _first(g, "overall_mean_rank"),
               "mean_rank_lo": _first(g, "overall_mean_rank_lo"), "mean_rank_hi": _first(g, "overall_mean_rank_hi"),
               "tied_with_best": as_bool(_first(g, "overall_tied_with_best")),
               "n_workloads": int(g.loc[g["regret_rel"].notna(), "workload"].nunique())}
        if not _finite(row["mean_rank"]):  # a transfer.csv without ties.py's columns
            row["mean_rank"] = g["plain_rank"].astype(float).mean()
        for wl in workloads:
            row[f"regret_rel_{wl}"] = g.loc[g["workload"] == wl, "regret_rel"].mean()
        for k in ("recipe_arxiv", "recipe_distribution", "recipe_version"):
            row[k] = g[k].dropna().iloc[0] if k in g and g[k].notna().any() else None
        rows.append(row)
    cols = ["scope", "recipe", "mean_rank", "mean_rank_lo", "mean_rank_hi", "tied_with_best", "n_workloads",
            *(f"regret_rel_{wl}" for wl in workloads), "recipe_arxiv", "recipe_distribution", "recipe_version"]
    out = pd.DataFrame(rows, columns=cols)
    out.insert(1, "rank", shared_rank(out["mean_rank"], out["tied_with_best"]) if len(out) else [])
    return out.sort_values(["rank", "mean_rank", "recipe"]).reset_index(drop=True)


def _first(g: pd.DataFrame, col: str) -> Any:
    return g[col].dropna().iloc[0] if col in g and g[col].notna().any() else None


def leaderboard_table(transfer: pd.DataFrame, runs: pd.DataFrame | None = None, profile: str = "") -> pd.DataFrame:
    """The CSV: overall rows (scope "overall") then each workload's ranked rows; every row names the profile
    and the sweep hash it was scored in, so a row cited alone still pins its runs."""
    parts = [overall_ranking(transfer)]
    parts += [workload_ranking(transfer, wl) for wl in sorted(transfer["workload"].unique())]
    columns = CSV_COLUMNS + [c for c in parts[0].columns if c.startswith("regret_rel_")]
    table = pd.concat([p.reindex(columns=columns) for p in parts], ignore_index=True)
    # Overall rows leave per-workload columns empty; keep integers and flags readable (not 3.0, 1.0).
    for col in ("rank", "n_seeds", "n_workloads"):
        table[col] = pd.to_numeric(table[col], errors="coerce").round().astype("Int64")
    edge = table["drift_edge"].map(lambda x: None if pd.isna(x) else _flag(x))
    table["drift_edge"] = edge.astype("boolean")
    table["profile"] = profile or None
    table["sweep_hash"] = sweep_hash(runs) if runs is not None else None
    return table


def bibtex(runs: pd.DataFrame, profile: str = "") -> str:
    """A BibTeX entry for citing this leaderboard (its sweep hash pins the exact set of runs; each
    profile's board is cited on its own, with its own key and hash)."""
    h, v = sweep_hash(runs), _versions(runs)
    key = f"transferbench-{profile}-{h}" if profile else f"transferbench-{h}"
    board = f"profile {profile}, " if profile else ""
    return (
        f"@misc{{{key},\n"
        "  title        = {transferbench: a leaderboard of learning-rate transfer across model widths},\n"
        "  author       = {{transferbench developers}},\n"
        f"  howpublished = {{transferbench {v}, {board}sweep {h}}},\n"
        f"  version      = {{{v}}},\n"
        f"  note         = {{Sweep hash {h} over {len(runs)} runs; primary score: relative transfer regret "
        "at the widest width}\n"
        "}"
    )


# -- cell formatting (shared by Markdown and HTML) -------------------------------------------------------
def _fmt_num(x: Any, fmt: str = "{:.3g}") -> str:
    return fmt.format(float(x)) if _finite(x) else "n/a"


def _with_ci(x: Any, lo: Any, hi: Any, fmt: str) -> str:
    s = _fmt_num(x, fmt)
    return s + (f" [{_fmt_num(lo, fmt)}, {_fmt_num(hi, fmt)}]" if _finite(lo) and _finite(hi) else "")


def _cells(row: pd.Series, many_wd: bool) -> dict[str, str]:
    edge = " †" if _flag(row.get("drift_edge")) else ""
    cells = {"rank": _rank_cell(row) if _finite(row["regret_rel"]) else "–", "recipe": str(row["recipe"])}
    if many_wd:
        cells["wd"] = _fmt_num(row["wd"], "{:g}")
    cells.update({
        "regret_rel [95% CI]": (_with_ci(row["regret_rel"], row.get("regret_rel_lo"), row.get("regret_rel_hi"),
                                         "{:.2%}") if _finite(row["regret_rel"]) else "n/a") + edge,
        "regret": _with_ci(row["regret"], row.get("regret_lo"), row.get("regret_hi"), "{:.4f}"),
        "drift (oct/doubling) [95% CI]": _with_ci(row["drift"], row["drift_lo"], row["drift_hi"], "{:+.2f}")
        + edge,
        "sensitivity": _fmt_num(row["sensitivity"], "{:.4f}"),
        "best loss": _fmt_num(row["best_loss"], "{:.4f}"),
        "widths": str(row["widths"]),
    })
    return cells


def _rank_cell(row: pd.Series) -> str:
    """"=1" for a recipe the paired CI cannot tell from the best (when more than one shares rank 1)."""
    return f"={row['rank']}" if as_bool(row.get("tied_with_best")) and row.get("_n_tied", 1) > 1 else str(row["rank"])


def _meta(row: pd.Series) -> tuple[str | None, str, str]:
    arxiv = str(row["recipe_arxiv"]) if _finite_str(row.get("recipe_arxiv")) else None
    dist = str(row["recipe_distribution"]) if _finite_str(row.get("recipe_distribution")) else "—"
    ver = str(row["recipe_version"]) if _finite_str(row.get("recipe_version")) else "—"
    return arxiv, dist, ver


def _finite_str(x: Any) -> bool:
    missing = x is None or (isinstance(x, float) and math.isnan(x))
    return not missing and str(x) not in ("", "nan", "None")


# -- Markdown -------------------------------------------------------------------------------------------
def _md_table(header: list[str], rows: list[list[str]]) -> str:
    esc = [[c.replace("|", "\\|") for c in r] for r in [header, *rows]]
    lines = ["| " + " | ".join(esc[0]) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in esc[1:]])


def _md_link(arxiv: str | None) -> str:
    return f"[arXiv:{arxiv}](https://arxiv.org/abs/{arxiv})" if arxiv else "—"


def _sections(transfer: pd.DataFrame) -> list[tuple[str, list[str], list[list[Any]]]]:
    """(title, header, rows) of each table; link cells are (arxiv id,) tuples rendered per format."""
    out = []
    overall = overall_ranking(transfer)
    workloads = sorted(transfer["workload"].unique())
    rows = []
    n_tied = int(overall["tied_with_best"].map(lambda x: as_bool(x) is True).sum()) if len(overall) else 0
    for _, r in overall.iterrows():
        arxiv, dist, ver = _meta(r)
        rels = [_fmt_num(r[f"regret_rel_{wl}"], "{:.2%}") for wl in workloads]
        covered = f"{r['n_workloads']} of {len(workloads)}"
        rank = f"={r['rank']}" if as_bool(r["tied_with_best"]) and n_tied > 1 else str(r["rank"])
        rows.append([rank, str(r["recipe"]), _with_ci(r["mean_rank"], r["mean_rank_lo"], r["mean_rank_hi"], "{:.2f}"),
                     *rels, covered, (arxiv,), dist, ver])
    out.append(("Overall ranking: mean rank over workloads (by relative transfer regret at the widest width), "
                "lower is better",
                ["rank", "recipe", "mean rank [95% CI]", *(f"regret_rel {wl}" for wl in workloads), "scored on",
                 "citation", "distribution", "version"],
                rows))
    many_wd = transfer.groupby("workload")["wd"].nunique().max() > 1 if len(transfer) else False
    for wl in sorted(transfer["workload"].unique()):
        rows, header = [], []
        ranked = workload_ranking(transfer, wl)
        ranked["_n_tied"] = ranked.groupby("wd")["tied_with_best"].transform(
            lambda t: int(t.map(lambda x: as_bool(x) is True).sum())) if "tied_with_best" in ranked else 1
        for _, r in ranked.iterrows():
            cells = _cells(r, many_wd)
            arxiv, dist, ver = _meta(r)
            header = [*cells, "citation", "distribution", "version"]
            rows.append([*cells.values(), (arxiv,), dist, ver])
        out.append((f"Workload: {wl}", header, rows))
    return out


def _footer_facts(runs: pd.DataFrame, profile: str = "") -> list[str]:
    commits = sorted({str(c) for c in runs["git_commit"].dropna()}) if "git_commit" in runs else []
    return [f"profile: {profile or 'not named'}",
            f"sweep hash: {sweep_hash(runs)} (sha256 of the sorted unique config_hash values, first 12 hex)",
            f"transferbench version(s): {_versions(runs)}", f"runs: {len(runs)}",
            f"git commit(s): {', '.join(commits) or 'unknown'}"]


def _notes(transfer: pd.DataFrame) -> list[str]:
    """Footnotes under the tables: the edge marker always, the one-seed caveat when it applies, the tie
    note when some row has seeds to compare (a sweep may mix both when a recipe lacks seeds)."""
    seeds = pd.to_numeric(transfer.get("n_seeds", pd.Series(dtype=float)), errors="coerce")
    na = not pd.to_numeric(transfer["regret_rel"], errors="coerce").notna().all() if len(transfer) else False
    few, many = bool(len(seeds) and seeds.min() < 2), bool(len(seeds) and seeds.max() >= 2)
    return [EDGE_NOTE] + ([NA_NOTE] if na else []) + ([SEED_NOTE] if few else []) + ([TIE_NOTE] if many else [])


def board_title(profile: str = "") -> str:
    return f"transferbench leaderboard: profile {profile}" if profile else "transferbench leaderboard"


def to_markdown(transfer: pd.DataFrame, runs: pd.DataFrame, recipes_meta: dict | None = None,
                profile: str = "") -> str:
    parts = [f"# {board_title(profile)}", "", INTRO, ""]
    for title, header, rows in _sections(transfer):
        body = [[_md_link(c[0]) if isinstance(c, tuple) else c for c in r] for r in rows]
        parts += [f"## {title}", "", _md_table(header, body), ""]
    for note in _notes(transfer):
        parts += [note, ""]
    if recipes_meta:
        parts += ["## Recipes", ""]
        parts += [f"- **{n}**: {m.get('summary', '')}" for n, m in _described(transfer, recipes_meta)] + [""]
    parts += ["---", ""] + [f"- {f}" for f in _footer_facts(runs, profile)]
    parts += ["", "Cite this leaderboard:", "", "```bibtex", bibtex(runs, profile), "```", ""]
    return "\n".join(parts)


def _described(transfer: pd.DataFrame, meta: dict) -> list[tuple[str, dict]]:
    shown = set(transfer["recipe"])
    return [(n, m) for n, m in sorted(meta.items()) if n in shown and isinstance(m, dict)]


# -- HTML -----------------------------------------------------------------------------------------------
def _html_cell(c: Any) -> str:
    if isinstance(c, tuple):
        if not c[0]:
            return "<td>—</td>"
        a = html.escape(c[0])
        return f'<td><a href="https://arxiv.org/abs/{a}">arXiv:{a}</a></td>'
    text = html.escape(str(c)).replace(" †", ' <span class="edge">†</span>')
    numeric = text[:1].isdigit() or text[:1] in "+-=" or text.startswith("n/a")
    return f'<td class="num">{text}</td>' if numeric else f"<td>{text}</td>"


def to_html(transfer: pd.DataFrame, runs: pd.DataFrame, recipes_meta: dict | None = None,
            profile: str = "") -> str:
    body = [f"<h1>{html.escape(board_title(profile))}</h1>", f"<p>{html.escape(INTRO)}</p>"]
    for title, header, rows in _sections(transfer):
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        trs = "".join("<tr>" + "".join(_html_cell(c) for c in r) + "</tr>" for r in rows)
        body.append(f"<h2>{html.escape(title)}</h2>")
        body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{trs}</tbody></table>")
    body.append(f'<p class="edge">{html.escape(EDGE_NOTE)}</p>')
    body += [f"<p>{html.escape(n)}</p>" for n in _notes(transfer)[1:]]
    if recipes_meta:
        items = "".join(f"<li><b>{html.escape(n)}</b>: {html.escape(str(m.get('summary', '')))}</li>"
                        for n, m in _described(transfer, recipes_meta))
        body.append(f"<h2>Recipes</h2><ul>{items}</ul>")
    facts = "".join(f"<li>{html.escape(f)}</li>" for f in _footer_facts(runs, profile))
    body.append(f"<footer><hr><ul>{facts}</ul><p>Cite this leaderboard:</p>"
                f"<pre>{html.escape(bibtex(runs, profile))}</pre></footer>")
    head = ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(board_title(profile))}</title><style>{STYLE}</style></head><body>\n")
    return head + "\n".join(body) + "\n</body></html>\n"


def write_leaderboard(transfer: pd.DataFrame, runs: pd.DataFrame, out_stem: Path,
                      recipes_meta: dict | None = None, profile: str = "") -> None:
    """Write ``{out_stem}.md``, ``.csv`` and ``.html``."""
    out_stem = Path(out_stem)
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    path = out_stem.parent / out_stem.name  # the stem may hold dots: append, never replace, a suffix
    Path(f"{path}.md").write_text(to_markdown(transfer, runs, recipes_meta, profile))
    leaderboard_table(transfer, runs, profile).to_csv(f"{path}.csv", index=False)
    Path(f"{path}.html").write_text(to_html(transfer, runs, recipes_meta, profile))
