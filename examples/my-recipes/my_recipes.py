"""An example third-party recipe package for transferbench (see the README, "Add your recipe")."""

import math

from transferbench.recipes import Multipliers, Recipe


class MuPHalfWD(Recipe):
    """μP whose hidden weight decay halves at every doubling of width (a toy to show the plugin mechanism).

    | role   | init std                | lr    | wd  | forward |
    |--------|-------------------------|-------|-----|---------|
    | input  | sigma_in                | eta   | λ   |         |
    | hidden | sigma/sqrt(fan_in)      | eta/m | λ/m |         |
    | output | sigma/sqrt(base fan_in) | eta   | λ   | x1/m    |
    | vector | 1 / 0                   | eta   | 0   |         |

    A recipe is a width rule: at m = 1 every multiplier is 1, so it trains the base model every built-in
    trains (a zero readout or undecayed input/output are the run settings readout_init and decay_roles).
    A recipe that needs another base model says how in one line, ``base_model = "..."``.
    """

    name = "mup-half-wd"
    summary = "muP with the hidden weight decay halved at every doubling of width (example plugin)"
    citation = """@misc{example2026half,
  title = {Half the decay: an example transferbench plugin},
  note  = {arXiv:2203.03466 (the muP paper, cited here as a stand-in)}
}"""

    def multipliers(self, role: str, width_mult: float) -> Multipliers:
        if role == "hidden":
            return Multipliers(init_std=1.0, lr=1.0 / width_mult, wd=1.0 / width_mult)
        if role == "output":  # std constant in width, as mup's MuReadout
            return Multipliers(init_std=math.sqrt(width_mult), lr=1.0, wd=1.0)
        return Multipliers(init_std=1.0, lr=1.0, wd=0.0 if role == "vector" else 1.0)

    def output_mult(self, width_mult: float) -> float:
        return 1.0 / width_mult
