"""Which recipes the data cannot tell apart from the best: paired-by-seed bootstrap CIs of differences.

Within one (workload, wd) every recipe is resampled with the *same* seed draws (metrics.py draws them
from a stream keyed by (workload, wd), not by recipe), and a seed is the same data and init draws for
every recipe. So the difference of two recipes' regret_rel on one resample is a paired difference, and
its CI is far narrower than the two recipes' own CIs when the seed-to-seed noise is shared.

Columns added to transfer.csv (docs/record.md):
- ``regret_rel_lo``, ``regret_rel_hi``: CI of regret_rel;
- ``vs_best_lo``, ``vs_best_hi``: CI of (this recipe's regret_rel - the best recipe's), paired; the best
  is the lowest point estimate in its (workload, wd);
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
    """Ranks along axis 0 (1 = lowest, ties share the better rank, NaN last) of a (R, B) array."""
    filled = np.where(np.isfinite(values), values, np.inf)
    return (filled[None, :, :] < filled[:, None, :]).sum(axis=1) + 1


def _vs(samples: np.ndarray, best: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: CI of (row - best row) over resamples (column 0 the estimate), and whether it is tied."""
    lo, hi, tied = [], [], []
    if n < 2:  # no CI with one seed: no tie can be claimed, not even the best's
        nan = np.full(len(samples), np.nan)
        return nan, nan.copy(), np.array([None] * len(samples), object)
    for r in range(len(samples)):
        d = samples[r] - samples[best]
        a, b = bootstrap_ci(d[0], d[1:], n) if r != best else (0.0, 0.0)
        lo.append(a)
        hi.append(b)
        tied.append(True if r == best else (bool(a <= 0) if np.isfinite(a) else None))
    return np.array(lo, float), np.array(hi, float), np.array(tied, object)


def add_tie_columns(transfer: pd.DataFrame, samples: dict[tuple, np.ndarray]) -> pd.DataFrame:
    """``transfer`` with TIE_COLUMNS; ``samples[(workload, recipe, wd)]`` is regret_rel on the point
    estimate (index 0) and on every paired bootstrap resample."""
    out = transfer.copy()
    for col in TIE_COLUMNS:
        out[col] = pd.Series([None] * len(out), index=out.index, dtype=object)
    ranks: dict[str, list[np.ndarray]] = {}
    for (_, _), g in out.groupby(["workload", "wd"], sort=True):
        rows = list(g.index)
        keys = [(out.at[i, "workload"], out.at[i, "recipe"], out.at[i, "wd"]) for i in rows]
        width = min(len(samples[k]) for k in keys)
        s = np.array([samples[k][:width] for k in keys], float)  # (R, 1 + B)
        n = int(pd.to_numeric(g["n_seeds"], errors="coerce").min())
        for i, k in zip(rows, keys, strict=True):
            lo, hi = bootstrap_ci(samples[k][0], samples[k][1:], n)
            # clipped to the range of the statistic, as regret_lo is: a regret is >= 0 by construction
            out.at[i, "regret_rel_lo"], out.at[i, "regret_rel_hi"] = (max(lo, 0.0) if np.isfinite(lo) else lo), hi
        if np.isfinite(s[:, 0]).any():
            lo, hi, tied = _vs(s, int(np.nanargmin(s[:, 0])), n)
            for j, i in enumerate(rows):
                out.at[i, "vs_best_lo"], out.at[i, "vs_best_hi"], out.at[i, "tied_with_best"] = lo[j], hi[j], tied[j]
        r = _ranks(s).astype(float)
        for j, k in enumerate(keys):
            ranks.setdefault(k[1], []).append(r[j])
    _overall(out, ranks, int(pd.to_numeric(out["n_seeds"], errors="coerce").min()) if len(out) else 0)
    return out


def _overall(out: pd.DataFrame, ranks: dict[str, list[np.ndarray]], n: int) -> None:
    if not ranks:
        return
    recipes = sorted(ranks)
    width = min(len(r) for rs in ranks.values() for r in rs)
    mean = np.array([np.mean([r[:width] for r in ranks[name]], axis=0) for name in recipes])  # (R, 1 + B)
    lo, hi, tied = _vs(mean, int(np.argmin(mean[:, 0])), n)
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
