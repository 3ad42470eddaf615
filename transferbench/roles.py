"""The four parameter roles (docs/design.md §2) and the spec a model gives for each parameter.

This is the bottom of the house: it imports nothing of ours and nothing heavy.

Base init convention shared by every recipe (docs/design.md §3): a matrix-like parameter (role ``input``,
``hidden`` or ``output``) is initialised with std ``sigma / sqrt(fan_in)`` times the recipe's
``init_std`` multiplier. For ``input`` the fan_in is fixed across widths (token embeddings use
fan_in = 1, i.e. a one-hot input), so its std is the width-independent constant ``sigma_in`` of the
design. ``vector`` parameters (norm gains, biases) keep the model's own constant init (ones / zeros).
"""

from __future__ import annotations

from dataclasses import dataclass

INPUT = "input"
HIDDEN = "hidden"
OUTPUT = "output"
VECTOR = "vector"

#: Every role, in the order tables and records list them.
ROLES: tuple[str, ...] = (INPUT, HIDDEN, OUTPUT, VECTOR)

#: Roles whose parameters are matrices (or conv kernels) and get a recipe-controlled init.
MATRIX_ROLES: tuple[str, ...] = (INPUT, HIDDEN, OUTPUT)


@dataclass(frozen=True)
class ParamSpec:
    """What a model says about one parameter: its role and, for matrix roles, its fan_in."""

    role: str
    fan_in: int | None = None

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r}; roles are {', '.join(ROLES)}")
        if self.role in MATRIX_ROLES and (self.fan_in is None or self.fan_in < 1):
            raise ValueError(f"a {self.role!r} parameter needs a positive fan_in, got {self.fan_in!r}")
