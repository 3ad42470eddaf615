"""The local fit of a loss surface over (log2 lr, log2 wd): its optimum and edge flags.

numpy only (it imports nothing of ours but fit.py), so that the 2-D search (search2d.py, on the trainer's
path) and the analysis can read the same optimum off the same points. A point is ``(log2 lr, log2 wd)``.

The fit is the 2-D analogue of fit.parabola_optimum (docs/design.md §6): around the argmin of the tried
points, the *local box* spans the nearest tried neighbour on each side along each axis (in the argmin's
row and column); inside it, a full quadratic
    L(u, v) = c + b1 u + b2 v + a11 u^2 + a12 u v + a22 v^2,   u = x - x0, v = y - y0
is fitted by least squares (6 coefficients, so at least 6 points: the 3x3 neighbourhood the search trains
gives 9). Its vertex, -H^-1 b with H = [[2 a11, a12], [a12, 2 a22]], is the optimum when H is positive
definite, clamped to the box. The cross term matters: under AdamW the loss depends much on lr x wd (the
weight-decay timescale, [Kos25] arXiv 2510.19093 §3; [Fan25] arXiv 2510.15262 Eq. 3, eta/lambda), so its
valley runs diagonally in (log2 lr, log2 wd), where two axis parabolas through the argmin find the
conditional minima, not the joint one. Otherwise (too few points, a saddle) each coordinate is the vertex
of the parabola through the argmin and its two neighbours along that axis (fit.parabola_optimum).
An axis on which the argmin has no tried neighbour on one side is an *edge*: the optimum's coordinate is
the argmin's, flagged, as on a 1-D curve.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from transferbench.fit import parabola_optimum

Point = tuple[float, float]
_EPS = 1e-9


def argmin2d(observed: Mapping[Point, float]) -> Point:
    """The tried point with the lowest finite loss (ties -> the lower lr, then the lower wd)."""
    pts = sorted(p for p, y in observed.items() if math.isfinite(y))
    if not pts:
        raise ValueError("no finite loss on the surface")
    return pts[int(np.argmin([observed[p] for p in pts]))]


def _sides(values: list[float], at: float) -> tuple[float | None, float | None]:
    """The nearest of ``values`` below and above ``at`` (None where there is none)."""
    lo = [v for v in values if v < at - _EPS]
    hi = [v for v in values if v > at + _EPS]
    return (max(lo) if lo else None), (min(hi) if hi else None)


def local_box(observed: Mapping[Point, float], best: Point) -> tuple[tuple[float | None, float | None], ...]:
    """((lr below, lr above), (wd below, wd above)): the argmin's nearest tried neighbours along each axis."""
    bx, by = best
    row = [x for (x, y), v in observed.items() if abs(y - by) < _EPS and math.isfinite(v)]
    col = [y for (x, y), v in observed.items() if abs(x - bx) < _EPS and math.isfinite(v)]
    return _sides(row, bx), _sides(col, by)


def optimum(observed: Mapping[Point, float]) -> tuple[float, float, bool, bool]:
    """(log2 lr*, log2 wd*, lr edge, wd edge) of a surface: the module docstring's local quadratic fit."""
    best = argmin2d(observed)
    (xl, xr), (yl, yr) = local_box(observed, best)
    edge_x, edge_y = xl is None or xr is None, yl is None or yr is None
    bx, by = best
    box_x = (bx if xl is None else xl, bx if xr is None else xr)
    box_y = (by if yl is None else yl, by if yr is None else yr)
    joint = None if edge_x or edge_y else _quadratic_vertex(observed, best, box_x, box_y)
    if joint is not None:
        return joint[0], joint[1], False, False
    return _axis_vertex(observed, best, 0, edge_x), _axis_vertex(observed, best, 1, edge_y), edge_x, edge_y


def _in_box(observed: Mapping[Point, float], box_x: Point, box_y: Point) -> list[tuple[float, float, float]]:
    return [(x, y, v) for (x, y), v in observed.items() if math.isfinite(v)
            and box_x[0] - _EPS <= x <= box_x[1] + _EPS and box_y[0] - _EPS <= y <= box_y[1] + _EPS]


def _quadratic_vertex(observed: Mapping[Point, float], best: Point, box_x: Point, box_y: Point) -> Point | None:
    """The vertex of the least-squares quadratic over the box's points, clamped to the box; None when it is
    not determined (fewer than 6 points, rank-deficient) or not a minimum (H not positive definite)."""
    pts = _in_box(observed, box_x, box_y)
    if len(pts) < 6:
        return None
    u = np.array([p[0] - best[0] for p in pts])
    v = np.array([p[1] - best[1] for p in pts])
    design = np.column_stack([np.ones_like(u), u, v, u * u, u * v, v * v])
    if np.linalg.matrix_rank(design) < 6:
        return None
    coef = np.linalg.lstsq(design, np.array([p[2] for p in pts]), rcond=None)[0]
    _, b1, b2, a11, a12, a22 = coef
    hess = np.array([[2 * a11, a12], [a12, 2 * a22]])
    if hess[0, 0] <= 0 or np.linalg.det(hess) <= 0:  # a saddle or a maximum: no local optimum here
        return None
    du, dv = -np.linalg.solve(hess, np.array([b1, b2]))
    return (float(np.clip(best[0] + du, *box_x)), float(np.clip(best[1] + dv, *box_y)))


def _axis_vertex(observed: Mapping[Point, float], best: Point, axis: int, edge: bool) -> float:
    """The parabola vertex along one axis through the argmin (its row or column); the argmin's own
    coordinate at an edge."""
    if edge:
        return float(best[axis])
    other = best[1 - axis]
    line = {p[axis]: v for p, v in observed.items() if abs(p[1 - axis] - other) < _EPS and math.isfinite(v)}
    xs = np.array(sorted(line), float)
    return float(parabola_optimum(xs, np.array([line[x] for x in xs], float))[0])
