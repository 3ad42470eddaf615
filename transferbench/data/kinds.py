"""The kinds of prepared data set any workload can read (docs/data.md): ``text`` (a corpus tokenized by
prepare_text.py, read as token windows by data/tokens.py) and ``cifar10`` (prepared and read by
data/cifar.py). A workload that reads one names it in its spec's ``reads`` (source -> kind); a profile's
``data:`` entry and ``prepare-data --kind`` accept the kinds the registered workloads read. Pure Python.
"""

from __future__ import annotations

import glob
from typing import Any

from transferbench.workloads import DataKind


def _text_problem(entry: dict[str, Any]) -> str | None:
    if not (entry.get("files") or entry.get("dataset")):
        return "a text corpus needs files or dataset"
    if entry.get("tokenizer") == "pretrained" and not (entry.get("pretrained") and entry.get("eos_token")):
        return "tokenizer: 'pretrained' needs pretrained and eos_token"
    return None


def _text_inputs(entry: dict[str, Any]) -> list[str]:
    return [h for pattern in entry.get("files") or [] for h in sorted(glob.glob(pattern, recursive=True))]


def _cifar_problem(entry: dict[str, Any]) -> str | None:
    if not (entry.get("root") or entry.get("dataset")):
        return "CIFAR-10 needs root (the python batch directory's parent) or dataset"
    return None


def _cifar_inputs(entry: dict[str, Any]) -> list[str]:
    return sorted(glob.glob(f"{entry['root']}/cifar-10-batches-py/*")) if entry.get("root") else []


TEXT = DataKind("text", "a text corpus -> token shards (byte, bpe or pretrained tokenizer)",
                "transferbench.prepare_text:prepare_text", _text_problem, _text_inputs)
CIFAR10 = DataKind("cifar10", "CIFAR-10 -> uint8 image arrays", "transferbench.data.cifar:prepare_cifar",
                   _cifar_problem, _cifar_inputs)
