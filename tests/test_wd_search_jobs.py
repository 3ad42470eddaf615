"""The 2-D lr x wd search wired (``wd_search: adaptive``): the profile keys and their checks, the jobs of
config/wd-transfer.yaml (one per workload x recipe x width, no wd in a job's key, each run's dir naming
its wd, the narrower and the tuning width's manifests as inputs), and ``train --wd-search adaptive``
end to end on a tiny mlp at two widths and two recipes (sharing the base width's runs)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from transferbench.__main__ import build_parser, main
from transferbench.config import ConfigError
from transferbench.config.grid import jobs
from transferbench.config.profile import check_profile, load_profile, schema_problem

PROFILE = Path(__file__).parents[1] / "config" / "wd-transfer.yaml"


def test_the_wd_transfer_profile_makes_one_job_per_workload_recipe_and_width() -> None:
    profile = load_profile(PROFILE)
    js = jobs(profile)
    assert len(js) == sum(len(profile["recipes"]) * len(s["widths"]) for s in profile["workloads"].values())
    assert len({j.key for j in js}) == len(js) and not any("_wd" in j.key for j in js)
    for j in js:
        spec = profile["workloads"][j.workload]
        assert "_wd{wd}_s{seed}/lr{log2_lr}" in j.out_template
        cmd = j.command()
        assert "--wd-search adaptive --log2-wd " + " ".join(f"{y:g}" for y in spec["log2_wds"]) in cmd
        assert " --wd " not in cmd and "--lr-search adaptive" in cmd
        by = {(k.workload, k.recipe, k.width): k for k in js}
        widths = sorted(spec["widths"])
        if j.width == spec["base_width"]:
            assert j.needs == () and "--log2-wd-start" in cmd
        else:
            previous = by[j.workload, j.recipe, widths[widths.index(j.width) - 1]]
            tuning = by[j.workload, j.recipe, spec["base_width"]]
            assert j.needs == tuple(dict.fromkeys((previous.manifest, tuning.manifest)))
            assert f"--previous {previous.manifest}" in cmd and f"--tuning {tuning.manifest}" in cmd
        assert ("--widest" in cmd) == (j.width == max(widths))
    one = js[0]
    assert one.record(-5.0, 1, 2.0).endswith(f"/{one.line}_wd4_s1/lr-5/record.json")


def _with(profile: dict, **workload: object) -> dict:
    out = copy.deepcopy(profile)
    out["workloads"]["mlp"].update(workload)
    return out


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda p: _with(p, wds=[0.1]), "workloads.mlp.wds: not used with wd_search: adaptive"),
    (lambda p: _with(p, log2_wds=[]), r"workloads.mlp.log2_wds: \[\] is not a non-empty list"),
    (lambda p: _with(p, log2_wd_start=9), r"workloads.mlp.log2_wd_start: 9 is not a number within log2_wds"),
    (lambda p: _with(p, wd_refine=0.3), "workloads.mlp.wd_refine: 0.3 is not 0 or a step"),
    (lambda p: {**p, "lr_search": "grid"}, "workloads.llama.wd_search: 'adaptive' searches lr and wd together"),
    (lambda p: _with({**p, "wd_search": "grid"}, wds=[0.1]), "workloads.llama.log2_wds: only used with wd_search"),
    (lambda p: {**p, "wd_search": "grid"}, "workloads.llama.log2_wds: only used with wd_search: adaptive"),
])
def test_the_wd_search_keys_are_checked_by_name(mutate, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        check_profile(mutate(load_profile(PROFILE)))


def test_a_workload_may_search_wd_alone_and_the_schema_knows_the_keys() -> None:
    profile = load_profile(PROFILE)
    grid_mlp = _with({**profile, "wd_search": "grid"}, wds=[1.0], log2_wds=None, log2_wd_start=None)
    grid_mlp["workloads"]["mlp"] = {k: v for k, v in grid_mlp["workloads"]["mlp"].items() if v is not None}
    grid_mlp["workloads"]["llama"]["wd_search"] = "adaptive"
    check_profile(grid_mlp)
    kinds = {(j.workload, bool(j.log2_wds)) for j in jobs(grid_mlp)}
    assert kinds == {("llama", True), ("mlp", False)}
    assert schema_problem({**profile, "wd_search": "bayes"}).startswith("wd_search: 'bayes' is not one of")
    assert schema_problem(_with(profile, log2_wd_strat=0)).startswith("workloads.mlp: additional property "
                                                                       "'log2_wd_strat' is not allowed")


def test_every_wd_search_flag_has_help() -> None:
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    flags = {o: a for a in train._actions for o in a.option_strings}
    for flag in ("--wd-search", "--log2-wd", "--log2-wd-start", "--wd-refine"):
        assert flags[flag].help, flag


def _train(tmp: Path, recipe: str, width: int, *extra: str) -> dict:
    out = tmp / "runs" / recipe / f"w{width}"
    argv = ["train", "--workload", "mlp", "--recipe", recipe, "--width", str(width), "--base-width", "16",
            "--wd-search", "adaptive", "--log2-wd", "-3", "-2", "-1", "0", "--lr-search", "adaptive",
            "--lr-refine", "0", "--log2-lr", "-8", "-7", "-6", "-5", "-4", "--seed", "0", "1",
            "--steps", "8", "--batch-size", "16", "--eval-batches", "1", "--diag-points", "2", "--coord-steps", "2",
            "--out", f"{out}_wd{{wd}}_s{{seed}}/lr{{log2_lr}}", "--manifest", f"{out}/job.json",
            "--shared-dir", str(tmp / "runs" / "_trained"), "--no-progress", *extra]
    assert main(argv) == 0
    return json.loads((out / "job.json").read_text())


def test_train_wd_search_end_to_end(tmp_path: Path) -> None:
    base = _train(tmp_path, "mup", 16)
    line = base["line"]
    assert line["wd_search"] == "adaptive" and len(line["argmin"]) == len(line["fitted_opt"]) == 2
    points = {(r["log2_lr"], r["log2_wd"]) for r in base["records"]}
    assert len(base["records"]) == 2 * len(points) and len(points) >= 9  # every seed at every point tried
    for r in base["records"]:
        cfg = json.loads(Path(r["record"]).read_text())["config"]
        assert cfg["wd"] == 2.0 ** r["log2_wd"] == r["wd"] and f"_wd{cfg['wd']:g}_s{cfg['seed']}/" in r["record"]
    # the base width's runs are one base model: another recipe gets copies, trains nothing
    other = _train(tmp_path, "mup-independent-wd", 16)
    assert all(r["shared_with"] for r in other["records"])
    assert {(r["log2_lr"], r["log2_wd"]) for r in other["records"]} == points
    manifest = str(tmp_path / "runs" / "mup" / "w16" / "job.json")
    wide = _train(tmp_path, "mup", 32, "--previous", manifest, "--tuning", manifest, "--widest")
    assert wide["line"]["scale"] == 32 and wide["line"]["axis"] == "width" and len(wide["line"]["drift"]) == 2
    stamps = {r["record"]: Path(r["record"]).stat().st_mtime_ns for r in wide["records"]}
    again = _train(tmp_path, "mup", 32, "--previous", manifest, "--tuning", manifest, "--widest")
    assert again["records"] == wide["records"]  # a rerun skips every run (same config hash): nothing rewritten
    assert {r["record"]: Path(r["record"]).stat().st_mtime_ns for r in again["records"]} == stamps
    with pytest.raises(AssertionError):  # main logs "wd: set by the 2-D search (--log2-wd) ..." and returns 2
        _train(tmp_path, "mup", 16, "--wd", "0.1")
