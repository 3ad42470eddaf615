"""The adaptive lr search of one sweep line (``lr_search: adaptive``): which lrs to train next.

Pure Python and numpy, no torch and no analysis (its curve fits come from fit.py, which the metrics share):
the trainer calls it between batches of runs, and the replay test
(tests/test_search.py) runs it offline on the committed full-grid runs table. A line is one
(workload, recipe, width, wd) with all its seeds; its lrs come from the profile's ``log2_lrs``, which
are the *lattice* (and its bounds) rather than the list of runs.

The policy, on the seed-mean capped loss (metrics.capped_loss: a diverged run counts as its initial
loss, so divergence is a high loss, never a missing one):
1. start at the lattice point nearest the predicted optimum, with its two neighbours;
2. while the argmin has an untried neighbour, train it (step outwards until the loss rises on both
   sides, or the lattice ends: then the metrics flag the optimum as an edge, as on a full grid);
3. then the points the metrics read, so that they agree with a full grid's:
   - at every width but the tuning width, the lattice points bracketing the *transferred* lr (the
     tuning width's fitted optimum): regret and wider-is-better interpolate the loss there;
   - at the widest width, every lattice point within fit.SENSITIVITY_OCTAVES of the argmin (the
     lr sensitivity's window);
   and back to 2 if one of them became the argmin;
4. with ``lr_refine`` (octaves, e.g. 0.5), refine on the *fine lattice* (:func:`fine_lattice`: the lattice
   plus the points between neighbours at that spacing, inside its bounds): the fine neighbours of the
   argmin until both are tried (a fine argmin asks for its own), then the fine points the metrics read
   (the transferred lr's fine bracket; the sensitivity window's fine points at the widest width), again
   if one of them became the argmin. Steps 1-3 see the lattice points only. On a 1-octave lattice the
   parabola through the argmin and its neighbours was far from local (a recipe scored 0.00% regret on
   the grid and 3.18% from the parabola); half an octave makes it local (tests/test_search.py).
   An argmin on the lattice's edge stays an edge: nothing is tried beyond the bounds.

The prediction: the tuning (base) width starts at ``log2_lr_start`` if the profile gives one, else
the lattice's middle; every wider width starts at the previous width's argmin moved by the drift seen
so far (octaves per doubling, times the doublings to this width). Widths run in order, so a line
reads the manifest of the previous width (and of the tuning width) before it starts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from transferbench.fit import SENSITIVITY_OCTAVES, parabola_optimum

_EPS = 1e-9


@dataclass(frozen=True)
class Plan:
    """What one line's search needs to know besides its own losses."""

    lattice: tuple[float, ...]  # sorted log2 lrs the search may train
    start: float  # predicted optimum (log2 lr)
    transfer: float | None = None  # the transferred log2 lr (None at the tuning width)
    widest: bool = False  # add the sensitivity window
    patience: int = 1  # lattice steps past the argmin that must be tried on each side
    refine: float = 0.0  # octaves between fine points near the optimum (0: the lattice only)


def scale_of(line: Mapping[str, Any]) -> float:
    """A line manifest's value on its scale axis (``scale``; ``width`` in a manifest of before the axes)."""
    return float(line["scale"] if "scale" in line else line["width"])


def make_plan(lattice: tuple[float, ...], width: int, previous: Mapping[str, Any] | None,
              tuning: Mapping[str, Any] | None, widest: bool, start: float | None = None,
              refine: float = 0.0) -> Plan:
    """The plan of one line: ``previous`` and ``tuning`` are the lines (manifest "line" sections) of the
    next narrower width and of the tuning width, None at the tuning width itself."""
    lattice = tuple(sorted(lattice))
    opt = tuning.get("fitted_opt") if tuning else None
    # Patience 2 at the tuning width: its optimum is the transferred lr, and a curve with a second,
    # lower dip two octaves away (resnet/standard at d=8 in the full-grid reference) fooled patience 1.
    return Plan(lattice, predict_start(lattice, width, previous, start),
                transfer=None if opt is None else float(opt), widest=widest, patience=1 if tuning else 2,
                refine=float(refine))


def fine_lattice(lattice: tuple[float, ...], step: float) -> tuple[float, ...]:
    """The lattice plus, between each pair of neighbours, the points ``step`` octaves apart from the lower
    one (the lattice itself when step is 0). Never beyond the lattice's bounds."""
    lattice = tuple(sorted(lattice))
    if step <= 0:
        return lattice
    out: list[float] = []
    for lo, hi in zip(lattice, lattice[1:]):
        out.append(lo)  # the lattice's own values exactly: line.py keys its runs by them
        k = 1
        while lo + k * step < hi - _EPS:
            out.append(round(lo + k * step, 12))  # 12 digits: 0.2 steps give -7.8, not -7.800000000000001
            k += 1
    return (*out, lattice[-1])


def capped(summary: Mapping[str, Any]) -> float:
    """The loss the metrics use for one run: min(eval_loss, init_loss), init_loss if diverged."""
    l0 = float(summary["init_loss"])
    loss = summary.get("eval_loss")
    loss = float("nan") if loss is None else float(loss)
    if summary.get("diverged") or not math.isfinite(loss):
        return l0
    return min(loss, l0)


def _nearest(lattice: tuple[float, ...], x: float) -> int:
    return int(np.argmin([abs(v - x) for v in lattice]))  # ties -> the lower lr


def argmin(observed: Mapping[float, float]) -> float:
    """The tried lr with the lowest loss (ties -> the lower lr, as np.argmin on a sorted grid)."""
    xs = sorted(x for x, y in observed.items() if math.isfinite(y))
    return xs[int(np.argmin([observed[x] for x in xs]))]


def bracket(lattice: tuple[float, ...], at: float) -> list[float]:
    """The lattice points bracketing ``at`` (one point if ``at`` is on the lattice; clamped to it)."""
    if at <= lattice[0]:
        return [lattice[0]]
    if at >= lattice[-1]:
        return [lattice[-1]]
    hi = next(i for i, v in enumerate(lattice) if v >= at - _EPS)
    return [lattice[hi]] if abs(lattice[hi] - at) < _EPS else [lattice[hi - 1], lattice[hi]]


def next_lrs(plan: Plan, observed: Mapping[float, float]) -> list[float]:
    """The lrs to train next (empty when the line is done), given the seed-mean capped loss so far."""
    lat = plan.lattice
    tried = set(observed)
    # The lattice search sees the lattice points only: a fine point never moves its argmin, so the
    # refinement cannot undo what the lattice search settled (and with refine 0 nothing changes).
    todo = _lattice_step(plan, {x: y for x, y in observed.items() if _on(lat, x)}, tried)
    if todo or plan.refine <= 0:
        return todo
    return _refine_step(plan, observed, tried)


def _new(xs: list[float], tried: set[float]) -> list[float]:
    return sorted({x for x in xs if not _on(tried, x)})


def _on(points: Any, x: float) -> bool:
    return any(abs(x - t) < _EPS for t in points)


def _lattice_step(plan: Plan, observed: Mapping[float, float], tried: set[float]) -> list[float]:
    """Steps 1-3 of the module docstring on the lattice."""
    lat = plan.lattice
    if not any(math.isfinite(y) for y in observed.values()):
        s = _nearest(lat, plan.start)
        return _new([lat[i] for i in (s - 1, s, s + 1) if 0 <= i < len(lat)], tried)
    i = _nearest(lat, argmin(observed))
    reach = range(i - plan.patience, i + plan.patience + 1)
    todo = _new([lat[j] for j in reach if 0 <= j < len(lat) and j != i], tried)
    if todo:
        return todo
    return _new(_read_points(plan, lat, lat[i]), tried)


def _refine_step(plan: Plan, observed: Mapping[float, float], tried: set[float]) -> list[float]:
    """Step 4 on the fine lattice: the argmin's fine neighbours, then the fine points the metrics read."""
    if not any(math.isfinite(y) for y in observed.values()):
        return []
    fine = fine_lattice(plan.lattice, plan.refine)
    i = _nearest(fine, argmin(observed))
    todo = _new([fine[j] for j in (i - 1, i + 1) if 0 <= j < len(fine)], tried)
    return todo or _new(_read_points(plan, fine, fine[i]), tried)


def _read_points(plan: Plan, points: tuple[float, ...], best: float) -> list[float]:
    """The points of ``points`` the metrics read: the transferred lr's bracket (regret and wider-is-better
    interpolate the loss there) and, at the widest width, the sensitivity window around ``best``."""
    wanted: list[float] = []
    if plan.transfer is not None and math.isfinite(plan.transfer):
        wanted += bracket(points, plan.transfer)
    if plan.widest:
        wanted += [x for x in points if abs(x - best) <= SENSITIVITY_OCTAVES + _EPS]
    return wanted


def fitted_optimum(observed: Mapping[float, float]) -> tuple[float, bool]:
    """(log2 lr, edge) as fit.parabola_optimum sees this curve (the transferred lr at the tuning width)."""
    xs = np.array(sorted(observed), float)
    opt, _, edge = parabola_optimum(xs, np.array([observed[x] for x in xs], float))
    return float(opt), bool(edge)


def predict_start(
    lattice: tuple[float, ...], width: int, previous: Mapping[str, Any] | None, start: float | None = None
) -> float:
    """Where a line starts: ``start`` (or the lattice middle) at the first width; else the previous
    width's argmin plus its drift estimate times the doublings from the previous width to this one."""
    if previous is None:
        return float(start) if start is not None else (lattice[0] + lattice[-1]) / 2
    doublings = math.log2(width / scale_of(previous))
    return float(previous["argmin"]) + float(previous.get("drift") or 0.0) * doublings


def drift_estimate(previous: Mapping[str, Any] | None, width: int, best: float) -> float:
    """Octaves per doubling of width between the previous width's argmin and this one's (0 at the first)."""
    if previous is None:
        return 0.0
    return (best - float(previous["argmin"])) / math.log2(width / scale_of(previous))
