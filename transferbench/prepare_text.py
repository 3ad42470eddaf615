"""The ``prepare_data`` stage for text: a corpus -> token shards on disk with a manifest.

The corpus is a Hugging Face ``datasets`` corpus (name, config, split, text column, revision; needs the
network once) or local files (``text``, ``json``/``jsonl`` or ``parquet``), loaded through the same
``datasets`` builders. Documents are tokenized and joined with an end-of-document token into one flat
array (uint16, or uint32 beyond 65,536 tokens); the last ``eval_fraction`` of the documents is the
held-out slice. Tokenizers:

- ``byte``: UTF-8 bytes, vocab 256 + the end-of-document token (257); offline, nothing to train;
- ``bpe``: a byte-level BPE trained on the corpus itself with the ``tokenizers`` library
  (``vocab_size`` tokens including the special one), so it also works offline;
- ``pretrained``: a tokenizer by name (``tokenizers.Tokenizer.from_pretrained``; needs the network)
  and its ``eos_token``.

The manifest (data/prepared.py) records the source and its fingerprint, the tokenizer and its sha256,
the token counts and the sha256 of every file.
"""

from __future__ import annotations

import glob
import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np

from transferbench.data.prepared import DataError, sha256_file, write_manifest

log = logging.getLogger("transferbench")
FORMATS = {".txt": "text", ".md": "text", ".rst": "text", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}
EOS = "<|endoftext|>"


def expand(files: list[str], base: Path | None = None) -> list[Path]:
    """Paths and globs -> the sorted, existing files (DataError naming a pattern that matches nothing)."""
    out: list[Path] = []
    for pattern in files:
        full = str(Path(base or ".") / pattern)
        hits = sorted(glob.glob(full, recursive=True))
        if not hits:
            raise DataError(f"files: {pattern!r} matches no file")
        out += [Path(h) for h in hits if Path(h).is_file()]
    return list(dict.fromkeys(out))


def load_corpus(spec: dict[str, Any], cache: Path) -> tuple[Any, str, dict[str, Any]]:
    """The corpus as a ``datasets.Dataset`` (memory-mapped Arrow, not a list in memory), its text column,
    and the source's description (with the dataset's fingerprint)."""
    import datasets

    column = spec.get("text_column") or "text"
    if spec.get("dataset"):
        ds = datasets.load_dataset(spec["dataset"], spec.get("config"), split=spec.get("split") or "train",
                                   revision=spec.get("revision"), cache_dir=str(cache))
        source = {"dataset": spec["dataset"], "config": spec.get("config"), "split": spec.get("split") or "train",
                  "revision": spec.get("revision")}
    else:
        files = expand(list(spec.get("files") or []))
        if not files:
            raise DataError("files: no corpus given (files or dataset)")
        fmt = spec.get("format") or FORMATS.get(files[0].suffix.lower(), "text")
        kw = {"sample_by": "document"} if fmt == "text" else {}  # a text file is one document
        ds = datasets.load_dataset(fmt, data_files=[str(f) for f in files], split="train", cache_dir=str(cache), **kw)
        source = {"format": fmt, "files": [{"path": str(f), "sha256": sha256_file(f)} for f in files]}
    if column not in ds.column_names:
        raise DataError(f"text_column: {column!r} is not a column of the corpus (columns: {ds.column_names})")
    if spec.get("max_documents"):
        ds = ds.select(range(min(int(spec["max_documents"]), len(ds))))
    source["fingerprint"] = getattr(ds, "_fingerprint", None)
    return ds, column, source


def texts(ds: Any, column: str, start: int = 0, stop: int | None = None) -> Any:
    """The non-empty documents of rows [start, stop), streamed in batches (never the whole corpus in memory)."""
    stop = len(ds) if stop is None else stop
    for i in range(start, stop, 1000):
        for t in ds[i:min(i + 1000, stop)][column]:
            if isinstance(t, str) and t.strip():
                yield t


class _Bytes:
    """UTF-8 bytes; the end-of-document token is 256."""

    vocab_size, eos_id = 257, 256

    def encode(self, text: str) -> np.ndarray:
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int64)


class _HF:
    """A ``tokenizers`` tokenizer (trained here, or pretrained) with its end-of-document token."""

    def __init__(self, tok: Any, eos: str) -> None:
        self.tok, self.eos_id = tok, tok.token_to_id(eos)
        if self.eos_id is None:
            raise DataError(f"eos_token: {eos!r} is not a token of the tokenizer")
        self.vocab_size = tok.get_vocab_size()

    def encode(self, text: str) -> np.ndarray:
        return np.asarray(self.tok.encode(text).ids, dtype=np.int64)


def make_tokenizer(spec: dict[str, Any], corpus: Any) -> tuple[Any, Any]:
    """(tokenizer, the ``tokenizers`` object to save or None) of the spec's kind; ``corpus()`` yields the
    documents to train a BPE on."""
    kind = spec.get("tokenizer") or "byte"
    if kind == "byte":
        return _Bytes(), None
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    if kind == "bpe":
        size = int(spec.get("vocab_size") or 1024)
        if size < 258:
            raise DataError(f"vocab_size: a byte-level BPE needs at least 258 tokens (256 bytes + 1 special), "
                            f"got {size}")
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=size, special_tokens=[EOS], show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tok.train_from_iterator(corpus(), trainer=trainer, length=None)
        return _HF(tok, EOS), tok
    if kind == "pretrained":
        if not spec.get("pretrained") or not spec.get("eos_token"):
            raise DataError("tokenizer: 'pretrained' needs pretrained (a name) and eos_token")
        tok = Tokenizer.from_pretrained(spec["pretrained"])
        return _HF(tok, spec["eos_token"]), tok
    raise DataError(f"tokenizer: {kind!r} is not one of byte, bpe, pretrained")


def prepare_text(spec: dict[str, Any], out_dir: Path) -> Path:
    """Tokenize the corpus of ``spec`` into ``out_dir`` (train.bin, eval.bin, tokenizer.json, manifest.json),
    streaming: documents are read, tokenized and appended in batches."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ds, column, source = load_corpus(spec, out_dir / ".hf-cache")
    if len(ds) < 2:
        raise DataError(f"corpus: {len(ds)} document(s); the held-out slice needs at least 2")
    tok, saved = make_tokenizer(spec, lambda: texts(ds, column))
    frac = float(spec.get("eval_fraction", 0.05))
    n_eval = min(max(1, int(round(frac * len(ds)))), len(ds) - 1)  # the last rows are held out
    dtype = np.uint16 if tok.vocab_size <= 1 << 16 else np.uint32
    arrays, files, docs = {}, [], {}
    for name, (start, stop) in (("train", (0, len(ds) - n_eval)), ("eval", (len(ds) - n_eval, len(ds)))):
        count = n_docs = 0
        with open(out_dir / f"{name}.bin", "wb") as fh:
            for text in texts(ds, column, start, stop):
                ids = np.append(tok.encode(text), tok.eos_id).astype(dtype)
                fh.write(ids.tobytes())
                count, n_docs = count + ids.size, n_docs + 1
        if n_docs == 0:
            raise DataError(f"corpus: the {name} slice has no non-empty document")
        arrays[name] = {"file": f"{name}.bin", "dtype": np.dtype(dtype).name, "shape": [count]}
        files.append(f"{name}.bin")
        docs[name] = n_docs
    tokenizer = {"kind": spec.get("tokenizer") or "byte", "vocab_size": int(tok.vocab_size), "eos_id": int(tok.eos_id)}
    if saved is not None:
        saved.save(str(out_dir / "tokenizer.json"))
        files.append("tokenizer.json")
        tokenizer["sha256"] = sha256_file(out_dir / "tokenizer.json")
        tokenizer["pretrained"] = spec.get("pretrained")
    counts = {"documents": docs["train"] + docs["eval"], "eval_documents": docs["eval"],
              "train_tokens": arrays["train"]["shape"][0], "eval_tokens": arrays["eval"]["shape"][0]}
    spec_hash = hashlib.sha256(repr(sorted(spec.items())).encode()).hexdigest()[:16]
    path = write_manifest(out_dir, {"kind": "tokens", "source": source, "tokenizer": tokenizer, "counts": counts,
                                    "arrays": arrays, "files": files, "spec_hash": spec_hash})
    log.info("prepared %d documents: %d train and %d held-out tokens, vocab %d -> %s", counts["documents"],
             counts["train_tokens"], counts["eval_tokens"], tok.vocab_size, path)
    return path
