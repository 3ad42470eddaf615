"""The vocabulary of a run setting: :class:`Setting` (default, range or choices, one line of help), its range
:class:`Bound` with the usual ones, and :func:`setting`, the dataclass field that carries it.

Apart from settings.py (which re-exports all of it) so that a workload's settings (its spec,
workloads/<name>/__init__.py or a plugin's) are declared without importing the run config, which lists every
registered workload's settings: settings.py imports the registry, never the other way round
(tests/test_layers.py). Pure Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple


class Bound(NamedTuple):
    """The range of a numeric setting: ``lo``/``hi`` (None = unbounded), inclusive unless marked open."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def holds(self, x: float) -> bool:
        above = self.lo is None or (x > self.lo if self.lo_open else x >= self.lo)
        below = self.hi is None or (x < self.hi if self.hi_open else x <= self.hi)
        return above and below

    def __str__(self) -> str:
        if self.lo is not None and self.hi is not None:
            return f"in {'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}{')' if self.hi_open else ']'}"
        if self.lo is not None:
            return f"{'>' if self.lo_open else '>='} {self.lo:g}"
        return f"{'<' if self.hi_open else '<='} {self.hi:g}"


COUNT, COUNT0, POSITIVE, NONNEG = Bound(1), Bound(0), Bound(0, lo_open=True), Bound(0)

@dataclass(frozen=True)
class Setting:
    """One run setting. ``default`` None means required; its type is the type of the default (or
    ``kind`` when there is no default). ``bound`` ranges numbers; ``choices`` lists allowed strings."""

    default: Any
    help: str
    bound: Bound | None = None
    choices: tuple[str, ...] | None = None
    kind: type | None = None

    @property
    def type(self) -> type | None:
        return self.kind or (type(self.default) if self.default is not None else None)


def setting(default: Any = None, help: str = "", bound: Bound | None = None,
            choices: tuple[str, ...] | None = None, kind: type | None = None) -> Any:
    """A dataclass field whose metadata is its :class:`Setting` (default None = required)."""
    meta = {"setting": Setting(default, help, bound, choices, kind)}
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata=meta)
    return field(default=default, metadata=meta)


def settings_of(cls: type) -> dict[str, Setting]:
    """The Settings of a settings dataclass, by field name, in field order."""
    return {f.name: f.metadata["setting"] for f in fields(cls) if "setting" in f.metadata}
