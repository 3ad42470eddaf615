"""docs/extending.md's workload plugin, for real: pip installs `examples/my-workload`, after which its workload
is listed by `transferbench workloads` with its distribution, trains through the DAG on a profile of its own
(the smoke profile's shape, cut to that workload) and is ranked on the leaderboard. Nothing of this
repository names it: the entry point is the whole registration."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SMOKE = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())

pytestmark = pytest.mark.slow


def run(args: list[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    res = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=900, cwd=cwd)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
    return res


def profile() -> dict:
    """The smoke profile's settings, with the plugin's workload as its only one."""
    keep = ("device", "threads", "sweep_per_job", "lr_search", "lr_refine", "seeds")
    return {**{k: SMOKE[k] for k in keep}, "profile": "plugin", "results_dir": "results",
            "recipes": ["standard", "mup", "mup-independent-wd"],
            "workloads": {"sines": {"widths": [16, 32], "base_width": 16, "log2_lrs": [-8, -6, -4], "wds": [0.1],
                                    "settings": {"steps": 40, "eval_batches": 1, "diag_points": 2,
                                                 "coord_steps": 3}}}}


def test_example_workload_installs_lists_trains_through_the_dag_and_ranks(tmp_path: Path) -> None:
    site = tmp_path / "site"
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    run(["-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--target", str(site),
         str(REPO / "examples" / "my-workload")], env)

    listed = json.loads(run(["-m", "transferbench", "workloads", "--json"], env).stdout)
    rows = {r["name"]: r for r in listed["workloads"]}
    assert rows["sines"]["distribution"] == "my-workload" and rows["sines"]["version"] == "0.1.0"
    assert list(rows)[:3] == ["llama", "resnet", "mlp"] and not listed["problems"]

    work = tmp_path / "work"
    work.mkdir()
    (work / "plugin.yaml").write_text(yaml.safe_dump(profile()))
    res = run(["-m", "snakemake", "-s", str(REPO / "Snakefile"), "--nolock", "--cores", "2", "--configfile",
               "plugin.yaml", "-p"], env, cwd=work)
    assert "train_sines" in res.stdout + res.stderr  # the rule the spec made
    out = work / "results"
    runs = pd.read_csv(out / "tables" / "runs.csv")
    assert set(runs["workload"]) == {"sines"} and set(runs["width"]) == {16, 32}
    summary = json.loads((work / runs["run_dir"].iloc[0] / "record.json").read_text())["summary"]
    assert summary["throughput_unit"] == "samples/s" and summary["flops_formula"].startswith("6*(d + depth")
    assert (out / "plots" / "lr_sweep_sines.png").stat().st_size > 1000
    board = pd.read_csv(out / "leaderboard.csv")
    mine = board[board["workload"] == "sines"]
    assert set(mine["recipe"]) == {"standard", "mup", "mup-independent-wd"}
    ranks = [c for c in mine.columns if "rank" in c]
    assert ranks and mine[ranks].notna().any(axis=None), mine
    assert "sines" in (out / "leaderboard.md").read_text()
