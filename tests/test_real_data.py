"""Real data, offline, through the real code paths: text corpora in the real formats (text, jsonl,
parquet) through `datasets` builders and a BPE trained with `tokenizers`; CIFAR-10 in the real python
pickle layout through torchvision's reader; manifests that catch corrupt or mismatched files before
training; batches that are a pure function of (seed, step); and a few training steps on each."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from transferbench.config import resolve_run_config
from transferbench.data.cifar import CifarImages, prepare_cifar
from transferbench.data.prepared import DataError, load_manifest
from transferbench.data.tokens import TokenWindows
from transferbench.prepare_text import prepare_text
from transferbench.train import train

REPO = Path(__file__).resolve().parents[1]
DOCS = [str(REPO / "README.md"), str(REPO / "docs" / "*.md")]
LLAMA = {"workload": "llama", "recipe": "mup", "width": 32, "base_width": 16, "log2_lr": -6, "depth": 1,
         "steps": 6, "batch_size": 4, "seq_len": 32, "eval_batches": 1, "diag_points": 2, "coord_steps": 2}


@pytest.fixture(scope="module")
def bpe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepare_text({"kind": "text", "files": DOCS, "tokenizer": "bpe", "vocab_size": 300},
                        tmp_path_factory.mktemp("bpe"))


def test_a_bpe_corpus_from_the_repositorys_own_text(bpe: Path) -> None:
    m = load_manifest(bpe, "tokens")
    assert m["tokenizer"]["kind"] == "bpe" and m["tokenizer"]["vocab_size"] == 300
    assert m["source"]["format"] == "text" and len(m["source"]["files"]) >= 2 and m["source"]["fingerprint"]
    assert set(m["files"]) == {"train.bin", "eval.bin", "tokenizer.json"}
    train_ids = np.fromfile(bpe.parent / "train.bin", dtype=np.uint16)
    assert train_ids.size == m["counts"]["train_tokens"] > 10_000 and train_ids.max() < 300
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(bpe.parent / "tokenizer.json"))  # the saved tokenizer round-trips text
    assert tok.decode(tok.encode("learning-rate transfer across widths").ids) == "learning-rate transfer across widths"


def test_llama_trains_on_the_prepared_corpus(bpe: Path) -> None:
    cfg = resolve_run_config({**LLAMA, "data_source": "tokens", "data_path": str(bpe), "vocab_size": 300})
    record = train(cfg)
    assert record["data"]["kind"] == "tokens" and record["data"]["manifest"] == str(bpe)
    assert record["data"]["manifest_sha256"] and not record["summary"]["diverged"]
    assert record["summary"]["eval_loss"] < record["summary"]["init_loss"]
    again = train(cfg)
    assert again["curve"] == record["curve"]  # batches are a pure function of (data seed, seed, step)


def test_windows_are_a_pure_function_of_seed_and_step(bpe: Path) -> None:
    a, b = (TokenWindows(str(bpe), 32, 4, 300) for _ in range(2))
    x0, y0 = a.train_batch(0, 5)
    assert np.array_equal(x0, b.train_batch(0, 5)[0]) and not np.array_equal(x0, a.train_batch(1, 5)[0])
    assert np.array_equal(x0[:, 1:], y0[:, :-1])  # targets are the inputs shifted by one
    assert np.array_equal(a.eval_batch(0)[0], b.eval_batch(0)[0])


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_json_and_parquet_corpora_through_datasets(tmp_path: Path, fmt: str) -> None:
    docs = [f"document {i}: " + "the optimal learning rate moves with width. " * (5 + i) for i in range(20)]
    path = tmp_path / f"corpus.{fmt}"
    if fmt == "jsonl":
        path.write_text("".join(json.dumps({"body": d}) + "\n" for d in docs))
    else:
        import pandas as pd

        pd.DataFrame({"body": docs}).to_parquet(path)
    out = prepare_text({"kind": "text", "files": [str(path)], "text_column": "body", "eval_fraction": 0.1},
                       tmp_path / "prepared")
    m = load_manifest(out, "tokens")
    assert m["tokenizer"] == {"kind": "byte", "vocab_size": 257, "eos_id": 256}
    assert m["counts"]["documents"] == 20 and m["counts"]["eval_documents"] == 2
    total = sum(len(d.encode()) + 1 for d in docs)  # bytes plus one end-of-document token each
    assert m["counts"]["train_tokens"] + m["counts"]["eval_tokens"] == total
    with pytest.raises(DataError, match="text_column: 'text' is not a column"):
        prepare_text({"kind": "text", "files": [str(path)]}, tmp_path / "again")


def test_corrupt_or_mismatched_data_fail_before_training_naming_the_file(tmp_path: Path, bpe: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(bpe.parent, copy)
    with pytest.raises(DataError, match=r"the tokenizer has 300 tokens, more than the model's vocab_size=64"):
        TokenWindows(str(copy), 32, 4, 64)
    good = (copy / "train.bin").read_bytes()
    data = bytearray(good)
    data[100] ^= 0xFF
    (copy / "train.bin").write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"train\.bin: sha256 does not match the manifest"):
        TokenWindows(str(copy), 32, 4, 300)
    (copy / "train.bin").write_bytes(good[:-2])
    with pytest.raises(DataError, match=r"train\.bin: \d+ bytes, the manifest .* says"):
        TokenWindows(str(copy), 32, 4, 300)
    (copy / "train.bin").write_bytes(good)
    (copy / "eval.bin").unlink()
    with pytest.raises(DataError, match=r"eval\.bin: missing"):
        load_manifest(copy, "tokens")
    with pytest.raises(DataError, match="holds 'tokens' data, this source reads 'images'"):
        load_manifest(bpe, "images")
    with pytest.raises(DataError, match="does not exist"):
        load_manifest(tmp_path / "nowhere", "tokens")


def write_cifar(root: Path, per_batch: int = 60, test: int = 80) -> None:
    """A CIFAR-10 python batch directory with the real pickle layout (random pixels)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    gen = np.random.default_rng(0)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        n = test if name == "test_batch" else per_batch
        entry = {"batch_label": name, "labels": gen.integers(0, 10, n).tolist(),
                 "data": gen.integers(0, 256, (n, 3072), dtype=np.uint8), "filenames": [f"{i}.png" for i in range(n)]}
        with open(folder / name, "wb") as fh:
            pickle.dump(entry, fh, protocol=2)  # what pickle.load(..., encoding="latin1") sees in the real files
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({"label_names": [f"class{i}" for i in range(10)], "num_cases_per_batch": per_batch}, fh,
                    protocol=2)


def test_cifar10_from_the_python_batches_through_torchvision(tmp_path: Path) -> None:
    write_cifar(tmp_path / "raw")
    path = prepare_cifar({"kind": "cifar10", "root": str(tmp_path / "raw")}, tmp_path / "cifar")
    m = load_manifest(path, "images")
    assert m["counts"] == {"train": 300, "test": 80, "num_classes": 10} and m["classes"][3] == "class3"
    assert m["source"]["official_md5"] is False  # not the official files; our sha256 is what runs check
    src = CifarImages(str(path), 16, 10, 8)
    x, y = src.train_batch(0, 3)
    assert x.shape == (8, 3, 16, 16) and x.dtype == np.float32 and y.dtype == np.int64
    assert np.array_equal(x, CifarImages(str(path), 16, 10, 8).train_batch(0, 3)[0])
    plain = CifarImages(str(path), 32, 10, 8, augment=False)
    assert not np.array_equal(plain.train_batch(0, 3)[0], CifarImages(str(path), 32, 10, 8).train_batch(0, 3)[0])
    ex, ey = plain.eval_batch(1)  # the held-out split is the test batch, in order
    assert np.array_equal(ey, np.load(path.parent / "test_y.npy")[8:16])
    with pytest.raises(DataError, match="image_size: 12 does not divide"):
        CifarImages(str(path), 12, 10, 8)
    cfg = resolve_run_config({"workload": "resnet", "recipe": "mup", "width": 8, "base_width": 4, "log2_lr": -6,
                              "steps": 4, "batch_size": 8, "eval_batches": 2, "diag_points": 2, "coord_steps": 2,
                              "data_source": "cifar10", "data_path": str(path)})
    record = train(cfg)
    assert record["data"]["kind"] == "cifar10" and record["data"]["augment"] is True
    assert np.isfinite(record["summary"]["eval_loss"])


def test_a_directory_that_is_not_cifar_is_named(tmp_path: Path) -> None:
    (tmp_path / "cifar-10-batches-py").mkdir()
    (tmp_path / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="not a CIFAR-10 python batch directory"):
        prepare_cifar({"kind": "cifar10", "root": str(tmp_path)}, tmp_path / "out")
    with pytest.raises(DataError, match="does not exist"):
        prepare_cifar({"kind": "cifar10", "root": str(tmp_path / "none")}, tmp_path / "out2")
