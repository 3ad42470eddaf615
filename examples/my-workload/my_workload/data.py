"""The data of ``sines``: y = Σ_k a_k sin(k x + φ_k) / norm + noise, x ~ U(-π, π), with the amplitudes and
phases fixed by ``data_seed``. numpy only. A source draws every batch from the generator it is given
(``Source.train_batch(seed, step)`` seeds it with (data_seed, seed, step)) and keeps no state between
batches, so a run resumed at step t gets the batch the uninterrupted run got."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from transferbench.data import TASK, Batch, Source, rng


class SumOfSines(Source):
    kind = "sum-of-sines"

    def __init__(self, frequencies: int, noise: float, batch_size: int, data_seed: int) -> None:
        super().__init__(batch_size, data_seed)
        gen = rng(self.data_seed, TASK)
        self.k = np.arange(1, frequencies + 1, dtype=np.float64)
        self.amp = gen.normal(size=frequencies) / self.k  # smoother: high frequencies weigh less
        self.phase = gen.uniform(0.0, 2 * math.pi, size=frequencies)
        self.norm = float(np.sqrt(0.5 * np.sum(self.amp**2)))  # the target's std: unit variance
        self.noise = float(noise)

    def _sample(self, gen: np.random.Generator, batch_size: int) -> Batch:
        x = gen.uniform(-math.pi, math.pi, size=(batch_size, 1))
        y = np.sin(x * self.k + self.phase) @ self.amp / self.norm
        y = y[:, None] + self.noise * gen.standard_normal((batch_size, 1))
        return x.astype(np.float32), y.astype(np.float32)

    def info(self) -> dict[str, Any]:
        return {"kind": self.kind, "data_seed": self.data_seed, "frequencies": len(self.k),
                "noise_floor": self.noise**2}


def build(cfg: Any) -> Source:
    """The spec's ``generated`` source of the run's RunConfig."""
    return SumOfSines(cfg.settings.frequencies, cfg.settings.noise, int(cfg.batch_size), int(cfg.data_seed))
