"""Which recipes the data cannot tell apart from the best: paired-by-seed bootstrap CIs of differences.

Within one (workload, wd) every recipe is resampled with the *same* seed draws (metrics.py draws one
resample matrix over the workload's sorted seed ids, from a stream keyed by (workload, wd), not by
recipe; a recipe lacking a seed has NaN there), and a seed is the same data and init draws for every
recipe. So the difference of two recipes' regret_rel on one resample is a paired difference, and
its CI is far narrower than the two recipes' own CIs when the seed-to-seed noise is shared.

Columns added to transfer.csv (docs/record.md):
- ``regret_rel_lo``, ``regret_rel_hi``: CI of regret_rel;
- ``vs_best_lo``, ``vs_best_hi``: CI of (this recipe's regret_rel - the best recipe's), paired, a t
  interval over the seeds both have; the best is the lowest point estimate in its (workload, wd);
- ``tied_with_best``: the paired CI's lower end is <= 0 (the best itself is True); NA with one seed;
- ``overall_mean_rank`` (+ ``_lo``, ``_hi``), ``overall_tied_with_best``: the same for the mean over
  workloads of the recipe's rank by regret_rel, ranked on each resample. Resamples of different
  workloads are independent draws, as the workloads are independent experiments.
All CIs are bootstrap.bootstrap_ci's t intervals. numpy/pandas only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from transferbench.bootstrap import bootstrap_ci

TIE_COLUMNS = ["regret_rel_lo", "regret_rel_hi", "vs_best_lo", "vs_best_hi", "tied_with_best",
               "overall_mean_rank", "overall_mean_rank_lo", "overall_mean_rank_hi", "overall_tied_with_best"]


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks along axis 0 (1 = lowest, ties share the better rank) of a (R, 1 + B) array, column 0 the
    point estimates. A row without a point estimate (no score) ranks last on every resample; a resample on
    which a scored row has no value (a recipe missing a seed drew none of its seeds) is NaN for every row,
    so that it is left out of the CIs rather than counted as that recipe's loss."""
    scored = np.isfinite(values[:, :1])
    filled = np.where(scored, values, np.inf)
    ranks = ((filled[None, :, :] < filled[:, None, :]).sum(axis=1) + 1).astype(float)
    ranks[:, (scored & ~np.isfinite(values)).any(axis=0)] = np.nan
    return ranks


def _vs(samples: np.ndarray, best: int, n: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row r: the CI of (row r - the best row) over the resamples (column 0 the estimate) as a t
    interval on ``n[r]`` paired seeds, and whether it is tied with the best (its lower end <= 0). The
    best is (0, 0, True); a row with fewer than two paired seeds (or no resamples) has no CI and no tie
    flag (None), nor has the best itself then: a single seed never claims a tie."""
    lo, hi, tied = np.full(len(samples), np.nan), np.full(len(samples), np.nan), np.full(len(samples), None)
    for r in range(len(samples)):
        if r != best:
            d = samples[r] - samples[best]
            lo[r], hi[r] = bootstrap_ci(d[0], d[1:], int(n[r]))
            tied[r] = bool(lo[r] <= 0) if np.isfinite(lo[r]) else None
    if n[best] >= 2 and samples.shape[1] > 2:  # bootstrap_ci needs two seeds and two resamples
        lo[best], hi[best], tied[best] = 0.0, 0.0, True
    return lo, hi, tied


def add_tie_columns(transfer: pd.DataFrame, samples: dict[tuple, np.ndarray],
                    seeds: dict[tuple, frozenset] | None = None) -> pd.DataFrame:
    """``transfer`` with TIE_COLUMNS; ``samples[(workload, recipe, wd)]`` is regret_rel on the point
    estimate (index 0) and on every paired bootstrap resample, ``seeds[...]`` the recipe's seed ids (the
    paired difference of two recipes rests on the seeds both have; default: the fewer n_seeds)."""
    out = transfer.copy()
    for col in TIE_COLUMNS:
        out[col] = pd.Series([None] * len(out), index=out.index, dtype=object)
    ranks: dict[str, list[np.ndarray]] = {}
    for (_, _), g in out.groupby(["workload", "wd"], sort=True):
        rows = list(g.index)
        keys = [(out.at[i, "workload"], out.at[i, "recipe"], out.at[i, "wd"]) for i in rows]
        width = min(len(samples[k]) for k in keys)
        s = np.array([samples[k][:width] for k in keys], float)  # (R, 1 + B)
        n_own = pd.to_numeric(g["n_seeds"], errors="coerce").fillna(0).astype(int).to_numpy()
        for j, i in enumerate(rows):
            lo, hi = bootstrap_ci(s[j, 0], s[j, 1:], n_own[j])
            # clipped to the range of the statistic, as regret_lo is: a regret is >= 0 by construction
            out.at[i, "regret_rel_lo"], out.at[i, "regret_rel_hi"] = (max(lo, 0.0) if np.isfinite(lo) else lo), hi
        if np.isfinite(s[:, 0]).any():
            best = int(np.nanargmin(s[:, 0]))
            paired = np.array([len(seeds[k] & seeds[keys[best]]) if seeds else min(n_own[j], n_own[best])
                               for j, k in enumerate(keys)])
            lo, hi, tied = _vs(s, best, paired)
            for j, i in enumerate(rows):
                out.at[i, "vs_best_lo"], out.at[i, "vs_best_hi"], out.at[i, "tied_with_best"] = lo[j], hi[j], tied[j]
        r = _ranks(s)
        for j, k in enumerate(keys):
            ranks.setdefault(k[1], []).append(r[j])
    _overall(out, ranks, int(pd.to_numeric(out["n_seeds"], errors="coerce").min()) if len(out) else 0)
    return out


def _overall(out: pd.DataFrame, ranks: dict[str, list[np.ndarray]], n: int) -> None:
    """Per recipe: its mean rank over every (workload, wd) on the estimate and on every resample, the CI
    of that mean and of its difference to the lowest mean rank (``n``: the fewest seeds of any row)."""
    if not ranks:
        return
    recipes = sorted(ranks)
    width = min(len(r) for rs in ranks.values() for r in rs)
    mean = np.array([np.mean([r[:width] for r in ranks[name]], axis=0) for name in recipes])  # (R, 1 + B)
    lo, hi, tied = _vs(mean, int(np.argmin(mean[:, 0])), np.full(len(recipes), n))
    for j, name in enumerate(recipes):
        at = out.index[out["recipe"] == name]
        ci_lo, ci_hi = np.clip(bootstrap_ci(mean[j, 0], mean[j, 1:], n), 1.0, float(len(recipes)))  # ranks 1..R
        for i in at:
            out.at[i, "overall_mean_rank"] = float(mean[j, 0])
            out.at[i, "overall_mean_rank_lo"], out.at[i, "overall_mean_rank_hi"] = ci_lo, ci_hi
            out.at[i, "overall_tied_with_best"] = tied[j]


def regret_rel_samples(regret: np.ndarray, best: np.ndarray) -> np.ndarray:
    """regret / best loss at the widest width, on the estimate and on every resample."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(best != 0, regret / best, np.nan)


def as_bool(x: Any) -> bool | None:
    """A tie flag from a table cell: True, False or None (no CI: one seed)."""
    if x is None or (isinstance(x, float) and np.isnan(x)) or x is pd.NA:
        return None
    return str(x).strip().lower() in ("true", "1", "1.0")


def plain_rank(values: pd.Series) -> pd.Series:
    """1 = lowest; ties share the better rank; missing values rank last."""
    filled = values.astype(float).fillna(np.inf)
    return filled.rank(method="min").astype(int)


def shared_rank(values: pd.Series, tied: pd.Series) -> pd.Series:
    """Ranks by value, except that every row tied with the best (the paired CI of the difference
    includes 0) shares rank 1 and the others are ranked after them. Without tie flags: plain ranks."""
    ties = tied.map(as_bool)
    if not ties.map(lambda x: x is True).any():
        return plain_rank(values)
    shared = ties.map(lambda x: x is True)
    rest = plain_rank(values[~shared]) + int(shared.sum())
    return pd.concat([pd.Series(1, index=values.index[shared]), rest]).reindex(values.index).astype(int)
