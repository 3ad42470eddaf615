"""Generated data for the three workloads (docs/design.md §4): a sparse Markov token stream (llama), synthetic
10-class images (resnet) and a random teacher network (mlp).

numpy only (no torch): the generators return numpy arrays and ``workloads.py`` moves them to torch.
Determinism on every machine: every random draw comes from ``Generator(PCG64(key))`` with an integer
tuple ``key`` (never torch's RNG, never Python's ``hash()``):

- the TASK (Markov chain, class templates, teacher weights) from ``(data_seed, TASK)``;
- the training batch at step t from ``(data_seed, TRAIN, seed, t)``: a run is reproducible and
  different seeds see different samples;
- held-out eval batch i from ``(data_seed, EVAL, i)``: the same for every run, a disjoint stream.

One generator per module: ``markov.py`` (MarkovTokens), ``images.py`` (TemplateImages) and
``teacher.py`` (TeacherRegression); the shared pieces (stream ids, ``rng``, ``Source``) are in
``base.py``. Everything is re-exported here: import from ``transferbench.data``.
"""

from __future__ import annotations

from transferbench.data.base import CALIB, EVAL, TASK, TRAIN, Batch, Source, rng
from transferbench.data.images import TemplateImages
from transferbench.data.markov import MarkovTokens
from transferbench.data.teacher import TeacherRegression

__all__ = [
    "CALIB", "EVAL", "TASK", "TRAIN", "Batch", "MarkovTokens", "Source", "TeacherRegression", "TemplateImages",
    "rng",
]
