"""Corrupt records never reach the tables: a table of corruptions of a real record, each of which must
make `transferbench aggregate` stop with exit status 2 and one line naming the file and the field,
leaving the tables of an earlier aggregate byte-identical; `--skip-bad` instead leaves the bad record
out and lists it in bad_records.csv."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from transferbench.aggregate import read_table
from transferbench.config import resolve_run_config
from transferbench.train import train


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One real record of a 5-step mlp run, as JSON text (each test copies and corrupts it)."""
    out = tmp_path_factory.mktemp("good")
    train(resolve_run_config({"workload": "mlp", "recipe": "mup", "width": 32, "base_width": 16, "log2_lr": -6,
                              "steps": 5, "batch_size": 8, "eval_batches": 1, "diag_points": 1, "coord_steps": 1}),
          out)
    return json.loads((out / "record.json").read_text())


def setdeep(rec: dict, dotted: str, value: Any) -> dict:
    *head, last = dotted.split(".")
    node = rec
    for k in head:
        node = node[k]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return rec


DELETE = object()
#: (id, how the record.json text is made from a good record, the field the message must name)
CORRUPTIONS: list[tuple[str, Any, str]] = [
    ("eval_loss string", lambda r: setdeep(r, "summary.eval_loss", "0.5abc"), "summary.eval_loss"),
    ("eval_loss null", lambda r: setdeep(r, "summary.eval_loss", None), "summary.eval_loss"),
    ("eval_loss missing", lambda r: setdeep(r, "summary.eval_loss", DELETE), "summary.eval_loss"),
    ("eval_loss NaN token", lambda r: json.dumps(setdeep(r, "summary.eval_loss", math.nan)), "summary.eval_loss"),
    ("eval_loss Infinity", lambda r: json.dumps(setdeep(r, "summary.eval_loss", math.inf)), "summary.eval_loss"),
    ("eval_loss negative", lambda r: setdeep(r, "summary.eval_loss", -1.0), "summary.eval_loss"),
    ("diverged string", lambda r: setdeep(r, "summary.diverged", "false"), "summary.diverged"),
    ("diverged int", lambda r: setdeep(r, "summary.diverged", 1), "summary.diverged"),
    ("diverged missing", lambda r: setdeep(r, "summary.diverged", DELETE), "summary.diverged"),
    ("init_loss null", lambda r: setdeep(r, "summary.init_loss", None), "summary.init_loss"),
    ("final_loss string", lambda r: setdeep(r, "summary.final_loss", "x"), "summary.final_loss"),
    ("steps_completed > steps", lambda r: setdeep(r, "summary.steps_completed", 99), "summary.steps_completed"),
    ("failure not a string", lambda r: setdeep(r, "summary.failure", 3), "summary.failure"),
    ("failure but not diverged", lambda r: setdeep(r, "summary.failure", "OverflowError: x"), "summary.diverged"),
    ("config_hash altered", lambda r: setdeep(r, "config_hash", "0" * 16), "config_hash"),
    ("config edited", lambda r: setdeep(r, "config.steps", 6), "config_hash"),
    ("width a string", lambda r: setdeep(r, "config.width", "32"), "config.width"),
    ("seed negative", lambda r: setdeep(r, "config.seed", -1), "config.seed"),
    ("log2_lr null", lambda r: setdeep(r, "config.log2_lr", None), "config.log2_lr"),
    ("wd negative", lambda r: setdeep(r, "config.wd", -0.1), "config.wd"),
    ("recipe empty", lambda r: setdeep(r, "config.recipe", ""), "config.recipe"),
    ("schema_version 99", lambda r: setdeep(r, "schema_version", 99), "schema_version"),
    ("schema_version 1", lambda r: setdeep(r, "schema_version", 1), "schema_version"),
    ("summary not an object", lambda r: setdeep(r, "summary", [1, 2]), "summary"),
    ("config missing", lambda r: setdeep(r, "config", DELETE), "config"),
    ("top-level list", lambda r: [r], "a record is a JSON object"),
    ("not JSON", lambda r: "{not json", "cannot read record"),
    ("empty file", lambda r: "", "cannot read record"),
]


def write_runs(root: Path, good: dict, bad: Any) -> list[Path]:
    """Two good records (lr -6 and -5) and one made by ``bad``; returns the three paths."""
    paths = []
    for name, rec in (("a", good), ("b", {**good, "config": {**good["config"], "log2_lr": -5.0}}), ("bad", None)):
        path = root / name / "record.json"
        path.parent.mkdir(parents=True)
        if rec is None:
            made = bad(json.loads(json.dumps(good)))
            path.write_text(made if isinstance(made, str) else json.dumps(made))
        else:
            if name == "b":  # a second valid record: its own hash
                from transferbench.config import config_hash

                rec = {**rec, "config_hash": config_hash(rec["config"])}
            path.write_text(json.dumps(rec))
        paths.append(path)
    return paths


def aggregate_cli(out: Path, paths: list[Path], *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "transferbench", "aggregate", "--out-dir", str(out), *flags,
                           *map(str, paths)], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("name", "corrupt", "field"), CORRUPTIONS, ids=[c[0] for c in CORRUPTIONS])
def test_a_corrupt_record_stops_aggregate_naming_file_and_field(tmp_path: Path, good: dict, name: str,
                                                                 corrupt: Any, field: str) -> None:
    paths = write_runs(tmp_path / "runs", good, corrupt)
    tables = tmp_path / "tables"
    first = aggregate_cli(tables, paths[:2])  # an earlier, good aggregate
    assert first.returncode == 0, first.stderr
    before = {p.name: p.read_bytes() for p in tables.iterdir()}
    res = aggregate_cli(tables, paths)
    assert res.returncode == 2, (name, res.stderr)
    assert str(paths[2]) in res.stderr and field in res.stderr, res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert {p.name: p.read_bytes() for p in tables.iterdir()} == before  # nothing earlier lost or changed


def test_skip_bad_leaves_the_record_out_and_lists_it(tmp_path: Path, good: dict) -> None:
    paths = write_runs(tmp_path / "runs", good, lambda r: setdeep(r, "summary.diverged", "false"))
    res = aggregate_cli(tmp_path / "tables", paths, "--skip-bad")
    assert res.returncode == 0, res.stderr
    runs = read_table(tmp_path / "tables" / "runs.csv")
    assert len(runs) == 2 and not runs["diverged"].any()
    bad = read_table(tmp_path / "tables" / "bad_records.csv")
    assert bad["path"].tolist() == [str(paths[2])] and bad["field"].tolist() == ["summary.diverged"]
    assert str(paths[2]) in res.stderr


def test_all_good_records_give_an_empty_bad_records_table(tmp_path: Path, good: dict) -> None:
    paths = write_runs(tmp_path / "runs", good, lambda r: r)
    assert aggregate_cli(tmp_path / "tables", paths).returncode == 0
    assert (tmp_path / "tables" / "bad_records.csv").read_text().strip() == "path,field,error"
    runs = read_table(tmp_path / "tables" / "runs.csv")
    assert len(runs) == 3 and runs["failure"].isna().all()
