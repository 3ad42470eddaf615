"""The built-in recipes, in the order listings show them (registered in pyproject.toml like any plugin)."""

from __future__ import annotations

from transferbench.recipes.base import Recipe
from transferbench.recipes.builtin import BUILTINS as _CORE
from transferbench.recipes.wd_power import WdPower

BUILTINS: tuple[type[Recipe], ...] = (*_CORE, WdPower)
