"""The warmup factor f_t that replaces μP's hidden-layer lr scaling ([Kos25], arXiv 2510.19093).

[Kos25] Eq. 11: for constant lr, μP with independent weight decay equals unscaled training whose
relative updates are multiplied by ``s_t = (1 + (m^2 - 1) a^(2t))^(-1/2)`` with ``a = 1 - lr*wd``:
the weights inherited from init decay as a^t while the update-driven part grows, so the relative
update rises from 1/m to 1. Generalising a^t to the real schedule gives our closed form
``D_t = prod_{tau < t} (1 - eta_tau * wd)`` (eta_tau = base scheduled lr, warmup and decay included)
and ``f_t = (1 + (m^2 - 1) D_t^2)^(-1/2)``. The ``exponential`` shape ``f_t = m^(-max(0, 1 - t/T))``
is a simpler alternative. Both are OUR reading of [Kos25]: we could not verify their exact Eq. 12/13.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def decay_products(base_lrs: Sequence[float], wd: float) -> list[float]:
    """D_t = prod_{tau < t} (1 - base_lrs[tau] * wd), for t = 0 .. len(base_lrs) - 1 (D_0 = 1)."""
    out: list[float] = []
    d = 1.0
    for lr in base_lrs:
        out.append(d)
        d *= 1.0 - lr * wd
    return out


def f_decay_product(width_mult: float, base_lrs: Sequence[float], wd: float) -> list[float]:
    """f_t = (1 + (m^2 - 1) D_t^2)^(-1/2): starts at 1/m, rises monotonically to 1 (for lr*wd <= 1)."""
    m2 = width_mult * width_mult
    return [(1.0 + (m2 - 1.0) * d * d) ** -0.5 for d in decay_products(base_lrs, wd)]


def f_coupled_decay(width_mult: float, base_lrs: Sequence[float], wd: float) -> list[float]:
    """f_t when the decay carries the factor too (option ``decay: coupled``): AdamW then decays the
    hidden matrices by ``eta_t * f_t * wd`` per step, so D_t is computed from that applied decay,
    D_{t+1} = D_t (1 - eta_t f_t wd), a recursion since f_t depends on D_t. f_0 = 1/m."""
    m2 = width_mult * width_mult
    out: list[float] = []
    d = 1.0
    for lr in base_lrs:
        f = (1.0 + (m2 - 1.0) * d * d) ** -0.5
        out.append(f)
        d *= 1.0 - lr * f * wd
    return out


def f_exponential(width_mult: float, steps: int, frac: float) -> list[float]:
    """f_t = m^(-max(0, 1 - t/T)) with T = frac * steps: geometric rise from 1/m to 1 by step T."""
    horizon = max(frac * steps, 1e-12)
    log_m = math.log(width_mult)
    return [math.exp(-log_m * max(0.0, 1.0 - t / horizon)) for t in range(steps)]
