"""The five built-in recipes of docs/design.md §3, in the PyTorch AdamW convention (per-step decay lr*wd*W).

A recipe is a width rule, not a base model: at m = 1 every built-in trains the same model (every
multiplier 1, vectors undecayed, readout multiplier 1, per-step factors 1; recipes/basemodel.py checks it).
What the base model is, the readout's init (``readout_init``) and which matrix roles are decayed at all
(``decay_roles``), are run settings shared by every recipe (settings.py, applied in groups.py); the
tables below show the defaults (normal readout, decay on every matrix), and the columns they change are
marked.

Notation: eta, lambda = base lr, base wd (as tuned at the base width d0); m = d/d0. Matrix init std is
``sigma/sqrt(fan_in)`` times ``init_std`` below (roles.py); ``input`` has a width-independent fan_in,
so its std is a constant. Per-step decay of hidden matrices: standard eta*lambda; mup eta*lambda/m;
mup-independent-wd eta*lambda; warmup-replacement eta*lambda (eta*lambda*f_t with ``decay: coupled``);
sqrt-d eta*lambda/sqrt(m). Every run records the values the optimizer applied (``applied`` in the
record), so nobody has to trust this docstring.

How the μP rows map onto microsoft/mup (``MuAdamW`` after ``set_base_shapes``, vectors put in a
group with weight_decay=0, readout as ``MuReadout``; checked against the PyPI package by
tests/test_mup_mapping.py):

- ``mup-independent-wd`` equals ``MuAdamW`` as mup 1.0.0 ships it on PyPI: it divides the lr of
  matrix-like parameters by width_mult and multiplies their weight decay by width_mult.
- ``mup`` (coupled weight decay: hidden wd not scaled) equals ``MuAdamW(decoupled_wd=True)``, which
  exists only in mup's unreleased source; mup 1.0.0 passes that argument on to torch's AdamW, which
  raises. A user of the PyPI package who calls ``MuAdamW`` is running ``mup-independent-wd``.
- Readout: ``MuReadout`` multiplies the forward by 1/width_mult and rescales PyTorch's default init by
  sqrt(width_mult), so the readout std stays constant in width: our μP width rule (init multiplier sqrt(m)
  on sigma/sqrt(fan_in), equal to standard's at m = 1). ``readout_zero_init=True`` is the run setting
  ``readout_init: zero``, for every recipe.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

from transferbench.recipes.base import Multipliers, Recipe
from transferbench.recipes.warmup import f_coupled_decay, f_decay_product, f_exponential
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


class _MuReadout(Recipe):
    """The μP family's readout width rule, as microsoft/mup's ``MuReadout`` ([Yang22] Table 3): forward
    multiplier 1/m and init std sigma/sqrt(fan_in / m) = sigma/sqrt(base fan_in), constant in width (the
    init multiplier sqrt(m)). Both are 1 at m = 1: the base model is standard's. ``MuReadout`` rescales
    PyTorch's default init, std 1/sqrt(3 fan_in); we keep our sigma/sqrt(fan_in) at the base width, so the
    constant differs by sqrt(3) and the width scaling is the same."""

    horizon_option = True  # the weight-decay recipes take horizon: fixed-wd | fixed-tau (base.py)

    def readout_init_std(self, width_mult: float) -> float:
        return math.sqrt(width_mult)

    def output_mult(self, width_mult: float) -> float:
        return 1.0 / width_mult


class Standard(Recipe):
    """Standard parameterization: nothing depends on width ("no scaling" in [Kos25]).

    | role   | init std(*)        | lr  | wd(*) | forward |
    |--------|--------------------|-----|-------|---------|
    | input  | sigma_in           | eta | λ     |         |
    | hidden | sigma/sqrt(fan_in) | eta | λ     |         |
    | output | sigma/sqrt(fan_in) | eta | λ     | x1      |
    | vector | 1 / 0              | eta | 0     |         |

    (*) output init std: 0 with ``readout_init: zero``; wd of a matrix role: 0 unless ``decay_roles`` lists
    it. The readout std shrinks as 1/sqrt(d) (SP); at m = 1 it is the μP family's.
    """

    name = "standard"
    horizon_option = True
    summary = "SP baseline: no width scaling of init, lr or wd"
    citation = KOS25

    def multipliers(self, role: str, width_mult: float) -> Multipliers:
        return _VECTOR if role == VECTOR else _ONE


class MuP(_MuReadout):
    """μP for Adam (Yang et al. 2022, arXiv 2203.03466, Table 3) with coupled weight decay: the hidden
    weight-decay coefficient is not scaled, so the per-step decay (eta/m)·λ shrinks with width.

    | role   | init std(*)             | lr    | wd(*) | forward |
    |--------|-------------------------|-------|-------|---------|
    | input  | sigma_in                | eta   | λ     |         |
    | hidden | sigma/sqrt(fan_in)      | eta/m | λ     |         |
    | output | sigma/sqrt(base fan_in) | eta   | λ     | x1/m    |
    | vector | 1 / 0                   | eta   | 0     |         |

    (*) output init std: 0 with ``readout_init: zero``; wd of a matrix role: 0 unless ``decay_roles`` lists
    it. The readout's 1/m forward multiplier and its std constant in width are microsoft/mup's
    ``MuReadout``: its Adam update is O(1/d) with an unscaled lr.

    In microsoft/mup terms this is ``MuAdamW(decoupled_wd=True)``, which only mup's unreleased
    source has; the PyPI release 1.0.0's ``MuAdamW`` scales the hidden wd by m, i.e. it is
    ``mup-independent-wd`` (see the module docstring).
    """

    name = "mup"
    equivalent = ("microsoft/mup MuAdamW(decoupled_wd=True): unreleased source only; the PyPI release "
                  "mup 1.0.0's MuAdamW is mup-independent-wd")
    summary = "muP for Adam (hidden lr 1/m, readout x1/m) with coupled weight decay"
    citation = YANG22

    def hidden_wd(self, width_mult: float) -> float:
        return 1.0

    def multipliers(self, role: str, width_mult: float) -> Multipliers:
        if role == HIDDEN:
            return Multipliers(init_std=1.0, lr=1.0 / width_mult, wd=self.hidden_wd(width_mult))
        if role == OUTPUT:
            return Multipliers(init_std=self.readout_init_std(width_mult), lr=1.0, wd=1.0)
        if role == INPUT:
            return _ONE
        return _VECTOR


class MuPIndependentWD(MuP):
    """μP with independent weight decay ([Kos25], arXiv 2510.19093): hidden wd x m, so the per-step
    decay (eta/m)(λ m) = eta*λ stays constant across widths.

    | role   | init std(*)             | lr    | wd(*) | forward |
    |--------|-------------------------|-------|-------|---------|
    | input  | sigma_in                | eta   | λ     |         |
    | hidden | sigma/sqrt(fan_in)      | eta/m | λ·m   |         |
    | output | sigma/sqrt(base fan_in) | eta   | λ     | x1/m    |
    | vector | 1 / 0                   | eta   | 0     |         |

    (*) output init std: 0 with ``readout_init: zero``; wd of a matrix role: 0 unless ``decay_roles`` lists
    it. In microsoft/mup terms this is ``MuAdamW`` exactly as mup 1.0.0 ships it on PyPI (its matrix-like
    groups get lr/width_mult and weight_decay*width_mult), with vectors in a weight_decay=0 group and the
    readout a ``MuReadout``.
    """

    name = "mup-independent-wd"
    equivalent = ("microsoft/mup MuAdamW as mup 1.0.0 ships it on PyPI (vectors in a weight_decay=0 group; "
                  "readout as MuReadout: its default init, or readout_zero_init=True with readout_init: zero)")
    summary = "muP with independent weight decay: hidden lr/m, hidden wd x m (lr*wd constant)"
    citation = KOS25

    def hidden_wd(self, width_mult: float) -> float:
        return width_mult


class WarmupReplacement(MuP):
    """μP's hidden lr scaling replaced by a warmup factor f_t ([Kos25] Sec. 6, our reading).

    | role   | init std(*)             | lr        | wd(*) (AdamW coefficient) | forward |
    |--------|-------------------------|-----------|---------------------------|---------|
    | input  | sigma_in                | eta       | λ                         |         |
    | hidden | sigma/sqrt(fan_in)      | eta · f_t | λ / f_t                   |         |
    | output | sigma/sqrt(base fan_in) | eta       | λ                         | x1/m    |
    | vector | 1 / 0                   | eta       | 0                         |         |

    (*) output init std: 0 with ``readout_init: zero``; wd of a matrix role: 0 unless ``decay_roles`` lists
    it. At m = 1, f_t = 1 at every step: the base model is every recipe's.

    [Kos25] Eq. 11 compares μP with independent weight decay (hidden per-step decay (eta/m)(λm) =
    eta·λ) with unscaled training whose *update* is multiplied by f_t while the *decay* stays eta·λ.
    PyTorch's AdamW decays by lr·wd, so the update is scaled by f_t through the lr and the decay is
    kept at eta_t·λ through the coefficient λ/f_t (``decay: independent``, the default). That is the
    decay that D_t below assumes, so the formula and the run agree.

    ``shape: decay-product`` (default): f_t = (1 + (m^2-1) D_t^2)^(-1/2), D_t = prod_{tau<t}(1 - eta_tau λ)
    with eta_tau the base scheduled lr — our closed form from [Kos25] Eq. 11. ``shape: exponential``:
    f_t = m^(-max(0, 1 - t/T)), T = ``frac`` x steps. f_0 = 1/m, f_t -> 1.

    ``decay: coupled`` keeps the hidden coefficient at λ, so the decay carries the factor too
    (eta_t·λ·f_t per step, what this recipe did before); D_t is then computed from that applied decay,
    D_{t+1} = D_t (1 - eta_t f_t λ). Both the closed form and the options are OUR reading of [Kos25],
    whose exact Eq. 12/13 we could not verify.
    """

    name = "warmup-replacement"
    equivalent = ""  # not inherited from MuP: no library implements this recipe
    summary = "muP-style readout, hidden lr eta*f_t: a warmup from 1/m to 1 instead of 1/m scaling"
    citation = KOS25
    options: ClassVar[dict[str, object]] = {
        "shape": "decay-product", "frac": 0.25, "decay": "independent",
    }
    lr_factor_name = "f_t"

    def __init__(self, **options: object) -> None:
        super().__init__(**options)
        for key, known in (("shape", ("decay-product", "exponential")), ("decay", ("independent", "coupled"))):
            if self.opts[key] not in known:
                raise ValueError(f"recipe 'warmup-replacement': option {key}={self.opts[key]!r}; "
                                 f"known: {', '.join(known)}")
        frac = self.opts["frac"]
        if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not 0.0 < float(frac) <= 1.0:
            raise ValueError(f"recipe 'warmup-replacement': option frac={frac!r}: must be a number in (0, 1]")
        self.opts["frac"] = float(frac)
        self.wd_factor_name = "1/f_t" if self.opts["decay"] == "independent" else None

    def multipliers(self, role: str, width_mult: float) -> Multipliers:
        if role == HIDDEN:
            return _ONE
        return super().multipliers(role, width_mult)

    def _f(self, width_mult: float, base_lrs: Sequence[float], wd: float) -> list[float]:
        if self.opts["shape"] == "exponential":
            return f_exponential(width_mult, len(base_lrs), self.opts["frac"])
        if self.opts["decay"] == "coupled":
            return f_coupled_decay(width_mult, base_lrs, wd)
        return f_decay_product(width_mult, base_lrs, wd)

    def lr_factors(
        self, role: str, width_mult: float, base_lrs: Sequence[float], wd: float
    ) -> list[float] | None:
        return self._f(width_mult, base_lrs, wd) if role == HIDDEN else None

    def wd_factors(
        self, role: str, width_mult: float, base_lrs: Sequence[float], wd: float
    ) -> list[float] | None:
        if role != HIDDEN or self.opts["decay"] == "coupled":
            return None
        return [1.0 / f for f in self._f(width_mult, base_lrs, wd)]


class SqrtD(_MuReadout):
    """The sqrt(d) weight-decay rule of [Fan25] (arXiv 2510.15262): μP lr for matrices, wd ∝ sqrt(d)
    for hidden matrices.

    | role   | init std(*)             | lr    | wd(*)     | forward |
    |--------|-------------------------|-------|-----------|---------|
    | input  | sigma_in                | eta   | λ         |         |
    | hidden | sigma/sqrt(fan_in)      | eta/m | λ·sqrt(m) |         |
    | output | sigma/sqrt(base fan_in) | eta   | λ         | x1/m    |
    | vector | 1 / 0                   | eta   | 0         |         |

    (*) output init std: 0 with ``readout_init: zero``; wd of a matrix role: 0 unless ``decay_roles`` lists
    it. [Fan25] treat embedding and readout as vector-like, lr Theta(1) and wd 0: that is a choice of base
    model, not a width rule, so it is the run setting ``decay_roles: hidden`` (for every recipe alike); with
    it this table's input and output wd are 0. The readout's 1/m multiplier and constant std are the μP
    family's (microsoft/mup ``MuReadout``). With the same base settings ``sqrt-d`` is ``wd-power[p=0.5]``.
    """

    name = "sqrt-d"
    summary = "muP lr with hidden wd x sqrt(m) ([Fan25]'s base model: decay_roles hidden)"
    citation = FAN25

    def multipliers(self, role: str, width_mult: float) -> Multipliers:
        if role == HIDDEN:
            return Multipliers(init_std=1.0, lr=1.0 / width_mult, wd=math.sqrt(width_mult))
        if role == OUTPUT:
            return Multipliers(init_std=self.readout_init_std(width_mult), lr=1.0, wd=1.0)
        if role == INPUT:
            return _ONE
        return _VECTOR

