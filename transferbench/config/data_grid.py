"""A profile's ``data:`` section -> the DAG's prepare_data jobs, and what a workload that uses one passes
to train (``--data-source``, ``--data-path``) and waits for (the data set's manifest).

Pure Python (the Snakefile imports it). A data entry is one prepared data set under
``{results_dir}/data/{name}``; a workload names it with ``data: NAME`` and stays the same workload with
the same roles and recipes: a source is a config choice, not a new workload.
"""

from __future__ import annotations

import glob
import shlex
from dataclasses import dataclass
from typing import Any

from transferbench.config import layout
from transferbench.config.run import ConfigError

#: A data entry's kind -> the data_source that reads it.
SOURCE_OF_KIND = {"text": "tokens", "cifar10": "cifar10"}
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
        out = [h for pattern in spec.get("files") or [] for h in sorted(glob.glob(pattern, recursive=True))]
        if spec.get("root"):
            out += sorted(glob.glob(f"{spec['root']}/cifar-10-batches-py/*"))
        return out

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
    from transferbench import workload_specs

    source = SOURCE_OF_KIND[entries[name]["kind"]]
    sources = workload_specs.get(workload).sources
    if source not in sources:
        raise ConfigError(f"workloads.{workload}.data: {name!r} is {entries[name]['kind']} data, which {workload} "
                          f"cannot read (its sources: {', '.join(sources)})")
    manifest = layout.data_manifest(str(profile.get("results_dir", "results")), name)
    return ["--data-source", source, "--data-path", manifest], manifest


def check_data(profile: dict[str, Any]) -> None:
    """Each entry's keys make sense for its kind; every workload's data: names an entry it can read."""
    for name, entry in (profile.get("data") or {}).items():
        where = f"data.{name}"
        if entry.get("kind") == "text" and not (entry.get("files") or entry.get("dataset")):
            raise ConfigError(f"{where}: a text corpus needs files or dataset")
        if entry.get("kind") == "cifar10" and not (entry.get("root") or entry.get("dataset")):
            raise ConfigError(f"{where}: CIFAR-10 needs root (the python batch directory's parent) or dataset")
        if entry.get("tokenizer") == "pretrained" and not (entry.get("pretrained") and entry.get("eos_token")):
            raise ConfigError(f"{where}.tokenizer: 'pretrained' needs pretrained and eos_token")
    for workload, spec in profile["workloads"].items():
        flags, _ = workload_data(profile, workload, spec)
        if flags and {"data_source", "data_path"} & set(spec.get("settings") or {}):
            raise ConfigError(f"workloads.{workload}.settings: data_source and data_path are set by data: "
                              f"{spec['data']!r}")
