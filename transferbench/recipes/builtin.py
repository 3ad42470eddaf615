"""The five built-in recipes of DESIGN §3, in the PyTorch AdamW convention (per-step decay lr*wd*W).

Notation: eta, lambda = base lr, base wd (as tuned at the base width d0); m = d/d0. Matrix init std is
``sigma/sqrt(fan_in)`` times ``init_std`` below (roles.py); ``input`` has a width-independent fan_in,
so its std is a constant. Per-step decay of hidden matrices: standard eta*lambda; mup eta*lambda/m;
mup-independent-wd eta*lambda; warmup-replacement eta*lambda*f_t; sqrt-d eta*lambda/sqrt(m).
Every run records the resolved values, so nobody has to trust this docstring.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

from transferbench.recipes.base import Multipliers, Recipe
from transferbench.recipes.warmup import f_decay_product, f_exponential
from transferbench.roles import HIDDEN, INPUT, OUTPUT, VECTOR

YANG22 = """@article{yang2022tensor,
  title   = {Tensor Programs {V}: Tuning Large Neural Networks via Zero-Shot Hyperparameter Transfer},
  author  = {Yang, Greg and Hu, Edward J. and Babuschkin, Igor and Sidor, Szymon and Liu, Xiaodong
             and Farhi, David and Ryder, Nick and Pachocki, Jakub and Chen, Weizhu and Gao, Jianfeng},
  journal = {arXiv preprint arXiv:2203.03466},
  year    = {2022}
}"""

KOS25 = """@inproceedings{kosson2026weight,
  title     = {Weight Decay may matter more than {muP} for Learning Rate Transfer in Practice},
  author    = {Kosson, Atli and Welborn, Jeremy and Liu, Yang and Jaggi, Martin and Chen, Xi},
  booktitle = {International Conference on Learning Representations (ICLR)},
  year      = {2026},
  note      = {arXiv:2510.19093}
}"""

FAN25 = """@article{fan2025robust,
  title   = {Robust Layerwise Scaling Rules by Proper Weight Decay Tuning},
  author  = {Fan, Zhiyuan and Liu, Yifeng and Zhao, Qingyue and Yuan, Angela and Gu, Quanquan},
  journal = {arXiv preprint arXiv:2510.15262},
  year    = {2025}
}"""

_ONE = Multipliers(init_std=1.0, lr=1.0, wd=1.0)
_VECTOR = Multipliers(init_std=1.0, lr=1.0, wd=0.0)  # vector-like: lr Theta(1), no weight decay

#: ``readout_init`` option of the recipes with a 1/m readout: DESIGN §3 fixes zero init (the default);
#: ``fan_in`` keeps the base std 1/sqrt(fan_in), as microsoft/mup's MuReadout does by default
#: (readout_zero_init=False). Under Adam a zero readout costs loss in short runs (README, "Reference
#: results"), so the option lets a user separate that cost from the width scaling.
READOUT_INITS = {"zero": 0.0, "fan_in": 1.0}


class _ZeroReadout(Recipe):
    """Shared by the recipes whose readout has the 1/m multiplier: the ``readout_init`` option."""

    options: ClassVar[dict[str, object]] = {"readout_init": "zero"}

    def __init__(self, **options: object) -> None:
        super().__init__(**options)
        if self.opts["readout_init"] not in READOUT_INITS:
            raise ValueError(
                f"recipe {self.name!r}: option readout_init={self.opts['readout_init']!r}; "
                f"known: {', '.join(READOUT_INITS)}"
            )

    def readout_init_std(self) -> float:
        return READOUT_INITS[str(self.opts["readout_init"])]

    def output_mult(self, width_mult: float) -> float:
        return 1.0 / width_mult


class Standard(Recipe):
    """Standard parameterization: nothing depends on width ("no scaling" in [Kos25]).

    | role   | init std          | lr  | wd | forward |
    |--------|-------------------|-----|----|---------|
    | input  | sigma_in          | eta | λ  |         |
    | hidden | sigma/sqrt(fan_in)| eta | λ  |         |
    | output | 1/sqrt(fan_in)    | eta | λ  | x1      |
    | vector | 1 / 0             | eta | 0  |         |
    """

    name = "standard"
    summary = "SP baseline: no width scaling of init, lr or wd"
    citation = KOS25

    def multipliers(self, role: str, width_mult: float) -> Multipliers:
        return _VECTOR if role == VECTOR else _ONE


class MuP(_ZeroReadout):
    """μP for Adam (Yang et al. 2022, arXiv 2203.03466, Table 3 / MuAdam) with standard coupled WD.

    | role   | init std          | lr    | wd | forward |
    |--------|-------------------|-------|----|---------|
    | input  | sigma_in          | eta   | λ  |         |
    | hidden | sigma/sqrt(fan_in)| eta/m | λ  |         |
    | output | 0 (zero init)     | eta   | λ  | x1/m    |
    | vector | 1 / 0             | eta   | 0  |         |

    The readout's 1/m forward multiplier (microsoft/mup MuReadout) makes its Adam update O(1/d) with
    an unscaled lr. Zero readout init is DESIGN §3's choice (allowed by μP, used in [Kos25]-style
    setups); option ``readout_init: fan_in`` gives std 1/sqrt(fan_in) instead (mup's default).
    """

    name = "mup"
    summary = "muP for Adam (hidden lr 1/m, readout x1/m) with coupled weight decay"
    citation = YANG22

    def hidden_wd(self, width_mult: float) -> float:
        return 1.0

    def multipliers(self, role: str, width_mult: float) -> Multipliers:
        if role == HIDDEN:
            return Multipliers(init_std=1.0, lr=1.0 / width_mult, wd=self.hidden_wd(width_mult))
        if role == OUTPUT:
            return Multipliers(init_std=self.readout_init_std(), lr=1.0, wd=1.0)
        if role == INPUT:
            return _ONE
        return _VECTOR


class MuPIndependentWD(MuP):
    """μP with independent weight decay ([Kos25], arXiv 2510.19093): hidden wd x m, so the per-step
    decay (eta/m)(λ m) = eta*λ stays constant across widths.

    | role   | init std          | lr    | wd  | forward |
    |--------|-------------------|-------|-----|---------|
    | input  | sigma_in          | eta   | λ   |         |
    | hidden | sigma/sqrt(fan_in)| eta/m | λ·m |         |
    | output | 0 (zero init)     | eta   | λ   | x1/m    |
    | vector | 1 / 0             | eta   | 0   |         |
    """

    name = "mup-independent-wd"
    summary = "muP with independent weight decay: hidden lr/m, hidden wd x m (lr*wd constant)"
    citation = KOS25

    def hidden_wd(self, width_mult: float) -> float:
        return width_mult


class WarmupReplacement(MuP):
    """μP's hidden lr scaling replaced by a warmup factor f_t ([Kos25] Sec. 6, our reading).

    | role   | init std          | lr        | wd | forward |
    |--------|-------------------|-----------|----|---------|
    | input  | sigma_in          | eta       | λ  |         |
    | hidden | sigma/sqrt(fan_in)| eta · f_t | λ  |         |
    | output | 0 (zero init)     | eta       | λ  | x1/m    |
    | vector | 1 / 0             | eta       | 0  |         |

    ``shape: decay-product`` (default): f_t = (1 + (m^2-1) D_t^2)^(-1/2), D_t = prod_{tau<t}(1 - eta_tau λ)
    with eta_tau the base scheduled lr — our closed form from [Kos25] Eq. 11. ``shape: exponential``:
    f_t = m^(-max(0, 1 - t/T)), T = ``frac`` x steps. f_0 = 1/m, f_t -> 1; per-step decay eta·λ·f_t.
    """

    name = "warmup-replacement"
    summary = "muP-style readout, hidden lr eta*f_t: a warmup from 1/m to 1 instead of 1/m scaling"
    citation = KOS25
    options: ClassVar[dict[str, object]] = {"shape": "decay-product", "frac": 0.25, "readout_init": "zero"}
    lr_factor_name = "f_t"

    def __init__(self, **options: object) -> None:
        super().__init__(**options)
        if self.opts["shape"] not in ("decay-product", "exponential"):
            raise ValueError(
                f"recipe 'warmup-replacement': option shape={self.opts['shape']!r}; "
                "known: decay-product, exponential"
            )
        self.opts["frac"] = float(self.opts["frac"])  # type: ignore[arg-type]
        if not 0.0 < self.opts["frac"] <= 1.0:
            raise ValueError(f"recipe 'warmup-replacement': option frac={self.opts['frac']!r} not in (0, 1]")

    def multipliers(self, role: str, width_mult: float) -> Multipliers:
        if role == HIDDEN:
            return _ONE
        return super().multipliers(role, width_mult)

    def lr_factors(
        self, role: str, width_mult: float, base_lrs: Sequence[float], wd: float
    ) -> list[float] | None:
        if role != HIDDEN:
            return None
        if self.opts["shape"] == "exponential":
            return f_exponential(width_mult, len(base_lrs), self.opts["frac"])
        return f_decay_product(width_mult, base_lrs, wd)


class SqrtD(_ZeroReadout):
    """The sqrt(d) weight-decay rule of [Fan25] (arXiv 2510.15262): μP lr for matrices, wd ∝ sqrt(d)
    for hidden matrices, no weight decay on vector-like parameters.

    | role   | init std          | lr    | wd        | forward |
    |--------|-------------------|-------|-----------|---------|
    | input  | sigma_in          | eta   | 0         |         |
    | hidden | sigma/sqrt(fan_in)| eta/m | λ·sqrt(m) |         |
    | output | 0 (zero init)     | eta   | 0         | x1/m    |
    | vector | 1 / 0             | eta   | 0         |         |

    [Fan25] treat embedding and readout as vector-like (lr Theta(1), wd 0); the readout's 1/m
    multiplier and zero init are our choice, shared with the μP family (option ``readout_init``).
    """

    name = "sqrt-d"
    summary = "muP lr with hidden wd x sqrt(m) and no wd on input/output/vectors"
    citation = FAN25

    def multipliers(self, role: str, width_mult: float) -> Multipliers:
        if role == HIDDEN:
            return Multipliers(init_std=1.0, lr=1.0 / width_mult, wd=math.sqrt(width_mult))
        if role == OUTPUT:
            return Multipliers(init_std=self.readout_init_std(), lr=1.0, wd=0.0)
        return _VECTOR


BUILTINS: tuple[type[Recipe], ...] = (Standard, MuP, MuPIndependentWD, WarmupReplacement, SqrtD)
