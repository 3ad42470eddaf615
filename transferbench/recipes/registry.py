"""Recipe discovery through the entry-point group ``transferbench.recipes``.

Built-ins are registered through the same group as third-party plugins (pyproject.toml). Discovery
is lazy (nothing is loaded until asked) and never imports torch on our side. A broken or duplicate
plugin, or one that trains another model than the built-ins at m = 1 without declaring ``base_model``
(basemodel.py), becomes one :class:`RecipeError` naming the recipe and its distribution; it is reported by
:func:`problems` and raised only when that recipe is asked for, so the other recipes stay usable.
"""

from __future__ import annotations

import contextlib
import importlib
import pkgutil
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from transferbench import entrypoints
from transferbench.recipes import basemodel, checked, instance
from transferbench.recipes.base import Recipe, RecipeError
from transferbench.recipes.checked import base_model_problem

GROUP = "transferbench.recipes"
OWN_DISTRIBUTION = entrypoints.OWN_DISTRIBUTION


@dataclass
class Entry:
    """One discovered recipe: where it comes from and, once loaded, its class or its error."""

    name: str
    target: str  # "module:attr"
    distribution: str
    version: str
    _loaded: type[Recipe] | None = field(default=None, repr=False)
    _error: str | None = field(default=None, repr=False)

    def load(self) -> type[Recipe]:
        """Import the class (once); raise RecipeError naming the plugin if it is broken."""
        if self._loaded is None and self._error is None:
            self._error = self._try_load()
        if self._error is not None:
            raise RecipeError(self._error)
        assert self._loaded is not None
        return self._loaded

    def _try_load(self) -> str | None:
        where = f"recipe {self.name!r} ({self.target}) from distribution {self.distribution} {self.version}"
        try:
            # A plugin that prints at import must not corrupt our stdout (`recipes --json` is parsed).
            with contextlib.redirect_stdout(sys.stderr):
                module_name, _, attr = self.target.partition(":")
                obj: Any = importlib.import_module(module_name)
                for part in attr.split("."):
                    obj = getattr(obj, part)
        # Any failure in third-party code, sys.exit included, must not take the registry down;
        # KeyboardInterrupt still stops the program.
        except (Exception, SystemExit) as exc:
            return f"{where} failed to load: {type(exc).__name__}: {exc}"
        if not (isinstance(obj, type) and issubclass(obj, Recipe)):
            return f"{where} is not a subclass of transferbench.recipes.Recipe"
        missing = [a for a in ("name", "summary", "citation") if not getattr(obj, a, "")]
        if missing:
            return f"{where} lacks {', '.join(missing)}"
        if obj.name != self.name:
            return f"{where}: class says name {obj.name!r} but the entry point says {self.name!r}"
        problem = _base_model_problem(obj, where)
        if problem:
            return problem
        self._loaded = obj
        return None


def _base_model_problem(cls: type[Recipe], where: str) -> str | None:
    """A recipe (with its default options) that trains another model than the built-ins at m = 1 without
    declaring it (recipes/basemodel.py), else None. Options that fail are named when the recipe is used."""
    with contextlib.redirect_stdout(sys.stderr):  # plugin code: its prints must not reach our stdout
        try:
            recipe = cls()
        except (Exception, SystemExit):  # a bad default is the recipe's problem when it is used, named then
            return None
        return base_model_problem(recipe, where)


@lru_cache(maxsize=1)
def _builtin_entries() -> dict[str, Entry]:
    """The built-ins of a source checkout that was never pip-installed (no entry points): every named Recipe
    class defined in a module of this package, in definition order. pyproject.toml's entry points are the
    one written list; this finds the same classes without it."""
    from transferbench import __version__

    package = __name__.rpartition(".")[0]  # this subpackage, found by path: importing it here would be a cycle
    out: dict[str, Entry] = {}
    for info in sorted(pkgutil.iter_modules([str(Path(__file__).parent)]), key=lambda m: m.name):
        module = importlib.import_module(f"{package}.{info.name}")
        for obj in vars(module).values():
            if (isinstance(obj, type) and issubclass(obj, Recipe) and obj.__module__ == module.__name__
                    and getattr(obj, "name", "") and obj.name not in out):
                out[obj.name] = Entry(obj.name, f"{obj.__module__}:{obj.__name__}", OWN_DISTRIBUTION, __version__,
                                      _loaded=obj)
    return out


@lru_cache(maxsize=1)
def _discover() -> tuple[dict[str, Entry], tuple[str, ...]]:
    return entrypoints.discover(GROUP, "recipe", Entry, _builtin_entries)


def clear_cache() -> None:
    """Forget what was discovered (after installing a plugin in the same process, and in tests)."""
    _discover.cache_clear()


def names() -> list[str]:
    """All registered recipe names, built-ins first (in the order their classes are defined: setuptools
    sorts entry points by name), without loading any plugin."""
    order = {n: i for i, n in enumerate(_builtin_entries())}
    entries = _discover()[0]
    own = sorted((n for n, e in entries.items() if e.distribution == OWN_DISTRIBUTION),
                 key=lambda n: (order.get(n, len(order)), n))
    return own + sorted(n for n in entries if n not in own)


def entry(name: str) -> Entry:
    """The entry of ``name`` (or of the recipe of an instance label ``name[key=value]``, instance.py);
    RecipeError listing the known names if there is none."""
    entries = _discover()[0]
    try:
        base = instance.base_name(name)
    except instance.InstanceError as exc:
        raise RecipeError(str(exc)) from None
    if base not in entries:
        raise RecipeError(f"recipe: unknown name {base!r}; known recipes are {', '.join(names())}")
    return entries[base]


def get_recipe_class(name: str) -> type[Recipe]:
    """The class of ``name`` (loads the plugin); RecipeError if unknown or broken."""
    return entry(name).load()


def get_recipe(name: str, **options: Any) -> Recipe:
    """An instance of recipe ``name`` with ``options`` (a label's own options included, e.g.
    ``wd-power[p=0.5]``); RecipeError / ValueError with a clear message."""
    cls = get_recipe_class(name)
    recipe = cls(**instance.merged(name, options)[1])
    problem = base_model_problem(recipe)  # options may change the model at m = 1 (basemodel.py)
    if problem:
        raise RecipeError(problem)
    return recipe


def problems() -> list[str]:
    """Every broken or duplicate plugin, one message each (loads all plugins)."""
    out = list(_discover()[1])
    for name in names():
        try:
            entry(name).load()
        except RecipeError as exc:
            out.append(str(exc))
    return out


def describe(name: str) -> dict[str, Any]:
    """Name, summary, citation, arXiv id, distribution, version and declared base model ("" for the shared
    one) of a (loadable) recipe."""
    e = entry(name)
    cls = e.load()
    return {
        "name": name,
        "summary": cls.summary,
        "citation": cls.citation,
        "arxiv": cls.arxiv_id(),
        "distribution": e.distribution,
        "version": e.version,
        "base_model": str(cls.base_model or "").strip(),  # "" = the shared base model (basemodel.py)
    }


def full_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """The recipe's options with every default filled in and normalised by the recipe itself, so that
    the run config (and its hash) says which variant ran even when a default changes between versions."""
    try:
        return dict(get_recipe(name, **options).opts)
    except RecipeError:
        raise
    except (ValueError, TypeError) as exc:
        raise ValueError(f"recipe_options: {exc}") from None


def base_model_of(recipe: Recipe | type[Recipe] | str) -> str:
    """The recipe's declared base model (``Recipe.base_model``): "" when it trains the shared one, as every
    built-in does. ``recipe`` may be an instance, a class or a registered name or label."""
    return basemodel.base_model_of(get_recipe_class(recipe) if isinstance(recipe, str) else recipe)


def _describe(recipe: Recipe) -> str | None:
    """How errors name a registered recipe: its name and the distribution (and version) that provides it."""
    try:
        e = entry(recipe.name)
    except RecipeError:
        return None
    return f"recipe {recipe.name!r} (distribution {e.distribution} {e.version})"


checked.set_describer(_describe)
