"""The Snakemake DAG: bad profiles are rejected before any job runs, `snakemake --lint` is clean,
the grid expands as configured, a job that fails half way keeps its finished records, and the whole
smoke profile runs end to end, from any directory, with a results directory whose name needs quoting."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from transferbench.config import ConfigError
from transferbench.config.grid import jobs, lr_refine
from transferbench.config.profile import check_profile
from transferbench.search import fine_lattice

REPO = Path(__file__).resolve().parents[1]
SMOKE = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def snakemake(args: list[str], cwd: Path, timeout: int = 900, env: dict[str, str] | None = None
              ) -> subprocess.CompletedProcess:
    # --nolock: the test may run beside a real `snakemake` in the same checkout
    return subprocess.run([*SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--nolock", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, env=env)


def expected_counts(profile: dict) -> tuple[int, int]:
    """(sweep lines, runs of a full grid) of a profile, counted from its own lists (no hard-coded counts)."""
    lines = runs = 0
    for spec in profile["workloads"].values():
        n = len(spec.get("recipes") or profile["recipes"]) * len(spec["widths"]) * len(spec["wds"])
        lines, runs = lines + n, runs + n * len(spec["log2_lrs"]) * len(spec.get("seeds") or profile["seeds"])
    return lines, runs


GRID = {**SMOKE, "lr_search": "grid"}
LINES, RUNS = expected_counts(GRID)


def test_grid_expands_every_workload_recipe_width_and_lr() -> None:
    all_jobs = jobs(GRID)
    assert len(all_jobs) == LINES == (5 + 5 + 8) * 2  # (recipes per workload) x widths: one line per job
    records = [r for j in all_jobs for r in j.records]
    assert len(records) == len(set(records)) == RUNS
    job = next(j for j in all_jobs if j.workload == "llama" and j.recipe == "sqrt-d" and j.width == 32)
    cmd = job.command()
    assert cmd.startswith("python -m transferbench train --workload llama --recipe sqrt-d --width 32")
    assert "--seed 0 --log2-lr -8 -6 -4" in cmd and "--seq-len 32" in cmd and "--lr-search" not in cmd
    per_run = jobs({**GRID, "sweep_per_job": False})
    assert len(per_run) == len(records)
    assert sorted(r for j in per_run for r in j.records) == sorted(records)
    # one manifest per job, the job's only declared output, beside its runs
    assert job.manifest == "results-smoke/runs/llama/sqrt-d/w32_wd0.1/job.json"
    assert (f"--out 'results-smoke/runs/llama/sqrt-d/w32_wd0.1_s{{seed}}/lr{{log2_lr}}' --manifest {job.manifest}"
            in cmd)
    one = next(j for j in per_run if j.workload == "mlp" and j.width == 32 and j.log2_lrs == (-6.0,))
    assert one.manifest == f"results-smoke/runs/{one.line}_s0/lr-6/job.json" and one.records == [
        f"results-smoke/runs/{one.line}_s0/lr-6/record.json"]
    for grid in (all_jobs, per_run):
        assert len({j.manifest for j in grid}) == len({j.log for j in grid}) == len(grid)
        # a fixed grid: every line runs at once, llama's once its corpus is prepared
        corpus = ("results-smoke/data/repo-text/manifest.json",)
        assert all(j.needs == (corpus if j.workload == "llama" else ()) for j in grid)


def test_an_adaptive_line_reads_the_narrower_and_the_tuning_width() -> None:
    profile = copy.deepcopy(SMOKE)
    profile["workloads"]["mlp"]["widths"] = [16, 32, 64]
    profile["workloads"]["mlp"]["log2_lr_start"] = -6
    by = {(j.workload, j.recipe, j.width): j for j in jobs(profile)}
    base, mid, wide = (by["mlp", "mup", w] for w in (16, 32, 64))
    assert base.needs == () and mid.needs == (base.manifest,) and wide.needs == (mid.manifest, base.manifest)
    assert "--lr-search adaptive" in wide.command() and "--widest" in wide.command()
    assert "--widest" not in mid.command() and f"--previous {mid.manifest} --tuning {base.manifest}" in wide.command()
    assert "--log2-lr-start -6" in base.command()
    with pytest.raises(ConfigError, match="sweep_per_job: true"):
        check_profile({**profile, "sweep_per_job": False})
    profile["workloads"]["mlp"]["log2_lr_start"] = -2
    with pytest.raises(ConfigError, match=r"workloads.mlp.log2_lr_start: -2 is not a number within log2_lrs"):
        check_profile(profile)


def test_the_rules_spell_no_run_path() -> None:
    """grid.Job is the one place that spells where runs, manifests and train logs live."""
    for path in [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]:
        text = re.sub(r"#.*", "", path.read_text())  # comments may say what the files are
        for fragment in ("runs/", "record.json", "job.json", "logs/train", "lr{"):
            assert fragment not in text, f"{path.name} spells {fragment!r}: take it from grid.Job"


# A recipe that crashes at the second run of a sweep line while FLAG exists: a stand-in for an
# out-of-memory error or a lost node. It looks for the line's first record, so that checks made before
# the first run (which may resolve the recipe for every lr) pass, and the crash comes at run time.
CRASHY = """
import os

from transferbench.recipes import Multipliers, Recipe


class CrashAtSecondRun(Recipe):
    name = "crash-at-second-run"
    summary = "standard, but crashes once the first record of its line exists"
    citation = "arXiv:2401.00001"

    def multipliers(self, role, width_mult):
        if os.path.exists(FLAG) and os.path.exists(FIRST):
            raise RuntimeError("simulated crash at the second run")
        return Multipliers(init_std=1.0, lr=1.0, wd=0.0 if role == "vector" else 1.0)
"""


def test_a_job_that_fails_at_its_second_lr_keeps_the_first_record(tmp_path: Path) -> None:
    """Records are not declared outputs, so Snakemake does not delete them when the job fails; the
    rerun skips the finished run (same config hash) and only then writes the job's manifest."""
    from test_registry import make_dist

    profile = {k: v for k, v in GRID.items() if k not in ("workloads", "invariance")}
    profile.update(recipes=["crash-at-second-run"], results_dir=str(tmp_path / "results"))
    mlp = {**SMOKE["workloads"]["mlp"], "widths": [16], "log2_lrs": [-8, -6]}
    mlp.pop("recipes")
    profile["workloads"] = {"mlp": mlp}
    (tmp_path / "one.yaml").write_text(yaml.safe_dump(profile))
    [job] = jobs(profile)
    first, second = map(Path, job.records)
    flag = tmp_path / "crash"
    flag.touch()
    make_dist(tmp_path, "crashy-recipes", "crashy", f"FLAG, FIRST = {str(flag)!r}, {str(first)!r}\n{CRASHY}",
              {"crash-at-second-run": "crashy:CrashAtSecondRun"})
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    args = [job.manifest, "--cores", "1", "--configfile", str(tmp_path / "one.yaml")]  # the target first
    res = snakemake(args, cwd=tmp_path, env=env)
    assert res.returncode != 0, res.stdout + res.stderr
    assert "simulated crash at the second run" in Path(job.log).read_text(), res.stdout + res.stderr
    assert first.exists() and not second.exists() and not Path(job.manifest).exists()
    done = first.stat().st_mtime_ns

    flag.unlink()
    res = snakemake(args, cwd=tmp_path, env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert first.stat().st_mtime_ns == done and "already done" in Path(job.log).read_text()
    manifest = json.loads(Path(job.manifest).read_text())
    hashes = [json.loads(p.read_text())["config_hash"] for p in (first, second)]
    assert [(r["record"], r["config_hash"]) for r in manifest["records"]] == list(zip(job.records, hashes))


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
    profile = {k: v for k, v in SMOKE.items() if k not in ("workloads", "invariance")}
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
    # Run from outside the checkout, into a relative results directory whose name needs quoting in a
    # shell (a space) and is not ASCII: an unquoted path in any rule's command would write elsewhere.
    profile = copy.deepcopy(SMOKE)
    profile["results_dir"] = "results smoke ü"
    # the corpus is the checkout's own text; its paths are relative to the working directory, so absolute here
    corpus = profile["data"]["repo-text"]
    corpus["files"] = [str(REPO / f) for f in corpus["files"]]
    (tmp_path / "smoke.yaml").write_text(yaml.safe_dump(profile, allow_unicode=True), encoding="utf-8")
    res = snakemake(["--cores", "2", "--configfile", str(tmp_path / "smoke.yaml"), "-p"], cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
    out = tmp_path / "results smoke ü"
    assert "python -m transferbench train --workload" in res.stdout + res.stderr  # -p shows the command
    assert {p.name for p in tmp_path.iterdir()} == {out.name, ".snakemake", "smoke.yaml"}
    assert "python -m transferbench prepare-data --kind text" in res.stdout + res.stderr
    manifests = [m for m in (out / "runs").rglob("job.json") if "invariance" not in m.parts]
    assert len(manifests) == LINES  # one manifest per sweep line
    assert len(list((out / "runs" / "invariance").rglob("job.json"))) == 3  # the study's width x k
    runs = pd.read_csv(out / "tables" / "runs.csv")
    listed = [r for m in manifests for r in json.loads(m.read_text())["records"]]
    # the adaptive search trained what its manifests list, not the grid of its lattice refined at lr_refine
    fine = {**SMOKE, "workloads": {k: {**v, "log2_lrs": list(fine_lattice(tuple(v["log2_lrs"]), lr_refine(SMOKE)))}
                                   for k, v in SMOKE["workloads"].items()}}
    assert len(runs) == len(listed) < expected_counts(fine)[1]
    assert {str(Path(r["record"]).parent) for r in listed} == set(runs["run_dir"])
    # At the base width (m = 1) every recipe trains one model (docs/design.md §3): each (lr, seed) is trained
    # once, by one of them or by the invariance study's run of the same training, and shared by the rest.
    base = runs[runs["width"] == runs["base_width"]]
    for key, same in base.groupby(["workload", "log2_lr", "seed"]):
        assert same["trainer_fingerprint"].nunique() == 1 and same["eval_loss"].nunique() == 1, key
        assert same["shared_with"].isna().sum() <= 1 and same["shared_with"].nunique() == 1, key
    assert base.groupby("workload")["recipe"].nunique().to_dict() == {"llama": 5, "resnet": 5, "mlp": 8}
    assert runs["trainer_fingerprint"].nunique() < len(runs)
    # llama trained on the prepared corpus, and every record names the manifest it read
    manifest = out / "data" / "repo-text" / "manifest.json"
    assert json.loads(manifest.read_text())["tokenizer"]["kind"] == "bpe"
    one = tmp_path / runs.loc[runs["workload"] == "llama", "run_dir"].iloc[0] / "record.json"
    llama = json.loads(one.read_text())["data"]
    assert llama["kind"] == "tokens" and llama["manifest"] == "results smoke ü/data/repo-text/manifest.json"
    for name in ("optima.csv", "transfer.csv", "coord_check.csv"):
        assert (out / "tables" / name).stat().st_size > 0
    for kind in ("lr_sweep", "optimal_lr", "transferred", "singular_values", "coord_check"):
        for w in ("llama", "resnet", "mlp"):
            assert (out / "plots" / f"{kind}_{w}.png").stat().st_size > 1000
    # recipe instances are rows of their own; p = 0, 0.5 and 1 are mup, sqrt-d and mup-independent-wd's trainings
    inst = runs[runs["recipe"].str.startswith("wd-power")]
    assert set(inst["recipe"]) == {"wd-power[p=0]", "wd-power[p=0.5]", "wd-power[p=1]"}
    assert all("wd-power@p=" in d for d in inst["run_dir"])
    both = runs.merge(runs, on=["workload", "width", "log2_lr", "seed"], suffixes=("", "_twin"))
    twins = (("wd-power[p=0]", "mup"), ("wd-power[p=0.5]", "sqrt-d"), ("wd-power[p=1]", "mup-independent-wd"))
    for label, twin in twins:
        pair = both[(both["recipe"] == label) & (both["recipe_twin"] == twin)]
        assert len(pair) and (pair["trainer_fingerprint"] == pair["trainer_fingerprint_twin"]).all()
    transfer = pd.read_csv(out / "tables" / "transfer.csv")
    assert {"sv_exponent", "sv_exponent_lo", "sv_exponent_hi", "sv_exponent_fan", "tau"} <= set(transfer.columns)
    fan = transfer.set_index(["workload", "recipe"])["sv_exponent_fan"]
    assert fan[("mlp", "wd-power[p=0.5]")] == pytest.approx(0.0) and fan[("llama", "standard")] == pytest.approx(0.75)
    assert transfer["tau"].notna().all()
    p_rows = pd.read_csv(out / "tables" / "wd_exponent.csv")
    assert list(p_rows["p"]) == [0.0, 0.5, 1.0] and len(pd.read_csv(out / "tables" / "wd_exponent_best.csv")) == 1
    study = pd.read_csv(out / "tables" / "invariance.csv")
    # the study's runs stay out of runs.csv (its lrs may coincide with the refined sweep's, so check the directories)
    assert sorted(study["log2_k"].unique()) == [-1, 0, 1] and not runs["run_dir"].str.contains("invariance").any()
    assert set(runs["run_dir"]).isdisjoint(study["run_dir"] if "run_dir" in study else [])
    for name in ("sv_exponent", "wd_exponent", "invariance_mlp"):
        assert (out / "plots" / f"{name}.png").stat().st_size > 1000
    board = (out / "leaderboard.md").read_text()
    assert board.startswith("# transferbench leaderboard: profile smoke") and "wd-power[p=0.5]" in board
    assert pd.read_csv(out / "leaderboard.csv")["profile"].eq("smoke").all()
    for recipe, arxiv in [("standard", "2510.19093"), ("mup", "2203.03466"),
                          ("mup-independent-wd", "2510.19093"), ("warmup-replacement", "2510.19093"),
                          ("sqrt-d", "2510.15262")]:
        assert recipe in board and arxiv in board
    assert (out / "leaderboard.html").read_text().count("<table") >= 4
    # nothing left to do: a second invocation runs no job
    again = snakemake(["--cores", "2", "--configfile", str(tmp_path / "smoke.yaml"), "-n"], cwd=tmp_path)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr
    # the self-contained report holds every plot and the leaderboard, with their captions
    report = tmp_path / "report.html"
    res = snakemake(["--configfile", str(tmp_path / "smoke.yaml"), "--report", str(report)], cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    page = report.read_text()
    for kind in ("lr_sweep", "optimal_lr", "transferred", "singular_values", "coord_check"):
        assert f"{kind}_llama.png" in page and f"{kind}_mlp.png" in page
    for name in ("leaderboard.md", "leaderboard.html", "runs.csv", "optima.csv", "transfer.csv"):
        assert name in page, name
    first_line = (REPO / "workflow" / "report" / "optimal_lr.rst").read_text().splitlines()[0]
    assert first_line in page  # captions are embedded as rendered text
    shutil.rmtree(out / "runs")
