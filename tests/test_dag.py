"""The Snakemake DAG: bad profiles are rejected before any job runs, `snakemake --lint` is clean,
the grid expands as configured, and the whole smoke profile runs end to end."""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from transferbench.config import ConfigError
from transferbench.grid import check_profile, jobs

REPO = Path(__file__).resolve().parents[1]
SMOKE = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def snakemake(args: list[str], cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    # --nolock: the test may run beside a real `snakemake` in the same checkout
    return subprocess.run([*SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--nolock", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def test_grid_expands_every_workload_recipe_width_and_lr() -> None:
    all_jobs = jobs(SMOKE)
    assert len(all_jobs) == 3 * 5 * 2  # workloads x recipes x widths (one sweep line per job)
    records = [r for j in all_jobs for r in j.records]
    assert len(records) == len(set(records)) == 3 * 5 * 2 * 3
    job = next(j for j in all_jobs if j.workload == "llama" and j.recipe == "sqrt-d" and j.width == 32)
    cmd = job.command()
    assert cmd.startswith("python -m transferbench train --workload llama --recipe sqrt-d --width 32")
    assert "--log2-lr -8 -6 -4" in cmd and "--seq-len 32" in cmd
    per_run = jobs({**SMOKE, "sweep_per_job": False})
    assert len(per_run) == len(records)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda c: c.update(recipes=["standard", "mu-p"]), "unknown recipe 'mu-p'"),
        (lambda c: c["workloads"]["mlp"].update(widths=[]), "workloads.mlp.widths"),
        (lambda c: c["workloads"]["llama"]["settings"].update(steps="ten"), "steps: expected int"),
        (lambda c: c["workloads"]["llama"]["settings"].update(stepz=3), "stepz: unknown setting"),
        (lambda c: c["workloads"]["llama"].update(widths=[24]), "head_dim"),
        (lambda c: c.update(recipe_options={"warmup-replacement": {"shape": "cosine"}}), "shape"),
    ],
)
def test_check_profile_names_the_offending_key(mutate, message: str) -> None:
    bad = copy.deepcopy(SMOKE)
    mutate(bad)
    with pytest.raises(ConfigError, match=message):
        check_profile(bad)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda c: c.update(recipes=["standard", "mu-p"]), "unknown recipe 'mu-p'"),
        (lambda c: c["workloads"]["mlp"].update(base_width="sixteen"), "sixteen"),
        (lambda c: c["workloads"]["mlp"].update(log2_lrs=[]), "log2_lrs"),
    ],
)
def test_snakemake_rejects_bad_config_before_running_anything(tmp_path: Path, mutate, message: str) -> None:
    bad = copy.deepcopy(SMOKE)
    mutate(bad)
    bad["results_dir"] = str(tmp_path / "out")
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    res = snakemake(["--cores", "1", "--configfile", str(tmp_path / "bad.yaml")], cwd=REPO)
    assert res.returncode != 0
    assert message in res.stdout + res.stderr
    assert not (tmp_path / "out").exists()


def test_a_profile_replaces_the_default_and_missing_records_are_retrained(tmp_path: Path) -> None:
    """A --configfile with only llama runs only llama (Snakemake would otherwise merge it into the default
    profile's resnet and mlp sweeps), and a results directory that holds tables but no records (a fresh
    clone with the committed reference results) trains every run rather than only redrawing the tables."""
    profile = {k: v for k, v in SMOKE.items() if k != "workloads"}
    profile["workloads"] = {"llama": SMOKE["workloads"]["llama"]}
    profile["results_dir"] = str(tmp_path / "results")
    (tmp_path / "llama.yaml").write_text(yaml.safe_dump(profile))
    tables = tmp_path / "results" / "tables"
    tables.mkdir(parents=True)
    for name in ("runs.csv", "coord_check.csv", "data_info.csv", "optima.csv", "transfer.csv", "optima_wd.csv"):
        (tables / name).write_text("committed\n")
    res = snakemake(["-n", "--configfile", str(tmp_path / "llama.yaml")], cwd=REPO)
    assert res.returncode == 0, res.stdout + res.stderr
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", res.stdout, re.MULTILINE))
    assert counts.get("train_llama") == str(len(jobs(profile))) == "10", counts
    assert "train_resnet" not in counts and "train_mlp" not in counts
    assert counts.get("aggregate") == "1", counts


def test_snakemake_lint_has_no_errors() -> None:
    res = snakemake(["--lint", "--configfile", str(REPO / "config" / "smoke.yaml")], cwd=REPO)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.slow
def test_smoke_profile_end_to_end(tmp_path: Path) -> None:
    profile = copy.deepcopy(SMOKE)
    profile["results_dir"] = str(tmp_path / "results")
    (tmp_path / "smoke.yaml").write_text(yaml.safe_dump(profile))
    res = snakemake(["--cores", "2", "--configfile", str(tmp_path / "smoke.yaml"), "-p"], cwd=REPO)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
    out = tmp_path / "results"
    assert "python -m transferbench train --workload" in res.stdout + res.stderr  # -p shows the command
    runs = pd.read_csv(out / "tables" / "runs.csv")
    assert len(runs) == 3 * 5 * 2 * 3
    for name in ("optima.csv", "transfer.csv", "coord_check.csv"):
        assert (out / "tables" / name).stat().st_size > 0
    for kind in ("lr_sweep", "optimal_lr", "singular_values", "coord_check"):
        for w in ("llama", "resnet", "mlp"):
            assert (out / "plots" / f"{kind}_{w}.png").stat().st_size > 1000
    board = (out / "leaderboard.md").read_text()
    for recipe, arxiv in [("standard", "2510.19093"), ("mup", "2203.03466"),
                          ("mup-independent-wd", "2510.19093"), ("warmup-replacement", "2510.19093"),
                          ("sqrt-d", "2510.15262")]:
        assert recipe in board and arxiv in board
    assert (out / "leaderboard.html").read_text().count("<table") >= 4
    # nothing left to do: a second invocation runs no job
    again = snakemake(["--cores", "2", "--configfile", str(tmp_path / "smoke.yaml"), "-n"], cwd=REPO)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr
    # the self-contained report holds every plot and the leaderboard, with their captions
    report = tmp_path / "report.html"
    res = snakemake(["--configfile", str(tmp_path / "smoke.yaml"), "--report", str(report)], cwd=REPO)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    page = report.read_text()
    for kind in ("lr_sweep", "optimal_lr", "singular_values", "coord_check"):
        assert f"{kind}_llama.png" in page and f"{kind}_mlp.png" in page
    for name in ("leaderboard.md", "leaderboard.html", "runs.csv", "optima.csv", "transfer.csv"):
        assert name in page, name
    first_line = (REPO / "workflow" / "report" / "optimal_lr.rst").read_text().splitlines()[0]
    assert first_line in page  # captions are embedded as rendered text
    shutil.rmtree(out / "runs")
