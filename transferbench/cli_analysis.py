"""CLI verbs of the analysis half: records -> tables -> metrics -> plots and leaderboard, plus
``grid`` (what a profile would run). They read JSON and CSV only and never import torch."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger("transferbench")


def cmd_aggregate(args: argparse.Namespace) -> int:
    """All records -> runs.csv, coord_check.csv, data_info.csv."""
    from transferbench.aggregate import aggregate

    paths, axes = [], {}
    for p in map(Path, args.records):  # a train job's manifest stands for the records it lists, on its axis
        listed, axis = _manifest_records(p) if p.name == "job.json" else ([p], "width")
        paths += listed
        axes.update(dict.fromkeys(listed, axis))
    for d in args.runs_dir or []:
        paths += sorted(Path(d).rglob("record.json"))
    table = aggregate(paths, Path(args.out_dir), skip_bad=args.skip_bad, axes=axes)
    log.info("aggregated %d records into %s", len(table), Path(args.out_dir) / "runs.csv")
    return 0


def _manifest_records(manifest: Path) -> tuple[list[Path], str]:
    """The records a train job's manifest lists and its sweep's scale axis (width in a manifest of before)."""
    import json

    from transferbench.config import ConfigError

    try:
        doc = json.loads(manifest.read_text())
        return [Path(r["record"]) for r in doc["records"]], str((doc.get("line") or {}).get("axis") or "width")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{manifest}: not a train job's manifest (a 'records' list of {{'record': path}}): "
                          f"{exc}") from None


def cmd_metrics(args: argparse.Namespace) -> int:
    """runs.csv -> optima.csv, transfer.csv, optima_wd.csv."""
    from transferbench.aggregate import read_table
    from transferbench.metrics import write_metrics

    tables = Path(args.tables)
    paths = write_metrics(read_table(tables / "runs.csv"), tables, n_boot=args.n_boot, seed=args.seed)
    log.info("wrote %s", ", ".join(str(p) for p in paths))
    return 0


def cmd_plots(args: argparse.Namespace) -> int:
    """Tables -> the figures of every workload (and the study figures where the tables have them)."""
    from transferbench.aggregate import best_loss_by_workload, read_table
    from transferbench.plots import make_plots

    t = Path(args.tables)
    coord = read_table(t / "coord_check.csv") if (t / "coord_check.csv").exists() else None
    info = t / "data_info.csv"
    paths = make_plots(
        read_table(t / "runs.csv"), read_table(t / "optima.csv"), read_table(t / "transfer.csv"), coord,
        Path(args.out_dir), best_loss=best_loss_by_workload(info if info.exists() else None),
    )
    from transferbench.plots_exponents import make_exponent_plots

    rows, best = (read_table(t / f"{n}.csv") if (t / f"{n}.csv").exists() else None
                  for n in ("wd_exponent", "wd_exponent_best"))
    paths += make_exponent_plots(read_table(t / "transfer.csv"), rows, best, Path(args.out_dir))
    from transferbench.plots_exponents import plot_sv_law
    from transferbench.sv_law import sv_law_table

    runs = read_table(t / "runs.csv")
    law = read_table(t / "sv_law.csv") if (t / "sv_law.csv").exists() else sv_law_table(runs)
    paths.append(plot_sv_law(runs, law, Path(args.out_dir) / "sv_law.png"))
    from transferbench.metrics import prepared
    from transferbench.plots_wd import make_wd_plots

    if (t / "optima_wd.csv").exists():  # workloads that sweep wd: heat maps and the optimal wd (plots_wd.py)
        paths += make_wd_plots(prepared(runs), read_table(t / "optima_wd.csv"), read_table(t / "transfer.csv"),
                               Path(args.out_dir))
    from transferbench.plots_transfer import make_transfer_plots

    scores = read_table(t / "seed_scores.csv") if (t / "seed_scores.csv").exists() else None
    if scores is not None:
        paths += make_transfer_plots(scores, read_table(t / "runs.csv"), Path(args.out_dir))
    log.info("wrote %d plots to %s", len(paths), args.out_dir)
    return 0


def cmd_invariance(args: argparse.Namespace) -> int:
    """The invariance study's manifests -> invariance.csv, invariance_fit.csv, invariance_{workload}.png."""
    from transferbench.invariance import write

    records = [r for m in map(Path, args.manifests) for r in _manifest_records(m)[0]]
    paths = write(records, args.log2_lr, args.wd, Path(args.tables), Path(args.plots))
    log.info("wrote %s", ", ".join(str(p) for p in paths))
    return 0


def cmd_boards(args: argparse.Namespace) -> int:
    """Each profile's leaderboard.csv -> one page of boards, each with its own sweep hash."""
    from transferbench.boards import write_boards

    contrib = Path(args.contrib) if args.contrib else None
    log.info("wrote %s", write_boards([Path(p) for p in args.leaderboards], Path(args.out), contrib))
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    """transfer.csv, seed_scores.csv, regime.csv + runs.csv -> leaderboard .md, .csv, .html."""
    from transferbench.aggregate import read_table
    from transferbench.leaderboard import write_leaderboard
    from transferbench.recipes import RecipeError, describe

    t = Path(args.tables)
    transfer, runs = read_table(t / "transfer.csv"), read_table(t / "runs.csv")
    seed_scores, regime = read_table(t / "seed_scores.csv"), read_table(t / "regime.csv")
    meta = {}
    for name in sorted(set(transfer["recipe"])):
        try:  # summaries come from the registry when the recipe is installed; the tables suffice otherwise
            meta[name] = describe(name)
        except RecipeError:
            pass
    joint = read_table(t / "seed_scores_joint.csv") if (t / "seed_scores_joint.csv").exists() else None
    write_leaderboard(transfer, runs, Path(args.out), recipes_meta=meta, profile=args.profile,
                      seed_scores=seed_scores, regime=regime, joint_scores=joint)
    log.info("wrote %s.{md,csv,html}", args.out)
    return 0


def cmd_findings(args: argparse.Namespace) -> int:
    """A profile's tables and leaderboard.csv -> tables/claims.csv and findings.md (every number from a table)."""
    from transferbench.findings import write_findings

    paths = write_findings(Path(args.tables), Path(args.leaderboard), Path(args.out), args.profile)
    log.info("wrote %s", ", ".join(str(p) for p in paths))
    return 0


def cmd_grid(args: argparse.Namespace) -> int:
    """Print the train commands a profile expands to, after the checks of grid.load_profile: YAML syntax
    (file, line and column), the JSON schema, and every run of the grid resolved as train would."""
    from transferbench.config.grid import jobs
    from transferbench.config.profile import load_profile

    profile = load_profile(args.configfile)
    all_jobs = jobs(profile)
    for job in all_jobs:
        print(job.command())
    runs = sum(len(j.log2_lrs) * max(len(j.log2_wds), 1) for j in all_jobs)  # lattice points (2-D: lr x wd)
    log.info("%s: %d jobs, %d runs", args.configfile, len(all_jobs), runs)
    return 0


def cmd_workloads(args: argparse.Namespace) -> int:
    """List the registered workloads: name, summary, data sources, loss unit and distribution; broken or
    duplicate plugins are reported on stderr."""
    import json

    from transferbench import workloads

    rows = []
    for spec in workloads.specs():
        e = workloads.entry(spec.name)
        rows.append({"name": spec.name, "summary": spec.summary, "sources": list(spec.sources),
                     "reads": {source: kind.name for source, kind in spec.reads.items()},
                     "loss_unit": spec.loss_unit, "flops_formula": spec.flops_formula,
                     "distribution": e.distribution, "version": e.version})
    issues = workloads.problems()
    if args.json:
        print(json.dumps({"workloads": rows, "problems": issues}, indent=1))
    else:
        for r in rows:
            print(f"{r['name']:8s} {r['summary']} [data_source: {', '.join(r['sources'])}; loss in "
                  f"{r['loss_unit']}; {r['distribution']} {r['version']}]".replace(" ]", "]"))
    for msg in issues:
        log.error("%s", msg)
    return 0


def settings_markdown() -> str:
    """The reference of every run setting (the profile keys under ``settings:`` and the train flags)."""
    from transferbench import workloads
    from transferbench.settings import all_settings

    rows = ["| key (flag) | default | range | workloads | what |", "|---|---|---|---|---|"]
    for key, (s, owners) in all_settings().items():
        per = {w.name: w.overrides[key] for w in workloads.specs() if key in w.overrides}
        default = "required" if s.default is None else f"`{s.default}`"
        default += "".join(f"; {n} `{v}`" for n, v in per.items())
        allowed = str(s.bound) if s.bound else (", ".join(s.choices) if s.choices else "")
        rows.append(f"| `{key}` (`--{key.replace('_', '-')}`) | {default} | {allowed} | "
                    f"{', '.join(owners) or 'all'} | {s.help} |")
    return "\n".join(rows) + "\n"


def cmd_settings(args: argparse.Namespace) -> int:
    """Print the settings reference (Markdown table, as in docs/settings.md)."""
    print(settings_markdown(), end="")
    return 0


def add_analysis_commands(sub: argparse._SubParsersAction) -> None:
    """Register aggregate, metrics, plots, leaderboard and grid on the CLI."""
    p = sub.add_parser("aggregate", help="records -> results/tables/runs.csv (+ coord_check, data_info)")
    p.add_argument("records", nargs="*", help="record.json files, or train jobs' job.json manifests (their records)")
    p.add_argument("--runs-dir", action="append", help="also every record.json below this directory")
    p.add_argument("--out-dir", default="results/tables", help="where the tables go (default: %(default)s)")
    p.add_argument("--skip-bad", action="store_true",
                   help="leave out records that fail validation (listed in bad_records.csv) instead of stopping")
    p.set_defaults(func=cmd_aggregate)

    p = sub.add_parser("metrics", help="runs.csv -> optima.csv, transfer.csv, optima_wd.csv")
    p.add_argument("--tables", default="results/tables", help="the profile's tables directory (default: %(default)s)")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples over seeds")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.set_defaults(func=cmd_metrics)

    p = sub.add_parser("plots", help="tables -> PNG figures")
    p.add_argument("--tables", default="results/tables", help="the profile's tables directory (default: %(default)s)")
    p.add_argument("--out-dir", default="results/plots", help="where the figures go (default: %(default)s)")
    p.set_defaults(func=cmd_plots)

    p = sub.add_parser("leaderboard", help="tables -> leaderboard.{md,csv,html}")
    p.add_argument("--tables", default="results/tables", help="the profile's tables directory (default: %(default)s)")
    p.add_argument("--out", default="results/leaderboard", help="output path without suffix")
    p.add_argument("--profile", default="", help="the profile's name: the board's title, BibTeX key and CSV column")
    p.set_defaults(func=cmd_leaderboard)

    p = sub.add_parser("findings", help="tables + leaderboard.csv -> claims.csv and findings.md")
    p.add_argument("--tables", default="results/tables", help="the profile's tables directory (reads regime.csv, "
                   "transfer.csv, seed_scores.csv; writes claims.csv)")
    p.add_argument("--leaderboard", default="results/leaderboard.csv", help="the profile's leaderboard.csv")
    p.add_argument("--out", default="results/findings.md", help="the findings file to write")
    p.add_argument("--profile", default="", help="the profile's name, for the title")
    p.set_defaults(func=cmd_findings)

    p = sub.add_parser("invariance", help="[Fan25]'s invariance study: its manifests -> table and plot")
    p.add_argument("manifests", nargs="+", help="the study's job.json manifests")
    p.add_argument("--log2-lr", type=float, required=True, help="log2 eta, the study's lr at k = 1")
    p.add_argument("--wd", type=float, required=True, help="lambda, the study's wd at k = 1")
    p.add_argument("--tables", default="results/tables", help="the profile's tables directory (default: %(default)s)")
    p.add_argument("--plots", default="results/plots", help="where the figure goes (default: %(default)s)")
    p.set_defaults(func=cmd_invariance)

    p = sub.add_parser("boards", help="one page with each profile's board: leaderboard.csv files -> Markdown")
    p.add_argument("leaderboards", nargs="+", help="leaderboard.csv files, one per profile")
    p.add_argument("--out", default="results/boards.md", help="the Markdown page to write (default: %(default)s)")
    p.add_argument("--contrib", default="results/contrib", help="also every merged board in a subdirectory of this "
                   "(its leaderboard.csv and bundles.csv; default: %(default)s; '' for none)")
    p.set_defaults(func=cmd_boards)

    p = sub.add_parser("workloads", help="list the registered workloads")
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.set_defaults(func=cmd_workloads)

    p = sub.add_parser("settings", help="the reference of every run setting (Markdown)")
    p.set_defaults(func=cmd_settings)

    p = sub.add_parser("grid", help="check a profile and print its train commands")
    p.add_argument("--configfile", default="config/config.yaml", help="the profile (YAML)")
    p.set_defaults(func=cmd_grid)
