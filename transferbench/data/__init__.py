"""Data any workload can use (docs/design.md §4); each workload's own generator is in its folder
(``workloads/<name>/data.py``).

numpy only (no torch): sources return numpy arrays and ``workloads/build.py`` moves them to torch.
Determinism on every machine: every random draw comes from ``Generator(PCG64(key))`` with an integer
tuple ``key`` (never torch's RNG, never Python's ``hash()``):

- the TASK (Markov chain, class templates, teacher weights) from ``(data_seed, TASK)``;
- the training batch at step t from ``(data_seed, TRAIN, seed, t)``: a run is reproducible and
  different seeds see different samples;
- held-out eval batch i from ``(data_seed, EVAL, i)``: the same for every run, a disjoint stream.

``base.py`` holds the shared pieces (stream ids, ``rng``, ``Source``), re-exported here. The prepared
formats: ``prepared.py`` (manifest and verification), ``tokens.py`` (token windows of a prepared corpus,
made by prepare_text.py), ``cifar.py`` (CIFAR-10), and ``kinds.py`` (the data kinds a profile may prepare).
"""

from __future__ import annotations

from transferbench.data.base import CALIB, EVAL, TASK, TRAIN, Batch, Source, rng

__all__ = ["CALIB", "EVAL", "TASK", "TRAIN", "Batch", "Source", "rng"]
