"""An exclusive, non-blocking lock on a run directory, so two writers of one run cannot both win.

``train`` holds it from the check of an existing record through training to the record's write. It is
``fcntl.flock`` on ``RUN_DIR/.lock``: the kernel drops it when the holder exits, however it exits, so a
killed run leaves no stale lock. The file holds the holder's pid for the loser's message and is removed
on release. Pure Python, POSIX only.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
from collections.abc import Iterator
from pathlib import Path

LOCK_NAME = ".lock"


class RunLockedError(RuntimeError):
    """Another process holds the run directory's lock; the message names the directory and its pid."""


def try_lock(path: Path) -> int | None:
    """flock the file at ``path`` (created if missing) without waiting: its open descriptor, or None when
    another process holds it. Closing the descriptor releases the lock (so does the holder's death)."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        # The previous holder unlinks the file before it unlocks: if we locked an unlinked file, a third
        # process may hold a fresh one at the same path. Only the file still at the path counts.
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


def holder(path: Path) -> str:
    """What a lock file says about its holder (its pid, ...), or "unknown"."""
    try:
        return Path(path).read_text(errors="replace").strip() or "unknown"
    except OSError:
        return "unknown"


def _acquire(path: Path, run_dir: Path) -> int:
    """Open and flock the lock file still at ``path``; RunLockedError if another process holds it."""
    fd = try_lock(path)
    if fd is None:
        raise RunLockedError(f"{run_dir}: another process (pid {holder(path)}) is writing this run; lock file {path}")
    return fd


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[Path]:
    """Hold the lock of ``run_dir`` (which must exist) for the ``with`` block; yield the lock file.

    Raises RunLockedError at once if another process holds it (non-blocking: a second writer of the
    same run is a mistake to report, not a turn to wait for).
    """
    path = Path(run_dir) / LOCK_NAME
    # Ctrl-C is held back from creating the lock file until the cleanup below is armed: delivered in between,
    # it would leave a lock file behind (seen under CI timing). A pending one is delivered inside the try.
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        fd = _acquire(path, run_dir)
    except BaseException:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        raise
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        os.close(fd)  # closing releases the flock, after the unlink (see above)
