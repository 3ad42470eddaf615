"""A profile's ``data:`` section -> the DAG's prepare_data jobs, and what a workload that uses one passes
to train (``--data-source``, ``--data-path``) and waits for (the data set's manifest).

Pure Python (the Snakefile imports it). A data entry is one prepared data set under
``{results_dir}/data/{name}``; a workload names it with ``data: NAME`` and stays the same workload with
the same roles and recipes: a source is a config choice, not a new workload. The kinds of data set, with
their checks and the source that reads each, come from the registered workloads' specs (``reads``).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from transferbench import workloads
from transferbench.config import layout
from transferbench.config.run import ConfigError

#: Entry keys that are lists (one flag, several values).
_LISTS = ("files",)


@dataclass(frozen=True)
class DataJob:
    name: str
    spec: tuple[tuple[str, Any], ...]
    results_dir: str

    @property
    def out_dir(self) -> str:
        return layout.data_dir(self.results_dir, self.name)

    @property
    def manifest(self) -> str:
        return layout.data_manifest(self.results_dir, self.name)

    @property
    def log(self) -> str:
        return layout.log(self.results_dir, "prepare_data", self.name)

    @property
    def inputs(self) -> list[str]:
        """The local files the data set is made from (so that an edited corpus is prepared again)."""
        spec = dict(self.spec)
        kind = workloads.data_kinds().get(spec["kind"])
        return kind.inputs(spec) if kind is not None and kind.inputs is not None else []

    def command(self) -> str:
        args = ["--kind", dict(self.spec)["kind"]]
        for key, value in self.spec:
            if key == "kind":
                continue
            flag = "--" + key.replace("_", "-")
            args += [flag, *map(str, value)] if key in _LISTS else [flag, str(value)]
        args += ["--out", self.out_dir]
        return "python -m transferbench prepare-data " + " ".join(shlex.quote(a) for a in args)


def data_jobs(profile: dict[str, Any]) -> dict[str, DataJob]:
    results_dir = str(profile.get("results_dir", "results"))
    return {name: DataJob(name, tuple(sorted(spec.items())), results_dir)
            for name, spec in (profile.get("data") or {}).items()}


def workload_data(profile: dict[str, Any], workload: str, spec: dict[str, Any]) -> tuple[list[str], str | None]:
    """(train flags, the manifest to wait for) of a workload that names a data set; ([], None) otherwise."""
    name = spec.get("data")
    if name is None:
        return [], None
    entries = profile.get("data") or {}
    if name not in entries:
        known = ", ".join(entries) or "none"
        raise ConfigError(f"workloads.{workload}.data: {name!r} is not an entry of data: (known: {known})")
    wl = workloads.get(workload)
    kind = entries[name]["kind"]
    source = next((s for s, k in wl.reads.items() if k.name == kind), None)
    if source is None:
        raise ConfigError(f"workloads.{workload}.data: {name!r} is {kind} data, which {workload} cannot read "
                          f"(its sources: {', '.join(wl.sources)})")
    manifest = layout.data_manifest(str(profile.get("results_dir", "results")), name)
    return ["--data-source", source, "--data-path", manifest], manifest


def check_data(profile: dict[str, Any]) -> None:
    """Each entry's keys make sense for its kind; every workload's data: names an entry it can read."""
    kinds = workloads.data_kinds()
    for name, entry in (profile.get("data") or {}).items():
        where = f"data.{name}"
        kind = kinds.get(entry.get("kind"))
        if kind is None:
            raise ConfigError(f"{where}.kind: unknown value {entry.get('kind')!r}; known kinds are "
                              f"{', '.join(kinds) or 'none'} (the data kinds the registered workloads read)")
        problem = kind.check(entry) if kind.check is not None else None
        if problem:
            key, sep, rest = problem.partition(": ")
            raise ConfigError(f"{where}.{key}: {rest}" if sep and key in entry else f"{where}: {problem}")
    for workload, spec in profile["workloads"].items():
        flags, _ = workload_data(profile, workload, spec)
        if flags and {"data_source", "data_path"} & set(spec.get("settings") or {}):
            raise ConfigError(f"workloads.{workload}.settings: data_source and data_path are set by data: "
                              f"{spec['data']!r}")
