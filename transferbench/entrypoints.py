"""Plugin discovery shared by the recipe and the workload registries: a name -> entry map from the
``importlib.metadata`` entry points of one group, with the built-ins when the package's own entry points are
not installed (a source checkout), and the conflicts as data.

Rules (docs/extending.md): the same distribution seen twice on sys.path is one registration; a plugin may not
shadow a built-in (the built-in stays, the plugin is reported as a problem); two plugins registering one name
leave an entry that carries the error and fails when it is loaded. Pure Python (no torch): the Snakefile
imports the registries.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import metadata
from typing import Any, TypeVar

OWN_DISTRIBUTION = "transferbench"
E = TypeVar("E")


def discover(group: str, kind: str, entry: Callable[..., E],
             builtins: Callable[[], dict[str, E]]) -> tuple[dict[str, E], tuple[str, ...]]:
    """(entries by name, problems) of entry-point ``group``; ``kind`` names the thing in messages ("recipe"),
    ``entry(name, target, distribution, version, _error=...)`` makes an entry, ``builtins()`` the package's
    own entries for when its entry points are not installed."""
    entries: dict[str, Any] = {}
    duplicates: dict[str, list[Any]] = {}
    seen: set[tuple[str, str, str]] = set()
    for ep in metadata.entry_points(group=group):
        dist = getattr(ep, "dist", None)
        dist_name = dist.metadata["Name"] if dist is not None else "<unknown>"
        version = dist.version if dist is not None else "?"
        key = (ep.name, ep.value, dist_name)
        if key in seen:  # the same distribution visible twice on sys.path: not a conflict
            continue
        seen.add(key)
        made = entry(ep.name, ep.value, dist_name, version)
        if ep.name in entries or ep.name in duplicates:
            duplicates.setdefault(ep.name, [entries.pop(ep.name)] if ep.name in entries else [])
            duplicates[ep.name].append(made)
        else:
            entries[ep.name] = made
    if not any(e.distribution == OWN_DISTRIBUTION for e in [*entries.values(), *sum(duplicates.values(), [])]):
        for name, own in builtins().items():
            if name in entries:
                duplicates[name] = [own, entries.pop(name)]
            else:
                entries[name] = own
    problems: list[str] = []
    for name, group_ in duplicates.items():
        own = [e for e in group_ if e.distribution == OWN_DISTRIBUTION]
        others = ", ".join(f"{e.distribution} {e.version} ({e.target})" for e in group_ if e not in own)
        if own:  # a plugin may not shadow a built-in: the built-in stays, the plugin is reported
            entries[name] = own[0]
            problems.append(f"{kind} {name!r} from distribution {others} duplicates a built-in; ignored")
        else:
            dists = ", ".join(f"{e.distribution} {e.version} ({e.target})" for e in group_)
            msg = f"{kind} {name!r} is registered by more than one distribution: {dists}"
            entries[name] = entry(name, group_[0].target, group_[0].distribution, group_[0].version, _error=msg)
    return entries, tuple(problems)
