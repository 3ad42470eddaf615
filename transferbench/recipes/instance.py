"""Recipe instances: a recipe name with options, ``wd-power[p=0.5]``, is its own row everywhere.

A profile may list ``wd-power[p=0]`` and ``wd-power[p=0.5]`` side by side; each is a recipe of its own in
the config (``recipe``), the record, runs.csv, the tables, the plots and the leaderboard. The label is
canonical (options sorted by key, numbers as ``%g``), so ``wd-power[p=0.50]`` and ``wd-power[p=.5]`` are
one recipe. A plain name is its own label, so nothing changes for recipes without instance options (and
no config hash moves). Paths use :func:`slug`, which has no shell or glob characters. Pure Python.
"""

from __future__ import annotations

import re
from typing import Any

_LABEL = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9_.-]*)\s*(?:\[(.*)\])?\s*$", re.DOTALL)
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class InstanceError(ValueError):
    """A malformed recipe instance: the message quotes it."""


def _value(text: str) -> Any:
    """An option value as written in a label: a number, true/false/null, or a bare string."""
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "null":
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def parse(label: str) -> tuple[str, dict[str, Any]]:
    """``'wd-power[p=0.5, vector_wd=none]'`` -> ``('wd-power', {'p': 0.5, 'vector_wd': 'none'})``."""
    match = _LABEL.match(str(label))
    if not match:
        raise InstanceError(f"recipe: {label!r} is not a recipe name or NAME[key=value, ...]")
    name, body = match.group(1), match.group(2)
    options: dict[str, Any] = {}
    if body is None:
        return name, options
    for item in (part.strip() for part in body.split(",")):
        key, eq, text = (s.strip() for s in item.partition("="))
        if not eq or not _KEY.match(key) or not text or any(c in text for c in "[]"):
            raise InstanceError(f"recipe: {label!r}: {item!r} is not key=value")
        if key in options:
            raise InstanceError(f"recipe: {label!r} sets {key!r} twice")
        options[key] = _value(text)
    if not options:
        raise InstanceError(f"recipe: {label!r} has empty brackets")
    return name, options


def label(name: str, options: dict[str, Any]) -> str:
    """The canonical label of ``name`` with instance ``options`` (the name alone without options)."""
    if not options:
        return name
    return f"{name}[{','.join(f'{k}={_show(options[k])}' for k in sorted(options))}]"


def canonical(text: str) -> str:
    """The canonical form of a label as typed."""
    return label(*parse(text))


def base_name(text: str) -> str:
    """The registered recipe name of a label."""
    return parse(text)[0]


def slug(text: str) -> str:
    """A label as a path component: ``wd-power[p=0.5]`` -> ``wd-power@p=0.5`` (no brackets, which are glob
    characters; ``@`` never occurs in a recipe name)."""
    name, options = parse(text)
    return name if not options else f"{name}@{','.join(f'{k}={_show(options[k])}' for k in sorted(options))}"


def merged(text: str, options: dict[str, Any] | None, where: str = "recipe_options") -> tuple[str, dict[str, Any]]:
    """(name, options) of a label plus further options (a profile's ``recipe_options``, ``--recipe-option``);
    an option given both ways with different values is an InstanceError naming ``where.KEY``."""
    name, own = parse(text)
    extra = dict(options or {})
    for key, value in own.items():
        if key in extra and extra[key] != value:
            raise InstanceError(f"{where}.{key}: {extra[key]!r} conflicts with the recipe instance {text!r}")
    return name, {**extra, **own}


def profile_options(options: dict[str, Any] | None, text: str) -> dict[str, Any]:
    """A profile's ``recipe_options`` for one listed recipe: the entry of its name, then of its label."""
    options = options or {}
    name = base_name(text)
    out = dict(options.get(name) or {})
    if text != name:
        out.update(options.get(text) or {})
    return out
