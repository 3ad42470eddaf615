"""A language model's real-data source (data kind ``text``): fixed-length windows of a prepared token corpus
(prepare_text.py).

Training windows start at positions drawn from ``(data_seed, TRAIN, seed, step)``, so a run's batches
are a pure function of its seed and step, as with the generated stream: bit-reproducible and
resumable. Held-out windows come from the held-out slice at positions drawn from ``(data_seed, EVAL,
i)``, the same for every run. The manifest is verified (every file's sha256) and the tokenizer's vocab
must fit the model's ``vocab_size`` before any training. numpy only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from transferbench.data.base import EVAL, TRAIN, Batch, Source, rng
from transferbench.data.prepared import DataError, load_manifest, memmap


class TokenWindows(Source):
    """(inputs, targets) = (w[:-1], w[1:]) of windows w of ``seq_len + 1`` tokens, int64."""

    kind = "tokens"

    def __init__(self, path: str, seq_len: int, batch_size: int, vocab_size: int, data_seed: int = 0) -> None:
        super().__init__(batch_size, data_seed)
        self.manifest = load_manifest(path, "tokens")
        where = self.manifest["path"]
        vocab = int(self.manifest["tokenizer"]["vocab_size"])
        if vocab > vocab_size:
            raise DataError(f"{where}: the tokenizer has {vocab} tokens, more than the model's vocab_size="
                            f"{vocab_size}; set vocab_size >= {vocab}")
        self.seq_len = int(seq_len)
        self.train, self.eval = memmap(self.manifest, "train"), memmap(self.manifest, "eval")
        for name, arr in (("train", self.train), ("eval", self.eval)):
            if arr.size < self.seq_len + 2:
                raise DataError(f"{where}: the {name} slice has {arr.size} tokens, fewer than seq_len + 2 = "
                                f"{self.seq_len + 2}")

    def _windows(self, arr: np.ndarray, gen: np.random.Generator, n: int) -> Batch:
        starts = gen.integers(0, arr.size - self.seq_len, n)
        w = np.stack([np.asarray(arr[s:s + self.seq_len + 1], dtype=np.int64) for s in starts])
        return w[:, :-1], w[:, 1:]

    def train_batch(self, seed: int, step: int) -> Batch:
        return self._windows(self.train, rng(self.data_seed, TRAIN, seed, step), self.batch_size)

    def eval_batch(self, index: int) -> Batch:
        return self._windows(self.eval, rng(self.data_seed, EVAL, index), self.batch_size)

    def info(self) -> dict[str, Any]:
        m = self.manifest
        return {"kind": self.kind, "manifest": m["path"], "manifest_sha256": m["manifest_sha256"],
                "tokenizer": m["tokenizer"]["kind"], "tokenizer_vocab": m["tokenizer"]["vocab_size"],
                "train_tokens": m["counts"]["train_tokens"], "eval_tokens": m["counts"]["eval_tokens"],
                "source": m["source"].get("dataset") or m["source"].get("format")}
