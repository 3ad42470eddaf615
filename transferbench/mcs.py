"""The Model Confidence Set over seeds: which recipes the data cannot tell apart from the best.

Hansen, Lunde & Nason, "The Model Confidence Set", Econometrica 79(2), 453-497, 2011 (here: HLN). Scores
are an (R, S) table, recipes by seeds, lower is better, paired by seed: seed s is the same data and init
for every recipe, so the comparison is on per-seed differences and a seed effect shared by all recipes
cancels. Starting from all recipes M, the procedure tests H0,M "every recipe in M is equally good" and,
while it is rejected, removes one recipe; the survivors are the 1-alpha MCS.

- Statistic: HLN's T_max (their Sec. 3.1.2): x_i,s = L_i,s - mean_{j in M} L_j,s (performance relative to
  the set's average), d_i = mean_s x_i,s, se_i its bootstrap standard error, t_i = d_i / se_i,
  T_max = max_i t_i. The bootstrap resamples seed ids iid (one multinomial draw of S seeds per resample,
  the same draws for every recipe and every step: paired), and T*_max,b = max_i (d*_i,b - d_i) / se_i is
  T_max's null distribution; p_boot = share of b with T*_max,b >= T_max.
- Few seeds: with S = 3 seeds there are only 10 distinct resamples and p_boot is anti-conservative (a
  bootstrap mean never leaves the range of the seeds). So a step's p-value is max(p_boot, p_t), where
  p_t = min(1, |M| (1 - F_t(T'_max; S - 1))) is a Bonferroni-corrected Student t guard on the largest
  standardized excess, T'_max computed with se_i * sqrt(S / (S - 1)) (the plug-in bootstrap variance is
  biased low by (S - 1) / S, as in bootstrap.bootstrap_ci).
- Elimination: the recipe with the worst point estimate (largest mean score) in M, NOT HLN's
  argmax_i t_i. HLN allow any coherent elimination rule (their Sec. 2: under the alternative the rule
  must remove an inferior model with probability -> 1, which the largest sample mean does as S grows).
  This one makes the set monotone by construction: it is always a prefix of the recipes sorted by mean,
  never holding a recipe worse than one it excludes, which argmax t_i does not guarantee (a precise
  mediocre recipe can have a larger t than a noisy bad one).
- MCS p-values (HLN Sec. 2): an eliminated recipe gets the running max of the steps' p-values up to its
  elimination, so p-values are monotone along the elimination order and in_set == (p_value >= alpha).

Only the seed columns finite for every scored recipe are used (``n_seeds``); a row with no finite score
(a recipe that never produced one) is left out (in_set False, p 0). Student's t CDF is implemented here
(regularized incomplete beta by Lentz's continued fraction) to stay numpy/math only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

_EPS = 1e-15  # continued-fraction convergence (relative)
_TINY = 1e-300  # Lentz's guard against a zero denominator
_MAX_ITER = 10_000  # the fraction needs O(sqrt(max(a, b))) terms; df up to ~1e7 converges well within this
_ZERO_SE = 1e-12  # an se below this times the scores' scale is rounding noise: treated as exactly zero


@dataclass(frozen=True)
class ConfidenceSet:
    in_set: np.ndarray  # (R,) bool: in the 1-alpha model confidence set
    p_value: np.ndarray  # (R,) MCS p-values (monotone; NaN when not decided)
    order: list[int]  # row indices in elimination order (first eliminated first); survivors not listed
    n_seeds: int  # seed columns used (finite for every row)
    decided: bool  # False with fewer than two usable seeds


def _beta_cf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta (Numerical Recipes 3rd ed., eq. 6.4.5), evaluated by the
    modified Lentz method (NR §5.2); converges fast for x < (a + 1) / (a + b + 2)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, _MAX_ITER + 1):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)),  # even step d_{2m}
                   -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):  # odd step d_{2m+1}
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + aa / c
            c = c if abs(c) > _TINY else _TINY
            h *= d * c
        if abs(d * c - 1.0) < _EPS:
            return h
    raise ArithmeticError(f"incomplete beta continued fraction did not converge (a={a}, b={b}, x={x})")


def _beta_inc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b), with the symmetry I_x(a, b) = 1 - I_{1-x}(b, a) (NR eq. 6.4.3)
    so that the continued fraction is always evaluated where it converges."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_cf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_cf(b, a, 1.0 - x) / b


def _t_sf(x: float, df: float) -> float:
    """Upper tail 1 - F_t(x; df), computed directly (no cancellation for the small tails the guard uses):
    P(T > |x|) = I_{df/(df+x^2)}(df/2, 1/2) / 2 (Abramowitz & Stegun 26.7.1 with 26.5.27)."""
    if math.isnan(x):
        return math.nan
    if math.isinf(x):
        return 0.0 if x > 0 else 1.0
    tail = 0.5 * _beta_inc(0.5 * df, 0.5, df / (df + x * x))
    return tail if x > 0 else 1.0 - tail


def t_cdf(x: float, df: int) -> float:
    """Student's t cumulative distribution function F_t(x; df), df > 0 (need not be an integer)."""
    if not df > 0:
        raise ValueError(f"degrees of freedom must be positive, got {df}")
    if math.isnan(x):
        return math.nan
    if math.isinf(x):
        return 1.0 if x > 0 else 0.0
    tail = 0.5 * _beta_inc(0.5 * df, 0.5, df / (df + x * x))
    return 1.0 - tail if x > 0 else tail


def _step_p(x: np.ndarray, counts: np.ndarray, tol: float) -> float:
    """p-value of H0,M (all recipes of M equally good) from the (|M|, S) per-seed scores ``x``."""
    n_m, n_s = x.shape
    rel = x - x.mean(axis=0, keepdims=True)  # x_i,s relative to the set's average (HLN Sec. 3.1.2)
    d = rel.mean(axis=1)
    boot = rel @ counts.T / n_s  # (|M|, B): d*_i,b on the shared (paired) resamples
    se = boot.std(axis=1)
    zero = se <= tol
    safe = np.where(zero, 1.0, se)
    # se_i = 0: identical to the average on every seed (d_i = 0 -> t_i = 0) or off by a constant
    # (d_i > 0 -> +inf: worse on every seed, reject; d_i < 0 -> -inf).
    t = np.where(zero, np.where(np.abs(d) <= tol, 0.0, np.copysign(np.inf, d)), d / safe)
    t_max = float(t.max())
    null = np.where(zero[:, None], 0.0, (boot - d[:, None]) / safe[:, None]).max(axis=0)
    p_boot = float(np.mean(null >= t_max))
    # The t guard: se inflated by sqrt(S / (S - 1)), one-sided t_{S-1} tail, Bonferroni over |M|.
    t_guard = t_max * math.sqrt((n_s - 1) / n_s) if math.isfinite(t_max) else t_max
    p_t = min(1.0, n_m * _t_sf(t_guard, n_s - 1))
    return max(p_boot, p_t)


def confidence_set(scores: np.ndarray, alpha: float = 0.05, n_boot: int = 2000, seed: int = 0) -> ConfidenceSet:
    """The 1-alpha Model Confidence Set of the rows of ``scores`` ((R, S): recipes by seeds, lower is better,
    paired by seed, NaN allowed), with MCS p-values; deterministic for a given ``seed``. See the module
    docstring for the statistic, the t guard and the (monotone) elimination rule."""
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 2:
        raise ValueError(f"scores must be (recipes, seeds), got shape {scores.shape}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    finite = np.isfinite(scores)
    scored = finite.any(axis=1)  # a recipe with no score at all is not a candidate
    cols = finite[scored].all(axis=0) if scored.any() else np.zeros(scores.shape[1], bool)
    n_seeds = int(cols.sum())
    in_set = scored.copy()
    p_value = np.where(scored, np.nan, 0.0)
    members = [int(i) for i in np.flatnonzero(scored)]
    if len(members) <= 1:  # nothing to compare: the lone recipe is the best
        p_value[members] = 1.0
        return ConfidenceSet(in_set, p_value, [], n_seeds, True)
    if n_seeds < 2:  # no seed-to-seed variation to test against: keep everyone, claim nothing
        return ConfidenceSet(in_set, p_value, [], n_seeds, False)

    x = scores[:, cols]
    rng = np.random.default_rng(seed)
    # One resample matrix for every step and every recipe: iid seed ids, as multinomial counts (B, S).
    counts = rng.multinomial(n_seeds, np.full(n_seeds, 1.0 / n_seeds), size=n_boot).astype(float)
    means = x.mean(axis=1)
    order: list[int] = []
    running = 0.0
    while len(members) > 1:
        sub = x[members]
        tol = _ZERO_SE * float(np.abs(sub).max())
        running = max(running, _step_p(sub, counts, tol))  # HLN's MCS p-value: running max over steps
        if running >= alpha:
            break
        worst = members[int(np.argmax(means[members]))]  # worst point estimate, not argmax t_i: monotone
        p_value[worst] = running
        in_set[worst] = False
        order.append(worst)
        members.remove(worst)
    p_value[members] = running if len(members) > 1 else 1.0
    return ConfidenceSet(in_set, p_value, order, n_seeds, True)
