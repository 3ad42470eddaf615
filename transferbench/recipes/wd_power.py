"""``wd-power``: μP's hidden lr with the hidden weight decay's width exponent as a parameter, wd = λ·m^p.

[Fan25] (arXiv 2510.15262) and [Kos25] (arXiv 2510.19093) agree that under μP for AdamW the hidden lr
scales as 1/m and disagree on the hidden weight decay: p = 0 is ``mup`` (coupled, [Yang22]), p = 1/2 is
[Fan25]'s sqrt(d) rule, p = 1 is [Kos25]'s independent weight decay. Only the width rule is a parameter:
[Fan25]'s other change, no weight decay on input and output, is a choice of base model, the run setting
``decay_roles: hidden`` shared by every recipe (settings.py). tests/test_wd_power.py checks that p = 0, 1/2
and 1 train exactly ``mup``, ``sqrt-d`` and ``mup-independent-wd``, group by group and tensor by tensor.

| role   | init std(*)             | lr    | wd(*) | forward |
|--------|-------------------------|-------|-------|---------|
| input  | sigma_in                | eta   | λ     |         |
| hidden | sigma/sqrt(fan_in)      | eta/m | λ·m^p |         |
| output | sigma/sqrt(base fan_in) | eta   | λ     | x1/m    |
| vector | 1 / 0                   | eta   | 0     |         |

(*) output init std: 0 with ``readout_init: zero``; wd of a matrix role: 0 unless ``decay_roles`` lists it.

Per-step hidden decay (eta/m)·λ·m^p = eta·λ·m^(p-1). [Fan25]'s steady-state law, top singular value
∝ sqrt(eta_hidden / λ_hidden)·d^0.75, then predicts the slope 0.25 - p/2 of log2 top SV against log2 width.
Use it as a recipe instance, ``wd-power[p=0.25]`` (docs/extending.md), so every p is its own row.
"""

from __future__ import annotations

from typing import ClassVar

from transferbench.recipes.base import Multipliers
from transferbench.recipes.builtin import _ONE, _VECTOR, FAN25, KOS25, _MuReadout
from transferbench.roles import HIDDEN, INPUT, OUTPUT

CITATION = f"{FAN25}\n\n{KOS25}"


class WdPower(_MuReadout):
    """μP lr and readout, hidden wd λ·m^p (option ``p``)."""

    name = "wd-power"
    summary = "muP lr with hidden wd x m^p: p=0 mup, p=1/2 sqrt-d, p=1 mup-independent-wd"
    citation = CITATION
    options: ClassVar[dict[str, object]] = {"p": 0.5}

    def __init__(self, **options: object) -> None:
        super().__init__(**options)
        p = self.opts["p"]
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not -4.0 <= float(p) <= 4.0:
            raise ValueError(f"recipe 'wd-power': option p={p!r}: must be a number in [-4, 4]")
        self.opts["p"] = float(p)

    def multipliers(self, role: str, width_mult: float) -> Multipliers:
        if role == HIDDEN:
            return Multipliers(init_std=1.0, lr=1.0 / width_mult, wd=width_mult ** self.opts["p"])
        if role == OUTPUT:
            return Multipliers(init_std=self.readout_init_std(width_mult), lr=1.0, wd=1.0)
        if role == INPUT:
            return _ONE
        return _VECTOR
