"""The command line: ``transferbench <verb>`` (or ``python -m transferbench <verb>``), one plain
function per verb. Flags are the config keys of docs/design.md §2 with dashes (``--base-width``).

Verbs: train, recipes, show-recipe, aggregate, metrics, plots, leaderboard, grid.
Logs go to stderr; interactive runs show a progress bar.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import yaml

from transferbench.config import (
    COMMON_DEFAULTS,
    WORKLOAD_DEFAULTS,
    ConfigError,
    config_hash,
    resolve_run_config,
)
from transferbench.recipes import RecipeError

log = logging.getLogger("transferbench")

#: Every settable key, across workloads (the workload decides which apply).
_ALL_KEYS = list(dict.fromkeys([*COMMON_DEFAULTS, *(k for d in WORKLOAD_DEFAULTS.values() for k in d)]))


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def _parse_options(items: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"recipe_options: expected KEY=VALUE, got {item!r}")
        if key in out:
            raise ConfigError(f"recipe_options.{key}: given twice")
        try:
            out[key] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            why = getattr(exc, "problem", None) or "not YAML"
            raise ConfigError(f"recipe_options.{key}: cannot parse {value!r} ({why})") from None
    return out


def _overrides(args: argparse.Namespace, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    out = {k: getattr(args, k) for k in _ALL_KEYS if k not in skip and getattr(args, k, None) is not None}
    out.pop("recipe_options", None)
    if getattr(args, "recipe_option", None):
        out["recipe_options"] = _parse_options(args.recipe_option)
    return out


def cmd_train(args: argparse.Namespace) -> int:
    """Train one run per --log2-lr value; each writes OUT/record.json (OUT may hold {log2_lr}).

    Everything is checked before the first run starts, and before torch loads (a bad flag costs no
    3 s import): settings, recipe options, --out, the device, the output directories and any records
    already there. A finished run is never lost to a bad input, and never silently replaced."""
    import contextlib

    from transferbench.record import RECORD_NAME, write_json_atomic
    from transferbench.runlock import run_lock

    configs = [resolve_run_config({**_overrides(args, skip=("log2_lr",)), "log2_lr": x}) for x in args.log2_lr]
    outs = _run_dirs(args.out, configs)
    # BLAS thread pools must be sized before numpy/torch load: 1-thread jobs side by side are the
    # fastest way to use a small CPU (docs/design.md §7), and oversubscribed OpenBLAS slowed data generation.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(configs[0]["threads"]))
    if configs[0]["device"] == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("device: 'cuda' requested but torch.cuda.is_available() is False; "
                              "use --device cpu (or auto)")
    for out in outs:
        _check_writable("out", out)
    if args.manifest:
        _check_writable("manifest", Path(args.manifest).parent)
    done = []
    with contextlib.ExitStack() as locks:
        # Held from the check of an existing record through training to the record's write: of two
        # processes writing one run, the second fails here instead of both training and one winning.
        for out in outs:
            locks.enter_context(run_lock(out))
        todo = []
        for cfg, out in zip(configs, outs):
            existing, new = out / RECORD_NAME, config_hash(cfg)
            done.append({"log2_lr": cfg["log2_lr"], "record": str(existing), "config_hash": new})
            if not _keep_existing(existing, new, args.force, args.replace):
                todo.append((cfg, out))
        if todo:
            from transferbench.train import train
        for cfg, out in todo:
            record = train(cfg, out, progress=args.progress)
            s = record["summary"]
            log.info(
                "%s %s d=%d log2_lr=%s: init %.4f final %.4f eval %.4f diverged=%s (%.1fs) -> %s",
                cfg["workload"], cfg["recipe"], cfg["width"], _fmt(cfg["log2_lr"]), s["init_loss"],
                s["final_loss"], s["eval_loss"], s["diverged"], s["wall_time"], out / RECORD_NAME,
            )
    if args.manifest:  # the DAG's declared output, so only once every run of the job has its record
        write_json_atomic(Path(args.manifest), {"records": done})
    return 0


def _run_dirs(template: str, configs: list[dict[str, Any]]) -> list[Path]:
    """The run directory of every config: ``template`` with {log2_lr} filled in, all distinct."""
    import string

    if not template:
        raise ConfigError("out: empty")
    try:
        fields = [(name, spec, conv) for _, name, spec, conv in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise ConfigError(f"out: {template!r} is not a valid template ({exc}); the only field is {{log2_lr}}") from None
    for name, spec, conv in fields:
        if name != "log2_lr" or spec or conv:
            shown = "{" + name + (f"!{conv}" if conv else "") + (f":{spec}" if spec else "") + "}"
            raise ConfigError(f"out: field {shown} in {template!r} is not allowed; the only field is {{log2_lr}}")
    if len(configs) > 1 and not fields:
        raise ConfigError("out: with several --log2-lr values, --out must contain '{log2_lr}'")
    outs = [Path(template.format(log2_lr=_fmt(cfg["log2_lr"]))) for cfg in configs]
    for i, out in enumerate(outs):
        if out in outs[:i]:
            a, b = configs[outs.index(out)]["log2_lr"], configs[i]["log2_lr"]
            if a == b:
                raise ConfigError(f"log2_lr: {_fmt(a)} given twice")
            raise ConfigError(f"log2_lr: {a!r} and {b!r} would both write {out}")
    return outs


def _check_writable(key: str, directory: Path) -> None:
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


def _keep_existing(existing: Path, new_hash: str, force: bool, replace: bool = False) -> bool:
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


def _fmt(x: float) -> str:
    """log2 lr as it appears in paths: -6, -6.5."""
    return f"{x:g}"


def cmd_recipes(args: argparse.Namespace) -> int:
    """List every registered recipe; broken or duplicate plugins are reported on stderr."""
    from transferbench.recipes import describe, names, problems

    rows = []
    for name in names():
        try:
            rows.append(describe(name))
        except RecipeError:
            continue
    issues = problems()
    if args.json:
        print(json.dumps({"recipes": rows, "problems": issues}, indent=1))
    else:
        header = ("name", "summary", "arxiv", "distribution")
        table = [header] + [
            (r["name"], r["summary"], r["arxiv"] or "-", f"{r['distribution']} {r['version']}") for r in rows
        ]
        widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
        for row in table:
            print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
    for msg in issues:
        log.error("%s", msg)
    return 0


def cmd_show_recipe(args: argparse.Namespace) -> int:
    """Print the resolved per-group init, lr, wd, per-step decay and multipliers of a recipe."""
    from transferbench.show_recipe import show_recipe

    print(show_recipe(resolve_run_config({**_overrides(args), "recipe": args.name})))
    return 0


def _add_config_flags(p: argparse.ArgumentParser, required: tuple[str, ...]) -> None:
    for key in _ALL_KEYS:
        if key in ("recipe_options",):
            continue
        kw: dict[str, Any] = {"dest": key, "default": None, "metavar": key.upper()}
        if key == "log2_lr" and "log2_lr" in required:
            kw.update(nargs="+", type=float, required=True, metavar="X")
        elif key in required:
            kw["required"] = True
        p.add_argument(_flag(key), **kw)
    p.add_argument("--recipe-option", action="append", metavar="KEY=VALUE",
                   help="a recipe option, e.g. shape=exponential (repeatable)")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the usage of ``train`` alone is 20 lines of flags)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from transferbench import __version__
    from transferbench.cli_analysis import add_analysis_commands

    parser = _Parser(
        prog="transferbench", description="Does a learning rate tuned on a narrow model transfer to a wide one?"
    )
    parser.add_argument("--version", action="version", version=f"transferbench {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="verb", required=True)

    p = sub.add_parser("train", help="train runs and write record.json for each")
    _add_config_flags(p, required=("workload", "recipe", "width", "base_width", "log2_lr"))
    p.add_argument("--out", required=True, help="run directory; may contain {log2_lr}")
    p.add_argument("--force", action="store_true",
                   help="rerun every run, replacing any existing record (same config hash or not)")
    p.add_argument("--replace", action="store_true",
                   help="replace a record whose config hash differs from this run's (e.g. after a profile "
                        "edit); runs with the same hash are still skipped")
    p.add_argument("--manifest", help="after the last run, write this JSON file listing every record and its hash")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=sys.stderr.isatty())
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("recipes", help="list the registered recipes")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_recipes)

    p = sub.add_parser("show-recipe", help="the resolved per-role settings of a recipe at a width")
    p.add_argument("name")
    _add_config_flags(p, required=("workload", "width", "base_width"))
    p.set_defaults(func=cmd_show_recipe, log2_lr=-6.0)

    add_analysis_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one verb. A bad input is one logged line and exit status 2; Ctrl-C is 130; never a traceback
    for either (a traceback means a bug)."""
    from transferbench.runlock import RunLockedError

    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130
    except (ConfigError, RecipeError, RunLockedError, ValueError) as exc:
        log.error("%s", exc)
        return 2
    except OSError as exc:  # an output path that cannot be written, a file that cannot be read
        log.error("%s", f"{exc.filename}: {exc.strerror}" if exc.filename and exc.strerror else exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
