"""bundle, verify and merge end to end on real smoke-profile sweeps: two labs' results directories with disjoint
recipe sets merge into one board that ranks all their recipes and names each row's bundle; a tampered record
fails verify, named; a bundle of a different sweep is refused, naming the workload and the differing key; a run
two bundles share is kept once and a disagreement is reported, not averaged away. Bad archives are one line.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pandas as pd
import pytest
import yaml

from transferbench.bundles import archive
from transferbench.bundles.make import bundle
from transferbench.bundles.merge import merge
from transferbench.bundles.verify import verify

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _profile(recipes: list[str], seeds: list[int], steps: int = 12) -> dict:
    smoke = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    mlp = {k: v for k, v in smoke["workloads"]["mlp"].items() if k != "recipes"}
    mlp["settings"] = {**mlp["settings"], "steps": steps}
    return {**{k: v for k, v in smoke.items() if k not in ("invariance", "data", "workloads")},
            "recipes": recipes, "seeds": seeds, "results_dir": "res", "workloads": {"mlp": mlp}}


@pytest.fixture(scope="module")
def labs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three sweeps run by the DAG side by side: lab a (standard, mup), lab b (mup-independent-wd, sqrt-d) on the
    same sweep, and lab c on a sweep with more steps."""
    root = tmp_path_factory.mktemp("labs")
    specs = {"a": _profile(["standard", "mup"], [0, 1]), "b": _profile(["mup-independent-wd", "sqrt-d"], [0, 1]),
             "c": _profile(["standard"], [0], steps=14)}
    procs = {}
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for name, profile in specs.items():
        (root / name).mkdir()
        (root / name / "profile.yaml").write_text(yaml.safe_dump(profile))
        procs[name] = subprocess.Popen(
            [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--cores", "1", "--nolock",
             "--configfile", "profile.yaml"], cwd=root / name, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)
    out = {}
    for name, proc in procs.items():
        log, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, log[-3000:]
        out[name] = root / name / "res"
        bundle(out[name], root / f"{name}.tar.gz", label=f"lab-{name}", date="2026-12-06")
    return {**out, **{f"{n}.tar.gz": root / f"{n}.tar.gz" for n in specs}, "root": root}


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "transferbench", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})


def _rewrite(src: Path, dst: Path, edit=None, keep_index: bool = False, extra: dict[str, bytes] | None = None) -> None:
    """A copy of a bundle with members edited: with a re-hashed index (a consistent edit) or the old one."""
    index, members = archive.read(src)
    if edit:
        edit(members)
    members.update(extra or {})
    if not keep_index:
        archive.write(dst, members, {k: v for k, v in index.items() if k != "members"})
        return
    with tarfile.open(dst, "w:gz") as tar:
        for name, data in [(archive.INDEX, json.dumps(index).encode()), *members.items()]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _drop_derived(members: dict[str, bytes]) -> None:
    """A bundle without its derived tables and board (as `bundle --no-tables` writes it)."""
    for name in [n for n in members if n.startswith(("tables/", "leaderboard", "findings"))]:
        members.pop(name)


def _edit_loss(members: dict[str, bytes], run: str, loss: float = 0.123456) -> None:
    rec = json.loads(members[run + "/record.json"])
    rec["summary"]["eval_loss"] = loss
    members[run + "/record.json"] = json.dumps(rec).encode()


def _a_run(path: Path) -> str:
    return sorted(n[: -len("/record.json")] for n in archive.read(path)[1] if n.endswith("/record.json")
                  and "/mup/" in n)[0]


def test_the_dag_writes_the_resolved_profile_and_a_bundle_holds_the_whole_sweep(labs) -> None:
    profile = yaml.safe_load((labs["a"] / "profile.yaml").read_text())
    assert profile["recipes"] == ["standard", "mup"] and profile["wd_search"] == "grid"  # a schema default filled
    index, members = archive.read(labs["a.tar.gz"])
    records = [n for n in members if n.endswith("/record.json")]
    assert len(records) == index["records"] == len(pd.read_csv(labs["a"] / "tables" / "runs.csv"))
    assert {"profile.yaml", "tables/runs.csv", "leaderboard.csv"} <= set(members)
    assert index["label"] == "lab-a" and index["environment"]["devices"] == ["cpu"]
    assert index["protocols"]["mlp"]["protocol"]["settings"]["steps"] == 12
    assert {r["recipe"] for r in index["environment"]["recipes"]} == {"standard", "mup"}
    # deterministic: the same sweep bundles to the same bytes, so its sha256 can be cited
    bundle(labs["a"], labs["root"] / "again.tar.gz", label="lab-a", date="2026-12-06")
    assert archive.sha256_file(labs["root"] / "again.tar.gz") == archive.sha256_file(labs["a.tar.gz"])


def test_an_intact_bundle_verifies_and_the_cli_exits_0(labs) -> None:
    assert verify(labs["a.tar.gz"]).ok
    res = _cli("verify", str(labs["a.tar.gz"]), str(labs["b.tar.gz"]), cwd=labs["root"])
    assert res.returncode == 0, res.stderr
    assert "intact" in res.stderr and "Traceback" not in res.stderr


def test_a_tampered_eval_loss_fails_verify_naming_the_record(labs) -> None:
    run = _a_run(labs["a.tar.gz"])
    stale = labs["root"] / "stale-index.tar.gz"  # the record edited, bundle.json as it was
    _rewrite(labs["a.tar.gz"], stale, lambda m: _edit_loss(m, run), keep_index=True)
    res = _cli("verify", str(stale), cwd=labs["root"])
    assert res.returncode == 1 and f"{run}: sha256 differs" in res.stderr, res.stderr
    rehashed = labs["root"] / "rehashed.tar.gz"  # the record edited and its hash updated: the tables disagree
    _rewrite(labs["a.tar.gz"], rehashed, lambda m: _edit_loss(m, run))
    problems = verify(rehashed).problems
    assert problems == [f"{run}: tables/runs.csv says eval_loss {_loss_in(labs['a'], run)}, its record says 0.123456"]


def test_an_edited_metric_table_fails_verify_naming_the_table_and_row(labs) -> None:
    def edit(members: dict[str, bytes]) -> None:
        t = pd.read_csv(io.BytesIO(members["tables/transfer.csv"]))
        t.loc[t["recipe"] == "mup", "regret"] = -1.0  # a better regret than the records give
        members["tables/transfer.csv"] = t.to_csv(index=False).encode()

    _rewrite(labs["a.tar.gz"], labs["root"] / "transfer.tar.gz", edit)
    problems = verify(labs["root"] / "transfer.tar.gz").problems
    assert len(problems) == 1 and problems[0].startswith("tables/transfer.csv: row workload mlp, recipe mup") \
        and "regret is -1.0" in problems[0], problems


def _loss_in(results: Path, run: str) -> object:
    runs = pd.read_csv(results / "tables" / "runs.csv")
    return runs.loc[runs["run_dir"].str.endswith(run.removeprefix("runs/")), "eval_loss"].iloc[0]


def test_records_that_break_their_sweep_or_their_hash_are_named(labs) -> None:
    run = _a_run(labs["a.tar.gz"])

    def steps(members: dict[str, bytes]) -> None:
        rec = json.loads(members[run + "/record.json"])
        rec["config"]["steps"] = 13  # and its config hash no longer matches
        members[run + "/record.json"] = json.dumps(rec).encode()

    _rewrite(labs["a.tar.gz"], labs["root"] / "steps.tar.gz", steps)
    problems = verify(labs["root"] / "steps.tar.gz").problems
    assert problems and all(p.startswith(run + ":") for p in problems) and "config_hash" in problems[0], problems
    _rewrite(labs["a.tar.gz"], labs["root"] / "dropped.tar.gz", lambda m: m.pop(run + "/record.json"))
    assert f"{run}: listed by a job manifest but its record is not in the bundle" in \
        verify(labs["root"] / "dropped.tar.gz").problems
    _rewrite(labs["a.tar.gz"], labs["root"] / "lost.tar.gz", lambda m: m.pop(run + "/record.json"), keep_index=True)
    assert f"{run}/record.json: listed in bundle.json but missing from the archive" in \
        verify(labs["root"] / "lost.tar.gz").problems


def test_a_record_whose_config_does_not_resolve_here_is_named(labs) -> None:
    from transferbench.config import config_hash

    run = _a_run(labs["a.tar.gz"])

    def bogus(members: dict[str, bytes]) -> None:  # an option mup does not take, its hash made to match
        rec = json.loads(members[run + "/record.json"])
        rec["config"]["recipe_options"] = {"bogus": 1}
        rec["config_hash"] = config_hash(rec["config"])
        members[run + "/record.json"] = json.dumps(rec).encode()

    _rewrite(labs["a.tar.gz"], labs["root"] / "bogus.tar.gz", bogus)
    problems = verify(labs["root"] / "bogus.tar.gz").problems
    assert any(p.startswith(f"{run}: config does not resolve here") and "bogus" in p for p in problems), problems

    def dropped(members: dict[str, bytes]) -> None:  # a key that is not the protocol's, dropped, the hash made to match
        rec = json.loads(members[run + "/record.json"])
        del rec["config"]["log_every"]
        rec["config_hash"] = config_hash(rec["config"])
        members[run + "/record.json"] = json.dumps(rec).encode()

    _rewrite(labs["a.tar.gz"], labs["root"] / "dropped-key.tar.gz", dropped)
    problems = verify(labs["root"] / "dropped-key.tar.gz").problems
    assert [p for p in problems if p.startswith(run)] == [
        f"{run}: config is not what it resolves to (config hash {_resolved_hash(labs, run)}, the record says "
        f"{_stated(labs, run)}; differs in log_every)"], problems


def _stated(labs, run: str) -> str:
    from transferbench.config import config_hash

    cfg = json.loads(archive.read(labs["a.tar.gz"])[1][run + "/record.json"])["config"]
    return config_hash({k: v for k, v in cfg.items() if k != "log_every"})


def _resolved_hash(labs, run: str) -> str:
    return json.loads(archive.read(labs["a.tar.gz"])[1][run + "/record.json"])["config_hash"]


def test_merge_ranks_both_labs_recipes_and_each_row_names_its_bundle(labs) -> None:
    out = labs["root"] / "merged"
    res = _cli("merge", str(labs["a.tar.gz"]), str(labs["b.tar.gz"]), "-o", str(out), "--n-boot", "200",
               cwd=labs["root"])
    assert res.returncode == 0, res.stderr
    board = pd.read_csv(out / "leaderboard.csv")
    mlp = board[board["scope"] == "mlp"].set_index("recipe")
    assert set(mlp.index) == {"standard", "mup", "mup-independent-wd", "sqrt-d"}
    assert mlp["rank_transferred"].notna().all() and mlp["rank_regret"].notna().all()
    assert mlp.loc["mup", "bundles"] == "lab-a · 2026-12-06 · cpu"
    assert mlp.loc["sqrt-d", "bundles"] == "lab-b · 2026-12-06 · cpu"
    runs = pd.read_csv(out / "tables" / "runs.csv")
    assert len(runs) == len(pd.read_csv(labs["a"] / "tables" / "runs.csv")) + len(
        pd.read_csv(labs["b"] / "tables" / "runs.csv"))
    bundles = pd.read_csv(out / "bundles.csv")
    assert list(bundles["lab"]) == ["lab-a", "lab-b"]
    assert bundles["sha256"][0] == archive.sha256_file(labs["a.tar.gz"])
    for name in ("leaderboard.md", "leaderboard.html", "findings.md", "plots/lr_sweep_mlp.png"):
        assert (out / name).is_file(), name
    n_a = len(pd.read_csv(labs["a"] / "tables" / "runs.csv"))
    facts = "merged from bundles (bundles.csv beside the board has their sha256): "
    assert f"{facts}lab-a · 2026-12-06 · cpu ({n_a} runs)" in (out / "leaderboard.md").read_text()
    # the merged board is a contributed board that `boards` lists with its bundles
    contrib = labs["root"] / "contrib"
    contrib.mkdir()
    os.symlink(out, contrib / "two-labs")
    res = _cli("boards", str(labs["a"] / "leaderboard.csv"), "--out", str(labs["root"] / "boards.md"),
               "--contrib", str(contrib), cwd=labs["root"])
    assert res.returncode == 0, res.stderr
    page = (labs["root"] / "boards.md").read_text()
    assert "## `two-labs`: profile `smoke`" in page and "lab-b · 2026-12-06 · cpu: `b.tar.gz`" in page


def _one_seed(members: dict[str, bytes], seed: int) -> None:
    """Lab a's sweep as if it had run one seed only: its records, manifests and profile of that seed."""
    for name in [n for n in members if n.endswith("/record.json") and f"_s{seed}/" not in n]:
        members.pop(name)
    for name in [n for n in members if n.endswith("/job.json")]:
        doc = json.loads(members[name])
        doc["records"] = [r for r in doc["records"] if r["seed"] == seed]
        members[name] = json.dumps(doc).encode()
    profile = yaml.safe_load(members["profile.yaml"])
    members["profile.yaml"] = yaml.safe_dump({**profile, "seeds": [seed]}).encode()
    _drop_derived(members)


def test_bundles_of_more_seeds_of_the_same_recipes_combine(labs) -> None:
    seeds = [labs["root"] / f"a-seed{s}.tar.gz" for s in (0, 1)]
    for s, path in enumerate(seeds):
        _rewrite(labs["a.tar.gz"], path, lambda m, s=s: _one_seed(m, s))
        assert verify(path).ok, verify(path).problems[:3]
    out = labs["root"] / "seeds"
    summary = merge(seeds, out, n_boot=200)
    whole = pd.read_csv(labs["a"] / "tables" / "runs.csv")
    runs = pd.read_csv(out / "tables" / "runs.csv")
    assert summary["runs"] == len(whole) and summary["duplicates"] == 0
    assert sorted(runs["eval_loss"]) == sorted(whole["eval_loss"])
    board = pd.read_csv(out / "leaderboard.csv")
    mlp = board[board["scope"] == "mlp"].set_index("recipe")
    assert set(mlp.index) == {"standard", "mup"} and (mlp["n_seeds"] == 2).all()
    assert set(mlp.loc["mup", "bundles"].split("; ")) == {"lab-a · 2026-12-06 · cpu", "lab-a · 2026-12-06 · cpu #2"}


def test_merge_refuses_a_different_sweep_naming_the_workload_and_the_key(labs) -> None:
    out = labs["root"] / "refused"
    res = _cli("merge", str(labs["a.tar.gz"]), str(labs["c.tar.gz"]), "-o", str(out), cwd=labs["root"])
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "workload mlp: a.tar.gz and c.tar.gz ran different sweeps (settings.steps: 12 vs 14)" in res.stderr
    assert not out.exists()


def test_a_run_in_two_bundles_is_kept_once_and_a_disagreement_is_reported(labs) -> None:
    run = _a_run(labs["a.tar.gz"])
    other = labs["root"] / "a-rerun.tar.gz"  # lab a's sweep again, one run's result different, no derived tables

    def edit(members: dict[str, bytes]) -> None:
        _edit_loss(members, run, 9.0)
        _drop_derived(members)

    _rewrite(labs["a.tar.gz"], other, edit)
    assert verify(other).ok
    out = labs["root"] / "twice"
    summary = merge([labs["a.tar.gz"], other], out, n_boot=200)
    n = len(pd.read_csv(labs["a"] / "tables" / "runs.csv"))
    assert summary["runs"] == n and summary["duplicates"] == n and summary["mismatches"] == 1
    dup = pd.read_csv(out / "tables" / "duplicates.csv")
    bad = dup[~dup["agree"]]
    assert len(bad) == 1 and bad["also"].iloc[0].endswith(run + "/record.json") and bad["eval_loss_also"].iloc[0] == 9.0
    runs = pd.read_csv(out / "tables" / "runs.csv")
    assert 9.0 not in set(runs["eval_loss"])  # the first bundle's result is kept, not averaged with the other


def test_a_results_dir_whose_path_holds_a_runs_folder_bundles_and_verifies(labs, tmp_path: Path) -> None:
    """The DAG spells every path with the profile's results_dir: a results_dir such as lab/runs/res (a folder named
    runs in it) is stripped as a prefix, never split at the first "/runs/"."""
    import shutil

    moved = tmp_path / "lab" / "runs" / "res"
    shutil.copytree(labs["a"], moved, ignore=shutil.ignore_patterns("plots"))
    for path in [*moved.rglob("job.json"), moved / "tables" / "runs.csv"]:
        path.write_text(path.read_text().replace("res/runs/", "lab/runs/res/runs/"))
    profile = yaml.safe_load((moved / "profile.yaml").read_text())
    (moved / "profile.yaml").write_text(yaml.safe_dump({**profile, "results_dir": "lab/runs/res"}))
    bundle(moved, tmp_path / "moved.tar.gz")
    v = verify(tmp_path / "moved.tar.gz")
    assert v.ok and len(v.records) == len(pd.read_csv(labs["a"] / "tables" / "runs.csv")), v.problems[:3]


def test_a_consistent_forgery_verifies_but_a_rerun_here_names_it(labs) -> None:
    """A record rewritten with its hash, the tables left out: every check of the archive passes; retraining the
    records from their configs does not (the same device and versions reproduce a run exactly)."""
    run = _a_run(labs["a.tar.gz"])
    forged = labs["root"] / "forged.tar.gz"

    def edit(members: dict[str, bytes]) -> None:
        _edit_loss(members, run, 0.5)
        _drop_derived(members)

    _rewrite(labs["a.tar.gz"], forged, edit)
    assert verify(forged).ok
    res = _cli("verify", str(forged), "--rerun", "1000", cwd=labs["root"])
    assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr
    lines = [x for x in res.stderr.splitlines() if x.startswith(str(forged))]
    assert len(lines) == 1 and lines[0].startswith(f"{forged}: {run}: rerun here gives eval_loss ") \
        and "the record says 0.5 " in lines[0], res.stderr
    assert "largest relative difference of eval_loss" in res.stderr
    from transferbench.bundles.rerun import rerun

    r = rerun(verify(labs["a.tar.gz"]), 3, seed=1)
    assert len(r.compared) == 3 and not r.problems and all(c[3] == 0.0 for c in r.compared)


def test_a_bundle_without_a_profile_asks_for_one(labs, tmp_path: Path) -> None:
    (labs["a"] / "profile.yaml").rename(tmp_path / "profile.yaml")
    try:
        with pytest.raises(archive.BundleError, match="no resolved profile; rerun `snakemake`"):
            bundle(labs["a"], tmp_path / "x.tar.gz")
        bundle(labs["a"], tmp_path / "x.tar.gz", configfile=tmp_path / "profile.yaml")
        assert verify(tmp_path / "x.tar.gz").ok
    finally:
        (tmp_path / "profile.yaml").rename(labs["a"] / "profile.yaml")


def _tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_bad_archives_are_one_line_without_a_traceback(labs, tmp_path: Path) -> None:
    good = labs["a.tar.gz"].read_bytes()
    (tmp_path / "truncated.tar.gz").write_bytes(good[: len(good) // 2])
    (tmp_path / "text.tar.gz").write_text("hello\n")
    _tar(tmp_path / "plain.tar.gz", {"README.md": b"not a bundle"})
    _tar(tmp_path / "escape.tar.gz", {archive.INDEX: b"{}", "../../etc/evil": b"x"})
    _rewrite(labs["a.tar.gz"], tmp_path / "newer.tar.gz",
             lambda m: None)
    index, members = archive.read(tmp_path / "newer.tar.gz")
    archive.write(tmp_path / "newer.tar.gz", members,
                  {**{k: v for k, v in index.items() if k != "members"}, "package_version": "99.0.0"})
    _rewrite(labs["a.tar.gz"], tmp_path / "extra.tar.gz", keep_index=True, extra={"runs/notes.txt": b"added"})
    expected = {"truncated": "truncated or corrupt", "text": "not a transferbench bundle (not a gzip tar",
                "plain": "not a transferbench bundle (no bundle.json", "escape": "escapes the archive",
                "newer": "made by transferbench 99.0.0, newer than this one", "missing": "no such file"}
    for name, message in expected.items():
        res = _cli("verify", str(tmp_path / f"{name}.tar.gz"), cwd=tmp_path)
        lines = res.stderr.strip().splitlines()
        assert res.returncode == 2 and len(lines) == 1 and message in lines[0], (name, res.stderr)
    res = _cli("verify", str(tmp_path / "extra.tar.gz"), cwd=tmp_path)
    assert res.returncode == 1 and "runs/notes.txt: in the archive but not in bundle.json's members" in res.stderr
    res = _cli("merge", str(tmp_path / "escape.tar.gz"), str(labs["a.tar.gz"]), "-o", str(tmp_path / "m"),
               cwd=tmp_path)
    assert res.returncode == 1 and "escapes the archive" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "m").exists()


def test_a_record_of_before_a_setting_existed_belongs_to_the_sweep_as_its_hash_says() -> None:
    """A key added since record schema 2, absent from an older record, is the old behaviour (config/run.py hashed):
    the protocol sees such a record as the sweep's, and a changed value as a departure."""
    from transferbench.bundles.protocol import protocol, run_problems
    from transferbench.config import resolve_run_config

    profile = _profile(["standard"], [0])
    proto = protocol(profile, "mlp")
    cfg = resolve_run_config({**profile["workloads"]["mlp"]["settings"], "workload": "mlp", "recipe": "mup",
                              "width": 32, "base_width": 16, "log2_lr": -6, "wd": 0.1, "seed": 0,
                              "device": "cpu", "threads": 1}).as_dict()
    assert run_problems(cfg, proto) == []
    old = {k: v for k, v in cfg.items() if k not in ("readout_init", "decay_roles", "base_depth", "data_source")}
    assert run_problems(old, proto) == []
    assert run_problems({**cfg, "readout_init": "zero"}, proto) == [
        "config.readout_init: 'zero', the sweep's is 'normal'"]
    assert run_problems({**cfg, "width": 64}, proto) == ["config.width: 64 is not one of the sweep's widths [16, 32]"]
