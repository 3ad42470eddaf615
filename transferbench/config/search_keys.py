"""The searches' profile keys: ``lr_refine``'s check (:func:`check_lr_refine`, also ``wd_refine``'s), and the
2-D lr x wd search's keys (``wd_search: adaptive``; search2d.py, line2d.py): which workloads
search the weight decay, on which lattice, and their checks.

A workload searches log2 lr x log2 wd when its own ``wd_search`` (else the profile's) is ``adaptive``. It
then gives ``log2_wds`` (the lattice of log2 *base* wd, as ``wds`` would list them: each recipe scales the
base wd with width by its own rule) instead of ``wds``, optionally ``log2_wd_start`` (the tuning width's
predicted log2 wd optimum; default the lattice's middle) and ``wd_refine`` (octaves, as ``lr_refine``;
default 0, the lattice only). Pure Python (the Snakefile imports it through grid.py and profile.py).
"""

from __future__ import annotations

from typing import Any

from transferbench.config.run import ConfigError

#: Octaves between fine wds near the optimum by default: none (the wd lattice only; search2d.py's replay
#: measured a fine wd axis at ~23% more runs for a wd optimum ~0.01 octave closer to the truth).
WD_REFINE = 0.0
#: The workload keys that only a wd-searched workload may give.
WD_SEARCH_KEYS = ("log2_wds", "log2_wd_start", "wd_refine")


def check_lr_refine(value: Any, where: str = "lr_refine") -> float:
    """``lr_refine`` as octaves: 0 (no refinement) or a step that divides one octave into whole steps
    (1, 0.5, 0.25, ...), so the fine points fall on the same places between every pair of octaves."""
    bad = f"{where}: {value!r} is not 0 or a step that divides one octave into whole steps (0.5, 0.25, ...)"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(bad)
    if value == 0:
        return 0.0
    if not 0 < value <= 1 or abs(1 / value - round(1 / value)) > 1e-6:
        raise ConfigError(bad)
    return float(value)


def wd_search(profile: dict[str, Any], workload: str) -> str:
    """``grid`` or ``adaptive``: the workload's own ``wd_search``, else the profile's, else grid."""
    spec = profile["workloads"][workload]
    return str(spec.get("wd_search") or profile.get("wd_search") or "grid")


def wd_refine(profile: dict[str, Any], workload: str) -> float:
    """``wd_refine`` (checked): the workload's own, else the profile's, else :data:`WD_REFINE`."""
    spec = profile["workloads"][workload]
    if spec.get("wd_refine") is not None:
        return check_lr_refine(spec["wd_refine"], f"workloads.{workload}.wd_refine")
    value = profile.get("wd_refine")
    return check_lr_refine(WD_REFINE if value is None else value, "wd_refine")


def wd_values(profile: dict[str, Any], workload: str) -> list[float]:
    """Every wd a run of the workload may have: ``wds``, or 2^y for every y of the fine wd lattice."""
    from transferbench.search import fine_lattice

    spec = profile["workloads"][workload]
    if wd_search(profile, workload) != "adaptive":
        return list(spec["wds"])
    return [2.0**y for y in fine_lattice(tuple(float(y) for y in spec["log2_wds"]), wd_refine(profile, workload))]


def lr_wd_pairs(profile: dict[str, Any], workload: str) -> list[tuple[float, float]]:
    """The (log2 lr, wd) pairs whose runs check_profile resolves: every pair of a wd grid; for a 2-D search
    a cross, every lr at the first wd and every wd (:func:`wd_values`) at the first lr: a run's settings are
    checked value by value, and the full product (~4000 runs a workload) slowed the Snakefile's load ~10x."""
    lrs, wds = profile["workloads"][workload]["log2_lrs"], wd_values(profile, workload)
    if wd_search(profile, workload) != "adaptive":
        return [(x, wd) for x in lrs for wd in wds]
    return [(x, wds[0]) for x in lrs] + [(lrs[0], wd) for wd in wds[1:]]


def check_wd_search(profile: dict[str, Any]) -> None:
    """A wd-searched workload gives log2_wds (a list of numbers, no repeats), not wds, needs lr_search:
    adaptive, and its start lies inside its lattice; a workload that does not search wd gives none of them."""
    if profile.get("wd_search", "grid") not in ("grid", "adaptive"):
        raise ConfigError(f"wd_search: {profile['wd_search']!r} is not one of grid, adaptive")
    for workload, spec in profile["workloads"].items():
        where = f"workloads.{workload}"
        if spec.get("wd_search", "grid") not in ("grid", "adaptive"):
            raise ConfigError(f"{where}.wd_search: {spec['wd_search']!r} is not one of grid, adaptive")
        if wd_search(profile, workload) != "adaptive":
            extra = [k for k in WD_SEARCH_KEYS if spec.get(k) is not None]
            if extra:
                raise ConfigError(f"{where}.{extra[0]}: only used with wd_search: adaptive")
            if not spec.get("wds"):
                raise ConfigError(f"{where}.wds: empty; the grid has no runs")
            continue
        if spec.get("wds") is not None:
            raise ConfigError(f"{where}.wds: not used with wd_search: adaptive, which searches log2_wds")
        if profile.get("lr_search", "grid") != "adaptive":
            raise ConfigError(f"{where}.wd_search: 'adaptive' searches lr and wd together and needs "
                              "lr_search: adaptive")
        lattice = spec.get("log2_wds")
        if not isinstance(lattice, list) or not lattice or any(
                isinstance(y, bool) or not isinstance(y, (int, float)) for y in lattice):
            raise ConfigError(f"{where}.log2_wds: {lattice!r} is not a non-empty list of numbers (log2 base wd)")
        if len({float(y) for y in lattice}) != len(lattice):
            raise ConfigError(f"{where}.log2_wds: repeated value in {lattice!r}")
        start = spec.get("log2_wd_start")
        if start is not None and (isinstance(start, bool) or not isinstance(start, (int, float))
                                  or not min(lattice) <= start <= max(lattice)):
            raise ConfigError(f"{where}.log2_wd_start: {start!r} is not a number within log2_wds "
                              f"[{min(lattice):g}, {max(lattice):g}]")
        wd_refine(profile, workload)
