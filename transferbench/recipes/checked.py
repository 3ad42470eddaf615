"""A recipe's answers, validated before any compute: what ``train`` and ``show-recipe`` use.

A recipe is third-party code. Every number it returns (multipliers, readout multiplier, per-step lr
and wd factors) is checked here once, for one width and one schedule: finite, non-negative (the
readout multiplier strictly positive), one factor per step. A recipe method that raises, or returns
something else, becomes one :class:`RecipeError` naming the recipe and its distribution, so a bad
plugin never reaches torch as a NaN or a negative learning rate. A recipe that trains another model than
the built-ins at m = 1 without declaring it is refused here too (basemodel.py). Pure Python (no torch).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from transferbench.recipes import basemodel
from transferbench.recipes.base import NO_DEPTH, DepthMultipliers, Multipliers, Recipe, RecipeError
from transferbench.roles import ROLES


@dataclass(frozen=True)
class RoleSettings:
    """What a recipe says about one role at one width: multipliers and optional per-step factors."""

    multipliers: Multipliers
    lr_factors: list[float] | None
    wd_factors: list[float] | None
    #: The depth rule's factors at the run's depth multiplier (all 1 without a depth rule).
    depth: DepthMultipliers = NO_DEPTH
    #: The horizon rule's factor on the weight decay at the run's steps multiplier.
    horizon_wd: float = 1.0


@dataclass(frozen=True)
class Resolved:
    """A recipe resolved at one width multiplier and one schedule, every value checked."""

    output_mult: float
    roles: dict[str, RoleSettings]
    lr_factor_name: str | None = None
    wd_factor_name: str | None = None
    #: Forward multiplier on every residual branch (the depth rule's; 1 without one).
    branch_mult: float = 1.0


def _no_distribution(recipe: Recipe) -> str | None:
    return None


#: recipe -> "recipe 'x' (distribution d v)", or None when the recipe is not registered. The registry hands
#: its lookup in (set_describer) rather than this module importing the registry, which imports this module.
_describe: Callable[[Recipe], str | None] = _no_distribution


def set_describer(describe: Callable[[Recipe], str | None]) -> None:
    """How errors name a recipe and its distribution (registry.py installs its entry-point lookup)."""
    global _describe
    _describe = describe


def _who(recipe: Recipe) -> str:
    """The recipe and its distribution; its module and class when it is not registered."""
    cls = type(recipe)
    return _describe(recipe) or f"recipe {recipe.name!r} ({cls.__module__}.{cls.__name__})"


def _call(recipe: Recipe, what: str, fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except (Exception, SystemExit) as exc:  # third-party code: any failure is the plugin's, named
        raise RecipeError(f"{_who(recipe)}: {what} raised {type(exc).__name__}: {exc}") from None


def _number(recipe: Recipe, what: str, x: Any, positive: bool = False) -> float:
    ok = isinstance(x, (int, float)) and not isinstance(x, bool)
    if not ok or not math.isfinite(float(x)) or float(x) < 0 or (positive and float(x) == 0):
        need = "a finite number > 0" if positive else "a finite number >= 0"
        raise RecipeError(f"{_who(recipe)}: {what} must be {need}, got {x!r}")
    return float(x)


def _factors(recipe: Recipe, what: str, values: Any, steps: int) -> list[float] | None:
    if values is None:
        return None
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise RecipeError(f"{_who(recipe)}: {what} must be a list of {steps} numbers or None, "
                          f"got {type(values).__name__}")
    if len(values) != steps:
        raise RecipeError(f"{_who(recipe)}: {what} must give one factor per step ({steps}), got {len(values)}")
    return [_number(recipe, f"{what}[{t}]", v) for t, v in enumerate(values)]


def resolve(recipe: Recipe, width_mult: float, base_lrs: Sequence[float], wd: float, depth_mult: float = 1.0,
            steps_mult: float = 1.0) -> Resolved:
    """Every role's multipliers and per-step factors at ``width_mult`` (and the depth and horizon rules' at
    ``depth_mult`` and ``steps_mult``) for the base schedule
    ``base_lrs`` (base lr x schedule at each step) and base weight decay ``wd``; RecipeError if any
    value is not finite and non-negative, a factor list has the wrong length, or a method raises, and if
    the recipe at m = 1 on this schedule is not the shared base model and does not declare its own
    (basemodel.py)."""
    out = _resolve(recipe, width_mult, base_lrs, wd, depth_mult, steps_mult)
    one = out if (float(width_mult), float(depth_mult), float(steps_mult)) == (1.0, 1.0, 1.0) \
        else _resolve(recipe, 1.0, base_lrs, wd)
    problem = basemodel.undeclared(recipe, one, lambda: _who(recipe))
    if problem:
        raise RecipeError(problem)
    return out


def base_model_problem(recipe: Recipe, who: str | None = None) -> str | None:
    """The base-model check on a short dummy schedule (basemodel.DUMMY_LRS), for loading and building a
    recipe: the error if the recipe differs at m = 1 without declaring it, else None. Lazy about the
    numbers: a recipe whose answers fail the checks at m = 1 passes here, and :func:`resolve` names the
    problem with the run's own width and schedule."""
    try:
        one = _resolve(recipe, 1.0, basemodel.DUMMY_LRS, basemodel.DUMMY_WD)
    except RecipeError:
        return None
    return basemodel.undeclared(recipe, one, (lambda: who) if who else (lambda: _who(recipe)))


def _resolve(recipe: Recipe, width_mult: float, base_lrs: Sequence[float], wd: float, depth_mult: float = 1.0,
             steps_mult: float = 1.0) -> Resolved:
    m, steps, m_l, m_t = float(width_mult), len(base_lrs), float(depth_mult), float(steps_mult)
    out_mult = _number(recipe, f"output_mult({m:g})", _call(recipe, f"output_mult({m:g})", recipe.output_mult, m),
                       positive=True)
    roles = {}
    for role in ROLES:
        what = f"multipliers({role!r}, {m:g})"
        mult = _call(recipe, what, recipe.multipliers, role, m)
        if not isinstance(mult, Multipliers):
            raise RecipeError(f"{_who(recipe)}: {what} must return Multipliers, got {type(mult).__name__}")
        for field in ("init_std", "lr", "wd"):
            _number(recipe, f"{what}.{field}", getattr(mult, field))
        lrf = _call(recipe, f"lr_factors({role!r})", recipe.lr_factors, role, m, list(base_lrs), wd)
        wdf = _call(recipe, f"wd_factors({role!r})", recipe.wd_factors, role, m, list(base_lrs), wd)
        what = f"depth_multipliers({role!r}, {m:g}, {m_l:g})"
        depth = _call(recipe, what, recipe.depth_multipliers, role, m, m_l)
        if not isinstance(depth, DepthMultipliers):
            raise RecipeError(f"{_who(recipe)}: {what} must return DepthMultipliers, got {type(depth).__name__}")
        for field in ("init_std", "lr", "wd"):
            _number(recipe, f"{what}.{field}", getattr(depth, field))
        _number(recipe, f"{what}.eps", depth.eps, positive=True)
        what = f"horizon_wd({role!r}, {m_t:g})"
        horizon = _number(recipe, what, _call(recipe, what, recipe.horizon_wd, role, m_t))
        roles[role] = RoleSettings(mult, _factors(recipe, f"lr_factors({role!r})", lrf, steps),
                                   _factors(recipe, f"wd_factors({role!r})", wdf, steps), depth, horizon)
    what = f"branch_mult({m_l:g})"
    branch = _number(recipe, what, _call(recipe, what, recipe.branch_mult, m_l), positive=True)
    return Resolved(out_mult, roles, _name(recipe, "lr_factor_name"), _name(recipe, "wd_factor_name"), branch)


def _name(recipe: Recipe, attr: str) -> str | None:
    value = getattr(recipe, attr, None)
    return None if value is None else str(value)
