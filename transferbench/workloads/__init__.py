"""The workload registry: one :class:`WorkloadSpec` per workload, found through the entry-point group
``transferbench.workloads``, exactly as recipes are (recipes/registry.py).

A workload is a package: ``transferbench/workloads/<name>/`` for a built-in, any package for a plugin. Its
``SPEC`` holds everything the rest of the code needs: settings (with defaults, ranges and help) and
overrides of the common defaults, the model builder, the data sources (chosen by the ``data_source``
setting, so real data plug in as a source, not as a new workload) and the prepared data kinds they read,
the loss, units, a cross-setting check, the DAG priority, the FLOPs per item and its formula, and the
train rule's default cluster resources. Config validation, CLI flags, the profile check, the trainer,
plots, cost and MFU, the DAG's job order and its SLURM resources derive from it; no module outside a
workload's folder names a workload.

Built-ins are entry points of this distribution (pyproject.toml); a source checkout that was never
pip-installed finds them by scanning this package's subpackages. Discovery is lazy, and a broken or
duplicate plugin becomes one :class:`UnknownWorkload` naming it and its distribution, raised only when that
workload is asked for (:func:`problems` lists them); a plugin may not shadow a built-in. :func:`register`
adds a workload in this process only (tests). Builders are "module:function" strings imported on use, so
this module never imports torch (the Snakefile imports it); the torch side is ``workloads/build.py``.
"""

from __future__ import annotations

import contextlib
import importlib
import pkgutil
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from transferbench import entrypoints

GROUP = "transferbench.workloads"
OWN_DISTRIBUTION = entrypoints.OWN_DISTRIBUTION


@dataclass(frozen=True)
class DataKind:
    """A kind of prepared data set: a profile's ``data:`` entry ``kind:`` and ``prepare-data --kind``.

    A workload's source that reads it names it in ``WorkloadSpec.reads``; the kinds any workload can read
    are in data/kinds.py.
    """

    name: str
    summary: str
    prepare: str  # "module:function"(entry: dict, out: Path) -> the manifest.json written
    check: Callable[[dict[str, Any]], str | None] | None = None  # a data entry's problem ("KEY: ..." if one key's)
    inputs: Callable[[dict[str, Any]], list[str]] | None = None  # the local files a data entry is made from


@dataclass(frozen=True)
class WorkloadSpec:
    """One workload. Builders are "module:function" strings, imported only when a run is built:

    - ``model(cfg, output_mult) -> nn.Module`` with ``param_specs()`` and ``sublayers()``;
    - ``sources[name](cfg) -> data.Source`` (``train_batch(seed, step)``, ``eval_batch(i)``, ``info()``);
    - ``loss(output, target) -> scalar tensor``.

    The callables (``items_per_batch``, ``check``, ``flops_per_item``) are plain Python: they run where the
    config is checked and the cost planned, without torch.
    """

    name: str
    summary: str
    settings: type  # a frozen dataclass of the workload's own settings (fields made with settings.setting)
    model: str
    sources: Mapping[str, str]
    loss: str
    loss_unit: str  # the plots' y axis, e.g. "nats/token"
    throughput_unit: str  # "tokens/s" or "samples/s"
    items_per_batch: Callable[[dict[str, Any]], int]
    overrides: Mapping[str, Any] = field(default_factory=dict)  # defaults of common settings
    check: Callable[[dict[str, Any]], str | None] | None = None  # "key: problem" across settings, or None
    priority: int = 0  # DAG: jobs of higher priority start first (the longest workloads)
    #: model FLOPs per item (token, image, sample) of one training step of a resolved RunConfig, forward and
    #: backward (cost.py, mfu.py); None: no FLOPs and no MFU in the record
    flops_per_item: Callable[[Any], float] | None = None
    flops_formula: str | None = None  # that formula in words, as the record states it
    #: the train rule's default cluster resources (slurm_partition, runtime in minutes, mem_mb); a workflow
    #: profile's set-resources for train_<name> overrides them (workflow/rules/train.smk)
    resources: Mapping[str, Any] = field(default_factory=dict)
    reads: Mapping[str, DataKind] = field(default_factory=dict)  # source name -> the prepared data kind it reads
    #: its model has residual branches that a recipe's depth rule may scale (``set_branch_mult``); a depth recipe
    #: at m_L != 1 on a workload without them is refused when the config is resolved, before torch loads
    residual: bool = False


class UnknownWorkload(ValueError):
    """A workload name that is not registered, or whose plugin is broken; the message names it (and its
    distribution)."""


@dataclass
class Entry:
    """One discovered workload: where it comes from and, once loaded, its spec or its error."""

    name: str
    target: str  # "module:attr"
    distribution: str
    version: str
    _loaded: WorkloadSpec | None = field(default=None, repr=False)
    _error: str | None = field(default=None, repr=False)

    def load(self) -> WorkloadSpec:
        """Import the spec (once); raise UnknownWorkload naming the plugin if it is broken."""
        if self._loaded is None and self._error is None:
            self._error = self._try_load()
        if self._error is not None:
            raise UnknownWorkload(self._error)
        assert self._loaded is not None
        return self._loaded

    def _try_load(self) -> str | None:
        where = f"workload {self.name!r} ({self.target}) from distribution {self.distribution} {self.version}"
        try:
            with contextlib.redirect_stdout(sys.stderr):  # a plugin's prints must not reach our stdout
                obj = load(self.target)
        # Any failure in third-party code, sys.exit included, must not take the registry down.
        except (Exception, SystemExit) as exc:
            return f"{where} failed to load: {type(exc).__name__}: {exc}"
        if not isinstance(obj, WorkloadSpec):
            return f"{where} is not a transferbench.workloads.WorkloadSpec (got {type(obj).__name__})"
        if obj.name != self.name:
            return f"{where}: the spec says name {obj.name!r} but the entry point says {self.name!r}"
        self._loaded = obj
        return None


_REGISTRY: dict[str, WorkloadSpec] = {}  # register(): this process only


def _builtin_entries() -> dict[str, Entry]:
    """The built-ins, for a source checkout that was never pip-installed (no entry points): every
    subpackage of this package, each with its ``SPEC``."""
    from transferbench import __version__

    return {m.name: Entry(m.name, f"{__name__}.{m.name}:SPEC", OWN_DISTRIBUTION, __version__)
            for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if m.ispkg}


@lru_cache(maxsize=1)
def _discover() -> tuple[dict[str, Entry], tuple[str, ...]]:
    return entrypoints.discover(GROUP, "workload", Entry, _builtin_entries)


def clear_cache() -> None:
    """Forget what was discovered (after installing a plugin in the same process, and in tests)."""
    _discover.cache_clear()


def register(spec: WorkloadSpec) -> WorkloadSpec:
    """Add (or replace, by name) a workload in this process only; returns it. Other processes (the DAG's
    jobs) find a workload through its entry point."""
    _REGISTRY[spec.name] = spec
    return spec


def names() -> list[str]:
    """Every workload name, without loading any plugin: the built-ins by priority (the longest first),
    then the plugins by name, then those registered in this process."""
    entries = _discover()[0]

    def priority(name: str) -> int:
        try:
            return -entries[name].load().priority
        except UnknownWorkload:
            return 0

    own = sorted((n for n, e in entries.items() if e.distribution == OWN_DISTRIBUTION),
                 key=lambda n: (priority(n), n))
    found = own + sorted(n for n in entries if n not in own)
    return found + [n for n in _REGISTRY if n not in entries]


def entry(name: str) -> Entry:
    """Where workload ``name`` comes from; UnknownWorkload listing the known names if nowhere."""
    if name in _REGISTRY:
        return Entry(name, "", "<registered in this process>", "", _loaded=_REGISTRY[name])
    entries = _discover()[0]
    if name not in entries:
        raise UnknownWorkload(f"workload: unknown value {name!r}; known workloads are {', '.join(names())}")
    return entries[name]


def get(name: str) -> WorkloadSpec:
    """The spec of ``name`` (loads its package); UnknownWorkload if unknown or broken."""
    return entry(name).load()


def specs() -> list[WorkloadSpec]:
    """The spec of every workload that loads, in :func:`names` order (a broken plugin is left out:
    :func:`problems` names it)."""
    out = []
    for name in names():
        try:
            out.append(get(name))
        except UnknownWorkload:
            continue
    return out


def problems() -> list[str]:
    """Every broken or duplicate workload plugin, and data kinds defined twice, one message each."""
    out = list(_discover()[1])
    kinds: dict[str, tuple[DataKind, str]] = {}
    for name in names():
        try:
            spec = get(name)
        except UnknownWorkload as exc:
            out.append(str(exc))
            continue
        for kind in spec.reads.values():
            first = kinds.setdefault(kind.name, (kind, name))
            if first[0] != kind:
                out.append(f"workload {name!r} defines data kind {kind.name!r} unlike workload {first[1]!r}; "
                           f"{first[1]!r}'s is used")
    return out


def data_kinds() -> dict[str, DataKind]:
    """The prepared data kinds some registered workload reads (the first definition of a name wins)."""
    out: dict[str, DataKind] = {}
    for spec in specs():
        for kind in spec.reads.values():
            out.setdefault(kind.name, kind)
    return out


def load(target: str) -> Any:
    """The object named by a "module:attr" builder string (attr may be dotted)."""
    module, _, attr = target.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj
