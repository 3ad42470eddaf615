"""Scaling recipes: the contract (``base``), the built-ins (``builtin``) and plugin discovery
(``registry``). Pure Python: importing this never imports torch."""

from transferbench.recipes.base import Multipliers, Recipe, arxiv_id
from transferbench.recipes.registry import (
    RecipeError,
    base_model_of,
    describe,
    get_recipe,
    get_recipe_class,
    names,
    problems,
)

__all__ = [
    "Multipliers",
    "Recipe",
    "RecipeError",
    "arxiv_id",
    "base_model_of",
    "describe",
    "get_recipe",
    "get_recipe_class",
    "names",
    "problems",
]
