"""CLI verbs for data and cost: ``prepare-data`` (a corpus or CIFAR-10 -> arrays + manifest, the DAG's
prepare_data stage) and ``cost`` (a profile's GPU-hours from stated FLOPs formulas, cost.py)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger("transferbench")

#: prepare-data flags: the keys of a profile's ``data:`` entry (docs/data.md).
DATA_KEYS = ("kind", "files", "format", "text_column", "dataset", "config", "split", "revision", "tokenizer",
             "vocab_size", "pretrained", "eos_token", "eval_fraction", "max_documents", "root", "image_column",
             "label_column")


def spec_of(args: argparse.Namespace) -> dict[str, Any]:
    return {k: getattr(args, k) for k in DATA_KEYS if getattr(args, k, None) is not None}


def cmd_prepare_data(args: argparse.Namespace) -> int:
    """Prepare one data set into --out (its manifest.json is written last)."""
    from transferbench import workloads

    spec = spec_of(args)
    path = workloads.load(workloads.data_kinds()[spec["kind"]].prepare)(spec, Path(args.out))
    log.info("wrote %s", path)
    return 0


def cmd_cost(args: argparse.Namespace) -> int:
    """Print the GPU-hours of a profile's sweep."""
    from transferbench.config.profile import check_profile, load_profile
    from transferbench.cost import cost_table, profile_cost

    profile = load_profile(Path(args.profile))
    check_profile(profile)
    rows = profile_cost(profile, args.gpu, args.mfu)
    print(cost_table(rows, args.gpu, args.mfu, profile.get("lr_search") == "adaptive"))
    return 0


def add_data_commands(sub: Any) -> None:
    from transferbench import workloads

    kinds = workloads.data_kinds()  # the kinds the registered workloads read (data/kinds.py)
    p = sub.add_parser("prepare-data", help="a data set of a kind some workload reads -> arrays and a manifest "
                       "(prepare_data stage)")
    p.add_argument("--kind", choices=tuple(kinds), required=True,
                   help="; ".join(f"{k.name}: {k.summary}" for k in kinds.values()))
    p.add_argument("--out", required=True, help="the prepared data set's directory")
    p.add_argument("--files", nargs="+", help="text: local files or globs (text, json/jsonl, parquet)")
    p.add_argument("--format", choices=("text", "json", "parquet"), help="text: the files' datasets builder")
    p.add_argument("--text-column", help="text: the column holding the documents (default text)")
    p.add_argument("--dataset", help="a Hugging Face datasets name (needs the network once)")
    p.add_argument("--config", help="the dataset's configuration")
    p.add_argument("--split", help="the dataset's split (text: default train; cifar10: the held-out split, test)")
    p.add_argument("--revision", help="the dataset's revision (a commit, for reproducibility)")
    p.add_argument("--tokenizer", choices=("byte", "bpe", "pretrained"), help="text: default byte")
    p.add_argument("--vocab-size", type=int, help="text, bpe: tokens including the end-of-document one")
    p.add_argument("--pretrained", help="text, pretrained: the tokenizer's name")
    p.add_argument("--eos-token", help="text, pretrained: the end-of-document token")
    p.add_argument("--eval-fraction", type=float, help="text: held-out share of the documents (default 0.05)")
    p.add_argument("--max-documents", type=int, help="text: use only the first N documents")
    p.add_argument("--root", help="cifar10: the directory holding cifar-10-batches-py")
    p.add_argument("--image-column", help="cifar10 from datasets: default img")
    p.add_argument("--label-column", help="cifar10 from datasets: default label")
    p.set_defaults(func=cmd_prepare_data)

    p = sub.add_parser("cost", help="a profile's GPU-hours from stated FLOPs formulas")
    p.add_argument("profile", help="a profile (config/*.yaml)")
    p.add_argument("--gpu", default="H100-SXM", help="peak dense bf16 FLOP/s of this GPU (cost.py's table)")
    p.add_argument("--mfu", type=float, default=0.4, help="model FLOPs utilisation (default 0.4)")
    p.set_defaults(func=cmd_cost)
