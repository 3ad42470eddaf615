"""The numeric fits behind the transfer metrics (docs/design.md §6): the local parabola of a loss curve and
what is read off it (optimum, fitted minimum, loss at a given lr, regret), the least-squares slope, the lr
sensitivity and the wider-is-worse fraction.

numpy only, and no other transferbench import: the adaptive lr search (search.py) runs on the trainer's
path and must see the very curve fits the metrics use, without importing the analysis (pandas, the
bootstrap tables, the board). metrics.py re-exports these names for its callers and tests.
"""

from __future__ import annotations

import numpy as np


def _local_fit(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, int, tuple | None]:
    """Finite points of a curve, its argmin and, for an interior argmin, the parabola through the argmin
    and its two neighbours as (x0, x1, x2, y0, d01, a) in Newton form: p(x) = y0 + d01 (x - x0) +
    a (x - x0)(x - x1). None at a grid edge (or when the three points are collinear)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(y) == 0:
        return x, y, -1, None
    i = int(np.argmin(y))
    if i == 0 or i == len(y) - 1:
        return x, y, i, None
    (x0, x1, x2), (y0, y1, y2) = x[i - 1:i + 2], y[i - 1:i + 2]
    # Divided differences: a = f[x0,x1,x2], d01 = f[x0,x1].
    d01, d12 = (y1 - y0) / (x1 - x0), (y2 - y1) / (x2 - x1)
    a = (d12 - d01) / (x2 - x0)
    return x, y, i, ((x0, x1, x2, y0, d01, a) if a > 0 else None)


def _poly(fit: tuple, at: float) -> float:
    x0, x1, _, y0, d01, a = fit
    return float(y0 + d01 * (at - x0) + a * (at - x0) * (at - x1))


def parabola_optimum(x: np.ndarray, y: np.ndarray) -> tuple[float, float, bool]:
    """(x*, min y, edge) of a curve sampled on grid ``x`` (NaN = missing point), docs/design.md.

    x* is the vertex of the parabola through the argmin and its two neighbours, clamped to the
    neighbours' range; if the argmin has no neighbour on one side (grid edge), x* is that grid value and
    edge is True. min y is the observed grid minimum (a loss some run reached, citable from runs.csv);
    the parabola's own minimum is :func:`fitted_min`. Through three points, p(x) = a x^2 + b x + c has
    its vertex at -b / 2a.
    """
    xs, ys, i, fit = _local_fit(x, y)
    if i < 0:
        return np.nan, np.nan, False
    if fit is None:
        return float(xs[i]), float(ys[i]), i == 0 or i == len(ys) - 1
    return _vertex(fit), float(ys[i]), False


def _vertex(fit: tuple) -> float:
    x0, x1, x2, _, d01, a = fit
    return float(np.clip(-(d01 - a * (x0 + x1)) / (2 * a), x0, x2))


def curve_optima(x: np.ndarray, curves: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """parabola_optimum over the last axis of (B, W, X) curves -> opt, min, edge, each (B, W)."""
    res = [[parabola_optimum(x, c) for c in row] for row in curves]
    arr = np.array(res, dtype=float).reshape(*curves.shape[:2], 3)
    return arr[..., 0], arr[..., 1], arr[..., 2] > 0


def fitted_min(x: np.ndarray, y: np.ndarray) -> float:
    """The local parabola's value at its vertex (the grid minimum at a grid edge): never above min y."""
    xs, ys, i, fit = _local_fit(x, y)
    if i < 0:
        return np.nan
    return float(ys[i]) if fit is None else min(_poly(fit, _vertex(fit)), float(ys[i]))


def regret_at(x: np.ndarray, y: np.ndarray, at: float) -> float:
    """Transfer regret of training at ``at``: fitted_loss(at) - fitted_min, both on the same local fit
    (so a transfer that lands on the optimum scores 0 whether or not the optimum is a grid point)."""
    return max(fitted_loss(x, y, at) - fitted_min(x, y), 0.0) if np.isfinite(at) else np.nan


def fitted_loss(x: np.ndarray, y: np.ndarray, at: float) -> float:
    """The loss curve at ``at`` as the metrics see it: the local parabola of :func:`parabola_optimum`
    inside the three points it goes through, piecewise-linear interpolation outside them (clamped to
    the grid). Both agree at the parabola's outer points, so the curve is continuous, and it is never
    below the fitted minimum. The regret evaluates both of its terms on this one curve, so a transfer
    that lands on the optimum scores 0 whether or not the optimum is a grid point."""
    xs, ys, i, fit = _local_fit(x, y)
    if i < 0 or not np.isfinite(at):
        return np.nan
    if fit is not None and fit[0] <= at <= fit[2]:
        return _poly(fit, at)
    return float(np.interp(at, xs, ys))


def slope(x: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of y on x over finite points (NaN with fewer than two distinct x)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(np.unique(x)) < 2:
        return np.nan
    xc = x - x.mean()
    return float((xc * (y - y.mean())).sum() / (xc**2).sum())


#: The lr sensitivity's window: every swept lr within this many octaves of the curve's argmin.
SENSITIVITY_OCTAVES = 1.0


def sensitivity(x: np.ndarray, y: np.ndarray, octaves: float = SENSITIVITY_OCTAVES) -> float:
    """lr sensitivity after Wortsman et al. 2023 (arXiv 2309.14322): mean of min(L, L0) - L* (y already
    capped) over the swept lrs within ``octaves`` of the argmin, not over the whole grid.

    A local version of theirs: what a factor-of-2 error in the lr costs, averaged with the optimum
    itself. It is a property of the loss curve rather than of how wide somebody's grid happened to be
    (Wortsman et al. average over their own fixed grid), and it is what the adaptive lr search trains
    anyway (search.py), so the definition is the same for a grid and for a search. A two-octave window
    would make the search train two more lrs at the widest, most expensive width: on the tiny profile's
    6-point llama lattice, nearly the full grid."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(y)
    x, y = x[ok], y[ok]
    if not len(y):
        return np.nan
    near = np.abs(x - x[np.argmin(y)]) <= octaves + 1e-9
    return float(np.mean(y[near] - y.min()))


def wider_worse_frac(widths: np.ndarray, losses: np.ndarray) -> float:
    """Fraction of width pairs (narrow, wide) in which the wider model has the higher loss."""
    w, y = np.asarray(widths, float), np.asarray(losses, float)
    ok = np.isfinite(y)
    w, y = w[ok], y[ok]
    pairs = [(i, j) for i in range(len(w)) for j in range(len(w)) if w[i] < w[j]]
    return float(np.mean([y[j] > y[i] for i, j in pairs])) if pairs else np.nan
