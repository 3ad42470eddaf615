"""The README's plugin example, for real: pip installs `examples/my-recipes`, after which its recipe
is listed by `transferbench recipes`, trains, and appears on the leaderboard with its distribution."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    res = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    return res


def test_example_plugin_installs_lists_trains_and_ranks(tmp_path: Path) -> None:
    site = tmp_path / "site"
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    run(["-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--target", str(site),
         str(REPO / "examples" / "my-recipes")], env)

    out = run(["-m", "transferbench", "recipes", "--json"], env).stdout
    listed = {r["name"]: r for r in json.loads(out)["recipes"]}
    assert listed["mup-half-wd"]["distribution"] == "my-recipes"
    assert listed["mup-half-wd"]["version"] == "0.1.0"

    runs = tmp_path / "runs"
    for width in (16, 32):
        run(["-m", "transferbench", "train", "--workload", "mlp", "--recipe", "mup-half-wd", "--width", str(width),
             "--base-width", "16", "--log2-lr", "-8", "-6", "-4", "--wd", "0.2", "--steps", "5", "--batch-size", "8",
             "--eval-batches", "1", "--out", str(runs / f"w{width}" / "lr{log2_lr}")], env)
    record = json.loads((runs / "w32" / "lr-6" / "record.json").read_text())
    assert record["recipe"]["distribution"] == "my-recipes"
    hidden = [g for g in record["param_groups"] if g["role"] == "hidden"]
    assert hidden and all(abs(g["weight_decay"] - 0.1) < 1e-12 and abs(g["lr"] - 2**-7) < 1e-12 for g in hidden)

    tables = tmp_path / "tables"
    run(["-m", "transferbench", "aggregate", "--runs-dir", str(runs), "--out-dir", str(tables)], env)
    run(["-m", "transferbench", "metrics", "--tables", str(tables), "--n-boot", "50"], env)
    run(["-m", "transferbench", "leaderboard", "--tables", str(tables), "--out", str(tmp_path / "board")], env)
    board = (tmp_path / "board.md").read_text()
    assert "mup-half-wd" in board and "my-recipes" in board and "2203.03466" in board
