"""Checkpoint and resume of one run: ``RUN_DIR/checkpoint.pt`` and the signals that ask for it.

A checkpoint holds everything the rest of the run depends on: the model (the eager module's state, also
under ``compile``: the compiled wrapper shares its parameters), the optimizer, the next step, the
train.State gathered so far (losses, curve, coordinate check, diagnostics, applied), the held-out
loss at step 0, the training time so far, the steps it was resumed from before, and every RNG state
(Python, numpy, torch CPU and, where CUDA is initialised, every CUDA device). The step is the data
position: every workload's ``train_batch(t)`` is a pure function of (data_seed, seed, t) (data/base.py,
data/tokens.py, data/cifar.py draw from ``rng(data_seed, TRAIN, seed, t)``), so no loader state is saved.
On CPU a resumed run's record is therefore the uninterrupted run's, number for number
(tests/test_resume.py), apart from timing fields and ``resumed_from``.

When: every ``checkpoint_every`` steps, every ``checkpoint_minutes`` of training, on SIGUSR1 (save and
go on: ``sbatch --signal=USR1@300`` takes one five minutes before a time limit) and on SIGTERM (what
SLURM sends on preemption, ``scontrol requeue`` and at the time limit): save at the next step boundary,
then exit with status 143 (128 + SIGTERM). A signal handler only sets a flag; the training loop acts on
it. Outside a training loop SIGTERM does what it always did (nothing is lost there: records are written
atomically). Writes are atomic (temp file in the run directory, fsync, rename), so a SIGKILL leaves the
previous checkpoint; a finished run's checkpoint is deleted once its record is written, unless
``keep_checkpoints`` (then it holds the final state). Pure Python at import; torch loads on use.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

log = logging.getLogger("transferbench.checkpoint")

CHECKPOINT_NAME = "checkpoint.pt"
#: The checkpoint's own format version: a checkpoint of another format is not resumed (the run starts over).
FORMAT = 1
#: The exit status after a SIGTERM's checkpoint: 128 + 15, what a shell reports for a SIGTERM'd process.
STOP_STATUS = 128 + int(signal.SIGTERM)


class Preempted(SystemExit):
    """SIGTERM arrived during training: the state is saved (or the record written), the process exits 143."""


class CheckpointError(ValueError):
    """A checkpoint of this run's config that this code cannot load: the message names the file and the way out."""


class _Requests:
    """What the signal handler asked for; ``depth`` > 0 while a training loop (train.train) is running."""

    stop = False  # SIGTERM: save at the next step boundary, then exit
    save = False  # SIGUSR1: save at the next step boundary, then go on
    depth = 0


_REQ = _Requests()


def _handler(signum: int, frame: Any) -> None:
    if signum == signal.SIGUSR1:
        _REQ.save = True
    elif _REQ.depth == 0:  # not training: nothing to save, so SIGTERM ends the process as it would by default
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)
    else:
        _REQ.stop = True


@contextlib.contextmanager
def signals_handled() -> Iterator[None]:
    """Handle SIGTERM and SIGUSR1 as above for the block (the train command's line); the old handlers
    come back after it. Only the main thread can set handlers: elsewhere the block runs without them."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, _handler) for s in (signal.SIGTERM, signal.SIGUSR1)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        _REQ.stop = _REQ.save = False


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """A block in which SIGTERM waits: the training loop saves and raises :class:`Preempted` at its next
    step boundary; a SIGTERM after the last step lets the record be written (and, in line.py, the shared
    run be remembered) and raises Preempted when the outermost block ends. Nests; usable as a decorator."""
    _REQ.depth += 1
    try:
        yield
    finally:
        _REQ.depth -= 1
    if _REQ.depth == 0 and _REQ.stop:
        log.warning("SIGTERM: the run in progress is finished and recorded; exiting with status %d", STOP_STATUS)
        raise Preempted(STOP_STATUS)


def discard(run_dir: Path) -> None:
    """Delete a run directory's checkpoint and any temp file of an interrupted save (``train --force``)."""
    for p in Path(run_dir).glob(f".{CHECKPOINT_NAME}.*"):
        p.unlink(missing_ok=True)
    (Path(run_dir) / CHECKPOINT_NAME).unlink(missing_ok=True)


class Checkpointer:
    """The checkpoints of one run (train.train drives it); inert when the run has no directory."""

    def __init__(self, run: Any, out_dir: Path | None) -> None:
        from transferbench.config import config_hash

        cfg = run.cfg
        self.run, self.steps = run, len(run.sched)
        self.path = None if out_dir is None else Path(out_dir) / CHECKPOINT_NAME
        self.every, self.seconds = int(cfg.checkpoint_every), 60.0 * float(cfg.checkpoint_minutes)
        self.keep = bool(cfg.keep_checkpoints)
        self.hash = config_hash(cfg)
        self.resumed_from: list[int] = []
        self.saved_at: int | None = None
        self.last = time.monotonic()

    def resume(self, st: Any) -> tuple[int, float | None, float]:
        """Load this run's checkpoint, if there is one of the same config, into the model, the optimizer, the
        RNGs and ``st`` (a train.State); return (first step to run, init_loss or None, training time so far)."""
        if self.path is None:
            return 0, None, 0.0
        for p in self.path.parent.glob(f".{CHECKPOINT_NAME}.*"):  # a save cut short by SIGKILL; we hold the lock
            p.unlink(missing_ok=True)
        if not self.path.is_file():
            return 0, None, 0.0
        import torch

        try:
            ck = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as exc:  # unreadable (torn disk, another program's file): starting over is only slower
            log.warning("%s: cannot be read (%s: %s); training from step 0", self.path, type(exc).__name__, exc)
            return 0, None, 0.0
        if not isinstance(ck, dict) or ck.get("format") != FORMAT or ck.get("config_hash") != self.hash:
            got = ck.get("config_hash") if isinstance(ck, dict) else None
            log.warning("%s: a checkpoint of config hash %s (format %s), this run's is %s; training from step 0",
                        self.path, got, ck.get("format") if isinstance(ck, dict) else None, self.hash)
            return 0, None, 0.0
        from transferbench.record import git_commit

        if ck.get("git_commit") != git_commit():
            log.warning("%s: saved by commit %s, resumed by %s: numbers are exact only for the same code",
                        self.path, ck.get("git_commit"), git_commit())
        try:
            self.run.wl.model.load_state_dict(ck["model"])  # the eager module: a compiled one shares its parameters
            self.run.opt.load_state_dict(ck["optimizer"])
            set_rng_state(ck["rng"])
            for f in fields(st):
                setattr(st, f.name, ck["state"][f.name])
            step = int(ck["step"])
        except Exception as exc:  # half loaded: the model may hold its weights already, so no fresh start either
            why = " ".join(str(exc).split())  # one line: main logs it as one
            raise CheckpointError(f"{self.path}: a checkpoint of this config that this code cannot load "
                                  f"({type(exc).__name__}: {why}); delete it, or rerun with --force") from None
        self.resumed_from = [*ck["resumed_from"], step]
        self.saved_at = step
        log.info("%s: resuming at step %d of %d (resumed before from %s)", self.path, step, self.steps,
                 ck["resumed_from"] or "none")
        # A kept final checkpoint of a diverged or failed run: nothing left to train, only the record to write.
        ended = st.diverged_step is not None or st.failure is not None
        return (self.steps if ended else step), float(ck["init_loss"]), float(ck["train_time"])

    def after_step(self, st: Any, done: int, init_loss: float, train_time: float) -> None:
        """After ``done`` steps: save if due or asked to; after a SIGTERM's save raise :class:`Preempted`."""
        if self.path is None:
            return
        if done >= self.steps:  # the run ends now: its record is better than a checkpoint
            _REQ.save = False
            return
        now = time.monotonic()
        due = (_REQ.stop or _REQ.save or (self.every > 0 and done % self.every == 0)
               or (self.seconds > 0 and now - self.last >= self.seconds))
        if due and self.saved_at != done:
            why = "SIGTERM" if _REQ.stop else "SIGUSR1" if _REQ.save else "periodic"
            self.save(st, done, init_loss, train_time, why)
        _REQ.save = False
        if _REQ.stop:
            log.warning("SIGTERM: checkpoint at step %d of %d in %s; exiting with status %d (rerun to resume)",
                        done, self.steps, self.path, STOP_STATUS)
            raise Preempted(STOP_STATUS)

    def save(self, st: Any, done: int, init_loss: float, train_time: float, why: str = "") -> None:
        """Write the checkpoint atomically. A failed write is logged and training goes on (the previous
        checkpoint stands): a full disk, or a bug here, costs resumability, never the run or its record."""
        import torch

        assert self.path is not None
        t0 = time.monotonic()
        try:
            payload = {
                "format": FORMAT, "config_hash": self.hash, "git_commit": _commit(), "step": done,
                "steps": self.steps, "init_loss": init_loss, "train_time": train_time,
                "resumed_from": list(self.resumed_from), "model": self.run.wl.model.state_dict(),
                "optimizer": self.run.opt.state_dict(), "rng": rng_state(),
                "state": {f.name: getattr(st, f.name) for f in fields(st)},
            }
            _save_atomic(payload, self.path, torch.save)
        except Exception as exc:  # inside the loop's own handler, it would turn the run into a failed result
            log.error("%s: checkpoint at step %d not written (%s: %s); training goes on", self.path, done,
                      type(exc).__name__, exc)
            return
        self.saved_at, self.last = done, time.monotonic()
        log.info("checkpoint (%s) at step %d of %d -> %s (%.2fs)", why, done, self.steps, self.path,
                 self.last - t0)

    def done(self, st: Any, init_loss: float, train_time: float) -> None:
        """The record is written: delete the checkpoint, or with ``keep_checkpoints`` save the final state."""
        if self.path is None:
            return
        if self.keep:
            self.save(st, len(st.losses), init_loss, train_time, "final")
        else:
            self.path.unlink(missing_ok=True)


def _commit() -> str | None:
    from transferbench.record import git_commit

    return git_commit()


def _save_atomic(payload: dict[str, Any], path: Path, save: Any) -> None:
    """``save(payload, file)`` to a temp file beside ``path``, fsync, rename: readers see the old or the new."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        umask = os.umask(0)  # mkstemp makes 0600; a checkpoint is as readable as its record
        os.umask(umask)
        os.fchmod(fd, 0o644 & ~umask)
        with os.fdopen(fd, "wb") as fh:
            save(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def rng_state() -> dict[str, Any]:
    """Every RNG's state, in types ``torch.load(weights_only=True)`` reads back."""
    import random

    import numpy as np
    import torch

    npst = np.random.get_state(legacy=False)
    out: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {"key": torch.from_numpy(np.asarray(npst["state"]["key"], np.int64)), "pos": int(npst["state"]["pos"]),
                  "has_gauss": int(npst["has_gauss"]), "gauss": float(npst["gauss"])},
        "torch": torch.get_rng_state(),
    }
    # Only an initialised CUDA has a state of its own (a CPU run must not create a CUDA context); a run on a
    # GPU has initialised it by its first step. One state per visible device.
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def set_rng_state(state: dict[str, Any]) -> None:
    import random

    import numpy as np
    import torch

    random.setstate(state["python"])
    npst = state["numpy"]
    np.random.set_state({"bit_generator": "MT19937", "state": {"key": npst["key"].numpy().astype(np.uint32),
                         "pos": npst["pos"]}, "has_gauss": npst["has_gauss"], "gauss": npst["gauss"]})
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda") or []
    if cuda and not torch.cuda.is_available():
        log.warning("the checkpoint holds CUDA RNG states but CUDA is not available: not restored")
    elif cuda:
        for i, s in enumerate(cuda[:torch.cuda.device_count()]):
            torch.cuda.set_rng_state(s, i)
