"""mlp's data: ``TeacherRegression``, regression on a fixed random tanh teacher network with
standardised outputs and Gaussian label noise; and the spec's source builder ``teacher_source``."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from transferbench.data.base import CALIB, TASK, Batch, Source, rng

if TYPE_CHECKING:
    from transferbench.settings import RunConfig


class TeacherRegression(Source):
    """Regression on a fixed random teacher ([Fan25]'s minimal synthetic setting is a regression
    with normalized linear layers; the teacher is our choice).

    x ~ N(0, I_in_dim); the teacher is ``teacher_depth`` tanh layers of width ``teacher_width``
    (weights N(0, gain²/fan_in), gain 1.5 so tanh is in its nonlinear range) and a linear output of
    ``out_dim``; its outputs are standardised to zero mean and unit variance per output (statistics on
    2**15 inputs from a calibration stream). Targets add N(0, label_noise²) noise, so the best
    achievable mean squared error is ``noise_floor = label_noise**2``.
    """

    kind = "teacher-regression"
    gain = 1.5
    calibration = 1 << 15

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        batch_size: int,
        teacher_width: int = 64,
        teacher_depth: int = 2,
        label_noise: float = 0.05,
        data_seed: int = 0,
    ) -> None:
        super().__init__(batch_size, data_seed)
        self.in_dim, self.out_dim = int(in_dim), int(out_dim)
        self.teacher_width, self.teacher_depth = int(teacher_width), int(teacher_depth)
        self.label_noise = float(label_noise)
        gen = rng(self.data_seed, TASK)
        dims = [self.in_dim] + [self.teacher_width] * self.teacher_depth
        pairs = zip(dims[:-1], dims[1:], strict=True)
        self.weights = [gen.normal(0.0, self.gain / math.sqrt(a), (a, b)) for a, b in pairs]
        self.readout = gen.normal(0.0, 1.0 / math.sqrt(dims[-1]), (dims[-1], self.out_dim))
        self.mean, self.std = np.zeros(self.out_dim), np.ones(self.out_dim)
        calib = self.teacher(rng(self.data_seed, CALIB).standard_normal((self.calibration, self.in_dim)))
        self.mean, self.std = calib.mean(axis=0), calib.std(axis=0)

    def teacher(self, x: np.ndarray) -> np.ndarray:
        """The noiseless, standardised teacher output.

        np.einsum (numpy's own loops), not ``@``: OpenBLAS threads took ~12 ms instead of ~0.7 ms per
        128-sample batch on a busy 2-core machine, and BLAS kernels differ between CPUs.
        """
        h = x
        for w in self.weights:
            h = np.tanh(np.einsum("bi,ij->bj", h, w))
        return (np.einsum("bi,ij->bj", h, self.readout) - self.mean) / self.std

    def _sample(self, gen: np.random.Generator, batch_size: int) -> Batch:
        x = gen.standard_normal((batch_size, self.in_dim))
        y = self.teacher(x) + self.label_noise * gen.standard_normal((batch_size, self.out_dim))
        return x.astype(np.float32), y.astype(np.float32)

    def info(self) -> dict[str, Any]:
        """noise_floor (= label_noise²) is the best achievable mean squared error."""
        return {
            "kind": self.kind, "data_seed": self.data_seed, "in_dim": self.in_dim, "out_dim": self.out_dim,
            "teacher_width": self.teacher_width, "teacher_depth": self.teacher_depth,
            "teacher_activation": "tanh", "teacher_gain": self.gain, "label_noise": self.label_noise,
            "noise_floor": self.label_noise**2, "target_variance": 1.0 + self.label_noise**2,
        }


def teacher_source(cfg: RunConfig) -> Source:
    """The spec's ``generated`` source: the teacher regression of a resolved run config."""
    return TeacherRegression(cfg.settings.in_dim, cfg.settings.out_dim, int(cfg.batch_size),
                             teacher_width=cfg.settings.teacher_width, teacher_depth=cfg.settings.teacher_depth,
                             label_noise=cfg.settings.label_noise, data_seed=int(cfg.data_seed))
