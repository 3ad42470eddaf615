"""The bundle verbs: ``bundle`` (a results directory -> one archive), ``verify`` (is an archive intact?) and
``merge`` (verified archives of one sweep -> one board). Exit status: 0 intact or merged; 1 with one line per
problem on stderr (verify's findings, a refused merge); 2 for an input that is not a readable bundle.
Never imports torch.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from transferbench.bundles.protocol import TOLERANCE  # pure Python

if TYPE_CHECKING:
    from transferbench.bundles.verify import Verified

log = logging.getLogger("transferbench")


def cmd_bundle(args: argparse.Namespace) -> int:
    """RESULTS_DIR -> FILE.tar.gz: its records, manifests, resolved profile, protocols and environment."""
    from transferbench.bundles.make import bundle

    t0 = time.perf_counter()
    out = Path(args.output)
    index = bundle(Path(args.results_dir), out, label=args.label, date=args.date,
                   configfile=Path(args.configfile) if args.configfile else None, derived=not args.no_tables)
    log.info("wrote %s: %d records, %d members, %.1f MB, protocols %s (%.1f s)", out, index["records"],
             len(index["members"]), out.stat().st_size / 1e6,
             ", ".join(f"{w} {p['hash']}" for w, p in sorted(index["protocols"].items())), time.perf_counter() - t0)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """FILE.tar.gz -> 0 if intact; else one line per problem, naming the member (a record by its run directory)."""
    from transferbench.bundles.archive import sha256_file
    from transferbench.bundles.verify import verify

    status = 0
    for path in map(Path, args.bundles):
        t0 = time.perf_counter()
        if args.sha256 and sha256_file(path) != args.sha256.lower():
            print(f"{path}: sha256 is {sha256_file(path)}, not the expected {args.sha256}", file=sys.stderr)
            status = 1
            continue
        v = verify(path)
        if args.rerun and v.ok:
            _rerun(v, args)
        for line in v.problems:
            print(f"{path}: {line}", file=sys.stderr)
        if v.problems:
            status = 1
            log.error("%s: %d problem(s)", path, len(v.problems))
        else:
            if v.unresolved:
                log.warning("%s: recipes not installed here, their records checked by config hash only: %s", path,
                            ", ".join(sorted(v.unresolved)))
            log.info("%s: intact: %d records, %s, by %s on %s (%.1f s)", path, len(v.records),
                     ", ".join(f"{w} {p['hash']}" for w, p in sorted(v.index["protocols"].items())),
                     v.index.get("label"), v.index.get("date"), time.perf_counter() - t0)
    return status


def _rerun(v: Verified, args: argparse.Namespace) -> None:
    """``--rerun K``: retrain K sampled records here; a disagreement joins the bundle's problems."""
    from collections import Counter

    from transferbench.bundles.rerun import rerun

    r = rerun(v, args.rerun, seed=args.rerun_seed, device=args.device, tolerance=args.tolerance)
    v.problems += r.problems
    worst = max((c[3] for c in r.compared), default=0.0)
    log.info("%s: reran %d records here: largest relative difference of eval_loss %.2g (tolerance %g)", v.path,
             len(r.compared), worst, args.tolerance)
    for why, n in Counter(r.skipped.values()).items():
        log.warning("%s: %d records not rerun: %s", v.path, n, why)


def cmd_merge(args: argparse.Namespace) -> int:
    """Bundles of one sweep -> DIR with tables, plots, board and findings; rows name their bundles."""
    from transferbench.bundles.merge import MergeError, merge

    try:
        summary = merge([Path(p) for p in args.bundles], Path(args.output), tolerance=args.tolerance,
                        urls=args.url, n_boot=args.n_boot)
    except MergeError as exc:
        for line in str(exc).splitlines():
            print(line, file=sys.stderr)
        log.error("merge refused: nothing written to %s", args.output)
        return 1
    log.info("merged %d bundles into %s: %d runs, %d held by two bundles (%d disagree beyond %.2g)",
             len(summary["bundles"]), args.output, summary["runs"], summary["duplicates"], summary["mismatches"],
             summary["tolerance"])
    return 0


def add_bundle_commands(sub: argparse._SubParsersAction) -> None:
    """Register bundle, verify and merge on the CLI."""
    p = sub.add_parser("bundle", help="a results directory -> one self-contained, checkable archive")
    p.add_argument("results_dir", help="the profile's results_dir (with runs/, profile.yaml and tables/)")
    p.add_argument("-o", "--output", required=True, help="the archive to write (FILE.tar.gz)")
    p.add_argument("--label", help="who and where ran it, as board rows will cite it (default: this host's name)")
    p.add_argument("--date", help="the bundle's date, YYYY-MM-DD (default: today, UTC)")
    p.add_argument("--configfile", help="the profile the sweep ran, if RESULTS_DIR has no profile.yaml "
                   "(results of before this version)")
    p.add_argument("--no-tables", action="store_true", help="leave out the derived tables, board and findings")
    p.set_defaults(func=cmd_bundle)

    p = sub.add_parser("verify", help="check a bundle: hashes, records, protocols, tables rebuilt from the records")
    p.add_argument("bundles", nargs="+", help="bundle archives (FILE.tar.gz)")
    p.add_argument("--sha256", help="the archive's expected sha256, as a contribution cites it (one bundle)")
    p.add_argument("--rerun", type=int, default=0, metavar="K",
                   help="also retrain K sampled records here from their configs and compare their held-out loss "
                        "(imports torch; default 0: none)")
    p.add_argument("--rerun-seed", type=int, default=0, help="the seed that samples the records to rerun")
    p.add_argument("--device", default="cpu", help="where reruns train (cpu, cuda, auto; default: %(default)s)")
    p.add_argument("--tolerance", type=float, default=TOLERANCE,
                   help="relative difference of a rerun's held-out loss reported as a problem (default: %(default)s)")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("merge", help="verified bundles of one sweep -> one set of tables, plots and a board")
    p.add_argument("bundles", nargs="+", help="bundle archives (FILE.tar.gz); the first holds a shared run's kept copy")
    p.add_argument("-o", "--output", required=True, help="the directory to write (empty, or a previous merge's)")
    p.add_argument("--tolerance", type=float, default=TOLERANCE,
                   help="relative difference of a shared run's held-out loss reported as a mismatch (default: "
                        "%(default)s)")
    p.add_argument("--url", action="append", help="where each bundle is published, in the order given "
                   "(repeat once per bundle; listed in DIR/bundles.csv)")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples over seeds (as metrics)")
    p.set_defaults(func=cmd_merge)
    _add_profile_command(sub)


def cmd_profile(args: argparse.Namespace) -> int:
    """The DAG's resolved profile (JSON) -> RESULTS_DIR/profile.yaml, checked as the Snakefile checks it."""
    import json

    import yaml

    from transferbench.config.profile import check_profile
    try:
        profile = json.loads(args.json)
    except ValueError as exc:
        raise ValueError(f"--json: not JSON ({exc})") from None
    for spec in (profile.get("workloads") or {}).values():  # JSON made the widths of width_settings strings
        if isinstance(spec, dict) and isinstance(spec.get("width_settings"), dict):
            spec["width_settings"] = {int(k) if str(k).lstrip("-").isdigit() else k: v
                                      for k, v in spec["width_settings"].items()}
    check_profile(profile)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(yaml.safe_dump(profile, sort_keys=True, allow_unicode=True), encoding="utf-8")
    tmp.replace(out)  # never half a profile
    log.info("wrote %s", args.out)
    return 0


def _add_profile_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("profile", help="write the resolved profile the DAG runs (the Snakefile's `profile` rule)")
    p.add_argument("--json", required=True, help="the resolved profile as JSON (Snakemake's config)")
    p.add_argument("--out", required=True, help="where to write it as YAML (RESULTS_DIR/profile.yaml)")
    p.set_defaults(func=cmd_profile)
