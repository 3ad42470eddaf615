"""The HTML leaderboard (board_html.py) and the bundles behind each row (board_provenance.py), on a hand-made
board (tests/headline_tables.py): every header sorts, every cell's sort key is the number it shows ("n/a" an
empty key, sorted last), every row opens its provenance (bundles, runs, seeds, versions of the runs behind it),
every workload links its plots, and leaderboard.csv's ``bundles`` names exactly the bundles of each row's runs.
The page's own script is run in headless Chromium when there is one.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from headline_tables import GOOD, parabola, runs_of

from transferbench.aggregate import read_table
from transferbench.board_html import PLOT_KINDS, WD_PLOT_KINDS, _keys, number_key, plot_links
from transferbench.leaderboard import CSV_COLUMNS, write_leaderboard
from transferbench.metrics import write_metrics

LAB_A, LAB_B = "lab-a · 2026-12-06 · cpu", "lab-b · 2026-12-05 · cuda"
#: Shown first by a numeric cell: an optional "=", a sign, digits.
SHOWN = re.compile(r"=?([+-]?\d+(?:\.\d+)?)")


def bundled_runs() -> pd.DataFrame:
    """a, b, c on llama and mlp (c worse by 0.2). Seeds 0 and 1 came in bundle lab-a (transferbench 0.3.0),
    seed 2 in lab-b (0.3.1, another commit); all of c came from lab-b, and b's mlp runs all from lab-a."""
    d = (-0.01, 0.0, 0.01)
    frames = [runs_of({"a": parabola(GOOD, offset=d), "b": parabola(GOOD, offset=(0.0, 0.01, -0.012)),
                       "c": parabola({**GOOD, 128: 2.3}, offset=d)}, workload=wl) for wl in ("llama", "mlp")]
    runs = pd.concat(frames, ignore_index=True)
    lab_b = (runs["seed"] == 2) | (runs["recipe"] == "c")
    lab_b &= ~((runs["recipe"] == "b") & (runs["workload"] == "mlp"))
    runs["bundle"] = np.where(lab_b, LAB_B, LAB_A)
    runs.loc[lab_b, "package_version"] = "0.3.1"
    runs["git_commit"] = np.where(lab_b, "0123456789abcdef0123", "fedcba9876543210fedc")
    return runs


@pytest.fixture(scope="module")
def board(tmp_path_factory) -> dict:
    """The board written from bundled_runs (its transfer.csv with one empty drift: a's on llama)."""
    out = tmp_path_factory.mktemp("board")
    runs = bundled_runs()
    write_metrics(runs, out / "tables", n_boot=50)
    t = {n: read_table(out / "tables" / f"{n}.csv") for n in ("transfer", "seed_scores", "regime")}
    t["transfer"].loc[(t["transfer"]["workload"] == "llama") & (t["transfer"]["recipe"] == "a"), "drift"] = np.nan
    write_leaderboard(t["transfer"], runs, out / "lb", profile="synthetic", seed_scores=t["seed_scores"],
                      regime=t["regime"])
    return {"out": out, "runs": runs, "tables": t, "page": Page.of((out / "lb.html").read_text())}


class Page(HTMLParser):
    """The page's h2 sections, each with its tables (headers, rows of cells) and its links and images."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[dict] = []
        self.cell: dict | None = None
        self.heading: list[str] | None = None

    @classmethod
    def of(cls, text: str) -> Page:
        page = cls()
        page.feed(text)
        return page

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        s = self.sections[-1] if self.sections else None
        if tag == "h2":
            self.heading = []
        elif s is None:
            return
        elif tag == "table":
            s["tables"].append({"head": [], "rows": []})
        elif tag == "tbody":
            s["tables"][-1]["body"] = True
        elif tag == "tr" and s["tables"] and s["tables"][-1].get("body") and self.cell is None:
            s["tables"][-1]["rows"].append([])
        elif tag in ("th", "td"):
            self.cell = {"attrs": a, "text": "", "button": False, "details": False, "kind": tag}
        elif tag == "button" and self.cell is not None:
            self.cell["button"] = True
        elif tag == "details" and self.cell is not None:
            self.cell["details"] = True
        elif tag == "a" and self.cell is None:
            s["links"].append(a["href"])
        elif tag == "img":
            s["imgs"].append(a)

    def handle_endtag(self, tag: str) -> None:
        if tag == "h2" and self.heading is not None:
            self.sections.append({"title": "".join(self.heading), "tables": [], "links": [], "imgs": []})
            self.heading = None
        elif tag in ("th", "td") and self.cell is not None:
            table = self.sections[-1]["tables"][-1]
            (table["head"] if tag == "th" else table["rows"][-1]).append(self.cell)
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.heading is not None:
            self.heading.append(data)
        elif self.cell is not None:
            self.cell["text"] += data

    def ranking(self) -> list[tuple[str, dict]]:
        """(section title, table) of every table whose rows carry a provenance."""
        return [(s["title"], t) for s in self.sections for t in s["tables"]
                if t["head"] and t["head"][-1]["text"] == "provenance"]


def _column(table: dict, name: str) -> int:
    return [h["text"] for h in table["head"]].index(name)


def test_sort_keys_are_the_number_each_kind_of_cell_shows_first():
    cells = {"0.1234 [0.12, 0.13]": "0.1234", "+1.23% [-0.5%, +2.0%]": "1.23", "=1": "1", "3": "3",
             "+0.25 [-0.1, +0.6] †": "0.25", "-0.0027 [-0.0319, +0.0265]": "-0.0027"}
    for text, key in cells.items():
        assert number_key(text) == key, text
    assert number_key("yes (0.31 → 0.29)") is None and number_key("mup") is None
    numeric, keys = _keys([["=1", "n/a", "mup", "yes (0.31 → 0.29)"], ["3", "0.5 [0.4, 0.6]", "—", "no (1 → 2)"]])
    assert numeric == [True, True, False, False]
    assert keys == [["1", "", "mup", "yes (0.31 → 0.29)"], ["3", "0.5", "", "no (1 → 2)"]]


def test_every_header_sorts_and_every_cell_has_the_number_it_shows(board):
    page = board["page"]
    tables = [t for s in page.sections for t in s["tables"]]
    assert len(tables) >= 4  # regime, overall, llama, mlp
    for t in tables:
        for h in t["head"]:
            assert h["button"] and h["attrs"].get("data-kind") in ("num", "text"), h
    seen = set()
    for title, t in page.ranking():
        for row in t["rows"]:
            assert len(row) == len(t["head"])
            for h, c in zip(t["head"], row):
                assert "data-sort" in c["attrs"], (title, h["text"], c)
                key, text = c["attrs"]["data-sort"], c["text"].strip()
                if text.startswith("n/a") or text in ("", "—"):
                    assert key == "", (title, text)
                    seen.add("missing")
                elif h["attrs"]["data-kind"] == "num":
                    assert float(key) == float(SHOWN.match(text)[1]), (title, h["text"], text, key)
                    seen.add("=1" if text.startswith("=") else "%" if "%" in text.split()[0] else "num")
    assert seen == {"missing", "=1", "%", "num"}  # ranks with ties, percentages, losses, a missing drift
    llama = next(t for title, t in page.ranking() if title.startswith("Workload: llama"))
    drift = [r[_column(llama, "drift (oct/doubling)")] for r in llama["rows"]]
    assert [c["attrs"]["data-sort"] for c in drift].count("") == 1  # a's drift, emptied in transfer.csv


def _expected(runs: pd.DataFrame, scope: str, recipe: str) -> pd.DataFrame:
    mine = runs[runs["recipe"] == recipe]
    return mine if scope == "overall" else mine[mine["workload"] == scope]  # both workloads are in regime


def test_each_row_opens_the_provenance_of_its_own_runs(board):
    page, runs = board["page"], board["runs"]
    assert board["tables"]["regime"]["in_regime"].all()
    rows = 0
    for title, t in page.ranking():
        scope = "overall" if title.startswith("Overall") else title.split()[1]
        recipe_col = _column(t, "recipe")
        for row in t["rows"]:
            recipe = row[recipe_col]["attrs"]["data-sort"]
            prov, mine = row[-1], _expected(runs, scope, recipe)
            assert prov["details"] and prov["attrs"]["data-sort"] == str(len(mine)), (scope, recipe)
            text = prov["text"]
            assert f"runs: {len(mine)}" in text and f"seeds: {mine['seed'].nunique()}" in text
            labels, others = sorted(set(mine["bundle"])), {LAB_A, LAB_B} - set(mine["bundle"])
            assert all(b in text for b in labels) and not any(b in text for b in others), (scope, recipe, text)
            assert "transferbench: " + ", ".join(sorted(set(mine["package_version"]))) in text
            assert all(c[:10] in text for c in set(mine["git_commit"])) and "0123456789a" not in text
            assert "arXiv:2510.19093" in text and f"config hashes: {mine['config_hash'].nunique()}" in text
            assert row[recipe_col]["attrs"]["title"].startswith(f"runs: {len(mine)}\n")  # the tooltip
            rows += 1
    assert rows == 9  # overall, llama, mlp: a, b, c each


def test_the_csv_and_the_markdown_name_each_rows_bundles(board):
    csv = read_table(board["out"] / "lb.csv")
    assert list(csv.columns) == CSV_COLUMNS and CSV_COLUMNS[-1] == "bundles"
    for _, r in csv.iterrows():
        mine = _expected(board["runs"], r["scope"], r["recipe"])
        assert r["bundles"] == "; ".join(sorted(set(mine["bundle"]))), (r["scope"], r["recipe"])
    got = csv.set_index(["scope", "recipe"])["bundles"]
    assert all(got[(s, "c")] == LAB_B for s in ("overall", "llama", "mlp"))  # one bundle made all of c
    assert got[("mlp", "b")] == LAB_A and got[("llama", "b")] == got[("overall", "b")] == f"{LAB_A}; {LAB_B}"
    md = (board["out"] / "lb.md").read_text()
    assert md.count(" | bundles |") == 3 and f"| {LAB_B} |" in md  # overall, llama, mlp


@pytest.mark.parametrize("bundle", ["absent", "empty"])
def test_a_board_of_local_runs_has_no_bundles(tmp_path, board, bundle):
    t, runs = board["tables"], board["runs"].drop(columns="bundle")
    if bundle == "empty":  # a merge tool's runs.csv whose runs are all local
        runs["bundle"] = [None if s else "" for s in runs["seed"]]
    write_leaderboard(t["transfer"], runs, tmp_path / "lb", seed_scores=t["seed_scores"], regime=t["regime"])
    assert read_table(tmp_path / "lb.csv")["bundles"].isna().all()
    assert "bundles" not in (tmp_path / "lb.md").read_text()
    page = Page.of((tmp_path / "lb.html").read_text())
    for _, table in page.ranking():
        assert "bundles" not in [h["text"] for h in table["head"]]
        assert all("bundles: local runs (no bundle label)" in row[-1]["text"] for row in table["rows"])


def test_each_workload_links_its_plots(tmp_path, board):
    page = board["page"]
    for wl in ("llama", "mlp"):
        s = next(s for s in page.sections if s["title"].startswith(f"Workload: {wl}"))
        want = [f"plots/{k}_{wl}.png" for k in PLOT_KINDS]
        assert s["links"] == [h for h in want for _ in (0, 1)]  # the thumbnail and its caption
        assert [i["src"] for i in s["imgs"]] == want and all(i["alt"] and i["loading"] == "lazy" for i in s["imgs"])
    # given a plots directory: only the files in it, relative to the page
    plots = tmp_path / "figs"
    plots.mkdir()
    (plots / "lr_sweep_llama.png").write_bytes(b"png")
    (plots / "coord_check_mlp.png").write_bytes(b"png")
    t = board["tables"]
    write_leaderboard(t["transfer"], board["runs"], tmp_path / "site" / "lb", seed_scores=t["seed_scores"],
                      regime=t["regime"], plots_dir=plots)
    page = Page.of((tmp_path / "site" / "lb.html").read_text())
    links = {s["title"].split()[1]: s["links"] for s in page.sections if s["title"].startswith("Workload:")}
    assert links == {"llama": ["../figs/lr_sweep_llama.png"] * 2, "mlp": ["../figs/coord_check_mlp.png"] * 2}


def test_a_workload_that_sweeps_wd_links_its_wd_plots(tmp_path):
    table = pd.DataFrame({"scope": ["overall", "llama", "mlp"], "workload": [np.nan, "llama", "mlp"]})
    runs = pd.DataFrame({"workload": ["llama", "llama", "mlp", "mlp"], "wd": [0.1, 1.0, 0.1, 0.1]})
    links = plot_links(table, runs, tmp_path)
    assert [n for n, _ in links["llama"]] == [f"{k}_llama.png" for k in PLOT_KINDS + WD_PLOT_KINDS]
    assert [h for _, h in links["mlp"]] == [f"plots/{k}_mlp.png" for k in PLOT_KINDS]


def test_the_pages_script_sorts_in_chromium(tmp_path, board):
    """Click the llama table's drift header twice: ascending, then descending, the empty drift last both times;
    the recipe order is written into the title, read back from the DOM headless Chromium dumps."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no chromium on PATH: the page's script is not run")
    page = (board["out"] / "lb.html").read_text()
    probe = """<script>(function () {
      var t = Array.prototype.filter.call(document.querySelectorAll("h2"), function (h) {
        return h.textContent.indexOf("Workload: llama") === 0; })[0].nextElementSibling.nextElementSibling
        .querySelector("table");
      var heads = Array.prototype.map.call(t.tHead.rows[0].cells, function (c) { return c.textContent; });
      var drift = heads.indexOf("drift (oct/doubling)"), recipe = heads.indexOf("recipe");
      var button = t.tHead.rows[0].cells[drift].querySelector("button"), out = [];
      function order() { return Array.prototype.map.call(t.tBodies[0].rows, function (r) {
        return r.cells[recipe].getAttribute("data-sort"); }).join(","); }
      button.click(); out.push(order(), t.tHead.rows[0].cells[drift].getAttribute("aria-sort"));
      button.click(); out.push(order(), t.tHead.rows[0].cells[drift].getAttribute("aria-sort"));
      document.title = "SORTED|" + out.join("|");
    })();</script>"""
    path = tmp_path / "probe.html"
    path.write_text(page.replace("</body>", probe + "</body>"))
    res = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", path.as_uri()],
                         capture_output=True, text=True, timeout=60)
    title = re.search(r"<title>SORTED\|(.*?)</title>", res.stdout)
    assert title, res.stderr[-2000:]
    asc, asc_state, desc, desc_state = title[1].split("|")
    csv = read_table(board["out"] / "lb.csv")
    drifts = csv[csv["scope"] == "llama"].set_index("recipe")["drift"].round(2)  # as the cells show them
    assert drifts.isna().sum() == 1
    known = drifts.dropna()
    up = list(known.sort_values(kind="stable").index) + list(drifts[drifts.isna()].index)
    assert asc_state == "ascending" and desc_state == "descending"
    assert asc.split(",") == up, (asc, drifts)
    assert desc.split(",")[-1] == up[-1] and sorted(known, reverse=True) == [known[r] for r in desc.split(",")[:-1]]


@pytest.mark.parametrize("n_wds", [2, 5])
def test_a_wd_sweep_shows_its_joint_provenance_and_its_wd_plots(tmp_path, n_wds):
    """A sweep of two wds has a scope per wd, of five one joint lr x wd scope (scopes.py). A workload row stands
    on its scope's runs, a row of the weight-decay transfer table on the runs at every wd (the (lr, wd) are tuned
    jointly): here the largest wd's runs came from another bundle. Both sections link the wd plots."""
    def surface(drift: float, wd: float):
        def f(w: int, x: float, s: int) -> float:
            v = -4.0 + drift * math.log2(w / 64) + 0.05 * s
            return 2.3 - 0.1 * math.log2(w / 32) + 0.1 * (x + 5.2) ** 2 + 0.05 * (math.log2(wd) - v) ** 2
        return f

    wds = (2.0**-6, 2.0**-5, 2.0**-4, 2.0**-3, 2.0**-2) if n_wds == 5 else (2.0**-5, 2.0**-3)
    runs = pd.concat([runs_of({"a": surface(0.0, wd), "b": surface(1.0, wd)}, workload="mlp", wd=wd)
                      .assign(bundle=LAB_B if wd == wds[-1] else LAB_A) for wd in wds], ignore_index=True)
    write_metrics(runs, tmp_path, n_boot=50)
    t = {n: read_table(tmp_path / f"{n}.csv") for n in ("transfer", "seed_scores", "regime", "seed_scores_joint")}
    write_leaderboard(t["transfer"], runs, tmp_path / "lb", seed_scores=t["seed_scores"], regime=t["regime"],
                      joint_scores=t["seed_scores_joint"])
    csv = read_table(tmp_path / "lb.csv")
    rows = csv[csv["scope"] != "overall"]
    want = [f"{LAB_A}; {LAB_B}" if pd.isna(wd) else LAB_B if wd == wds[-1] else LAB_A for wd in rows["wd"]]
    assert rows["bundles"].tolist() == want and rows["wd"].isna().all() == (n_wds == 5)
    page = Page.of((tmp_path / "lb.html").read_text())
    wd_section = next(s for s in page.sections if s["title"] == "Weight-decay transfer: mlp")
    assert wd_section["links"] == [f"plots/{k}_mlp.png" for k in WD_PLOT_KINDS for _ in (0, 1)]
    workloads = [s for s in page.sections if s["title"].startswith("Workload: mlp")]
    assert len(workloads) == (1 if n_wds == 5 else 2)
    for s in [wd_section, *workloads]:
        if s is not wd_section:
            assert s["links"] == [f"plots/{k}_mlp.png" for k in PLOT_KINDS + WD_PLOT_KINDS for _ in (0, 1)]
        every_wd = s is wd_section or n_wds == 5
        labels = [LAB_A, LAB_B] if every_wd else [LAB_B] if f"wd {wds[-1]:g})" in s["title"] else [LAB_A]
        for row in s["tables"][0]["rows"]:
            text = row[-1]["text"]
            assert f"runs: {len(runs) // (2 if every_wd else 2 * n_wds)}" in text, (s["title"], text)
            assert ("every positive wd" in text) == every_wd and [b for b in (LAB_A, LAB_B) if b in text] == labels


def test_a_row_without_losses_by_scale_shows_no_nan(tmp_path, board):
    t = dict(board["tables"])
    t["transfer"] = t["transfer"].copy()
    t["transfer"]["transferred_by_scale"] = np.nan  # e.g. a recipe with no transferred loss at some scale
    write_leaderboard(t["transfer"], board["runs"], tmp_path / "lb", seed_scores=t["seed_scores"], regime=t["regime"])
    for name in ("lb.md", "lb.html"):
        assert not re.search(r"\bnan\b", (tmp_path / name).read_text(), re.IGNORECASE), name
