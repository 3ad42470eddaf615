"""The command line: ``transferbench <verb>`` (or ``python -m transferbench <verb>``), one plain
function per verb. Flags are the config keys of DESIGN §2 with dashes (``--base-width``).

Verbs: train, recipes, show-recipe, aggregate, metrics, plots, leaderboard, grid.
Logs go to stderr; interactive runs show a progress bar.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

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
        if not sep or not key:
            raise ConfigError(f"recipe_options: expected KEY=VALUE, got {item!r}")
        out[key] = yaml.safe_load(value)
    return out


def _overrides(args: argparse.Namespace, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    out = {k: getattr(args, k) for k in _ALL_KEYS if k not in skip and getattr(args, k, None) is not None}
    out.pop("recipe_options", None)
    if getattr(args, "recipe_option", None):
        out["recipe_options"] = _parse_options(args.recipe_option)
    return out


def cmd_train(args: argparse.Namespace) -> int:
    """Train one run per --log2-lr value; each writes OUT/record.json (OUT may hold {log2_lr})."""
    import os

    # BLAS thread pools must be sized before numpy/torch load: 1-thread jobs side by side are the
    # fastest way to use a small CPU (DESIGN §7), and oversubscribed OpenBLAS slowed data generation.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(args.threads or 1))
    from transferbench.record import RECORD_NAME, read_record
    from transferbench.train import train

    lrs = args.log2_lr
    if len(lrs) > 1 and "{log2_lr}" not in args.out:
        raise ConfigError("out: with several --log2-lr values, --out must contain '{log2_lr}'")
    configs = [resolve_run_config({**_overrides(args, skip=("log2_lr",)), "log2_lr": x}) for x in lrs]
    for cfg in configs:  # everything is checked before the first run starts
        from transferbench.recipes import get_recipe

        get_recipe(cfg["recipe"], **cfg["recipe_options"])
    for cfg in configs:
        out = Path(args.out.format(log2_lr=_fmt(cfg["log2_lr"])))
        existing = out / RECORD_NAME
        if existing.exists() and not args.force:
            try:
                if read_record(existing).get("config_hash") == config_hash(cfg):
                    log.info("%s: already done (same config hash), skipping; --force reruns", existing)
                    continue
            except (OSError, ValueError):
                pass
        record = train(cfg, out, progress=args.progress)
        s = record["summary"]
        log.info(
            "%s %s d=%d log2_lr=%s: init %.4f final %.4f eval %.4f diverged=%s (%.1fs) -> %s",
            cfg["workload"], cfg["recipe"], cfg["width"], _fmt(cfg["log2_lr"]), s["init_loss"],
            s["final_loss"], s["eval_loss"], s["diverged"], s["wall_time"], existing,
        )
    return 0


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


def build_parser() -> argparse.ArgumentParser:
    from transferbench import __version__
    from transferbench.cli_analysis import add_analysis_commands

    parser = argparse.ArgumentParser(
        prog="transferbench", description="Does a learning rate tuned on a narrow model transfer to a wide one?"
    )
    parser.add_argument("--version", action="version", version=f"transferbench {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="verb", required=True)

    p = sub.add_parser("train", help="train runs and write record.json for each")
    _add_config_flags(p, required=("workload", "recipe", "width", "base_width", "log2_lr"))
    p.add_argument("--out", required=True, help="run directory; may contain {log2_lr}")
    p.add_argument("--force", action="store_true", help="rerun even if a record with the same hash exists")
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
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.func(args) or 0)
    except (ConfigError, RecipeError, ValueError, FileNotFoundError) as exc:
        log.error("%s", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
