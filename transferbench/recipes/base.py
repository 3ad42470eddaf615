"""The recipe contract: (role, width_mult, step) -> multipliers on the base hyperparameters, and the optional
depth rule (role, depth_mult m_L = L/L0) and horizon rule (steps_mult = T/T0) beside it.

A recipe never sees a model and a model never sees a recipe (docs/design.md §3); ``train.py`` is the only
place where the two meet. Recipes are pure Python (no torch), so listing them stays cheap.

To write a recipe: subclass :class:`Recipe`, set ``name``, ``summary`` and ``citation`` and override
:meth:`multipliers` (and, if needed, :meth:`output_mult`, :meth:`lr_factors` or :meth:`wd_factors`). A depth
rule overrides :meth:`depth_multipliers` and :meth:`branch_mult` and sets ``depth_rule`` (one line for the
tables); a recipe without one trains every depth as it trains the base depth.
Register the class under the entry-point group ``transferbench.recipes`` (see README, "Add your recipe").

A recipe says how settings change with the width multiplier m, not what the base model is: at m = 1 it
must return the identity (every matrix multiplier 1, vectors lr 1 and wd 0, readout multiplier 1, per-step
factors 1), so that every recipe trains the same model at the base width. The base model's own choices
(zero readout, no decay on input/output) are run settings shared by every recipe (``readout_init``,
``decay_roles``). A recipe that needs another base model says how in ``base_model``; one that differs
without saying so is refused (recipes/basemodel.py).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from transferbench.roles import ROLES


class RecipeError(LookupError):
    """An unknown, broken or duplicate recipe; the message names it and its distribution."""

#: Recipe options of transferbench 0.2 that became run settings shared by every recipe (one base model,
#: docs/design.md §3): the hint an old profile or command line gets.
MOVED = {
    "readout_init": "the readout init is the run setting readout_init (--readout-init normal|zero), shared by "
                    "every recipe; the μP readout's width rule is fixed (std constant in width, as MuReadout)",
    "vector_wd": "weight decay on input and output is the run setting decay_roles (--decay-roles hidden for "
                 "[Fan25]'s none), shared by every recipe",
}


@dataclass(frozen=True)
class Multipliers:
    """Multipliers for one role at one width: init std (x sigma/sqrt(fan_in)), peak lr (x base lr)
    and AdamW weight decay coefficient (x base wd)."""

    init_std: float
    lr: float
    wd: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class DepthMultipliers:
    """A depth rule's factors for one role, on top of the width rule's :class:`Multipliers`: init std, peak lr,
    AdamW weight-decay coefficient and Adam epsilon (x the base ``adam_eps``; the width rule has no epsilon, so
    this factor may depend on the width multiplier too, as CompleteP's does). All 1: no depth rule."""

    init_std: float = 1.0
    lr: float = 1.0
    wd: float = 1.0
    eps: float = 1.0

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


#: No depth rule: every factor 1.
NO_DEPTH = DepthMultipliers()
#: The ``horizon`` option's values: the base wd at every horizon, or wd x T0/T so that AdamW's timescale
#: 1/(eta*lambda) stays a fixed fraction of the T steps (Wang & Aitchison 2024, arXiv 2405.13698).
HORIZONS = ("fixed-wd", "fixed-tau")


class Recipe:
    """Base class of every scaling recipe (built-in or plugin).

    Subclasses set the class attributes and override :meth:`multipliers`. Options given on the
    command line (``--recipe-option key=value``) or in the config (``recipe_options``) arrive as
    keyword arguments; declare accepted ones with their defaults in ``options``.
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    #: BibTeX entry (or a bare arXiv id) of the source.
    citation: ClassVar[str] = ""
    #: Accepted options and their defaults.
    options: ClassVar[dict[str, Any]] = {}
    #: What this recipe equals in another library, if anything (printed by ``show-recipe``).
    equivalent: ClassVar[str] = ""
    #: One line saying how this recipe's model at m = 1 differs from every built-in's (e.g. "readout zero
    #: init, every lr x0.5"); empty when it trains the shared base model, which every built-in does. Shown on
    #: the leaderboard and in runs.csv (``base_model``).
    base_model: ClassVar[str] = ""
    #: One line saying how the recipe scales with depth (the README's and ``recipes``' depth column), e.g.
    #: "branch x m_L^-1/2, hidden and vector lr x m_L^-1/2"; empty: no depth rule (:meth:`depth_multipliers`
    #: and :meth:`branch_mult` stay the identity at every depth).
    depth_rule: ClassVar[str] = ""
    #: Whether the recipe takes the ``horizon`` option (:data:`HORIZONS`, :meth:`horizon_wd`); every built-in
    #: with weight decay does. The option is stored (and hashed) only when it is not ``fixed-wd``, so a run
    #: of before keeps its config hash.
    horizon_option: ClassVar[bool] = False

    def __init__(self, **options: Any) -> None:
        horizon = options.pop("horizon", HORIZONS[0]) if self.horizon_option else HORIZONS[0]
        if horizon not in HORIZONS:
            raise ValueError(f"recipe {self.name!r}: option horizon={horizon!r}: must be one of {', '.join(HORIZONS)}")
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            known = ", ".join(sorted(self.options)) or "none"
            moved = f"; {MOVED[unknown[0]]}" if unknown[0] in MOVED else ""
            raise ValueError(f"recipe {self.name!r}: unknown option {unknown[0]!r} (known: {known}){moved}")
        self.opts: dict[str, Any] = {**self.options, **options}
        self.horizon: str = horizon
        if horizon != HORIZONS[0]:
            self.opts["horizon"] = horizon

    # -- the contract -------------------------------------------------------------------------
    def multipliers(self, role: str, width_mult: float) -> Multipliers:
        """Init-std, lr and wd multipliers of ``role`` at width multiplier ``width_mult`` = d/d0."""
        raise NotImplementedError

    def output_mult(self, width_mult: float) -> float:
        """Forward multiplier on the readout (logits = output_mult * W_out h)."""
        return 1.0

    def lr_factors(
        self, role: str, width_mult: float, base_lrs: Sequence[float], wd: float
    ) -> list[float] | None:
        """Optional per-step factor on the role's lr (on top of the shared schedule).

        ``base_lrs[t]`` is the base scheduled lr at step t (base lr x schedule, warmup and decay
        included) and ``wd`` the base weight decay. Return one finite factor >= 0 per step, or None.
        """
        return None

    def wd_factors(
        self, role: str, width_mult: float, base_lrs: Sequence[float], wd: float
    ) -> list[float] | None:
        """Optional per-step factor on the role's AdamW weight-decay coefficient (same arguments).

        PyTorch's AdamW decays by ``lr * weight_decay`` per step, so a recipe that scales the update
        by an lr factor f_t but wants the decay *not* to carry it returns ``1 / f_t`` here
        (``warmup-replacement``). Return one finite factor >= 0 per step, or None.
        """
        return None

    def depth_multipliers(self, role: str, width_mult: float, depth_mult: float) -> DepthMultipliers:
        """The depth rule's factors for ``role`` at depth multiplier ``depth_mult`` = L/L0 (and width
        multiplier ``width_mult``, for a depth rule's epsilon, which may scale with width too); the identity at
        width_mult = depth_mult = 1 (the base model)."""
        return NO_DEPTH

    def branch_mult(self, depth_mult: float) -> float:
        """Forward multiplier on every residual branch (h + branch_mult * F(norm(h))); 1 at depth_mult = 1."""
        return 1.0

    def horizon_wd(self, role: str, steps_mult: float) -> float:
        """Factor on the role's weight-decay coefficient at horizon multiplier ``steps_mult`` = T/T0: 1 under
        ``horizon: fixed-wd``; T0/T under ``fixed-tau``, so that at a fixed lr the AdamW timescale
        1/(eta*lambda) in steps grows as T: tau_iter / T fixed, Wang & Aitchison 2024 (arXiv 2405.13698)."""
        return 1.0 / steps_mult if self.horizon == "fixed-tau" else 1.0

    #: Names of the per-step factors for the record (e.g. "f_t", "1/f_t"), or None.
    lr_factor_name: ClassVar[str | None] = None
    wd_factor_name: ClassVar[str | None] = None

    # -- helpers ------------------------------------------------------------------------------
    @classmethod
    def arxiv_id(cls) -> str | None:
        """The arXiv id in the citation (first match), or None."""
        return arxiv_id(cls.citation)

    def resolve(self, width_mult: float) -> dict[str, dict[str, float]]:
        """Every role's multipliers at ``width_mult``: {role: {init_std, lr, wd}}."""
        return {role: self.multipliers(role, width_mult).as_dict() for role in ROLES}


_ARXIV = re.compile(r"(?:arxiv[:/\s.={]*(?:abs/)?)?(\d{4}\.\d{4,5})(?:v\d+)?", re.IGNORECASE)


def arxiv_id(citation: str) -> str | None:
    """First modern arXiv id (YYMM.NNNNN) in a citation string, or None."""
    match = _ARXIV.search(citation or "")
    return match.group(1) if match else None
