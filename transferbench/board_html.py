"""The leaderboard as one self-contained HTML page: every table sortable by any column, each board row's provenance
on expand, each workload's plots linked (docs/design.md §7).

The page is static: inline CSS and a small inline vanilla script, no framework and nothing fetched, so it works
opened from a file:// URL. The sort keys are computed here, in Python, as each cell's ``data-sort``: in a column
of numbers the number the cell shows first ("=1" -> 1, "+1.23% [...]" -> 1.23), empty for a missing value
("n/a", "—"), which sorts last in either direction; in a text column the text. The script only reorders rows.
A row's provenance (its runs, seeds, bundles, versions, commits, recipe distribution, citation) comes from the
runs behind it (board_provenance.py); the sections themselves are board_render.py's. Never imports torch.
"""

from __future__ import annotations

import html
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd

from transferbench import board_provenance
from transferbench.board_render import Section, _described, _facts, _intro, _notes, _sections
from transferbench.citation import bibtex, board_title

#: The per-workload plots the DAG draws (``plots/{kind}_{workload}.png``; the Snakefile's PLOT_KINDS).
PLOT_KINDS = ["lr_sweep", "optimal_lr", "transferred", "singular_values", "coord_check"]
#: Drawn too where a workload sweeps two or more positive wds (plots_wd.py).
WD_PLOT_KINDS = ["wd_heatmap", "optimal_wd"]
#: Columns of the shared sections (board_render.py) that a ranking table's provenance cell shows instead.
IN_PROVENANCE = ("distribution", "version", "citation")
#: Width in CSS pixels of a plot's thumbnail.
THUMB = 176

STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:90em;color:#222;padding:0 1em}
body{line-height:1.45}h2{margin-top:1.8em;border-bottom:1px solid #ddd;padding-bottom:.2em}
nav{font-size:.9em;columns:2 22em}
.scroll{overflow-x:auto}table{border-collapse:collapse;margin:.6em 0;font-size:.84em}
th,td{border:1px solid #ccc;padding:.3em .4em;vertical-align:top}th{background:#f0f2f5;padding:0;text-align:left}
th button{all:unset;box-sizing:border-box;display:block;width:100%;padding:.35em 1.2em .35em .4em;cursor:pointer;
font-weight:600;position:relative}th button:hover{background:#e4e8ee}
th button:focus-visible{outline:2px solid #1a5fb4;outline-offset:-2px}
th button::after{content:"\\2195";position:absolute;right:.4em;color:#aaa}
th[aria-sort=ascending] button::after{content:"\\25B2";color:#1a5fb4}
th[aria-sort=descending] button::after{content:"\\25BC";color:#1a5fb4}
td.num{text-align:right;font-variant-numeric:tabular-nums}.ci{display:block;color:#666;font-size:.88em}
.ci.iv{white-space:nowrap}
tbody tr:nth-child(even){background:#fafafa}tbody tr:hover{background:#f1f6fc}.out{color:#8a5a00}
.edge{color:#b22222}td[title]{cursor:help}
td.prov{font-size:.92em}summary{cursor:pointer;color:#1a5fb4;white-space:nowrap}
td.prov{min-width:10em;max-width:16em}td.bundles{white-space:nowrap;font-size:.92em}
dl{margin:.3em 0 .1em}dl div{margin:.15em 0;overflow-wrap:anywhere}
dt,dd{display:inline;margin:0}dt{color:#666}
.plots{display:flex;flex-wrap:wrap;gap:.8em;margin:.4em 0 1.2em}
.plots figure{margin:0;width:@THUMB@px;font-size:.82em}
.plots img{display:block;width:100%;height:150px;object-fit:contain;border:1px solid #ddd;background:#f6f6f6;
overflow-wrap:anywhere;color:#666}
pre{background:#f6f6f6;padding:1em;overflow-x:auto}footer{color:#555;font-size:.9em}""".replace("@THUMB@", str(THUMB))
#: Click (or Enter/Space: the headers are buttons) sorts a table's body rows by that column, again reverses.
SCRIPT = """(function () {
  function sortBy(table, th, col) {
    var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
    var num = th.getAttribute("data-kind") === "num";
    Array.prototype.forEach.call(th.parentNode.cells, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending");
    var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[col].getAttribute("data-sort") || "", y = b.cells[col].getAttribute("data-sort") || "";
      if (x === "" || y === "") { return (x === "") - (y === ""); }  /* missing: last either way */
      var d = num ? parseFloat(x) - parseFloat(y) : x.localeCompare(y, undefined, {numeric: true});
      return dir * d;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
      th.querySelector("button").addEventListener("click", function () { sortBy(table, th, col); });
    });
  });
})();"""
_DETAIL = re.compile(r"^(\S+|\S+ \S+) (\[[^]]*\]|\(.*\))")
_NUMBER = re.compile(r"=?([+-]?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)")


def _plain(c: Any) -> str:
    """A section cell's text as the page shows it (a citation tuple: its arXiv id)."""
    if isinstance(c, tuple):
        return f"arXiv:{c[0]}" if c[0] else "—"
    return str(c).replace("**", "").strip()


def _missing(text: str) -> bool:
    return text in ("", "—") or text.startswith("n/a")


def number_key(text: str) -> str | None:
    """The number a cell shows first, as its sort key ("=1" -> "1", "+1.23% [...]" -> "1.23"); None if the
    cell does not start with one."""
    m = _NUMBER.match(text)
    return m.group(1).lstrip("+") if m else None


def _keys(rows: list[list[Any]]) -> tuple[list[bool], list[list[str]]]:
    """Per column whether it holds numbers (every shown value starts with one), and every cell's sort key."""
    texts = [[_plain(c) for c in r] for r in rows]
    n = len(texts[0]) if texts else 0
    numeric = [any(not _missing(r[j]) for r in texts) and
               all(_missing(r[j]) or number_key(r[j]) is not None for r in texts) for j in range(n)]
    keys = [["" if _missing(t) else number_key(t) if numeric[j] else t for j, t in enumerate(r)] for r in texts]
    return numeric, keys


def _link(c: tuple) -> str:
    """A citation cell, (arxiv id,) or (None,), as a link."""
    return f'<a href="https://arxiv.org/abs/{html.escape(c[0])}">arXiv:{html.escape(c[0])}</a>' if c[0] else "—"


def _content(c: Any, column: str) -> tuple[str, bool]:
    """A cell's inner HTML, and whether it is a number (right-aligned)."""
    if isinstance(c, tuple):
        return _link(c), False
    text = html.escape(str(c)).replace("**", "")
    if column == "bundles":  # one label a line: the labels are long and the table is wide
        return "<br>".join(text.split("; ")), False
    numeric = text[:1].isdigit() or text[:1] in "+-=" or text.startswith("n/a")
    # the interval or the detail on a line of its own, smaller: the point estimate or the verdict reads first
    edge = ' <span class="edge">†</span>' if text.endswith(" †") else ""
    text = _DETAIL.sub(lambda m: f'{m[1]}{edge} <span class="ci{" iv" if m[2][0] == "[" else ""}">{m[2]}</span>',
                       text.removesuffix(" †"), count=1)
    return text + (edge if edge and edge not in text else ""), numeric


def _html_cell(c: Any, key: str, column: str = "", title: str = "", cite: tuple | None = None) -> str:
    """A ``<td>`` with its sort key; ``title``: its tooltip; ``cite``: a citation shown under it."""
    inner, numeric = _content(c, column)
    inner += f' <span class="ci">{_link(cite)}</span>' if cite and cite[0] else ""
    cls = ' class="num"' if numeric else ' class="bundles"' if column == "bundles" else ""
    return f'<td{cls} data-sort="{html.escape(key)}"' + (f' title="{html.escape(title)}"' if title else "") + \
        f">{inner}</td>"


def _html_text(text: str) -> str:
    out, bold = [], False
    for i, part in enumerate(html.escape(text).split("**")):
        out.append(part if i == 0 else ("<b>" if not bold else "</b>") + part)
        bold = not bold if i else bold
    return "".join(out).replace("*", "")


def _provenance(row: pd.Series, joint: bool, runs: pd.DataFrame, regime: pd.DataFrame) -> tuple[str, str, str]:
    """(sort key, the details cell's content, the tooltip text) of one board row: the run count sorts it."""
    facts = board_provenance.facts(row, runs, regime, joint)
    n_runs, n_seeds = facts[0][1], facts[1][1].split()[0]
    items = "".join(f"<div><dt>{html.escape(k)}:</dt> <dd>{html.escape(v)}</dd></div>" for k, v in facts)
    summary = f"{n_runs} runs, {n_seeds} seed{'' if n_seeds == '1' else 's'}"
    tooltip = "\n".join(f"{k}: {v}" for k, v in facts)
    return n_runs, f"<details><summary>{summary}</summary><dl>{items}</dl></details>", tooltip


def _table(s: Section, runs: pd.DataFrame, regime: pd.DataFrame) -> str:
    """A section's sortable table. A ranking table's rows end with their provenance, which also holds the
    recipe's distribution and version (so those columns are left out here, and the citation is shown under the
    recipe: the table stays one screen wide); hovering the recipe shows the provenance too."""
    numeric, keys = _keys(s.rows)
    provs = [_provenance(r, joint, runs, regime) for r, joint in s.keys] if s.keys else None
    shown = [j for j, h in enumerate(s.header) if not (provs and h in IN_PROVENANCE)]
    header = [(s.header[j], numeric[j]) for j in shown] + ([("provenance", True)] if provs else [])
    recipe, cite = (s.header.index(h) if h in s.header else -1 for h in ("recipe", "citation"))
    trs = []
    for i, (row, ks) in enumerate(zip(s.rows, keys)):
        cells = [_html_cell(row[j], ks[j], s.header[j], provs[i][2], row[cite] if cite >= 0 else None)
                 if provs and j == recipe else _html_cell(row[j], ks[j], s.header[j]) for j in shown]
        if provs:
            cells.append(f'<td class="prov" data-sort="{provs[i][0]}">{provs[i][1]}</td>')
        trs.append("<tr>" + "".join(cells) + "</tr>")
    head = "".join(f'<th scope="col" data-kind="{"num" if num else "text"}"><button type="button">{html.escape(h)}'
                   "</button></th>" for h, num in header)
    return (f'<div class="scroll"><table class="sortable"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(trs)}</tbody></table></div>")


def _wd_swept(table: pd.DataFrame, runs: pd.DataFrame) -> set[str]:
    """Workloads whose wd plots the DAG draws: two or more positive wds in the runs (plots_wd.swept_workloads),
    or, for a runs table without wds, a wd drift on the board."""
    if "wd" in runs:
        wd = pd.to_numeric(runs["wd"], errors="coerce")
        n = runs[wd > 0].groupby("workload")["wd"].nunique()
        return {str(w) for w in n[n >= 2].index}
    drift = pd.to_numeric(table.get("wd_drift", pd.Series(dtype=float)), errors="coerce")
    return set(table.loc[drift.notna(), "workload"].astype(str))


def plot_links(table: pd.DataFrame, runs: pd.DataFrame, page_dir: Path,
               plots_dir: Path | None = None) -> dict[str, list[tuple[str, str]]]:
    """Per workload of the board, its plots as (file name, href relative to the page in ``page_dir``): the files
    in ``plots_dir`` that exist, or without it the names the DAG draws into ``plots/`` beside the page."""
    wd, out = _wd_swept(table, runs), {}
    rel = Path(os.path.relpath(Path(plots_dir).resolve(), Path(page_dir).resolve())) if plots_dir else None
    for wl in sorted({str(w) for w in table.loc[table["scope"] != "overall", "workload"]}):
        names = [f"{k}_{wl}.png" for k in PLOT_KINDS + (WD_PLOT_KINDS if wl in wd else [])]
        if rel is None:
            out[wl] = [(n, f"plots/{quote(n)}") for n in names]
        else:
            out[wl] = [(n, quote((rel / n).as_posix())) for n in names if (Path(plots_dir) / n).is_file()]
    return out


def _plots(names: list[tuple[str, str]]) -> str:
    """A strip of linked thumbnails; a missing image shows its alt text in a box of the thumbnail's width."""
    figs = "".join(f'<figure><a href="{html.escape(h)}"><img src="{html.escape(h)}" alt="{html.escape(n)}" '
                   f'loading="lazy" width="{THUMB}"></a><figcaption><a href="{html.escape(h)}">{html.escape(n)}'
                   "</a></figcaption></figure>" for n, h in names)
    return f'<div class="plots">{figs}</div>' if names else ""


def _section_plots(s: Section, links: dict[str, list[tuple[str, str]]]) -> str:
    """A workload table's plots: all of them; a weight-decay transfer table's: its wd plots."""
    if not s.keys or s.keys[0][0]["scope"] == "overall":
        return ""
    wl, joint = str(s.keys[0][0]["workload"]), s.keys[0][1]
    names = [(n, h) for n, h in links.get(wl, []) if not joint or n.split(f"_{wl}.png")[0] in WD_PLOT_KINDS]
    return ("<p>Plots (open full size):</p>" if names else "") + _plots(names)


def to_html(table: pd.DataFrame, regime: pd.DataFrame, runs: pd.DataFrame, meta: dict | None = None,
            profile: str = "", plots: dict[str, list[tuple[str, str]]] | None = None) -> str:
    """The page. ``plots``: per workload its plots' (name, href) (plot_links; default: the DAG's names)."""
    links = plot_links(table, runs, Path(".")) if plots is None else plots
    title = html.escape(board_title(profile))
    sections = _sections(table, regime, runs)
    nav = "".join(f'<li><a href="#s{i}">{html.escape(s.title)}</a></li>' for i, s in enumerate(sections))
    body = [f"<h1>{title}</h1>", f"<p>{_html_text(_intro(regime))}</p>",
            "<p>Click a column's header to sort by it, again to reverse; a row's provenance (its runs, seeds, "
            "bundles, versions, commits) opens from its last cell or shows on hovering its recipe.</p>",
            f"<nav><ul>{nav}</ul></nav>"]
    for i, s in enumerate(sections):
        body.append(f'<h2 id="s{i}">{html.escape(s.title)}</h2>' + (f"<p>{_html_text(s.text)}</p>" if s.text else ""))
        if s.header:
            body.append(_table(s, runs, regime) + _section_plots(s, links))
    body += [f"<p>{html.escape(n)}</p>" for n in _notes(table)]
    described = _described(table, meta)
    if described:
        items = "".join(f"<li><b>{html.escape(n)}</b>: {html.escape(str(m.get('summary', '')))}</li>"
                        for n, m in described)
        body.append(f"<h2>Recipes</h2><ul>{items}</ul>")
    facts = "".join(f"<li>{html.escape(f)}</li>" for f in _facts(runs, profile))
    body.append(f"<footer><hr><ul>{facts}</ul><p>Cite this leaderboard:</p>"
                f"<pre>{html.escape(bibtex(runs, profile))}</pre></footer>")
    head = ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>'
            f"<style>{STYLE}</style></head><body>\n")
    return head + "\n".join(body) + f"\n<script>{SCRIPT}</script>\n</body></html>\n"
