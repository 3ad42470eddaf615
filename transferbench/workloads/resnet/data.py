"""resnet's data: ``TemplateImages``, synthetic class-template images (smooth random templates with a
class colour, shifted, flipped, mixed with a distractor, cluttered and noised); and the spec's source
builders: ``image_source`` (generated) and ``cifar_source`` (prepared CIFAR-10)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from transferbench.data.base import TASK, Batch, Source, rng

if TYPE_CHECKING:
    from transferbench.settings import RunConfig


class TemplateImages(Source):
    """Synthetic ``num_classes``-way images of shape (3, S, S), float32.

    Each class has a colour (N(0, ``colour``²) per channel) and ``templates_per_class`` smooth random
    templates: Gaussian noise at resolution S/4 and S/2 upsampled bilinearly and summed (coarse shape
    plus finer texture), normalised to zero mean and unit RMS, plus the class colour. A sample picks a
    template of its class and applies a random circular shift of up to S/8 pixels, a horizontal flip, a
    contrast factor in [0.5, 1.5] and a colour offset, blends in a random other class's template
    (weight up to ``distractor``), adds a fresh smooth random field of RMS ``clutter``
    (class-independent background with the templates' texture) and Gaussian pixel noise of std
    ``noise``. Labels are uniform.

    Calibration (batch 128, 16x16, noise 1, depth-1 ResNet, AdamW lr 2^-7, 400 steps): the class
    colour is learnt within ~50 steps (loss ~0.8), the shapes over the following hundreds; eval loss
    ends near 0.4 at width 8 and 0.2 at width 32 (wider is better). Without clutter the loss was
    ~0.2 after 50 steps; without the colour cue nothing was learnt in the first 10 steps.
    """

    kind = "template-images"

    def __init__(
        self,
        image_size: int,
        num_classes: int,
        batch_size: int,
        noise: float = 1.0,
        templates_per_class: int = 2,
        distractor: float = 0.5,
        clutter: float = 1.0,
        colour: float = 1.0,
        data_seed: int = 0,
    ) -> None:
        super().__init__(batch_size, data_seed)
        self.size, self.num_classes, self.noise = int(image_size), int(num_classes), float(noise)
        self.per_class, self.distractor = int(templates_per_class), float(distractor)
        self.clutter, self.colour = float(clutter), float(colour)
        s = self.size
        self._ups = [_bilinear_matrix(low, s) for low in (max(2, s // 4), max(2, s // 2))]
        gen_task = rng(self.data_seed, TASK)
        templates = self._smooth_fields(gen_task, self.num_classes * self.per_class)
        templates -= templates.mean(axis=(1, 2, 3), keepdims=True)
        # A class colour (shared by the class's templates) is an easy cue learnt in a few steps; the
        # shapes under clutter and noise are the slow part.
        colour = gen_task.normal(0.0, self.colour, (self.num_classes, 1, 3, 1, 1))
        templates = templates.reshape(self.num_classes, self.per_class, 3, s, s) + colour
        self.templates = templates.reshape(-1, 3, s, s)  # index = class * per_class + variant

    def _smooth_fields(self, gen: np.random.Generator, n: int) -> np.ndarray:
        """n smooth random (3, S, S) fields with unit RMS: noise at S/4 and S/2 upsampled and summed."""
        out = np.zeros((n, 3, self.size, self.size))
        for up in self._ups:
            low = up.shape[1]
            # Separable upsampling as stacked small matmuls: fastest of the forms we timed (a 3-operand
            # einsum was 10x slower; one big (n*3, low²) x (low², S²) BLAS call is slow on busy cores).
            out += up @ gen.standard_normal((n, 3, low, low)) @ up.T
        return out / np.sqrt((out**2).mean(axis=(1, 2, 3), keepdims=True))

    def _sample(self, gen: np.random.Generator, batch_size: int) -> Batch:
        s, c, n = self.size, self.num_classes, batch_size
        y = gen.integers(0, c, n)
        other = (y + gen.integers(1, c, n)) % c  # the distractor's class: never the label's
        variants = gen.integers(0, self.per_class, (n, 2))
        mix = gen.uniform(0.0, self.distractor, n)[:, None, None, None]
        contrast = gen.uniform(0.5, 1.5, n)[:, None, None, None]
        clean = contrast * (self.templates[y * self.per_class + variants[:, 0]]
                            + mix * self.templates[other * self.per_class + variants[:, 1]])
        # Random circular shift and horizontal flip as one gather with per-sample row/col indices.
        max_shift = max(1, s // 8)
        shifts = gen.integers(-max_shift, max_shift + 1, (n, 2))
        rows = (np.arange(s)[None, :] - shifts[:, :1]) % s
        cols = (np.arange(s)[None, :] - shifts[:, 1:]) % s
        cols = np.where((gen.random(n) < 0.5)[:, None], s - 1 - cols, cols)
        x = clean[np.arange(n)[:, None, None, None], np.arange(3)[None, :, None, None],
                  rows[:, None, :, None], cols[:, None, None, :]]
        x += gen.normal(0.0, 0.2, (n, 3, 1, 1))  # colour offset
        x += self.clutter * self._smooth_fields(gen, n)
        x += self.noise * gen.standard_normal((n, 3, s, s))
        return x.astype(np.float32), y.astype(np.int64)

    def info(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "data_seed": self.data_seed, "image_size": self.size,
            "num_classes": self.num_classes, "image_noise": self.noise, "templates_per_class": self.per_class,
            "distractor": self.distractor, "clutter": self.clutter, "class_colour": self.colour,
            "uniform_loss": math.log(self.num_classes),
        }


def _bilinear_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) linear-interpolation matrix (align-corners) for separable upsampling."""
    pos = np.linspace(0.0, n_in - 1, n_out)
    lo = np.minimum(np.floor(pos).astype(int), n_in - 2)
    frac = pos - lo
    mat = np.zeros((n_out, n_in))
    mat[np.arange(n_out), lo] = 1.0 - frac
    mat[np.arange(n_out), lo + 1] = frac
    return mat


def image_source(cfg: RunConfig) -> Source:
    """The spec's ``generated`` source: template images of a resolved run config."""
    return TemplateImages(cfg.settings.image_size, cfg.settings.num_classes, int(cfg.batch_size),
                          noise=cfg.settings.image_noise, data_seed=int(cfg.data_seed))


def cifar_source(cfg: RunConfig) -> Source:
    """The spec's ``cifar10`` source: prepared CIFAR-10 (data kind ``cifar10``)."""
    from transferbench.data.cifar import CifarImages
    from transferbench.data.prepared import manifest_of

    return CifarImages(manifest_of(cfg), cfg.settings.image_size, cfg.settings.num_classes, int(cfg.batch_size),
                       augment=cfg.settings.augment, data_seed=int(cfg.data_seed))
