"""The scale axes a sweep can run along: ``width`` (today's), ``depth`` and ``steps`` (the training horizon).

A workload of a profile names its axis (``axis:``, default width) and the values it takes:

    axis     values    base         what a job sets
    width    widths    base_width   --width W
    depth    depths    base_depth   --depth L --base-depth L0 (one width, widths: [W])
    steps    horizons  base_steps   --steps T --base-steps T0 (one width)

The tuning value is the base if it is swept, else the smallest, as for widths. Every run carries both its
value on the axis and its base (``depth``/``base_depth``, ``steps``/``base_steps``), so a recipe's depth rule
sees m_L = L/L0 and its horizon rule T/T0 (settings.py); the job's manifest names the axis, so runs.csv's
``axis`` and ``scale`` columns say what a sweep scaled (aggregate.py). Pure Python (the Snakefile imports it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Words:
    """How tables, plots, boards and findings speak of an axis (one vocabulary for every reader)."""

    name: str  # "width"
    values: str  # its values, plural: "widths"
    more: str  # the check "wider is better"
    largest: str  # where the transferred loss is scored: "widest width"
    symbol: str  # one value: "d=64"
    label: str  # a plot's x axis: "width d"


WORDS = {"width": Words("width", "widths", "wider", "widest width", "d=", "width d"),
         "depth": Words("depth", "depths", "deeper", "largest depth", "L=", "depth L (blocks)"),
         "steps": Words("horizon", "horizons (steps)", "longer", "longest horizon", "T=", "training steps T")}


def axis_of_table(table: Any) -> str:
    """The scale axis of a table's rows: its ``axis`` column (a profile sweeps one axis per workload), width for
    a table of before the axes."""
    if "axis" in table and len(table) and isinstance(table["axis"].iloc[0], str):
        return str(table["axis"].iloc[0])
    return "width"


AXES = ("width", "depth", "steps")
#: axis -> (the workload key listing its values, the key of its base value, the run setting it sets)
KEYS = {"width": ("widths", "base_width", "width"), "depth": ("depths", "base_depth", "depth"),
        "steps": ("horizons", "base_steps", "steps")}
#: The run settings a non-width axis sets itself: a workload's ``settings`` may not set them.
SET_BY_AXIS = {"width": (), "depth": ("depth", "base_depth"), "steps": ("steps", "base_steps")}
#: Path tag of a job's line on a non-width axis: w64_L4_wd0.1, w64_T800_wd0.1.
_TAG = {"width": "", "depth": "_L", "steps": "_T"}


def axis_of(spec: dict[str, Any]) -> str:
    """A workload spec's axis (default width)."""
    return str(spec.get("axis") or "width")


def values_of(spec: dict[str, Any]) -> list[int]:
    """The values the spec's sweep takes on its axis."""
    return [int(x) for x in spec[KEYS[axis_of(spec)][0]]]


def base_of(spec: dict[str, Any]) -> int:
    """The base value: the one the base lr and wd are tuned at."""
    return int(spec[KEYS[axis_of(spec)][1]])


def tuning(spec: dict[str, Any]) -> int:
    """The value whose optimum is transferred: the base if swept, else the smallest (as metrics.py)."""
    values, base = values_of(spec), base_of(spec)
    return base if base in values else min(values)


def settings_at(axis: str, scale: int, base: int) -> dict[str, int]:
    """The run settings of a job at ``scale`` on a non-width axis (width: none, --width is the job's own)."""
    if axis == "width":
        return {}
    _, base_key, key = KEYS[axis]
    return {key: int(scale), base_key: int(base)}


def tag(axis: str, scale: int) -> str:
    """The line's path tag for its value on a non-width axis ("" on the width axis)."""
    return f"{_TAG[axis]}{int(scale)}" if axis != "width" else ""


def check(where: str, spec: dict[str, Any]) -> str | None:
    """The problem with a spec's axis keys, naming the key, or None."""
    axis = axis_of(spec)
    if axis not in AXES:
        return f"{where}.axis: unknown axis {axis!r}; axes are {', '.join(AXES)}"
    values_key, base_key, _ = KEYS[axis]
    for other in AXES:
        if other != axis and other != "width":
            for key in KEYS[other][:2]:
                if key in spec:
                    return f"{where}.{key}: only with axis: {other} (this workload's axis is {axis})"
    if axis == "width":
        return None
    for key in (values_key, base_key):
        if spec.get(key) in (None, []):
            return f"{where}.{key}: required with axis: {axis}"
    if len(spec.get("widths") or []) != 1:
        return f"{where}.widths: a sweep along {axis} trains one width, got {spec.get('widths')!r}"
    clash = sorted(set(spec.get("settings") or {}) & set(SET_BY_AXIS[axis]))
    if clash:
        return f"{where}.settings.{clash[0]}: set by the {axis} axis ({values_key}, {base_key}), not by settings"
    return None
