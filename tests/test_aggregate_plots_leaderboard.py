"""Records -> runs/coord tables -> plots and leaderboard, on small hand-written record.json files
(docs/record.md) and hand-made tables; partial data must still plot; the analysis never imports torch."""

from __future__ import annotations

import hashlib
import json
import math
import re
import subprocess
import sys
from html import escape as html_escape
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from transferbench.aggregate import (
    COORD_COLUMNS,
    RUN_COLUMNS,
    RecordError,
    aggregate,
    best_loss_by_workload,
    read_table,
)
from transferbench.board_html import PLOT_KINDS
from transferbench.board_render import SEED_NOTE, TIE_NOTE
from transferbench.config import config_hash as hash_of
from transferbench.leaderboard import CSV_COLUMNS, sweep_hash, write_leaderboard
from transferbench.metrics import compute_metrics, write_metrics
from transferbench.plots import make_plots

KOS25 = "@article{kosson2025, title = {Weight Decay may matter more than muP}, journal = {arXiv:2510.19093}}"


def make_record(recipe="standard", width=64, log2_lr=-6.0, seed=0, eval_loss=2.5, diverged=False,
                arxiv="2510.19093", citation=KOS25, config_hash=None, version="0.1.0"):
    """A record as the trainer writes it (its config hash computed from its config unless given, as
    aggregate's validation demands); NaN losses become JSON null."""
    snap = lambda step, sv: {  # noqa: E731
        "step": step, "matrices": {"blocks.0.attn.q": {"top_sv": sv, "rms": 0.1, "rel_update": 0.01}},
        "sublayer_gain": {"blocks.0.attn": 1.1},
        "means": {"top_sv": sv, "log2_top_sv": math.log2(sv), "rms": 0.1, "rel_update": 0.01,
                  "sublayer_gain": 1.1},
    }
    rec = {
        "schema_version": 2,
        "config": {"workload": "llama", "recipe": recipe, "recipe_options": {}, "width": width,
                   "base_width": 64, "width_mult": width / 64, "depth": 2, "log2_lr": log2_lr,
                   "lr": 2.0**log2_lr, "wd": 0.1, "seed": seed, "steps": 40, "batch_size": 4},
        "config_hash": config_hash,
        "recipe": {"name": recipe, "summary": "s", "citation": citation, "arxiv": arxiv,
                   "distribution": "transferbench", "version": version, "options": {}},
        "provenance": {"package_version": "0.1.0", "git_commit": "abc123", "torch_version": "2.5",
                       "python_version": "3.11", "device": "cpu", "threads": 1,
                       "recipe_distribution": "transferbench", "recipe_version": version},
        "data": {"kind": "markov", "entropy_rate": 1.7, "optimal_loss": 1.8},
        "output_mult": 1.0,
        "param_groups": [],
        "summary": {"init_loss": 5.5, "final_loss": None if diverged else eval_loss,
                    "eval_loss": None if diverged else eval_loss, "diverged": diverged,
                    "diverged_step": 7 if diverged else None, "steps_completed": 7 if diverged else 40,
                    "wall_time": 1.5, "throughput": 100.0, "throughput_unit": "tokens/s"},
        "curve": {"step": [0, 1], "loss": [5.5, 5.0], "lr_mult": [0.1, 0.2]},
        "diagnostics": [snap(20, 2.0), snap(40, 8.0)],
        "coord_check": {"step": [0, 1, 2], "logits_rms": [0.0, 0.5, 0.7], "hidden_rms": [1.0, 1.1, 1.2]},
    }
    rec["config_hash"] = config_hash or hash_of(rec["config"])
    return rec


def write(tmp: Path, name: str, rec: dict) -> Path:
    path = tmp / name / "record.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(rec, indent=1, allow_nan=False))
    return path


def test_aggregate_writes_runs_and_coord_tables(tmp_path):
    paths = [
        write(tmp_path, "a", make_record(width=128, log2_lr=-5.0)),
        write(tmp_path, "b", make_record(recipe="mup", arxiv=None, citation="Yang et al., arXiv:2203.03466",
                                         version="0.10")),
        write(tmp_path, "c", make_record(width=64, log2_lr=-3.0, diverged=True, arxiv="2401.10000")),
    ]
    runs = aggregate(paths, tmp_path / "tables")
    assert list(runs.columns) == RUN_COLUMNS
    assert list(runs[["recipe", "width", "log2_lr"]].itertuples(index=False, name=None)) == [
        ("mup", 64, -6.0), ("standard", 64, -3.0), ("standard", 128, -5.0)]  # sorted
    div = runs[runs["diverged"]].iloc[0]
    assert math.isnan(div["eval_loss"]) and div["init_loss"] == 5.5 and div["diverged_step"] == 7
    assert runs.loc[runs["recipe"] == "mup", "recipe_arxiv"].item() == "2203.03466"  # from the citation
    assert runs["top_sv"].eq(8.0).all() and runs["log2_top_sv"].eq(3.0).all()  # last snapshot's means
    assert runs["sublayer_gain"].eq(1.1).all() and runs["run_dir"].str.endswith(("a", "b", "c")).all()

    back = read_table(tmp_path / "tables" / "runs.csv")  # text columns survive the CSV round trip
    assert list(back.columns) == RUN_COLUMNS and back["diverged"].dtype == bool
    assert set(back["recipe_arxiv"]) == {"2203.03466", "2401.10000", "2510.19093"}
    assert set(back["config_hash"]) == set(runs["config_hash"]) and "0.10" in set(back["recipe_version"])
    (tmp_path / "t.csv").write_text("config_hash,recipe_arxiv\n00000000000000a1,2401.10000\n")
    assert read_table(tmp_path / "t.csv").iloc[0].tolist() == ["00000000000000a1", "2401.10000"]

    coord = read_table(tmp_path / "tables" / "coord_check.csv")
    assert list(coord.columns) == COORD_COLUMNS and len(coord) == 3 * 2 * 3
    assert set(coord["quantity"]) == {"logits_rms", "hidden_rms"}
    info = read_table(tmp_path / "tables" / "data_info.csv")
    assert info.query("key == 'entropy_rate'")["value"].item() == 1.7
    assert best_loss_by_workload(tmp_path / "tables" / "data_info.csv") == {"llama": 1.8}  # optimal_loss


def test_a_bad_record_raises_an_error_naming_the_file(tmp_path):
    good = write(tmp_path, "good", make_record())
    broken = tmp_path / "broken" / "record.json"
    broken.parent.mkdir()
    broken.write_text('{"schema_version": 1, "config": ')
    with pytest.raises(RecordError, match="broken"):
        aggregate([good, broken], tmp_path / "t")
    rec = make_record()
    del rec["summary"]
    with pytest.raises(RecordError, match="nosummary.*summary"):
        aggregate([write(tmp_path, "nosummary", rec)], tmp_path / "t")


# -- hand-made tables for plots and leaderboard ---------------------------------------------------------
RECIPES = {"standard": ("2510.19093", -1.3), "mup-independent-wd": ("2510.19093", 0.0),
           "sqrt-d": ("2510.15262", -0.3), "my-plugin": ("2401.00001", 0.5)}


GRID = tuple(np.arange(-9.0, -2.0))


def runs_table(widths=(32, 64, 128), lrs=GRID, seeds=(0, 1), recipes=RECIPES) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for recipe, (arxiv, drift) in recipes.items():
        for w in widths:
            for x in lrs:
                for s in seeds:
                    opt = -5.5 + drift * math.log2(w / 64)
                    # wider is better by 0.05 per doubling at each width's optimum (the regime's first check)
                    loss = 2.0 - 0.05 * math.log2(w / 64) + 0.1 * (x - opt) ** 2 + 0.01 * rng.standard_normal()
                    bad = loss > 5.0 or (recipe == "standard" and w == 128 and x >= -3)
                    rows.append({
                        "workload": "llama", "recipe": recipe, "width": w, "base_width": 64, "log2_lr": x,
                        "wd": 0.1, "seed": s, "init_loss": 5.0, "eval_loss": np.nan if bad else loss,
                        "diverged": bad, "log2_top_sv": 0.75 * math.log2(w) + 0.1 * x,
                        "config_hash": f"{len(rows):016x}", "package_version": "0.1.0",
                        "git_commit": "abc", "recipe_distribution": "my-dist" if recipe == "my-plugin" else
                        "transferbench", "recipe_version": "1.2" if recipe == "my-plugin" else "0.1.0",
                        "recipe_arxiv": arxiv,
                    })
    return pd.DataFrame(rows)


def coord_table(runs: pd.DataFrame) -> pd.DataFrame:
    keys = runs[["workload", "recipe", "width", "base_width", "log2_lr", "wd", "seed"]].drop_duplicates()
    rows = [{**k, "step": t, "quantity": q, "value": (0.0 if t == 0 and q == "logits_rms" else 1.0 + t)}
            for k in keys.to_dict("records") for t in range(3) for q in ("logits_rms", "hidden_rms")]
    return pd.DataFrame(rows)


def assert_pngs(paths: list[Path], n: int) -> None:
    assert len(paths) == n
    for p in paths:
        data = Path(p).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, p


def test_plots_full_data(tmp_path):
    runs = runs_table()
    optima, transfer = compute_metrics(runs, n_boot=50)
    paths = make_plots(runs, optima, transfer, coord_table(runs), tmp_path, best_loss={"llama": 1.9})
    assert_pngs(paths, 4)
    assert {p.name for p in paths} == {"lr_sweep_llama.png", "optimal_lr_llama.png",
                                       "singular_values_llama.png", "coord_check_llama.png"}


@pytest.mark.parametrize("case", ["all_diverged", "single_width", "single_seed", "single_lr", "no_coord"])
def test_plots_partial_data(tmp_path, case):
    kw = {"single_width": {"widths": (64,)}, "single_seed": {"seeds": (0,)},
          "single_lr": {"lrs": (-6.0,)}}.get(case, {})
    runs = runs_table(recipes={"standard": RECIPES["standard"], "sqrt-d": RECIPES["sqrt-d"]}, **kw)
    if case == "all_diverged":
        sel = runs["recipe"] == "sqrt-d"
        runs.loc[sel, ["eval_loss", "log2_top_sv"]] = np.nan
        runs.loc[sel, "diverged"] = True
    optima, transfer = compute_metrics(runs, n_boot=20)
    coord = None if case == "no_coord" else coord_table(runs)
    assert_pngs(make_plots(runs, optima, transfer, coord, tmp_path), 4)


def test_leaderboard_md_csv_html(tmp_path):
    runs = runs_table()
    _, transfer = compute_metrics(runs, n_boot=50)
    write_leaderboard(transfer, runs, tmp_path / "leaderboard", {"my-plugin": {"summary": "a toy plugin"}})
    md, html = (tmp_path / "leaderboard.md").read_text(), (tmp_path / "leaderboard.html").read_text()
    csv = read_table(tmp_path / "leaderboard.csv")
    for recipe, (arxiv, _) in RECIPES.items():
        assert recipe in md and recipe in html and recipe in set(csv["recipe"])
        assert f"https://arxiv.org/abs/{arxiv}" in md and f"https://arxiv.org/abs/{arxiv}" in html
        assert arxiv in set(csv["recipe_arxiv"])
    h = hashlib.sha256("\n".join(sorted(set(runs["config_hash"]))).encode()).hexdigest()[:12]
    assert sweep_hash(runs) == h
    for text in (md, html):
        assert "@misc{transferbench" in text and h in text and "0.1.0" in text and str(len(runs)) in text
    assert "a toy plugin" in md and md.count("| my-dist | 1.2 |") == 2  # overall and workload rows
    # Self-contained HTML: inline style and script, nothing fetched; the only sources are the plots beside it.
    assert "<style>" in html and "<script>" in html and "<script " not in html and "<link" not in html
    assert set(re.findall(r'src="([^"]*)"', html)) == {f"plots/{k}_llama.png" for k in PLOT_KINDS}
    # Both rankings side by side, every row in leaderboard.CSV_COLUMNS; the workload is in regime (wider is
    # better, optima resolved), so it is ranked overall too.
    assert list(csv.columns) == CSV_COLUMNS and "| llama | in regime |" in md
    overall = csv[csv["scope"] == "overall"].sort_values(["rank_transferred", "transferred_mean"])
    assert overall["recipe"].iloc[0] == "mup-independent-wd" and overall["recipe"].iloc[-1] == "standard"
    wl = csv[csv["scope"] == "llama"]  # as written: by rank, then by mean
    assert wl["rank_transferred"].is_monotonic_increasing and wl["transferred_mean"].is_monotonic_increasing
    assert ((wl["transferred_lo"] <= wl["transferred_mean"]) & (wl["transferred_mean"] <= wl["transferred_hi"])).all()
    # two seeds: intervals and a decided confidence set; its members share rank 1, the others rank after it
    for name in ("transferred", "regret"):
        tied = wl[f"in_set_{name}"].astype(bool)
        assert wl["set_decided"].all() and tied.any()
        assert (wl.loc[tied, f"rank_{name}"] == 1).all() and (wl.loc[~tied, f"rank_{name}"] > tied.sum()).all()
    by_regret = wl.set_index("recipe")
    assert by_regret.loc["standard", "rank_regret"] == 4 and not by_regret.loc["standard", "in_set_regret"]
    assert by_regret["regret_mean"].idxmin() == "mup-independent-wd"
    assert SEED_NOTE not in md and TIE_NOTE in md
    assert ("| =1 |" in md) == (wl["in_set_transferred"].astype(bool).sum() > 1)


def test_leaderboard_flags_a_single_seed_sweep(tmp_path):
    """One seed: in-sample numbers, no CI, no confidence set (every recipe plainly rank 1, never "=1"), the
    seed note; built from the tables as the CLI reads them back (empty cells are NaN, never printed)."""
    runs = runs_table(seeds=(0,))
    write_metrics(runs, tmp_path / "tables", n_boot=20)
    transfer, seed_scores, regime = (read_table(tmp_path / "tables" / f"{n}.csv")
                                     for n in ("transfer", "seed_scores", "regime"))
    write_leaderboard(transfer, runs, tmp_path / "leaderboard", seed_scores=seed_scores, regime=regime)
    md = (tmp_path / "leaderboard.md").read_text()
    assert SEED_NOTE in md and html_escape(SEED_NOTE) in (tmp_path / "leaderboard.html").read_text()
    csv = read_table(tmp_path / "leaderboard.csv")
    assert not csv["crossfit"].dropna().astype(bool).any() and not csv["set_decided"].astype(bool).any()
    assert csv[["transferred_lo", "transferred_hi", "regret_lo", "regret_hi"]].isna().all().all()
    assert (csv["rank_transferred"] == 1).all() and "| =1 |" not in md
    assert "nan" not in md.lower().replace("nason", "")  # Hansen, Lunde & Nason in the tie note


def test_end_to_end_from_records(tmp_path):
    paths = []
    for recipe in ("standard", "mup"):
        for w in (32, 64):
            for x in (-8.0, -7.0, -6.0, -5.0, -4.0):
                loss = 2.0 + 0.1 * (x + 6.0 + (math.log2(w / 64) if recipe == "standard" else 0)) ** 2
                diverged = x == -4.0 and w == 64
                rec = make_record(recipe=recipe, width=w, log2_lr=x, eval_loss=loss, diverged=diverged)
                paths.append(write(tmp_path / "runs", f"{recipe}-{w}-{x}", rec))
    aggregate(paths, tmp_path / "tables")
    runs = read_table(tmp_path / "tables" / "runs.csv")
    optima, transfer = compute_metrics(runs, n_boot=20)
    assert transfer.set_index("recipe").loc["mup", "drift"] == pytest.approx(0.0, abs=1e-9)
    coord = read_table(tmp_path / "tables" / "coord_check.csv")
    assert_pngs(make_plots(runs, optima, transfer, coord, tmp_path / "fig"), 4)
    write_leaderboard(transfer, runs, tmp_path / "lb" / "leaderboard")
    assert "arxiv.org/abs/2510.19093" in (tmp_path / "lb" / "leaderboard.md").read_text()


def test_analysis_modules_never_import_torch():
    """docs/design.md §8: the analysis stages and what the Snakefile imports (config, grid, registry) read
    records and tables only."""
    mods = ("aggregate", "metrics", "bootstrap", "plots", "leaderboard", "cli_analysis", "config", "config.grid",
            "recipes", "recipes.checked", "config.profile", "config.data_grid", "settings", "workloads",
            "workloads.llama", "workloads.resnet", "workloads.mlp", "validate", "runlock")
    code = ("import sys\n" + "".join(f"import transferbench.{m}\n" for m in mods)
            + "from transferbench.cli_analysis import settings_markdown\nsettings_markdown()\n"
            + "print(any(m == 'torch' or m.startswith('torch.') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
