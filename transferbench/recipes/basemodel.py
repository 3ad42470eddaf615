"""One base model: at m = 1 every recipe trains what every built-in trains, or says how it differs.

A recipe is a rule for how settings change with the width multiplier m = d/d0, not a choice of base model
(docs/design.md §3). Were two recipes to train different models at m = 1, e.g. a zero readout against a
normal one, every comparison across widths would be confounded with that difference. So the base
model's choices are run settings shared by every recipe (``readout_init``, ``decay_roles``; settings.py,
applied in groups.py), every built-in is the identity at m = 1, and a recipe that is not must say how its
base model differs in ``Recipe.base_model`` (one line, in the record, runs.csv and on the leaderboard). One
that differs without saying so is refused, naming it, its distribution and what differs.

The identity at m = 1: matrix roles' init, lr and wd multipliers 1; vectors lr 1 and wd 0; readout forward
multiplier 1; every per-step lr and wd factor 1. The check runs on the recipe's checked answers
(checked.py), once on a short dummy schedule when a recipe is loaded or built (registry.py) and once on
the run's own schedule when it is resolved for a run. Pure Python (no torch).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from transferbench.roles import MATRIX_ROLES, ROLES, VECTOR

if TYPE_CHECKING:
    from transferbench.recipes.base import Recipe
    from transferbench.recipes.checked import Resolved

#: The short schedule of the check at load time (warmup, then decay) and its base weight decay: any
#: schedule will do for a recipe whose factors are 1 at m = 1, as every built-in's are.
DUMMY_LRS: tuple[float, ...] = tuple(1e-2 * s for s in (0.25, 0.5, 0.75, 1.0, 0.8, 0.6, 0.4, 0.2))
DUMMY_WD = 0.1
_FIELDS = (("init_std", "init"), ("lr", "lr"), ("wd", "wd"))


def _is(x: float, want: float) -> bool:
    return abs(x - want) <= 1e-9 * max(1.0, abs(want))


def differences(one: Resolved) -> list[str]:
    """How a recipe resolved at m = 1 differs from the shared base model, e.g. ``["output init ×0"]``;
    empty when it trains the shared base model."""
    out = []
    for role in MATRIX_ROLES:
        mult = one.roles[role].multipliers
        out += [f"{role} {what} ×{getattr(mult, f):g}" for f, what in _FIELDS if not _is(getattr(mult, f), 1.0)]
    vec = one.roles[VECTOR].multipliers
    if not _is(vec.lr, 1.0):
        out.append(f"vector lr ×{vec.lr:g}")
    if not _is(vec.wd, 0.0):
        out.append(f"vector wd ×{vec.wd:g} (the base model never decays vectors)")
    if not _is(one.output_mult, 1.0):
        out.append(f"readout forward ×{one.output_mult:g}")
    if not _is(one.branch_mult, 1.0):
        out.append(f"residual branch ×{one.branch_mult:g}")
    for role in ROLES:  # a depth or horizon rule is the identity at the base depth and horizon
        d, h = one.roles[role].depth, one.roles[role].horizon_wd
        out += [f"{role} depth {f} ×{getattr(d, f):g}" for f in ("init_std", "lr", "wd", "eps")
                if not _is(getattr(d, f), 1.0)]
        if not _is(h, 1.0):
            out.append(f"{role} horizon wd ×{h:g}")
    for role in ROLES:
        rs = one.roles[role]
        for kind, factors in (("lr", rs.lr_factors), ("wd", rs.wd_factors)):
            off = [(t, f) for t, f in enumerate(factors or []) if not _is(f, 1.0)]
            if off:
                out.append(f"{role} {kind} factor {off[0][1]:g} at step {off[0][0]}")
    return out


def base_model_of(recipe: Recipe | type[Recipe]) -> str:
    """The recipe's declared base model (``Recipe.base_model``): "" when it trains the shared one, as every
    built-in does (registry.base_model_of also takes a registered name)."""
    return str(getattr(recipe, "base_model", "") or "").strip()


def undeclared(recipe: Any, one: Resolved, who: Callable[[], str]) -> str | None:
    """The error for a recipe that differs from the base model at m = 1 without declaring it, else None."""
    if base_model_of(recipe):
        return None
    diffs = differences(one)
    if not diffs:
        return None
    return (f"{who()}: at m = 1 it trains another model than every built-in ({', '.join(diffs)} at m = 1) and does "
            "not declare it. A recipe is a width rule: make it the identity at m = 1 (a zero readout or undecayed "
            "input/output are the run settings readout_init and decay_roles, for every recipe), or set its class "
            "attribute base_model to one line saying how its base model differs (docs/extending.md)")
