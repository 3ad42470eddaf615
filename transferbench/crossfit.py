"""Transferred loss and out-of-sample transfer regret, cross-fitted over seeds (docs/design.md §6).

A user who tunes the lr at the base width and trains the widest model with it gets the *transferred loss*.
Choosing the optimum and scoring it on the same seeds flatters every recipe (the seed noise that picked the
optimum is also the noise it is scored on; on a 1-octave grid a recipe scored 0.00% on the grid and 3.18%
from the parabola). So both numbers here are cross-fitted, leave-one-seed-out:

- for each seed s, the optima are chosen on the *other* seeds' mean curve: the base (tuning) width's
  optimum eta_b^(-s) and each width's own optimum eta_w^(-s) (fit.parabola_optimum: the vertex of the
  parabola through the argmin and its neighbours, on whatever lrs were trained, half-octave apart near the
  optimum with ``lr_refine``);
- seed s is scored on its own curve, read at those lrs (fit.fitted_loss: its local parabola, linear
  between trained lrs outside it): transferred loss L_s(w, eta_b^(-s)) at every width w, re-tuned loss
  L_s(widest, eta_widest^(-s)), and regret = transferred - re-tuned at the widest width.

So the regret is the excess over re-tuning at the target width *with the same budget* (the same number of
seeds to choose on), and it may be negative: it is reported as measured, never clamped. With one seed there
is nothing to hold out: the numbers are in-sample (``crossfit`` False in the table) and carry no CI.
Per-seed values go to ``seed_scores.csv``, so that recipes are compared paired by seed (a seed is the same
data and init draws for every recipe) and the leaderboard's confidence sets (mcs.py) rest on a table.
numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from transferbench.bootstrap import t975
from transferbench.fit import fitted_loss, parabola_optimum


@dataclass(frozen=True)
class CrossFit:
    """Per seed s (rows, the workload's seed ids; NaN where a recipe lacks the seed) of one group."""

    transferred: np.ndarray  # (S, W): L_s(w, eta_b^(-s)), the loss at the lr transferred from the base width
    retuned: np.ndarray  # (S,): L_s(widest, eta_widest^(-s)), the widest width re-tuned on the other seeds
    transfer_lr: np.ndarray  # (S,): eta_b^(-s), log2
    crossfit: bool  # False with a single seed: in-sample

    @property
    def regret(self) -> np.ndarray:
        """(S,): transferred minus re-tuned loss at the widest width (may be negative)."""
        return self.transferred[:, -1] - self.retuned


def _mean_curve(a: np.ndarray) -> np.ndarray:
    """Mean over axis 0 ignoring NaN, NaN where no seed has a value (no warning)."""
    ok = np.isfinite(a)
    n = ok.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, np.where(ok, a, 0.0).sum(axis=0) / n, np.nan)


def cross_fit(grid: np.ndarray, a: np.ndarray, tuning: int) -> CrossFit:
    """Leave-one-seed-out transferred and re-tuned losses of one (workload, recipe, wd).

    ``a`` is the capped loss cube (S, W, L) over seeds x widths (ascending, the widest last) x ``grid`` (log2
    lr), NaN where no run exists; ``tuning`` the index of the base width. A seed with no run at all is NaN.
    """
    n_seeds, n_widths, _ = a.shape
    has = np.isfinite(a).any(axis=(1, 2))
    ids = np.flatnonzero(has)
    transferred = np.full((n_seeds, n_widths), np.nan)
    retuned = np.full(n_seeds, np.nan)
    at = np.full(n_seeds, np.nan)
    crossfit = len(ids) >= 2
    for s in ids:
        others = a[[i for i in ids if i != s]] if crossfit else a[[s]]
        mean = _mean_curve(others)
        eta_b = parabola_optimum(grid, mean[tuning])[0]
        eta_w = parabola_optimum(grid, mean[-1])[0]
        at[s] = eta_b
        transferred[s] = [fitted_loss(grid, a[s, w], eta_b) for w in range(n_widths)]
        retuned[s] = fitted_loss(grid, a[s, -1], eta_w)
    return CrossFit(transferred, retuned, at, crossfit)


def t_interval(values: np.ndarray) -> tuple[float, float, float, int]:
    """(mean, lo, hi, n) of the finite ``values``: Student's t 95% interval of the mean (NaN bounds with
    fewer than two). The per-seed cross-fitted scores are treated as independent draws, the usual
    approximation for cross-fitted estimates (each fold's optimum shares seeds with the others')."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if not len(v):
        return np.nan, np.nan, np.nan, 0
    mean = float(v.mean())
    if len(v) < 2:
        return mean, np.nan, np.nan, len(v)
    half = t975(len(v) - 1) * float(v.std(ddof=1)) / np.sqrt(len(v))
    return mean, mean - half, mean + half, len(v)


def wider_is_better(by_width: np.ndarray) -> bool | None:
    """Does the seed-mean transferred loss fall at every width step? None when a width has no value."""
    m = np.asarray(by_width, float)
    if len(m) < 2 or not np.isfinite(m).all():
        return None
    return bool(np.all(np.diff(m) < 0))


def summary(cf: CrossFit) -> dict[str, Any]:
    """transfer.csv's cross-fitted columns: means over seeds with Student-t 95% intervals (crossfit.py)."""
    out: dict[str, Any] = {}
    mean, lo, hi, _ = t_interval(cf.transferred[:, -1])
    out.update(transferred_loss=mean, transferred_loss_lo=lo, transferred_loss_hi=hi)
    by_width = [t_interval(cf.transferred[:, j])[0] for j in range(cf.transferred.shape[1])]
    out["transferred_by_scale"] = "/".join(f"{v:.4f}" for v in by_width)
    out["wider_better"] = wider_is_better(np.array(by_width))
    out["retuned_loss"] = t_interval(cf.retuned)[0]
    mean, lo, hi, _ = t_interval(cf.regret)
    out.update(regret_oos=mean, regret_oos_lo=lo, regret_oos_hi=hi)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean, lo, hi, _ = t_interval(cf.regret / cf.retuned)
    out.update(regret_oos_rel=mean, regret_oos_rel_lo=lo, regret_oos_rel_hi=hi)
    out["transfer_log2_lr"] = t_interval(cf.transfer_lr)[0]
    out["crossfit"] = cf.crossfit
    return out


def seed_rows(key: tuple, union: np.ndarray, widths: np.ndarray, cf: CrossFit) -> list[list]:
    """seed_scores.csv rows: per seed and width the cross-fitted transferred loss; at the widest width also
    the re-tuned loss and the regret (the per-seed values the board pairs across recipes)."""
    rows = []
    for i, s in enumerate(union):
        if not np.isfinite(cf.transfer_lr[i]):
            continue
        for j, w in enumerate(widths):
            wide = j == len(widths) - 1
            rows.append([*key, int(s), int(w), wide, cf.transfer_lr[i], cf.transferred[i, j],
                         cf.retuned[i] if wide else np.nan, cf.regret[i] if wide else np.nan])
    return rows
