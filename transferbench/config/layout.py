"""The results layout: every path under a profile's ``results_dir``, spelled once.

The train jobs (grid.py), the data jobs (data_grid.py) and the Snakefile's rules take their paths from
here, with a Snakemake wildcard such as ``"{job}"`` in place of a name where a rule needs a pattern:

    {results_dir}/runs/{line}_s{seed}/lr{log2_lr}/record.json   one run (record.py's RECORD_NAME)
    {results_dir}/runs/{line}_wd{wd}_s{seed}/lr{log2_lr}/...     one run of a 2-D lr x wd job (its line has no wd)
    {results_dir}/runs/{job}/job.json                            a train job's manifest (its declared output)
    {results_dir}/runs/_trained/                                  runs shared between recipes (shared.py)
    {results_dir}/data/{name}/manifest.json                       a prepared data set
    {results_dir}/locks/gpu/                                      GPU claims (devices.py)
    {results_dir}/logs/{stage}.log, logs/train/{job}.log, logs/prepare_data/{name}.log
    {results_dir}/tables/, plots/, leaderboard.{md,csv,html}, findings.md
    {results_dir}/profile.yaml                                    the resolved profile the DAG ran (bundles/make.py)

Pure Python (the Snakefile imports it).
"""

from __future__ import annotations


def run_dir(results_dir: str, line: str, seed: int | str, log2_lr: str) -> str:
    """One run's directory: its sweep line, seed and lr (as fmt() spells it)."""
    return f"{results_dir}/runs/{line}_s{seed}/lr{log2_lr}"


def job_manifest(results_dir: str, job: str) -> str:
    """A train job's manifest, written once every run of the job has its record. The records are not the
    job's outputs: Snakemake deletes the outputs of a failed job, and a sweep line that fails at its last lr
    would lose every finished run."""
    return f"{results_dir}/runs/{job}/job.json"


def shared_dir(results_dir: str) -> str:
    """Where trained runs are stored once and linked from every recipe that trains the same thing."""
    return f"{results_dir}/runs/_trained"


def gpu_locks(results_dir: str) -> str:
    return f"{results_dir}/locks/gpu"


def data_dir(results_dir: str, name: str) -> str:
    return f"{results_dir}/data/{name}"


def data_manifest(results_dir: str, name: str) -> str:
    return f"{data_dir(results_dir, name)}/manifest.json"


def log(results_dir: str, stage: str, name: str | None = None) -> str:
    """A stage's log: ``logs/{stage}.log``, or ``logs/{stage}/{name}.log`` for one of its jobs."""
    return f"{results_dir}/logs/{stage}/{name}.log" if name is not None else f"{results_dir}/logs/{stage}.log"


def tables(results_dir: str) -> str:
    return f"{results_dir}/tables"


def plots(results_dir: str) -> str:
    return f"{results_dir}/plots"


def leaderboard(results_dir: str) -> str:
    """The board's stem: ``.md``, ``.csv`` and ``.html`` are written beside each other."""
    return f"{results_dir}/leaderboard"


def findings(results_dir: str) -> str:
    return f"{results_dir}/findings.md"


def profile(results_dir: str) -> str:
    """The resolved profile (schema defaults filled in) the DAG ran: a bundle's record of its sweep."""
    return f"{results_dir}/profile.yaml"
