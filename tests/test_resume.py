"""Checkpoint and resume (transferbench/checkpoint.py): a training process killed at a random step (SIGKILL,
SIGTERM, in a sweep line's second run) and rerun writes the record of a run that was never interrupted,
number for number, apart from timing and ``resumed_from``; a killed job leaves nothing that aggregate or
Snakemake takes for a finished record; SIGUSR1 saves and goes on; compiled runs resume into the eager
module; the checkpoint settings change neither the config hash nor the trainer fingerprint.

The subprocess tests use `python -m transferbench train` on the smallest mlp (600 steps of about 1 ms) and
kill it once its log shows a checkpoint at or after a random step; the step is in the assertion messages.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from transferbench import checkpoint, shared
from transferbench.checkpoint import CHECKPOINT_NAME, STOP_STATUS
from transferbench.config import config_hash, resolve_run_config
from transferbench.record import RECORD_NAME, read_record
from transferbench.train import setup, train

STEPS, EVERY = 600, 20
MLP = ["--workload", "mlp", "--recipe", "mup", "--width", "32", "--base-width", "16", "--batch-size", "16",
       "--steps", str(STEPS), "--eval-batches", "1", "--diag-points", "3", "--coord-steps", "3", "--log-every", "7"]
LRS = ("-6", "-5")
CHECKPOINT_KEYS = ("checkpoint_every", "checkpoint_minutes", "keep_checkpoints")
SAVED = re.compile(r"checkpoint \((\w+)\) at step (\d+) of \d+ -> (\S+)")


def comparable(rec: dict[str, Any]) -> dict[str, Any]:
    """A record as on disk without what may differ: timing, resumed_from, the (unhashed) checkpoint settings,
    and the git commit (other work in the checkout may commit between two runs)."""
    rec = json.loads(json.dumps(rec, allow_nan=True))
    rec.pop("resumed_from", None)
    rec["summary"] = {k: v for k, v in rec["summary"].items()
                      if not any(w in k for w in ("time", "throughput", "mfu", "per_s"))}
    rec["config"] = {k: v for k, v in rec["config"].items() if k not in CHECKPOINT_KEYS}
    rec["provenance"].pop("git_commit", None)
    return rec


def cli(out: str, lrs: tuple[str, ...], *extra: str) -> list[str]:
    return [sys.executable, "-m", "transferbench", "train", *MLP, "--log2-lr", *lrs, "--out", out, *extra]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The uninterrupted line (both lrs, no checkpoint settings), trained in the background meanwhile."""
    root = tmp_path_factory.mktemp("reference")
    proc = subprocess.Popen(cli(str(root / "lr{log2_lr}"), LRS), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)

    def record(lr: str) -> dict[str, Any]:
        if proc.returncode is None:
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
        return read_record(root / f"lr{lr}" / RECORD_NAME)

    yield record
    proc.kill()
    proc.wait()


def kill_after(args: list[str], sig: int, step: int, where: str = "") -> tuple[int, str]:
    """Run ``args``; once a periodic checkpoint at step >= ``step`` whose path contains ``where`` is logged,
    send ``sig``; return the exit status and the whole log."""
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    log = []
    assert proc.stderr is not None
    for line in proc.stderr:
        log.append(line)
        m = SAVED.search(line)
        if m and m[1] == "periodic" and int(m[2]) >= step and where in m[3]:
            proc.send_signal(sig)
            break
    log.append(proc.stderr.read())
    return proc.wait(timeout=60), "".join(log)


def saved_steps(log: str, why: str) -> list[int]:
    return [int(m[2]) for m in SAVED.finditer(log) if m[1] == why]


def stopped_at(log: str) -> int:
    """The step of SIGTERM's checkpoint: saved at the step boundary after the signal, or the periodic one
    just saved if the signal came while it was written."""
    [step] = re.findall(r"SIGTERM: checkpoint at step (\d+) of", log)
    return int(step)


def test_killed_by_sigkill_then_sigterm_the_run_resumes_to_the_uninterrupted_record(tmp_path: Path,
                                                                                   reference: Any) -> None:
    rng = random.Random()
    k1 = rng.randrange(2, 8) * EVERY
    k2 = k1 + rng.randrange(2, 8) * EVERY
    where = f"(killed after steps {k1} and {k2})"
    out = tmp_path / "run"
    args = cli(str(out), LRS[:1], "--checkpoint-every", str(EVERY))

    status, log = kill_after(args, signal.SIGKILL, k1)
    assert status == -signal.SIGKILL, f"{where} {log}"
    assert not (out / RECORD_NAME).exists() and (out / CHECKPOINT_NAME).is_file(), where
    logged = saved_steps(log, "periodic")[-1]  # or, killed between the rename and its log line, the next

    status, log = kill_after(args, signal.SIGTERM, k2)
    assert status == STOP_STATUS == 143, f"{where} {log}"
    [last_periodic] = [int(x) for x in re.findall(rf"resuming at step (\d+) of {STEPS}", log)]
    assert last_periodic in (logged, logged + EVERY) and last_periodic >= k1, where
    on_term = stopped_at(log)
    assert on_term >= k2 and not (out / RECORD_NAME).exists(), where
    assert f"exiting with status {STOP_STATUS}" in log

    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rec = read_record(out / RECORD_NAME)
    assert rec["resumed_from"] == [last_periodic, on_term], where
    assert not (out / CHECKPOINT_NAME).exists(), "a finished run's checkpoint is deleted"
    assert not list(out.glob(f".{CHECKPOINT_NAME}.*"))
    ref = reference(LRS[0])
    assert ref["resumed_from"] == [] and rec["config_hash"] == ref["config_hash"]
    assert rec["curve"] == ref["curve"] and rec["summary"]["eval_loss"] == ref["summary"]["eval_loss"], where
    assert comparable(rec) == comparable(ref), where


def test_a_line_killed_in_its_second_run_resumes_that_run_and_leaves_no_finished_record(
        tmp_path: Path, reference: Any) -> None:
    from transferbench.__main__ import main

    k = random.Random().randrange(2, 10) * EVERY
    template, manifest = str(tmp_path / "runs" / "lr{log2_lr}"), tmp_path / "runs" / "job.json"
    args = cli(template, LRS, "--checkpoint-every", str(EVERY), "--manifest", str(manifest),
               "--shared-dir", str(tmp_path / "runs" / "_trained"))
    first, second = tmp_path / "runs" / f"lr{LRS[0]}", tmp_path / "runs" / f"lr{LRS[1]}"

    status, log = kill_after(args, signal.SIGTERM, k, where=f"lr{LRS[1]}")
    assert status == 143, f"(killed after step {k} of lr {LRS[1]}) {log}"
    assert (first / RECORD_NAME).is_file() and not (first / CHECKPOINT_NAME).exists()
    assert not (second / RECORD_NAME).exists() and (second / CHECKPOINT_NAME).is_file()
    assert not manifest.exists(), "the job's output (Snakemake's) is written only when every run is recorded"
    # aggregate finds the finished run only: a checkpoint is not a record
    assert main(["aggregate", "--out-dir", str(tmp_path / "tables"), "--runs-dir", str(tmp_path / "runs")]) == 0
    assert len((tmp_path / "tables" / "runs.csv").read_text().strip().splitlines()) == 2  # header + 1
    first_bytes = (first / RECORD_NAME).read_bytes()

    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (first / RECORD_NAME).read_bytes() == first_bytes, "the finished run was trained again"
    on_term = stopped_at(log)
    recs = [read_record(d / RECORD_NAME) for d in (first, second)]
    assert [r["resumed_from"] for r in recs] == [[], [on_term]]
    assert [e["record"] for e in json.loads(manifest.read_text())["records"]] == [
        str(first / RECORD_NAME), str(second / RECORD_NAME)]
    for lr, rec in zip(LRS, recs, strict=True):
        assert comparable(rec) == comparable(reference(lr)), f"lr {lr} (killed after step {k})"


# -- in one process: the same mechanism, driven by signals sent to ourselves -----------------------------------
def small(**kw: Any) -> Any:
    return resolve_run_config({"workload": "mlp", "recipe": "mup", "width": 32, "base_width": 16, "batch_size": 16,
                               "log2_lr": -6, "steps": 60, "eval_batches": 1, "diag_points": 3, "coord_steps": 3,
                               "log_every": 4, **kw})


def signalled(monkeypatch: pytest.MonkeyPatch, sig: int | None, at: int, probe: Any = None) -> None:
    """Make train's step send ``sig`` to this process at step ``at`` (and call ``probe(t)`` at every step)."""
    import transferbench.train as tr

    real = tr.step

    def step(run: Any, st: Any, t: int) -> bool:
        if sig is not None and t == at:
            os.kill(os.getpid(), sig)
        if probe is not None:
            probe(t)
        return real(run, st, t)

    monkeypatch.setattr(tr, "step", step)


def test_a_compiled_run_resumes_into_its_eager_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    compile_ = torch.compile  # the eager backend: what is tested is where the state goes, not inductor's 20 s
    monkeypatch.setattr(torch, "compile", lambda model, **kw: compile_(model, backend="eager"))
    cfg = small(compile=True)
    ref = train(cfg, tmp_path / "ref")
    with monkeypatch.context() as m, checkpoint.signals_handled():
        signalled(m, signal.SIGTERM, 30)
        with pytest.raises(SystemExit) as stop:
            train(cfg, tmp_path / "run")
    assert stop.value.code == 143
    saved = torch.load(tmp_path / "run" / CHECKPOINT_NAME, weights_only=True)
    assert saved["model"].keys() == setup(cfg).wl.model.state_dict().keys()  # the eager module's names
    rec = train(cfg, tmp_path / "run")
    assert rec["resumed_from"] == [31] and rec["provenance"]["compile"] is True
    assert comparable(rec) == comparable(ref)


def test_every_rng_goes_on_from_where_it_was_saved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No built-in workload draws from a global RNG while training (batches are keyed by seed and step), so
    the record cannot show a lost RNG state; a step that draws from Python's, numpy's and torch's can."""
    import numpy as np

    def draws(out: Path, at: int | None) -> list[tuple[float, float, float]]:
        seen: list[tuple[float, float, float]] = []
        probe = lambda t: seen.append((random.random(), float(np.random.rand()), float(torch.rand(()))))  # noqa: E731
        with monkeypatch.context() as m, checkpoint.signals_handled():
            signalled(m, None if at is None else signal.SIGTERM, -1 if at is None else at, probe)
            try:
                train(small(), out)
            except SystemExit:
                pass
        return seen

    random.seed(1), np.random.seed(2)
    whole = draws(tmp_path / "whole", None)
    random.seed(1), np.random.seed(2)
    first = draws(tmp_path / "run", 20)
    random.seed(3), np.random.seed(4)  # the rerun's process starts from other states
    rest = draws(tmp_path / "run", None)
    assert first + rest == whole and len(rest) == 60 - 21


def test_a_sigterm_in_the_last_step_writes_the_record_then_exits_143(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    with checkpoint.signals_handled():
        signalled(monkeypatch, signal.SIGTERM, 59)
        with pytest.raises(SystemExit) as stop:
            train(small(), tmp_path / "run")
    assert stop.value.code == 143
    assert read_record(tmp_path / "run" / RECORD_NAME)["summary"]["steps_completed"] == 60
    assert not (tmp_path / "run" / CHECKPOINT_NAME).exists()


def test_sigusr1_saves_and_training_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[int, bool] = {}
    ck = tmp_path / "run" / CHECKPOINT_NAME
    with checkpoint.signals_handled():
        signalled(monkeypatch, signal.SIGUSR1, 20, probe=lambda t: seen.setdefault(t, ck.is_file()))
        rec = train(small(), tmp_path / "run")
    assert not seen[20] and seen[21] and rec["summary"]["steps_completed"] == 60
    assert rec["resumed_from"] == [] and not ck.exists()  # it went on to the end; the checkpoint went with it


def test_periodic_checkpoints_and_keep_checkpoints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[int, bool] = {}
    ck = tmp_path / "run" / CHECKPOINT_NAME
    signalled(monkeypatch, None, 0, probe=lambda t: seen.setdefault(t, ck.is_file()))
    rec = train(small(checkpoint_every=25, keep_checkpoints=True), tmp_path / "run")
    assert [t for t in range(60) if seen[t]][:1] == [25]  # the first one after step 25
    final = torch.load(ck, weights_only=True)  # kept: the final state
    assert final["step"] == 60 and final["state"]["curve"] == rec["curve"]
    # a kept final checkpoint resumes to the same record without a step
    (tmp_path / "run" / RECORD_NAME).unlink()
    again = train(small(), tmp_path / "run")
    assert again["resumed_from"] == [60] and comparable(again) == comparable(rec)


def test_a_checkpoint_of_another_config_or_a_torn_save_is_not_resumed(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    ref = train(small(), tmp_path / "ref")
    with monkeypatch.context() as m, checkpoint.signals_handled():
        signalled(m, signal.SIGTERM, 10)
        with pytest.raises(SystemExit):
            train(small(log2_lr=-5), tmp_path / "run")  # another config leaves its checkpoint
    (tmp_path / "run" / f".{CHECKPOINT_NAME}.torn").write_bytes(b"PK")  # a save SIGKILL cut short
    rec = train(small(), tmp_path / "run")
    assert rec["resumed_from"] == [] and comparable(rec) == comparable(ref)
    assert not list((tmp_path / "run").glob(f"*{CHECKPOINT_NAME}*"))


def test_a_failed_save_keeps_the_previous_checkpoint_and_the_run(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "run"
    with monkeypatch.context() as m, checkpoint.signals_handled():
        signalled(m, signal.SIGTERM, 10)
        with pytest.raises(SystemExit):
            train(small(), out)
    before = (out / CHECKPOINT_NAME).read_bytes()

    def disk_full(payload: Any, f: Any) -> None:
        with open(f, "wb") if isinstance(f, (str, Path)) else contextlib.nullcontext(f) as fh:
            fh.write(b"half a checkpoint")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with monkeypatch.context() as m, checkpoint.signals_handled():
        signalled(m, signal.SIGTERM, 30)
        with pytest.raises(SystemExit):
            train(small(), out)
    assert (out / CHECKPOINT_NAME).read_bytes() == before and sorted(p.name for p in out.iterdir()) == [
        CHECKPOINT_NAME]


def test_a_checkpoint_this_code_cannot_load_stops_the_run_and_force_starts_over(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from transferbench.line import Line

    ref = train(small(), tmp_path / "ref")
    out = tmp_path / "run"
    with monkeypatch.context() as m, checkpoint.signals_handled():
        signalled(m, signal.SIGTERM, 10)
        with pytest.raises(SystemExit):
            train(small(), out)
    saved = torch.load(out / CHECKPOINT_NAME, weights_only=True)
    saved["model"].popitem()  # as if the model gained a parameter since: same config, other code
    torch.save(saved, out / CHECKPOINT_NAME)
    with pytest.raises(checkpoint.CheckpointError, match=f"{out / CHECKPOINT_NAME}: .*rerun with --force"):
        train(small(), out)
    line = Line(settings={k: v for k, v in small().items() if k not in ("seed", "log2_lr")}, seeds=[0],
                log2_lrs=[-6.0], out=str(out), force=True)
    line.check()
    line.run()
    rec = read_record(out / RECORD_NAME)
    line_keys = {"trainer_fingerprint": rec["trainer_fingerprint"], "shared_with": None}  # what a line adds
    assert rec["resumed_from"] == [] and comparable(rec) == comparable({**ref, **line_keys})


def test_validation_names_a_bad_resumed_from(tmp_path: Path) -> None:
    from transferbench.validate import RecordError, validate_record

    rec = json.loads(json.dumps(train(small()), allow_nan=True))
    validate_record({**rec, "resumed_from": [11, 40]}, "r.json")
    validate_record({k: v for k, v in rec.items() if k != "resumed_from"}, "r.json")  # records before it
    for bad in ([61], [-1], "11", [1.5], [True]):
        with pytest.raises(RecordError, match="r.json: resumed_from: expected a list of steps in"):
            validate_record({**rec, "resumed_from": bad}, "r.json")


def test_checkpoint_settings_change_neither_the_config_hash_nor_the_fingerprint() -> None:
    plain, ck = small(), small(checkpoint_every=7, checkpoint_minutes=10.0, keep_checkpoints=True)
    assert config_hash(plain) == config_hash(ck)
    assert shared.fingerprint(setup(plain)) == shared.fingerprint(setup(ck))
    assert config_hash(plain) == config_hash({k: v for k, v in plain.items() if k not in CHECKPOINT_KEYS})


@pytest.mark.parametrize("workload", ["llama", "resnet", "mlp"])
def test_a_training_batch_is_a_function_of_seed_and_step_only(workload: str) -> None:
    """Why the step is the whole data position: batch t is the same whatever was drawn before it."""
    from transferbench.workloads.build import build_source

    sizes = {"llama": {"seq_len": 16, "vocab_size": 64}, "resnet": {"image_size": 8}, "mlp": {}}
    cfg = resolve_run_config({"workload": workload, "recipe": "mup", "width": 16, "base_width": 16, "log2_lr": -6,
                              "batch_size": 4, **sizes[workload]})
    a, b = build_source(cfg), build_source(cfg)
    forward = [a.train_batch(0, t) for t in range(5)]
    backward = [b.train_batch(0, t) for t in reversed(range(5))][::-1]
    for (x1, y1), (x2, y2) in zip(forward, backward, strict=True):
        assert (x1 == x2).all() and (y1 == y2).all()
