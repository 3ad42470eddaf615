"""SLURM, really: the DAG runs on a one-node SLURM cluster on this machine (tests/slurm_cluster.py) through
snakemake-executor-plugin-slurm and workflow/profiles/slurm, and writes the records and tables that a local
run writes, although one train job is interrupted twice in the middle of a run and resumes each time from
the checkpoint its SIGTERM wrote: requeued as on preemption (Snakemake waits for the same SLURM job), then
signalled as before a time limit (the job fails and Snakemake's retry resumes it).

The profile is the smoke profile cut to 13 jobs with every stage kept: prepare_data, each workload's train
rule with an adaptive line's two widths, two recipes whose base-width runs are one training (resnet),
aggregate, metrics, plots and leaderboard. Every SLURM job starts Snakemake twice (the batch step and the
srun step) before its command, about 8 s of 2 cores, so the whole smoke profile takes about 5 minutes here:
TRANSFERBENCH_SLURM_FULL=1 runs it. mlp's wider line trains 2500 steps per run with a checkpoint every 200,
long enough to be interrupted in the middle of a run: the test acts once its log shows a checkpoint.
"""

from __future__ import annotations

import copy
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from slurm_cluster import PARTITION, Cluster, unavailable

from transferbench.config.grid import Job, jobs
from transferbench.workloads import get as get_workload

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
SMOKE = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
PROFILE = REPO / "workflow" / "profiles" / "slurm" / "config.yaml"
TRAIN_RULES = REPO / "workflow" / "rules" / "train.smk"
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--nolock"]
FULL = os.environ.get("TRANSFERBENCH_SLURM_FULL") == "1"
DEADLINE = 900 if FULL else 300  # seconds: the SLURM run is killed after this
LONG, EVERY = 2500, 200  # the requeued line: steps per run, and a checkpoint every EVERY steps
JOB_MEMORY_MB = 500  # what a job asks for at most on the test node
TIMING = ("time", "throughput", "per_second", "mfu", "peak")  # summary fields that measure the machine
SIGTERM_SAVE = re.compile(r"SIGTERM: checkpoint at step (\d+) of (\d+) in (\S+)")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    why = unavailable()
    if why:
        if os.environ.get("TRANSFERBENCH_REQUIRE_SLURM") == "1":  # .ci/run: the cluster must really run
            pytest.fail(f"TRANSFERBENCH_REQUIRE_SLURM=1, but no test cluster: {why}")
        pytest.skip(why)
    with Cluster(tmp_path_factory.mktemp("cluster")) as c:
        yield c


def profile() -> dict:
    """The smoke profile as this test runs it (the module's docstring), with its results in ./results."""
    p = copy.deepcopy(SMOKE)
    p["results_dir"] = "results"
    corpus = p["data"]["repo-text"]
    corpus["files"] = [str(REPO / f) for f in corpus["files"]]  # the same corpus from either directory
    if not FULL:
        p["recipes"] = ["mup", "mup-independent-wd"]
        p["workloads"]["llama"]["recipes"] = ["mup-independent-wd"]
        p["workloads"]["mlp"]["recipes"] = ["standard"]
        del p["invariance"]
    mlp = p["workloads"]["mlp"]
    mlp["width_settings"] = {max(mlp["widths"]): {"steps": LONG}}
    mlp["settings"]["checkpoint_every"] = EVERY
    return p


def cluster_profile(dest: Path, workloads: list[str]) -> Path:
    """workflow/profiles/slurm as the test cluster can run it: its one partition, memory and CPUs within its
    node's, and status queries it can answer: `squeue` (without slurmdbd `sacct` fails and the plugin would
    wait forever), from 1 s on (the plugin adds 10 s to the interval after every query that finds no job
    finished). A train rule's resources come from its workload's spec (workflow/rules/train.smk): the cut
    profile overrides them through set-resources, as a cluster's own profile would."""
    prof = yaml.safe_load(PROFILE.read_text())
    # the test signals a train job as the train rules ask SLURM to before a time limit (time_limit below)
    assert "--signal=TERM@" in TRAIN_RULES.read_text() and "slurm_extra=TRAIN_SIGNAL" in TRAIN_RULES.read_text()
    assert not [rule for rule in prof["set-resources"] if rule.startswith("train_")], "train resources: the specs'"
    prof["set-resources"].update({f"train_{w}": dict(get_workload(w).resources) for w in workloads})

    def fit(res: dict) -> dict:
        res = dict(res)
        if "slurm_partition" in res:
            res["slurm_partition"] = PARTITION
        if "mem_mb" in res:
            res["mem_mb"] = min(int(res["mem_mb"]), JOB_MEMORY_MB)
        if "cpus_per_task" in res:
            res["cpus_per_task"] = 1
        return res

    prof["default-resources"] = fit(prof["default-resources"])
    prof["set-resources"] = {rule: fit(res) for rule, res in prof["set-resources"].items()}
    prof.update({"slurm-status-command": "squeue", "slurm-init-seconds-before-status-checks": 1,
                 "seconds-between-status-checks": 1})
    dest.mkdir()
    (dest / "config.yaml").write_text(yaml.safe_dump(prof))
    return dest


def slurm_job_of(line: Job, cwd: Path) -> str:
    """The SLURM job id of the train process of ``line`` running in ``cwd`` (from its environment)."""
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
            if b"transferbench" in cmd and line.manifest.encode() in cmd and (proc / "cwd").resolve() == cwd:
                env = dict(v.split(b"=", 1) for v in (proc / "environ").read_bytes().split(b"\0") if b"=" in v)
                return env[b"SLURM_JOB_ID"].decode()
        except (OSError, KeyError):
            continue
    raise AssertionError(f"no train process of {line.key} in {cwd}")


def wait_for(ready, what: str, deadline: float) -> None:
    while not ready():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def requeue(cluster: Cluster, job: str, log: Path, deadline: float) -> str:
    """A preemption: `scontrol requeue` (SIGTERM to the job's processes, then the job waits in the queue under
    its id). Returns the interrupted attempt's log, read while the job waits, before the next one rewrites it;
    then lets the job start at once rather than after SLURM's 2-minute hold of a requeued job."""
    cluster.run("scontrol", "requeue", job)
    wait_for(lambda: cluster.jobs()[job][0] == "PENDING", f"job {job} back in the queue", deadline)
    interrupted = log.read_text()
    while cluster.jobs()[job] == ("PENDING", "BeginTime"):
        cluster.run("scontrol", "update", f"JobId={job}", "StartTime=now", check=False)
        assert time.monotonic() < deadline, f"job {job} held after its requeue"
        time.sleep(0.2)
    return interrupted


def time_limit(cluster: Cluster, job: str, log: Path, deadline: float) -> str:
    """What the profile's `--signal=TERM@600` does ten minutes before a time limit: SIGTERM to the job's steps
    (not its batch shell), and the job ends FAILED. Returns the log of the attempt (Snakemake submits the job
    again only after it has seen it fail)."""
    cluster.run("scancel", "--signal=TERM", job)
    wait_for(lambda: cluster.jobs()[job][0] == "FAILED", f"job {job} to fail", deadline)
    return log.read_text()


def interrupt_twice(cluster: Cluster, line: Job, cwd: Path, deadline: float) -> tuple[str, list[str]]:
    """Requeue ``line``'s job once its log shows a checkpoint, signal it as at a time limit once the resumed
    attempt has shown one; return the job id and the two interrupted attempts' logs."""
    log = cwd / line.log
    wait_for(lambda: log.exists() and "checkpoint (periodic)" in log.read_text(), f"a checkpoint in {log}", deadline)
    job = slurm_job_of(line, cwd)
    first = requeue(cluster, job, log, deadline)
    resumed = re.compile(r"resuming at step.*checkpoint \(periodic\)", re.DOTALL)
    wait_for(lambda: log.exists() and resumed.search(log.read_text()), f"a resumed checkpoint in {log}", deadline)
    return job, [first, time_limit(cluster, slurm_job_of(line, cwd), log, deadline)]


def records(results: Path) -> dict[str, dict]:
    return {str(p.relative_to(results)): json.loads(p.read_text()) for p in sorted(results.rglob("record.json"))}


def comparable(rec: dict) -> str:
    """A record without what depends on where and when it ran: provenance, timing, resumed_from, and which
    of two lines that share a training trained it (shared_with)."""
    rec = {k: v for k, v in rec.items() if k not in ("provenance", "resumed_from", "shared_with")}
    rec["summary"] = {k: v for k, v in rec["summary"].items() if not any(w in k for w in TIMING)}
    return json.dumps(rec, sort_keys=True)


def steps_done(output: str) -> int:
    found = re.findall(r"(\d+) of \1 steps \(100%\) done", output)
    assert found, output[-3000:]
    return int(found[-1])


def test_the_smoke_profile_on_slurm_matches_a_local_run_and_interrupted_jobs_resume(
        cluster: Cluster, tmp_path: Path) -> None:
    prof = profile()
    on_slurm, local = tmp_path / "slurm", tmp_path / "local"
    for d in (on_slurm, local):
        d.mkdir()
        (d / "profile.yaml").write_text(yaml.safe_dump(prof))
    [line] = [j for j in jobs(prof) if j.workload == "mlp" and j.recipe == "standard"
              and j.width == max(prof["workloads"]["mlp"]["widths"])]

    out_path = tmp_path / "slurm.out"
    cut = cluster_profile(tmp_path / "profile", list(prof["workloads"]))
    args = [*SNAKEMAKE, "--workflow-profile", str(cut), "--configfile", "profile.yaml"]
    deadline = time.monotonic() + DEADLINE
    with out_path.open("w") as out:
        proc = subprocess.Popen(args, cwd=on_slurm, stdout=out, stderr=subprocess.STDOUT, env=cluster.env,
                                start_new_session=True)
        try:
            job, interrupted = interrupt_twice(cluster, line, on_slurm, deadline)
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except (AssertionError, RuntimeError, subprocess.TimeoutExpired) as exc:
            raise AssertionError(f"{exc}\n{out_path.read_text()[-4000:]}\n{cluster.logs()}") from None
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    output = out_path.read_text()
    assert proc.returncode == 0, output[-4000:]
    # The requeued job stayed one SLURM job, which Snakemake kept waiting for (the profile's --requeue: the
    # cluster's JobRequeue=0 allows no other); the one signalled as at a time limit failed and its retry ran.
    shown = cluster.show(job)
    assert shown["Restarts"] == "1" and shown["Requeue"] == "1", shown
    assert output.count("Error in rule") == output.count("Trying to restart job") == 1, output[-4000:]

    # Each interrupted attempt saved on SIGTERM and exited; the next one resumed there, and no other run did.
    expected: dict[str, list[int]] = {}
    for log in interrupted:
        found = SIGTERM_SAVE.search(log)
        assert found, log[-3000:]
        step, steps, checkpoint = int(found[1]), int(found[2]), Path(found[3])
        assert 0 < step < steps == LONG
        expected.setdefault(str((checkpoint.parent / "record.json").relative_to("results")), []).append(step)
    got = records(on_slurm / "results")
    assert {path: rec["resumed_from"] for path, rec in got.items() if rec["resumed_from"]} == expected

    res = subprocess.run([*SNAKEMAKE, "--cores", "2", "--configfile", "profile.yaml"], cwd=local,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    # every job but the `all` rule ran as a SLURM job and completed, the time-limited one on its second try
    n = steps_done(res.stdout + res.stderr)
    assert steps_done(output) == n
    states = sorted(state for state, _ in cluster.jobs().values())
    assert states == ["COMPLETED"] * (n - 1) + ["FAILED"], states

    want = records(local / "results")
    assert sorted(got) == sorted(want) and len(got) > 2 * len(jobs(prof))
    for path in want:
        assert comparable(got[path]) == comparable(want[path]), path
    tables = sorted(p.name for p in (local / "results" / "tables").glob("*.csv"))
    assert tables == sorted(p.name for p in (on_slurm / "results" / "tables").glob("*.csv"))
    for name in [*tables, "../leaderboard.csv"]:
        a, b = (pd.read_csv(d / "results" / "tables" / name) for d in (on_slurm, local))
        if name == "runs.csv":
            a, b = (t.drop(columns=["wall_time", "throughput", "git_commit", "shared_with"]) for t in (a, b))
        pd.testing.assert_frame_equal(a, b, obj=name)
    plots = sorted(p.name for p in (local / "results" / "plots").glob("*.png"))
    assert plots and plots == sorted(p.name for p in (on_slurm / "results" / "plots").glob("*.png"))
