"""The 2-D search of one job (``wd_search: adaptive``): which (log2 lr, log2 wd) points to train next.

Pure Python and numpy, no torch and no analysis: line2d.py calls it between batches of runs, and the
replay test (tests/test_search2d.py) runs it offline on full grids of synthetic surfaces. A job is one
(workload, recipe, width) with all its seeds; its points come from two lattices, the profile's
``log2_lrs`` and the workload's ``log2_wds`` (the *base* wd lambda, exactly as ``--wd`` means it: each
recipe scales it with width by its own rule). It is the 1-D search (search.py) with a 2-D neighbourhood,
and shares its pieces: the fine lattice, the bracket of a point, the capped loss, the sensitivity window.

The policy, on the seed-mean capped loss (search.capped: a diverged run counts as its initial loss):
1. start at the lattice point nearest the predicted optimum, with its neighbourhood;
2. while the argmin (over the lattice points) has an untried neighbour, train the neighbourhood: the
   search moves with the argmin until it is bracketed in both directions, or stops at the lattice's edge
   (the fit flags that axis as an edge, fit2d.py);
3. then the points the metrics read: at every width but the tuning width the lattice points bracketing
   the *transferred* (lr, wd) (the tuning width's fitted optimum, fit2d.optimum: the 2x2 cell around it,
   so the loss there is interpolated, never extrapolated); at the widest width the lr sensitivity's
   window in the argmin's wd row (fit.SENSITIVITY_OCTAVES); back to 2 if one of them became the argmin;
4. with ``refine_lr`` / ``refine_wd`` (octaves), steps 2-3 again on the fine lattices (search.fine_lattice
   on each axis), around the argmin of every point tried. An argmin on an edge stays one.

The neighbourhood (``pattern``) is the 3x3 square (8 neighbours) by default. The "+" pattern (4
neighbours) trains fewer points per step but stops wherever the argmin beats its axis neighbours, which a
diagonal valley (the loss depends much on lr x wd, fit2d.py) fools; the replay test measures both (its
printout; docs/design.md §6): the square finds the full grid's optimum on every surface with 18.4 points a
job (of 168), the "+" 11.1 points but up to 0.69 octave off.

The prediction: the tuning (base) width starts at (``start_lr``, ``start_wd``) if given, else the
lattices' middles; every wider width at the previous width's argmin moved, on each axis, by the drift
seen so far (octaves per doubling, times the doublings to this width).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import product
from typing import Any

from transferbench import fit2d, search
from transferbench.fit import SENSITIVITY_OCTAVES

Point = tuple[float, float]  # (log2 lr, log2 wd)
_EPS = 1e-9
PATTERNS = ("square", "plus")


@dataclass(frozen=True)
class Plan2D:
    """What one job's 2-D search needs to know besides its own losses."""

    lrs: tuple[float, ...]  # sorted log2 lr lattice
    wds: tuple[float, ...]  # sorted log2 wd lattice
    start: Point  # predicted optimum
    transfer: Point | None = None  # the transferred (log2 lr, log2 wd); None at the tuning width
    widest: bool = False  # add the lr sensitivity's window
    refine_lr: float = 0.0  # octaves between fine lrs near the optimum (0: the lattice only)
    refine_wd: float = 0.0  # likewise in wd
    pattern: str = "square"

    def __post_init__(self) -> None:
        if self.pattern not in PATTERNS:
            raise ValueError(f"pattern: {self.pattern!r} is not one of {', '.join(PATTERNS)}")


def make_plan(lrs: tuple[float, ...], wds: tuple[float, ...], width: int, previous: Mapping[str, Any] | None,
              tuning: Mapping[str, Any] | None, widest: bool, start: tuple[float | None, float | None] = (None, None),
              refine_lr: float = 0.0, refine_wd: float = 0.0, pattern: str = "square") -> Plan2D:
    """The plan of one job: ``previous`` and ``tuning`` are the manifest "line" sections of the next narrower
    width and of the tuning width (None at the tuning width itself)."""
    lrs, wds = tuple(sorted(lrs)), tuple(sorted(wds))
    opt = tuning.get("fitted_opt") if tuning else None
    transfer = None if opt is None else (float(opt[0]), float(opt[1]))
    return Plan2D(lrs, wds, predict_start(lrs, wds, width, previous, start), transfer=transfer, widest=widest,
                  refine_lr=float(refine_lr), refine_wd=float(refine_wd), pattern=pattern)


def predict_start(lrs: tuple[float, ...], wds: tuple[float, ...], width: int, previous: Mapping[str, Any] | None,
                  start: tuple[float | None, float | None] = (None, None)) -> Point:
    """Where a job starts: ``start`` (or the lattices' middles) at the first width; else the previous
    width's argmin plus its drift estimate times the doublings from the previous width to this one."""
    if previous is None:
        return tuple(float(s) if s is not None else (lat[0] + lat[-1]) / 2  # type: ignore[return-value]
                     for s, lat in zip(start, (lrs, wds), strict=True))
    doublings = math.log2(width / search.scale_of(previous))
    drift = previous.get("drift") or (0.0, 0.0)
    best = previous["argmin"]
    return (float(best[0]) + float(drift[0]) * doublings, float(best[1]) + float(drift[1]) * doublings)


def drift_estimate(previous: Mapping[str, Any] | None, width: int, best: Point) -> Point:
    """Octaves per doubling of width, per axis, from the previous width's argmin to this one ((0, 0) first)."""
    if previous is None:
        return (0.0, 0.0)
    doublings = math.log2(width / search.scale_of(previous))
    return ((best[0] - float(previous["argmin"][0])) / doublings, (best[1] - float(previous["argmin"][1])) / doublings)


def lattices(plan: Plan2D) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Every lr and every wd the job may train: the fine lattices (the lattices themselves unrefined)."""
    return search.fine_lattice(plan.lrs, plan.refine_lr), search.fine_lattice(plan.wds, plan.refine_wd)


def next_points(plan: Plan2D, observed: Mapping[Point, float]) -> list[Point]:
    """The points to train next (empty when the job is done), given the seed-mean capped loss so far."""
    # The lattice search sees the lattice points only, as in search.py: a fine point never moves its argmin.
    on_lattice = {p: v for p, v in observed.items() if _on(plan.lrs, p[0]) and _on(plan.wds, p[1])}
    todo = _step(plan, plan.lrs, plan.wds, on_lattice, observed, first=True)
    if todo or (plan.refine_lr <= 0 and plan.refine_wd <= 0):
        return todo
    return _step(plan, *lattices(plan), observed, observed, first=False)


def fitted_optimum(observed: Mapping[Point, float]) -> tuple[Point, tuple[bool, bool]]:
    """((log2 lr, log2 wd), (lr edge, wd edge)) as fit2d.optimum reads this surface."""
    x, y, ex, ey = fit2d.optimum(observed)
    return (x, y), (ex, ey)


def argmin(observed: Mapping[Point, float]) -> Point:
    return fit2d.argmin2d(observed)


def _on(values: Any, x: float) -> bool:
    return any(abs(x - v) < _EPS for v in values)


def _tried(point: Point, tried: Mapping[Point, float]) -> bool:
    return any(abs(point[0] - a) < _EPS and abs(point[1] - b) < _EPS for a, b in tried)


def _nearest(values: tuple[float, ...], x: float) -> int:
    return min(range(len(values)), key=lambda i: (abs(values[i] - x), i))  # ties -> the lower value


def _neighbourhood(plan: Plan2D, xs: tuple[float, ...], ys: tuple[float, ...], i: int, j: int) -> list[Point]:
    """The point (i, j) and its neighbours on the (xs, ys) lattice, clipped to it."""
    steps = [(a, b) for a, b in product((-1, 0, 1), repeat=2) if plan.pattern == "square" or a == 0 or b == 0]
    return [(xs[i + a], ys[j + b]) for a, b in steps if 0 <= i + a < len(xs) and 0 <= j + b < len(ys)]


def _new(points: list[Point], tried: Mapping[Point, float]) -> list[Point]:
    return sorted({p for p in points if not _tried(p, tried)})


def _step(plan: Plan2D, xs: tuple[float, ...], ys: tuple[float, ...], seen: Mapping[Point, float],
          tried: Mapping[Point, float], first: bool) -> list[Point]:
    """Steps 1-3 of the module docstring on the (xs, ys) lattice; ``seen`` are the points whose argmin
    leads (the lattice's own at first), ``tried`` every point trained."""
    if not any(math.isfinite(v) for v in seen.values()):
        if not first:
            return []
        return _new(_neighbourhood(plan, xs, ys, _nearest(xs, plan.start[0]), _nearest(ys, plan.start[1])), tried)
    bx, by = fit2d.argmin2d(seen)
    i, j = _nearest(xs, bx), _nearest(ys, by)
    todo = _new(_neighbourhood(plan, xs, ys, i, j), tried)
    return todo or _new(_read_points(plan, xs, ys, (xs[i], ys[j])), tried)


def _read_points(plan: Plan2D, xs: tuple[float, ...], ys: tuple[float, ...], best: Point) -> list[Point]:
    """The points the metrics read: the transferred point's cell (regret and wider-is-better interpolate
    the loss there) and, at the widest width, the lr sensitivity's window in the argmin's wd row."""
    wanted: list[Point] = []
    if plan.transfer is not None and all(math.isfinite(t) for t in plan.transfer):
        wanted += list(product(search.bracket(xs, plan.transfer[0]), search.bracket(ys, plan.transfer[1])))
    if plan.widest:
        wanted += [(x, best[1]) for x in xs if abs(x - best[0]) <= SENSITIVITY_OCTAVES + _EPS]
    return wanted
