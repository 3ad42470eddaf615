"""An example third-party recipe package for transferbench (see the README, "Add your recipe")."""

from transferbench.recipes import Multipliers, Recipe


class MuPHalfWD(Recipe):
    """μP with the hidden weight decay halved at every width (a toy to show the plugin mechanism).

    | role   | init std         | lr    | wd  | forward |
    |--------|------------------|-------|-----|---------|
    | input  | sigma_in         | eta   | λ   |         |
    | hidden | sigma/sqrt(fan_in)| eta/m | λ/2 |         |
    | output | 0 (zero init)    | eta   | λ   | x1/m    |
    | vector | 1 / 0            | eta   | 0   |         |
    """

    name = "mup-half-wd"
    summary = "muP with half the hidden weight decay (example plugin)"
    citation = """@misc{example2026half,
  title = {Half the decay: an example transferbench plugin},
  note  = {arXiv:2203.03466 (the muP paper, cited here as a stand-in)}
}"""

    def multipliers(self, role: str, width_mult: float) -> Multipliers:
        if role == "hidden":
            return Multipliers(init_std=1.0, lr=1.0 / width_mult, wd=0.5)
        if role == "output":
            return Multipliers(init_std=0.0, lr=1.0, wd=1.0)
        return Multipliers(init_std=1.0, lr=1.0, wd=0.0 if role == "vector" else 1.0)

    def output_mult(self, width_mult: float) -> float:
        return 1.0 / width_mult
