"""Confidence intervals over seeds for the transfer metrics (docs/design.md §6): one bootstrap over seed ids
per (workload, wd), the same seed draws for every recipe (paired, ties.py) and all widths resampled
jointly, reported as t intervals on the bootstrap standard error (Efron & Tibshirani 1993, §12.2), which
stay honest with two or three seeds where the percentile interval does not. numpy/pandas only.
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

CI = (2.5, 97.5)  # percentiles of the optional plain percentile interval (95%)


def cube(g: pd.DataFrame, axes: list[str]) -> tuple[list[np.ndarray], np.ndarray]:
    """Capped loss as a dense array over ``axes`` (first axis: seed), NaN where no run exists."""
    cell = g.groupby(axes)["capped"].mean()
    levels = [np.sort(g[a].unique()) for a in axes]
    full = cell.reindex(pd.MultiIndex.from_product(levels, names=axes))
    return levels, full.to_numpy(float, copy=True).reshape([len(v) for v in levels])


def seed_means(weights: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Weighted seed means (weights: (B, S) resample counts) of a (S, ...) array, ignoring NaN."""
    ok = np.isfinite(a)
    num = np.tensordot(weights, np.where(ok, a, 0.0), axes=(1, 0))
    den = np.tensordot(weights, ok.astype(float), axes=(1, 0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def on_seeds(a: np.ndarray, seeds: np.ndarray, union: np.ndarray) -> np.ndarray:
    """A (S, ...) array over the sorted seed ids ``seeds`` re-indexed onto the sorted ids ``union`` (a
    superset), NaN rows for the seeds it lacks: so that one resample matrix over ``union`` draws the same
    seed ids for every group (a paired bootstrap) and seed_means skips a missing seed."""
    out = np.full((len(union), *a.shape[1:]), np.nan)
    out[np.searchsorted(union, seeds)] = a
    return out


def resamples(n_seeds: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Row 0: every seed once (the point estimate); rows 1..: seed ids drawn with replacement."""
    point = np.ones((1, n_seeds))
    if n_seeds < 2 or n_boot <= 0:
        return point
    return np.vstack([point, rng.multinomial(n_seeds, np.full(n_seeds, 1.0 / n_seeds), size=n_boot)])


# Student t_{0.975, df} for df = 1..30; beyond, the Cornish-Fisher expansion of t in 1/df is exact to 1e-3.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042)
_Z975 = 1.959964


def t975(df: int) -> float:
    """The 97.5% quantile of Student's t with ``df`` degrees of freedom."""
    if df <= len(_T975):
        return _T975[df - 1]
    z = _Z975
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def bootstrap_ci(point: float, samples: np.ndarray, n_seeds: int, method: str = "t") -> tuple[float, float]:
    """95% interval from bootstrap ``samples`` of a statistic over ``n_seeds`` seeds (NaN with one seed).

    ``method="t"`` (the default, used by compute_metrics) is the standard bootstrap interval
    point ± t_{n-1} * sqrt(n/(n-1)) * sd(samples) (Efron & Tibshirani 1993, An Introduction to the
    Bootstrap, §12.2, with Student's t for few seeds; sqrt(n/(n-1)) undoes the plug-in variance bias), which
    for a mean is exactly Student's t interval. ``method="percentile"`` is the plain 2.5/97.5 percentile
    interval: it under-covers badly with few seeds (with 2 seeds there are 3 distinct resamples and it is
    on average *narrower* than with 8), so it is not the default.
    """
    s = np.asarray(samples, float)
    s = s[np.isfinite(s)]
    if n_seeds < 2 or len(s) < 2 or not np.isfinite(point):
        return np.nan, np.nan
    if method == "percentile":
        lo, hi = np.percentile(s, CI)
        return float(lo), float(hi)
    half = t975(n_seeds - 1) * np.sqrt(n_seeds / (n_seeds - 1)) * float(np.std(s))
    return float(point - half), float(point + half)


def ci(values: np.ndarray, n_seeds: int) -> tuple[float, float]:
    """CI of a (1 + B,) array: row 0 the estimate, rows 1.. its bootstrap resamples."""
    return bootstrap_ci(values[0], values[1:], n_seeds)


def stream(seed: int, key: tuple) -> np.random.Generator:
    # One stream per key, so a group's CI does not change when other workloads are added (metrics keys
    # it by (workload, wd): every recipe of a workload draws the same seed ids).
    return np.random.default_rng([seed, zlib.crc32(repr(key).encode())])
