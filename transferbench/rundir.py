"""A run's directory, as ``train`` uses it: the ``--out`` template and the directories it names, a
writability check before any training, and the policy for a record that is already there (skip the
same config, refuse another one unless --replace or --force). The lock is in runlock.py. Pure Python.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from transferbench.config import ConfigError
from transferbench.config.grid import fmt

log = logging.getLogger("transferbench")


def run_dirs(template: str, configs: list[Any], several_seeds: bool = False, several_wds: bool = False
             ) -> list[Path]:
    """The run directory of every config: ``template`` with {log2_lr}, {seed} and (a 2-D lr x wd search,
    line2d.py) {wd} filled in, all distinct."""
    import string

    if not template:
        raise ConfigError("out: empty")
    allowed = ("log2_lr", "seed", "wd") if several_wds else ("log2_lr", "seed")
    try:
        fields = [(name, spec, conv) for _, name, spec, conv in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise ConfigError(f"out: {template!r} is not a valid template ({exc}); the fields are {{log2_lr}} and "
                          "{seed}") from None
    for name, spec, conv in fields:
        if name not in allowed or spec or conv:
            shown = "{" + name + (f"!{conv}" if conv else "") + (f":{spec}" if spec else "") + "}"
            raise ConfigError(f"out: field {shown} in {template!r} is not allowed; the fields are {{log2_lr}} "
                              "and {seed}")
    names = {name for name, _, _ in fields}
    if len(configs) > 1 and "log2_lr" not in names:
        raise ConfigError("out: with several --log2-lr values, --out must contain '{log2_lr}'")
    if several_seeds and "seed" not in names:
        raise ConfigError("out: with several --seed values, --out must contain '{seed}'")
    if several_wds and "wd" not in names:
        raise ConfigError("out: with --wd-search adaptive, --out must contain '{wd}'")
    outs = [Path(template.format(log2_lr=fmt(cfg["log2_lr"]), seed=cfg["seed"], wd=fmt(cfg["wd"]))) for cfg in configs]
    for i, out in enumerate(outs):
        if out in outs[:i]:
            a, b = configs[outs.index(out)]["log2_lr"], configs[i]["log2_lr"]
            if a == b:
                raise ConfigError(f"log2_lr: {fmt(a)} given twice")
            raise ConfigError(f"log2_lr: {a!r} and {b!r} would both write {out}")
    return outs


def check_writable(key: str, directory: Path) -> None:
    """Create ``directory`` and write and delete a file in it, so a bad path fails now, not after training."""
    import tempfile

    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=directory)
        os.close(fd)
        os.unlink(probe)
    except FileExistsError:
        raise ConfigError(f"{key}: {directory} exists and is not a directory") from None
    except OSError as exc:
        raise ConfigError(f"{key}: cannot write to {directory}: {exc.strerror or exc}") from None


def keep_existing(existing: Path, new_hash: str, force: bool, replace: bool = False) -> bool:
    """True to skip a run whose record has the same config hash (unless --force); ConfigError for a
    record of another config unless --force or --replace (a result is not replaced silently)."""
    from transferbench.record import read_record

    if not existing.exists() and not existing.is_symlink():
        return False
    if existing.is_dir():
        raise ConfigError(f"out: {existing} is a directory, so no record can be written there")
    if force:
        log.info("%s: --force: replacing the existing record", existing)
        return False
    try:
        old = read_record(existing).get("config_hash")
    except (OSError, ValueError, AttributeError) as exc:
        raise ConfigError(f"{existing}: cannot read the existing record ({exc}); refusing to replace it "
                          "(--force replaces it)") from None
    if old == new_hash:
        log.info("%s: already done (same config hash), skipping; --force reruns", existing)
        return True
    if replace:
        log.info("%s: --replace: the record has config hash %s, this run's is %s; replacing it", existing, old,
                 new_hash)
        return False
    raise ConfigError(f"{existing}: holds a record with config hash {old}, this run's is {new_hash}; "
                      "refusing to replace it (--replace replaces records of another config, --force every "
                      "record; in a profile, replace: true)")
