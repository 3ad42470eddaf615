"""The command line: ``transferbench <verb>`` (or ``python -m transferbench <verb>``), one plain
function per verb. Flags are the config keys of docs/design.md §2 with dashes (``--base-width``).

Verbs: train, recipes, show-recipe, aggregate, metrics, plots, leaderboard, findings, boards, grid, prepare-data,
cost, bundle, verify, merge (cli_analysis.py, cli_data.py, cli_bundles.py).
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

from transferbench import rundir, workloads
from transferbench.config import (
    ConfigError,
    resolve_run_config,
)
from transferbench.recipes import RecipeError
from transferbench.settings import all_settings

log = logging.getLogger("transferbench")

#: Every settable key, across workloads (the workload decides which apply).
_ALL_KEYS = list(all_settings())


def _flag_of(key: str) -> str:
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
    """Train a sweep line: every --seed at every --log2-lr (``--lr-search grid``) or at the lrs the
    adaptive search picks from that lattice (``--lr-search adaptive``, search.py); each run writes
    OUT/record.json (OUT may hold {log2_lr} and {seed}).

    Everything is checked before the first run starts, and before torch loads (a bad flag costs no
    3 s import): settings, recipe options, --out, the device, the output directories, the manifests
    a search reads, and any records already there. A finished run is never lost to a bad input, and
    never silently replaced."""
    from transferbench.line import Line, write_manifest
    from transferbench.line2d import Line2D

    common = dict(
        settings=_overrides(args, skip=("log2_lr", "seed")), seeds=list(args.seed), log2_lrs=list(args.log2_lr),
        out=args.out, lr_search=args.lr_search, previous=args.previous, tuning=args.tuning, widest=args.widest,
        axis=args.axis,
        start=args.log2_lr_start, lr_refine=args.lr_refine,
        shared_dir=Path(args.shared_dir) if args.shared_dir else None,
        force=args.force, replace=args.replace, progress=args.progress,
    )
    if args.wd_search == "adaptive":  # the 2-D lr x wd search (search2d.py)
        line: Line = Line2D(**common, log2_wds=tuple(args.log2_wd or ()), wd_start=args.log2_wd_start,
                            wd_refine=args.wd_refine)
    elif args.log2_wd or args.log2_wd_start is not None or args.wd_refine:
        raise ConfigError("log2_wd: --log2-wd, --log2-wd-start and --wd-refine are used with --wd-search adaptive only")
    else:
        line = Line(**common)
    line.check()
    first = next(iter(line.configs.values()))
    # BLAS thread pools must be sized before numpy/torch load: 1-thread jobs side by side are the
    # fastest way to use a small CPU (docs/design.md §7), and oversubscribed OpenBLAS slowed data generation.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(first["threads"]))
    _check_device(first["device"])
    if args.manifest:
        rundir.check_writable("manifest", Path(args.manifest).parent)
    from transferbench.devices import for_process

    # One GPU for the whole line: the first free one, claimed by this process (devices.py)
    with for_process(first["device"], Path(args.gpu_locks) if args.gpu_locks else None, args.gpu_wait):
        manifest = line.run()
    if args.manifest:  # the DAG's declared output, so only once every run of the job has its record
        write_manifest(Path(args.manifest), manifest)
    return 0


def _check_device(device: str) -> None:
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("device: 'cuda' requested but torch.cuda.is_available() is False; "
                              "use --device cpu (or auto)")


def cmd_recipes(args: argparse.Namespace) -> int:
    """List every registered recipe; broken or duplicate plugins are reported on stderr."""
    from transferbench.recipes import describe, get_recipe_class, names, problems

    rows = []
    for name in names():
        try:
            # the depth rule (recipes/base.py Recipe.depth_rule): "none" when every depth trains as the base depth
            rows.append({**describe(name), "depth_rule": get_recipe_class(name).depth_rule or "none"})
        except RecipeError:
            continue
    issues = problems()
    if args.json:
        print(json.dumps({"recipes": rows, "problems": issues}, indent=1))
    else:
        header = ("name", "summary", "arxiv", "distribution", "depth rule")
        table = [header] + [
            (r["name"], r["summary"], r["arxiv"] or "-", f"{r['distribution']} {r['version']}", r["depth_rule"])
            for r in rows
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

    over = {**_overrides(args), "recipe": args.name}
    for mult, key, base in (("depth_mult", "depth", "base_depth"), ("steps_mult", "steps", "base_steps")):
        if getattr(args, mult) is not None:  # --depth-mult 4: the base depth (--depth or the default) x 4
            own = int(over.get(key) or resolve_run_config({**over, "log2_lr": over.get("log2_lr", -6.0)})[key])
            value = own * float(getattr(args, mult))
            if not float(value).is_integer() or value < 1:
                raise ConfigError(f"--{mult.replace('_', '-')}: {getattr(args, mult)} x {key} {own} is not a whole "
                                  f"number of {key}")
            over.update({base: own, key: int(value)})
    print(show_recipe(resolve_run_config(over)))
    return 0


def _add_config_flags(p: argparse.ArgumentParser, required: tuple[str, ...]) -> None:
    """One flag per setting, its help from the settings table (settings.py, the workload specs)."""
    for key, (setting, owners) in all_settings().items():
        if key in ("recipe_options",):
            continue
        extra = [str(setting.bound)] if setting.bound is not None else []
        extra += [f"one of {', '.join(setting.choices)}"] if setting.choices else []
        extra += [f"default {setting.default}"] if setting.default is not None else []
        extra += [f"{'/'.join(owners)} only"] if owners else []
        per = {w.name: w.overrides[key] for w in workloads.specs() if key in w.overrides}
        extra += [", ".join(f"{n} {v}" for n, v in per.items())] if per else []
        text = setting.help + (f" ({'; '.join(extra)})" if extra else "")
        kw: dict[str, Any] = {"dest": key, "default": None, "metavar": key.upper(), "help": text.replace("%", "%%")}
        if key == "log2_lr" and "log2_lr" in required:
            kw.update(nargs="+", type=float, required=True, metavar="X")
        elif key == "seed" and "log2_lr" in required:  # train: a line holds every seed
            kw.update(nargs="+", type=int, default=[0], metavar="SEED")
        elif key in required:
            kw["required"] = True
        p.add_argument(_flag_of(key), **kw)
    p.add_argument("--recipe-option", action="append", metavar="KEY=VALUE",
                   help="a recipe option, e.g. shape=exponential (repeatable; see show-recipe)")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the usage of ``train`` alone is 20 lines of flags)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from transferbench import __version__
    from transferbench.cli_analysis import add_analysis_commands
    from transferbench.cli_bundles import add_bundle_commands
    from transferbench.cli_data import add_data_commands

    parser = _Parser(
        prog="transferbench", description="Does a learning rate tuned on a narrow model transfer to a wide one?"
    )
    parser.add_argument("--version", action="version", version=f"transferbench {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="verb", required=True)

    p = sub.add_parser("train", help="train runs and write record.json for each")
    _add_config_flags(p, required=("workload", "recipe", "width", "base_width", "log2_lr"))
    p.add_argument("--out", required=True, help="run directory; may contain {log2_lr} and {seed}")
    p.add_argument("--lr-search", choices=("grid", "adaptive"), default="grid",
                   help="grid: train every --log2-lr; adaptive: search that lattice (docs/design.md §6)")
    p.add_argument("--log2-lr-start", type=float, help="adaptive: predicted optimum at the first width")
    p.add_argument("--lr-refine", type=float, default=0.5, metavar="OCTAVES",
                   help="adaptive: once the lattice search is done, refine around the optimum on points this many "
                        "octaves apart between the lattice's (0 = off; 0.5, 0.25, ...: whole steps per octave; "
                        "default 0.5, as the profile key lr_refine; not in the config hash)")
    p.add_argument("--axis", choices=("width", "depth", "steps"), default="width",
                   help="the scale axis of the job's sweep: the setting whose value orders the adaptive search's lines "
                        "and that its manifest names, so that runs.csv's axis and scale columns say what was scaled "
                        "(default width; not a run setting, not in the config hash)")
    p.add_argument("--previous", help="adaptive: the manifest of the line at the next smaller value of the axis")
    p.add_argument("--tuning", help="adaptive: the manifest of the tuning (base) value's line (its optimum is "
                                    "transferred)")
    p.add_argument("--widest", action="store_true", help="adaptive: the line at the axis' largest value: also "
                                                          "train the lr sensitivity's window")
    p.add_argument("--wd-search", choices=("grid", "adaptive"), default="grid",
                   help="grid: train at the one --wd; adaptive: search log2 lr x log2 wd together on the --log2-lr "
                        "and --log2-wd lattices (needs --lr-search adaptive and no --wd; docs/design.md §6)")
    p.add_argument("--log2-wd", type=float, nargs="+", metavar="Y",
                   help="wd-search adaptive: the lattice of log2 base wd (the wd as --wd means it, which each recipe "
                        "scales with width by its own rule)")
    p.add_argument("--log2-wd-start", type=float,
                   help="wd-search adaptive: predicted log2 wd optimum at the first width (default: the "
                        "lattice's middle)")
    p.add_argument("--wd-refine", type=float, default=0.0, metavar="OCTAVES",
                   help="wd-search adaptive: as --lr-refine, on the wd axis (default 0: the wd lattice only; not in "
                        "the config hash)")
    p.add_argument("--shared-dir", help="train each distinct run once: map trainer fingerprints to records here")
    p.add_argument("--gpu-locks", help="a CUDA run claims a free GPU through lock files here (the DAG: "
                   "RESULTS/locks/gpu; default: a directory per user in the temp directory)")
    p.add_argument("--gpu-wait", type=float, metavar="SECONDS",
                   help="when every GPU is claimed, give up after this long (default: wait until one is free)")
    p.add_argument("--force", action="store_true",
                   help="rerun every run, replacing any existing record (same config hash or not)")
    p.add_argument("--replace", action="store_true",
                   help="replace a record whose config hash differs from this run's (e.g. after a profile "
                        "edit); runs with the same hash are still skipped")
    p.add_argument("--manifest", help="after the last run, write this JSON file: every record and its hash, and "
                   "the line's curve and optimum")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=sys.stderr.isatty(),
                   help="a progress bar over each run's steps on stderr (default: when stderr is a terminal)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("recipes", help="list the registered recipes")
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.set_defaults(func=cmd_recipes)

    p = sub.add_parser("show-recipe", help="the resolved per-role settings of a recipe at a width")
    p.add_argument("name", help="a recipe name, as `transferbench recipes` lists them")
    p.add_argument("--depth-mult", type=float, default=None, metavar="M_L",
                   help="show the recipe at depth multiplier M_L = L/L0: base_depth is --depth (or the workload's "
                        "default) and depth becomes M_L times it (e.g. 4: depth 2 -> 8)")
    p.add_argument("--steps-mult", type=float, default=None, metavar="M_T",
                   help="show the recipe at horizon multiplier M_T = T/T0: base_steps is --steps (or the default) "
                        "and steps becomes M_T times it (the horizon rule's wd)")
    _add_config_flags(p, required=("workload", "width", "base_width"))
    p.set_defaults(func=cmd_show_recipe, log2_lr=-6.0)

    add_analysis_commands(sub)
    add_data_commands(sub)
    add_bundle_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one verb. A bad input is one logged line and exit status 2; Ctrl-C is 130; never a traceback
    for either (a traceback means a bug)."""
    from transferbench.devices import GPUsBusy
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
    except (ConfigError, RecipeError, RunLockedError, GPUsBusy, ValueError) as exc:
        log.error("%s", exc)
        return 2
    except OSError as exc:  # an output path that cannot be written, a file that cannot be read
        log.error("%s", f"{exc.filename}: {exc.strerror}" if exc.filename and exc.strerror else exc)
        return 2


def run() -> None:
    """The console script and ``python -m transferbench``: :func:`main`'s status as the exit status. After a
    Ctrl-C the process ends by ``os._exit(130)`` once its output is flushed: CPython may still kill itself
    with SIGINT at exit when the KeyboardInterrupt passed through C code that evaluates Python (seen in CI as
    status -2 after the "interrupted" line), and a script's caller must see 130."""
    code = main()
    if code == 130:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    sys.exit(code)


if __name__ == "__main__":
    run()
