"""Local GPU slots (devices.py), on a CPU with a faked GPU count: K concurrent processes get K distinct
devices, a killed holder's device is claimed again, a claimant with every device taken waits (or, with
--gpu-wait, stops with a message naming the holders), the claimed slot reaches the record, and a CUDA
run (mocked) makes its slot torch's current device, with CUDA_VISIBLE_DEVICES's ids and SLURM's job."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from transferbench import devices

HOLD = """
import logging, sys, time
logging.basicConfig(level=logging.INFO)
from pathlib import Path
from transferbench.devices import for_process
wait = None if sys.argv[2] == "none" else float(sys.argv[2])
with for_process("cpu", Path(sys.argv[1]), wait) as index:
    print(index, flush=True)
    time.sleep(float(sys.argv[3]))
"""


def env(gpus: int) -> dict[str, str]:
    return {**os.environ, devices.FAKE_ENV: str(gpus), "PYTHONUNBUFFERED": "1"}


def holder(locks: Path, gpus: int, wait: str = "none", hold: float = 120) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", HOLD, str(locks), wait, str(hold)], env=env(gpus),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def index_of(proc: subprocess.Popen, timeout: float = 30) -> int:
    """The device index a holder printed (waits for its first line)."""
    import selectors

    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    assert sel.select(timeout), f"no device claimed within {timeout} s"
    return int(proc.stdout.readline())


def lock_files(locks: Path) -> dict[str, str]:
    here = locks / devices.namespace()
    return {p.name: p.read_text().strip() for p in sorted(here.glob("gpu*.lock"))}


def test_k_processes_get_k_devices_a_killed_ones_is_reclaimed_and_the_next_waits(tmp_path: Path) -> None:
    locks = tmp_path / "locks"
    procs = [holder(locks, 3) for _ in range(3)]
    try:
        got = {index_of(p): p for p in procs}
        assert sorted(got) == [0, 1, 2]  # three distinct devices
        files = lock_files(locks)
        assert set(files) == {"gpu0.lock", "gpu1.lock", "gpu2.lock"}
        assert {f.split()[0] for f in files.values()} == {str(p.pid) for p in procs}  # "pid host"

        # All taken: a claimant with a limit stops after it, naming every holder.
        late = subprocess.run([sys.executable, "-c", HOLD, str(locks), "1", "0"], env=env(3), capture_output=True,
                              text=True, timeout=60)
        assert late.returncode != 0 and "GPUsBusy: device: all 3 GPUs stayed claimed for 1 s" in late.stderr
        assert f"gpu1.lock by {got[1].pid}" in late.stderr

        # SIGKILL: no cleanup runs, the lock file stays with the dead pid, and the kernel freed its flock.
        got[1].send_signal(signal.SIGKILL)
        got[1].wait(timeout=30)
        assert lock_files(locks)["gpu1.lock"].split()[0] == str(got[1].pid)
        again = holder(locks, 3)
        procs.append(again)
        assert index_of(again) == 1
        assert lock_files(locks)["gpu1.lock"].split()[0] == str(again.pid)

        # All taken again: a claimant without a limit waits, and takes the first device let go.
        waiter = holder(locks, 3, hold=0)
        procs.append(waiter)
        time.sleep(1.5)
        assert waiter.poll() is None and not waiter.stdout.closed
        got[2].terminate()  # SIGTERM: the default action, as a scheduler's kill
        assert index_of(waiter) == 2
        assert waiter.wait(timeout=30) == 0
        assert "all 3 GPUs are claimed" in waiter.stderr.read()
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_the_claimed_slot_is_in_the_record_and_a_busy_machine_is_one_line(tmp_path: Path) -> None:
    locks = tmp_path / "locks"
    first = holder(locks, 2)
    try:
        assert index_of(first) == 0
        cmd = [sys.executable, "-m", "transferbench", "train", "--workload", "mlp", "--recipe", "mup", "--width", "16",
               "--base-width", "16", "--log2-lr", "-6", "--steps", "3", "--batch-size", "8", "--eval-batches", "1",
               "--gpu-locks", str(locks)]
        res = subprocess.run([*cmd, "--out", str(tmp_path / "run")], env=env(2), capture_output=True, text=True,
                             timeout=300)
        assert res.returncode == 0, res.stderr
        prov = json.loads((tmp_path / "run" / "record.json").read_text())["provenance"]
        assert prov["gpu_slot"] == 1 and prov["device"] == "cpu" and prov["gpu"] is None
        busy = subprocess.run([*cmd, "--out", str(tmp_path / "busy"), "--gpu-wait", "0.5"], env=env(1),
                              capture_output=True, text=True, timeout=300)
        assert busy.returncode == 2
        assert "device: all 1 GPUs stayed claimed for 0.5 s (gpu0.lock by " in busy.stderr
        assert "Traceback" not in busy.stderr and not (tmp_path / "busy" / "record.json").exists()
    finally:
        first.kill()
        first.wait()


@pytest.fixture()
def cuda(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """torch sees two CUDA devices (mocked: nothing runs on them); returns the set_device calls."""
    import torch

    calls: list[int] = []
    monkeypatch.delenv(devices.FAKE_ENV, raising=False)
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", calls.append)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d=None: "NVIDIA H100 80GB HBM3")
    return calls


def test_a_cuda_process_makes_its_claim_the_current_device(cuda: list[int], tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    with devices.for_process("cuda", tmp_path) as a, devices.for_process("auto", tmp_path) as b:
        assert (a, b) == (0, 1) and cuda == [0, 1]
        with pytest.raises(devices.GPUsBusy, match="all 2 GPUs stayed claimed"):
            with devices.for_process("cuda", tmp_path, wait=0):
                pass
    with devices.for_process("cpu", tmp_path) as none:
        assert none is None and cuda == [0, 1]  # a CPU run claims nothing
    # CUDA_VISIBLE_DEVICES's ids name the locks (processes listing GPUs in other orders agree); inside a
    # SLURM job the locks are the job's own (its GPUs are its allocation's).
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5,3")
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    monkeypatch.setenv("SLURM_STEP_ID", "0")
    with devices.for_process("cuda", tmp_path) as index:
        here = tmp_path / devices.namespace()
        assert index == 0 and here.name == "slurm-77.0" and [p.name for p in here.iterdir()] == ["gpu5.lock"]
        assert devices.provenance(type("D", (), {"type": "cuda"})()) == {
            "gpu": "NVIDIA H100 80GB HBM3", "gpu_slot": 0, "cuda_visible_devices": "5,3"}
    assert devices.claimed() is None and not list(here.iterdir())  # released and removed


def test_a_bad_fake_count_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(devices.FAKE_ENV, "two")
    with pytest.raises(ValueError, match="TRANSFERBENCH_FAKE_GPUS: must be a number of GPUs >= 1, got 'two'"):
        with devices.for_process("cpu", tmp_path):
            pass


@pytest.mark.slow
def test_snakemake_resources_gpu_k_runs_k_jobs_each_on_its_own_gpu(tmp_path: Path) -> None:
    """`snakemake --cores 4 --resources gpu=2` on a 2-GPU machine (faked; device auto trains on the CPU but
    asks for a GPU like a CUDA job): four train jobs, never more than two at once, each on a free slot."""
    import yaml

    from transferbench.config.grid import jobs

    repo = Path(__file__).resolve().parents[1]
    profile = {"profile": "gpus", "results_dir": str(tmp_path / "results"), "device": "auto", "threads": 1,
               "lr_search": "grid", "recipes": ["standard", "sqrt-d"], "seeds": [0],
               "workloads": {"mlp": {"widths": [16, 32], "base_width": 16, "log2_lrs": [-6], "wds": [0.1],
                                     "settings": {"steps": 40, "batch_size": 16, "eval_batches": 1}}}}
    (tmp_path / "gpus.yaml").write_text(yaml.safe_dump(profile))
    manifests = [j.manifest for j in jobs(profile)]
    res = subprocess.run([sys.executable, "-m", "snakemake", *manifests, "-s", str(repo / "Snakefile"), "--nolock",
                          "-p", "--cores", "4", "--resources", "gpu=2", "--configfile", str(tmp_path / "gpus.yaml")],
                         cwd=tmp_path, env=env(2), capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert res.stderr.count(f"--gpu-locks {tmp_path}/results/locks/gpu") == 4
    slots = []
    for manifest in manifests:
        for entry in json.loads(Path(manifest).read_text())["records"]:
            slots.append(json.loads(Path(entry["record"]).read_text())["provenance"]["gpu_slot"])
    assert len(slots) == 4 and set(slots) <= {0, 1}
    logs = "".join(p.read_text() for p in (tmp_path / "results" / "logs").rglob("*.log"))
    assert "GPUs are claimed" not in logs  # Snakemake never started a third: nobody had to wait
    assert not list((tmp_path / "results" / "locks" / "gpu").rglob("*.lock"))  # every slot released
