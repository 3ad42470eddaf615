"""Local GPU slots: each train process claims a free GPU by itself and holds it until it exits.

``snakemake --cores N --resources gpu=K`` on a machine with K GPUs runs at most K GPU jobs at once but
assigns them no device ids. So a train process claims one: it takes the first of the lock files
``LOCK_DIR/<namespace>/gpu<id>.lock`` that no other process holds and keeps it for the whole process (a
sweep line), after ``torch.cuda.set_device``. A lock is ``fcntl.flock`` on the file (runlock.py's
``try_lock``), and the file names its holder (``pid host``). The kernel drops a flock when its holder
exits, however it exits (SIGKILL, the OOM killer), so a killed job's GPU is free again at once: the next
claimant locks the same file and writes its own pid. Nothing is left to clean up, and a pid reused
since cannot keep a GPU taken. Ctrl-C is held back while a lock is created, as in runlock.py.

The namespace is the host (a results directory on a shared file system serves several machines) and,
inside a SLURM job, the job and step ids: a scheduler's ``CUDA_VISIBLE_DEVICES`` is used as it is, and
two jobs on one node that each see their own GPU as device 0 do not take turns on it. Device ids are
the entries of ``CUDA_VISIBLE_DEVICES`` when it is set (so processes that list GPUs in other orders
still agree), else 0 .. count-1; the index claimed is the torch device index, ``cuda:<index>``.

When every GPU is held, the claimant waits (polling), logging the holders every 10 minutes; with
``wait`` seconds it stops after that long with :class:`GPUsBusy` naming them. ``TRANSFERBENCH_FAKE_GPUS=K``
(tests) makes a process claim among K devices on any machine, a CPU run included, without touching
CUDA. Pure Python; torch is imported only for a CUDA run. POSIX only.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from transferbench.runlock import holder, try_lock

log = logging.getLogger("transferbench.devices")

FAKE_ENV = "TRANSFERBENCH_FAKE_GPUS"
#: How often a waiting claimant says who holds the GPUs (seconds).
TELL_EVERY = 600.0

_claimed: int | None = None


class GPUsBusy(RuntimeError):
    """Every GPU stayed claimed for the whole wait; the message names the lock files and their holders."""


def claimed() -> int | None:
    """The device index this process holds, or None (a CPU run, or no claim)."""
    return _claimed


def default_lock_dir() -> Path:
    """Where a hand-run ``train`` keeps its GPU locks: one directory per user for the whole machine."""
    return Path(tempfile.gettempdir()) / f"transferbench-gpu-locks-{os.getuid()}"


def namespace() -> str:
    """The host, plus the SLURM job and step when inside one (the GPUs such a process sees are its own)."""
    host = _safe(socket.gethostname() or "localhost")
    job = os.environ.get("SLURM_JOB_ID")
    return f"{host}/slurm-{_safe(job)}.{_safe(os.environ.get('SLURM_STEP_ID', 'none'))}" if job else host


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)


def visible_ids(count: int) -> list[str]:
    """The ids of the ``count`` devices torch sees: CUDA_VISIBLE_DEVICES's entries, else 0 .. count-1."""
    entries = [e.strip() for e in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if e.strip()]
    return entries[:count] if len(entries) >= count else [str(i) for i in range(count)]


def _first_free(paths: list[Path]) -> tuple[int, int] | None:
    for index, path in enumerate(paths):
        fd = try_lock(path)
        if fd is not None:
            return index, fd
    return None


def _busy(paths: list[Path]) -> str:
    return ", ".join(f"{p.name} by {holder(p)}" for p in paths)


@contextlib.contextmanager
def claim(lock_dir: Path, count: int, wait: float | None = None, ids: list[str] | None = None,
          poll: float = 0.5) -> Iterator[int]:
    """Hold the first free of ``count`` device slots under ``lock_dir`` for the ``with`` block; yield its
    index. All held: wait (forever, or ``wait`` seconds, then GPUsBusy)."""
    global _claimed
    if count < 1:
        raise ValueError(f"device: no GPU to claim (count {count})")
    ids = ids or [str(i) for i in range(count)]
    here = Path(lock_dir) / namespace()
    here.mkdir(parents=True, exist_ok=True)
    paths = [here / f"gpu{_safe(i)}.lock" for i in ids[:count]]
    start = told = time.monotonic()
    first = True
    while True:
        # Ctrl-C is held back until the release below is armed (runlock.py): no lock file left behind.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            got = _first_free(paths)
        except BaseException:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            raise
        if got is not None:
            break
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        now = time.monotonic()
        if wait is not None and now - start >= wait:
            raise GPUsBusy(f"device: all {count} GPUs stayed claimed for {wait:g} s ({_busy(paths)}; lock files in "
                           f"{here}); run at most as many GPU jobs as GPUs (snakemake --resources gpu=K)")
        if first or now - told >= TELL_EVERY:
            log.info("all %d GPUs are claimed (%s); waiting for one", count, _busy(paths))
            first, told = False, now
        time.sleep(poll if wait is None else max(0.0, min(poll, start + wait - now)))
    index, fd = got
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
        _claimed = index
        yield index
    finally:
        _claimed = None
        with contextlib.suppress(FileNotFoundError):
            paths[index].unlink()
        os.close(fd)  # releases the flock, after the unlink (runlock.py says why)


@contextlib.contextmanager
def for_process(device: str, lock_dir: Path | None = None, wait: float | None = None) -> Iterator[int | None]:
    """The GPU of a train process: with ``device`` cuda (or auto on a machine with CUDA), claim a free
    GPU, make it torch's current device and yield its index; on a CPU run yield None. With
    TRANSFERBENCH_FAKE_GPUS=K, claim among K fake devices whatever the device (CUDA is not touched)."""
    fake = os.environ.get(FAKE_ENV, "").strip()
    if fake:
        try:
            count = int(fake)
        except ValueError:
            count = 0
        if count < 1:
            raise ValueError(f"{FAKE_ENV}: must be a number of GPUs >= 1, got {fake!r}")
        with claim(lock_dir or default_lock_dir(), count, wait) as index:
            yield index
        return
    if device == "cpu":
        yield None
        return
    import torch

    if not torch.cuda.is_available():  # device auto on a machine without CUDA
        yield None
        return
    count = torch.cuda.device_count()
    with claim(lock_dir or default_lock_dir(), count, wait, ids=visible_ids(count)) as index:
        torch.cuda.set_device(index)
        log.info("GPU %d of %d claimed (%s)", index, count, torch.cuda.get_device_name(index))
        yield index


def provenance(device: Any) -> dict[str, Any]:
    """The record's device fields beside ``device`` (``cuda:1``): the GPU's name, the slot this process
    claimed (None when it claimed none) and CUDA_VISIBLE_DEVICES as the process saw it."""
    gpu = None
    if getattr(device, "type", None) == "cuda":
        import torch

        gpu = torch.cuda.get_device_name(device)
    return {"gpu": gpu, "gpu_slot": _claimed, "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}
