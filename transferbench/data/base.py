"""Shared pieces of the data generators: the stream ids, the seeded ``rng(...)`` and the ``Source``
base class (batch plumbing: training and held-out eval batches from per-stream generator keys).

numpy only (no torch); see the package docstring (``transferbench/data/__init__.py``) for the keying
scheme that makes every batch deterministic on every machine.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# Stream ids: the second entry of every generator key, so the streams never overlap.
TASK, TRAIN, EVAL, CALIB = 0, 1, 2, 3

Batch = tuple[np.ndarray, np.ndarray]


def rng(*key: int) -> np.random.Generator:
    """A generator seeded by an integer tuple (through numpy's SeedSequence: platform independent)."""
    return np.random.Generator(np.random.PCG64([int(k) for k in key]))


class Source:
    """Shared batch plumbing: subclasses implement ``_sample(gen, batch_size)`` and ``info()``."""

    kind = ""

    def __init__(self, batch_size: int, data_seed: int) -> None:
        self.batch_size = int(batch_size)
        self.data_seed = int(data_seed)

    def _sample(self, gen: np.random.Generator, batch_size: int) -> Batch:
        raise NotImplementedError

    def train_batch(self, seed: int, step: int) -> Batch:
        """The training batch of run seed ``seed`` at step ``step``."""
        return self._sample(rng(self.data_seed, TRAIN, seed, step), self.batch_size)

    def eval_batch(self, index: int) -> Batch:
        """Held-out batch ``index``: depends only on data_seed (identical for every run)."""
        return self._sample(rng(self.data_seed, EVAL, index), self.batch_size)

    def info(self) -> dict[str, Any]:
        raise NotImplementedError
