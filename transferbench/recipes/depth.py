"""The depth-aware built-ins: ``depth-mup`` (Yang et al. 2023, arXiv 2310.02244) and ``completep`` (Dey et al.
2025, arXiv 2505.01618), each μP with independent weight decay in width plus a depth rule in m_L = L/L0.

Both are the column "α" of CompleteP's Table 1 ([Dey25], the general depth parameterization for pre-LN
Transformers trained with AdamW), α = 1/2 for Depth-μP and α = 1 for CompleteP:

| role   | init std(*)             | lr                 | wd(*) | Adam ε              | forward          |
|--------|-------------------------|--------------------|-------|---------------------|------------------|
| input  | sigma_in                | eta                | λ     | ε                   |                  |
| hidden | sigma/sqrt(fan_in)      | eta/m · m_L^(α-1)  | λ·m   | ε/m · m_L^(-α)      |                  |
| output | sigma/sqrt(base fan_in) | eta                | λ     | ε                   | x1/m             |
| vector | 1 / 0                   | eta · m_L^(α-1)    | 0     | ε/m · m_L^(-α)      |                  |
| branch |                         |                    |       |                     | x m_L^(-α)       |

(*) as every built-in: output init 0 with ``readout_init: zero``; a matrix role's wd 0 unless ``decay_roles``
lists it. m = d/d0. "branch" is every residual branch, h + m_L^(-α)·F(norm(h)): the LLaMA's attention and MLP,
the ResNet's BasicBlocks. Hidden init has no depth factor (Table 1; [Yang23] Def. 6.2: W ~ N(0, 1/n)).

Sources, and where we had to choose:

- [Yang23] Table 1 and Eq. (1): branch multiplier a/sqrt(L) and, for Adam, the block weights' lr eta/sqrt(L);
  Sec. 10.2 counts L from a base depth ("replace L by L/8"), hence m_L. It says nothing of the norm gains'
  lr, of ε or of weight decay: ``depth-mup`` takes them from [Dey25] Table 1 at α = 1/2 (norm lr
  eta·m_L^(-1/2), ε/m·m_L^(-1/2), hidden wd λ·m with no depth factor), as the authors' reference code does
  with ``depth_alpha_exp=0.5`` (EleutherAI/nanoGPT-mup, branch completep, model.py configure_optimizers).
- [Dey25] Table 1, α = 1: branch m_L^-1, hidden lr eta/m (no depth factor), norm lr eta, ε/m·m_L^-1, hidden
  wd λ·m, so the per-step decay (eta/m)(λ·m) = eta·λ is the same at every width and depth.
- ε: Table 1 scales it for the residual blocks' parameters only (here the hidden and vector roles); the
  reference code scales one global ε. Weight decay is PyTorch's coupled form in both (decay lr·λ per step).
- Roles, not blocks, carry the rule: the vector role holds every gain, the final norm's (the ResNet's stem and
  shortcut BN) too, and the ResNet's hidden role its two 1x1 shortcut convs, so those few get the blocks' lr
  and ε factors; Table 1 leaves the final norm's lr at eta. At α = 1 only their ε differs.
"""

from __future__ import annotations

from typing import ClassVar

from transferbench.recipes.base import NO_DEPTH, DepthMultipliers
from transferbench.recipes.builtin import MuPIndependentWD
from transferbench.roles import HIDDEN, VECTOR

YANG23 = """@article{yang2023tensor,
  title   = {Tensor Programs {VI}: Feature Learning in Infinite-Depth Neural Networks},
  author  = {Yang, Greg and Yu, Dingli and Zhu, Chen and Hayou, Soufiane},
  journal = {arXiv preprint arXiv:2310.02244},
  year    = {2023}
}"""

DEY25 = """@inproceedings{dey2025completep,
  title     = {Don't be lazy: {CompleteP} enables compute-efficient deep transformers},
  author    = {Dey, Nolan and Zhang, Bin Claire and Noci, Lorenzo and Li, Mufan and Bordelon, Blake
               and Bergsma, Shane and Pehlevan, Cengiz and Hanin, Boris and Hestness, Joel},
  booktitle = {Advances in Neural Information Processing Systems (NeurIPS)},
  year      = {2025},
  note      = {arXiv:2505.01618}
}"""


class _DepthAlpha(MuPIndependentWD):
    """μP with independent weight decay in width, and [Dey25] Table 1's depth rule with exponent ``alpha``."""

    equivalent = ("EleutherAI/nanoGPT-mup branch completep (mup_enabled, depth_alpha_enabled) with depth_alpha_exp "
                  "= alpha; its epsilon rule covers every parameter, ours the blocks' only (Table 1)")

    def alpha(self) -> float:
        raise NotImplementedError

    def depth_multipliers(self, role: str, width_mult: float, depth_mult: float) -> DepthMultipliers:
        a = self.alpha()
        if role not in (HIDDEN, VECTOR):
            return NO_DEPTH
        # Table 1: lr x m_L^(alpha-1) for the blocks' weights and gains; eps x m^-1 m_L^-alpha.
        return DepthMultipliers(lr=depth_mult ** (a - 1.0), eps=1.0 / width_mult * depth_mult ** (-a))

    def branch_mult(self, depth_mult: float) -> float:
        return depth_mult ** (-self.alpha())  # Table 1: X + m_L^-alpha F(LN(X))


class DepthMuP(_DepthAlpha):
    """Depth-μP for Adam ([Yang23], arXiv 2310.02244, Table 1 and Eq. 1): branch x m_L^-1/2 and the blocks' lr
    x m_L^-1/2, over μP with independent weight decay; norm gains' lr, ε and wd as [Dey25] Table 1 at α = 1/2.

    | role   | init std(*)             | lr                | wd(*) | Adam ε            | forward     |
    |--------|-------------------------|-------------------|-------|-------------------|-------------|
    | input  | sigma_in                | eta               | λ     | ε                 |             |
    | hidden | sigma/sqrt(fan_in)      | eta/m · m_L^-1/2  | λ·m   | ε/m · m_L^-1/2    |             |
    | output | sigma/sqrt(base fan_in) | eta               | λ     | ε                 | x1/m        |
    | vector | 1 / 0                   | eta · m_L^-1/2    | 0     | ε/m · m_L^-1/2    |             |
    | branch |                         |                   |       |                   | x m_L^-1/2  |
    """

    name = "depth-mup"
    summary = "Depth-muP: residual branches x m_L^-1/2, block lr x m_L^-1/2, over muP with independent wd"
    citation = f"{YANG23}\n\n{DEY25}"
    depth_rule = "branch x m_L^-1/2; block lr x m_L^-1/2; block eps x m_L^-1/2/m"

    def alpha(self) -> float:
        return 0.5


class CompleteP(_DepthAlpha):
    """CompleteP ([Dey25], arXiv 2505.01618, Table 1, α = 1 by default; option ``alpha`` in [1/2, 1] gives the
    table's general column, ``alpha=0.5`` being ``depth-mup``): branch x m_L^-α, blocks' lr x m_L^(α-1), ε x
    m_L^-α/m, over μP with independent weight decay.

    | role   | init std(*)             | lr                | wd(*) | Adam ε            | forward     |
    |--------|-------------------------|-------------------|-------|-------------------|-------------|
    | input  | sigma_in                | eta               | λ     | ε                 |             |
    | hidden | sigma/sqrt(fan_in)      | eta/m             | λ·m   | ε/m · m_L^-1      |             |
    | output | sigma/sqrt(base fan_in) | eta               | λ     | ε                 | x1/m        |
    | vector | 1 / 0                   | eta               | 0     | ε/m · m_L^-1      |             |
    | branch |                         |                   |       |                   | x m_L^-1    |
    """

    name = "completep"
    summary = "CompleteP: residual branches x m_L^-1, block eps x m_L^-1/m, over muP with independent wd"
    citation = DEY25
    depth_rule = "branch x m_L^-alpha (alpha=1); block lr x m_L^(alpha-1); block eps x m_L^-alpha/m"
    options: ClassVar[dict[str, object]] = {"alpha": 1.0}

    def __init__(self, **options: object) -> None:
        super().__init__(**options)
        a = self.opts["alpha"]
        if isinstance(a, bool) or not isinstance(a, (int, float)) or not 0.5 <= float(a) <= 1.0:
            raise ValueError(f"recipe 'completep': option alpha={a!r}: must be a number in [0.5, 1] ([Dey25] Table 1)")
        self.opts["alpha"] = float(a)

    def alpha(self) -> float:
        return float(self.opts["alpha"])
