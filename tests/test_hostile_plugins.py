"""Hostile plugins, one table row each: a plugin that raises, exits, prints or returns nonsense is
named with its distribution and stops `train` with exit status 2 before any record is written;
`recipes --json` stays JSON on stdout and reports the plugins that cannot even be loaded; and a good
plugin installed beside all of them keeps working.

Every bad plugin is its own distribution in one directory on PYTHONPATH (entry points are found in
the .dist-info directories on sys.path), so each row also shows that one bad plugin harms no other.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import NamedTuple

import pytest
from test_registry import make_dist

BUILTINS = ("standard", "mup", "mup-independent-wd", "warmup-replacement", "sqrt-d")
# width 32 over base width 16: the recipe is asked at width multiplier 2, over 5 steps
TRAIN = ["--workload", "mlp", "--width", "32", "--base-width", "16", "--log2-lr", "-6", "--steps", "5",
         "--batch-size", "8", "--eval-batches", "1"]


class Row(NamedTuple):
    name: str  # the recipe's name, also its entry point's name
    message: str  # a fragment of the error train must report
    body: str = ""  # methods overriding a valid recipe's
    prelude: str = ""  # module-level code, run at import
    attr: str = "Plugin"  # what the entry point points at
    at_load: bool = False  # the registry itself finds the plugin broken (`recipes` reports it)


ROWS = [
    Row("mult-raises", "raised ZeroDivisionError", "def multipliers(self, role, width_mult):\n    return 1 / 0"),
    Row("neg-lr", ".lr must be a finite number >= 0, got -1.0",
        "def multipliers(self, role, width_mult):\n    return Multipliers(init_std=1.0, lr=-1.0, wd=1.0)"),
    Row("nan-wd", ".wd must be a finite number >= 0, got nan",
        "def multipliers(self, role, width_mult):\n    return Multipliers(init_std=1.0, lr=1.0, wd=math.nan)"),
    Row("inf-init", ".init_std must be a finite number >= 0, got inf",
        "def multipliers(self, role, width_mult):\n    return Multipliers(init_std=math.inf, lr=1.0, wd=1.0)"),
    Row("tuple-mult", "must return Multipliers, got tuple",
        "def multipliers(self, role, width_mult):\n    return (1.0, 1.0, 1.0)"),
    Row("out-zero", "output_mult(2) must be a finite number > 0, got 0.0",
        "def output_mult(self, width_mult):\n    return 0.0"),
    Row("out-negative", "output_mult(2) must be a finite number > 0, got -0.5",
        "def output_mult(self, width_mult):\n    return -1.0 / width_mult"),
    Row("out-nan", "output_mult(2) must be a finite number > 0, got nan",
        "def output_mult(self, width_mult):\n    return math.nan"),
    Row("lrf-short", "must give one factor per step (5), got 4",
        "def lr_factors(self, role, width_mult, base_lrs, wd):\n    return [1.0] * (len(base_lrs) - 1)"),
    Row("lrf-nan", "lr_factors('hidden')[4] must be a finite number >= 0, got nan",
        "def lr_factors(self, role, width_mult, base_lrs, wd):\n"
        "    return [1.0] * (len(base_lrs) - 1) + [math.nan] if role == 'hidden' else None"),
    Row("wdf-negative", "wd_factors('input')[0] must be a finite number >= 0, got -1.0",
        "def wd_factors(self, role, width_mult, base_lrs, wd):\n    return [-1.0] * len(base_lrs)"),
    Row("lrf-string", "must be a list of 5 numbers or None, got str",
        "def lr_factors(self, role, width_mult, base_lrs, wd):\n    return '1.0'"),
    Row("exit-in-method", "raised SystemExit",  # exit status 0 from a plugin must not pass for success
        "def multipliers(self, role, width_mult):\n    sys.exit(0)"),
    Row("exit-at-import", "failed to load: SystemExit: 3", prelude="sys.exit(3)", at_load=True),
    Row("print-at-import", "failed to load: ModuleNotFoundError",  # a banner, then a missing dependency
        prelude="print('hostile banner on stdout')\nimport a_dependency_nobody_installed  # noqa: F401",
        at_load=True),
    Row("raise-at-import", "failed to load: RuntimeError: boom at import",
        prelude="raise RuntimeError('boom at import')", at_load=True),
    Row("not-a-class", "is not a subclass of transferbench.recipes.Recipe",
        prelude="def factory():\n    return None", attr="factory", at_load=True),
]

GOOD = Row("fine-plugin", "", prelude="print('fine plugin says hello on stdout')")


def source(row: Row) -> str:
    """A plugin module: a valid recipe whose methods the row overrides, after the row's prelude."""
    return f'''"""A hostile transferbench plugin: {row.name}."""
import math
import sys

from transferbench.recipes import Multipliers, Recipe

{row.prelude}


class Plugin(Recipe):
    name = {row.name!r}
    summary = "a hostile plugin ({row.name})"
    citation = "arXiv:2401.00001"

    def multipliers(self, role, width_mult):
        return Multipliers(init_std=1.0, lr=1.0, wd=0.0 if role == "vector" else 1.0)

{textwrap.indent(row.body, "    ")}
'''


def dist_of(i: int) -> str:
    # not derived from the recipe's name, so that finding one in a message does not find the other
    return f"acme{i:02d}-toolkit"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("site")
    for i, row in enumerate([*ROWS, GOOD]):
        make_dist(root, dist_of(i), f"acme{i:02d}", source(row), {row.name: f"acme{i:02d}:{row.attr}"})
    return root


def run(args: list[str], site: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.run([sys.executable, "-m", "transferbench", *args], capture_output=True, text=True,
                          env=env, timeout=300)


@pytest.fixture(scope="module")
def listing(site: Path) -> dict:
    """`recipes --json` with every hostile plugin installed at once (it loads them all)."""
    res = run(["recipes", "--json"], site)
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr, res.stderr
    listed = json.loads(res.stdout)  # the plugins' prints went to stderr
    assert {r["name"] for r in listed["recipes"]} >= set(BUILTINS)
    return listed


@pytest.mark.parametrize("i", range(len(ROWS)), ids=[r.name for r in ROWS])
def test_a_hostile_plugin_is_named_and_stops_train_before_any_run(i: int, site: Path, listing: dict,
                                                                    tmp_path: Path) -> None:
    row, dist = ROWS[i], dist_of(i)
    res = run(["train", *TRAIN, "--recipe", row.name, "--out", str(tmp_path / "lr{log2_lr}"),
               "--manifest", str(tmp_path / "job.json")], site)
    assert res.returncode == 2, res.stdout + res.stderr
    assert f"'{row.name}'" in res.stderr and f"{dist} 0.3" in res.stderr, res.stderr
    assert row.message in res.stderr, res.stderr
    assert "Traceback" not in res.stderr, res.stderr
    assert not list(tmp_path.rglob("*.json")), "no record and no manifest for a job that failed"

    problems = [p for p in listing["problems"] if f"'{row.name}'" in p]
    if row.at_load:
        assert problems and f"{dist} 0.3" in problems[0] and row.message in problems[0], listing["problems"]
        assert row.name not in {r["name"] for r in listing["recipes"]}
    else:  # listing is lazy about the numbers: those are checked when the recipe is used
        assert not problems, problems


def test_a_good_plugin_keeps_working_beside_the_hostile_ones(site: Path, listing: dict, tmp_path: Path) -> None:
    dist = dist_of(len(ROWS))
    listed = {r["name"]: r for r in listing["recipes"]}
    assert listed[GOOD.name]["distribution"] == dist and listed[GOOD.name]["arxiv"] == "2401.00001"
    assert not [p for p in listing["problems"] if GOOD.name in p]
    res = run(["train", *TRAIN, "--recipe", GOOD.name, "--out", str(tmp_path / "lr{log2_lr}"),
               "--manifest", str(tmp_path / "job.json")], site)
    assert res.returncode == 0, res.stderr
    record = json.loads((tmp_path / "lr-6" / "record.json").read_text())
    assert record["recipe"]["distribution"] == dist
    manifest = json.loads((tmp_path / "job.json").read_text())
    assert [(Path(r["record"]), r["config_hash"]) for r in manifest["records"]] == [
        (tmp_path / "lr-6" / "record.json", record["config_hash"])]
