"""The 2-D lr x wd search (search2d.py, fit2d.py): replayed on full grids of synthetic surfaces with a known
optimum that drifts with width, it finds the full grid's 2-D optimum (within half an octave on each axis)
with a stated fraction of the runs; on a surface whose optimum lies beyond the lattice it stops at the edge
and flags it as the full grid does; and its steps, unit by unit.

The surfaces: L = c(d) + 0.08 g(1.6, u + 0.7 v) + 0.03 g(1.0, v), u and v the octaves from the optimum in
lr and wd, g(k, t) = (e^(kt) - kt - 1) / k^2 (t^2 / 2 near 0, steeper on the high side, as real lr curves).
The first term is a diagonal valley (the loss depends much on lr x wd, the decay timescale), the second
sets the wd along it, more weakly: the shape that fools an axis-by-axis search.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache
from itertools import product

import numpy as np
import pytest

from transferbench import search, search2d

LRS = tuple(float(x) for x in range(-12, -1))  # 11 lrs, 1 octave apart
WDS = tuple(float(x) for x in range(-4, 4))  # 8 wds
WIDTHS, SEEDS = (32, 64, 128), (0, 1, 2)


def g(k: float, t: float) -> float:
    return (math.exp(k * t) - k * t - 1) / k**2


def surface(width: int, seed: int, o: tuple[float, float], drift: tuple[float, float]) -> Callable:
    """The seed's loss at (log2 lr, log2 wd), optimum o + drift x doublings from width 32 (+ seed jitter)."""
    m = math.log2(width / 32)
    ox, oy = o[0] + drift[0] * m + 0.05 * (seed - 1), o[1] + drift[1] * m - 0.05 * (seed - 1)

    def loss(x: float, y: float) -> float:
        u, v = x - ox, y - oy
        return 3.0 - 0.1 * m + 0.01 * seed + 0.08 * g(1.6, u + 0.7 * v) + 0.03 * g(1.0, v)

    return loss


def mean_surface(width: int, o: tuple[float, float], drift: tuple[float, float]) -> Callable:
    fs = [surface(width, s, o, drift) for s in SEEDS]
    return lambda p: float(np.mean([f(*p) for f in fs]))


def true_optimum(width: int, o: tuple[float, float], drift: tuple[float, float]) -> tuple[float, float]:
    m = math.log2(width / 32)
    return o[0] + drift[0] * m, o[1] + drift[1] * m  # the seed jitters cancel in the mean


@cache  # several tests replay the same scenarios: the results are read, never changed
def replay(o: tuple[float, float], drift: tuple[float, float], refine: tuple[float, float] = (0.5, 0.0),
           pattern: str = "square", start: tuple[float | None, float | None] = (None, None)) -> dict[int, dict]:
    """The search as the DAG runs it (tuning width first, each wider width from the previous one's optimum),
    and the full grid on the same fine lattices, per width; ``refine`` (lr, wd) defaults to the wd-transfer
    profile's (lr_refine 0.5, wd_refine 0)."""
    out: dict[int, dict] = {}
    previous = tuning = None
    for w in WIDTHS:
        f = mean_surface(w, o, drift)
        plan = search2d.make_plan(LRS, WDS, w, previous, tuning, widest=w == WIDTHS[-1], start=start,
                                  refine_lr=refine[0], refine_wd=refine[1], pattern=pattern)
        seen: dict = {}
        while todo := search2d.next_points(plan, seen):
            seen.update({p: f(p) for p in todo})
        xs, ys = search2d.lattices(plan)
        full = {p: f(p) for p in product(xs, ys)}
        best = search2d.argmin(seen)
        previous = {"width": w, "argmin": best, "drift": search2d.drift_estimate(previous, w, best)}
        fitted = search2d.fitted_optimum(seen)
        if tuning is None:
            tuning = {**previous, "fitted_opt": fitted[0]}
        out[w] = {"seen": seen, "full": full, "fitted": fitted, "grid": search2d.fitted_optimum(full), "plan": plan}
    return out


SCENARIOS = [((-7.0, 0.0), (-0.5, 0.25)), ((-6.3, -1.4), (-1.0, 0.5)), ((-8.2, 1.3), (0.0, -0.5)),
             ((-5.6, 0.6), (-0.3, 0.0)), ((-7.4, -0.7), (0.25, 0.75))]


def errors(res: dict[int, dict]) -> tuple[float, float]:
    """Max over widths of |search - full grid| optimum, in lr and in wd (octaves)."""
    return (max(abs(r["fitted"][0][0] - r["grid"][0][0]) for r in res.values()),
            max(abs(r["fitted"][0][1] - r["grid"][0][1]) for r in res.values()))


def test_the_search_finds_the_full_grids_2d_optimum_with_far_fewer_runs() -> None:
    counts, full, worst = [], [], [0.0, 0.0]
    for o, drift in SCENARIOS:
        res = replay(o, drift)
        ex, ey = errors(res)
        worst = [max(worst[0], ex), max(worst[1], ey)]
        for w, r in res.items():
            assert r["fitted"][1] == r["grid"][1] == (False, False)
            tx, ty = true_optimum(w, o, drift)
            assert abs(r["fitted"][0][0] - tx) <= 0.5 and abs(r["fitted"][0][1] - ty) <= 0.5, (o, drift, w)
        counts += [len(r["seen"]) for r in res.values()]
        full += [len(r["full"]) for r in res.values()]
    print(f"2-D search: {np.mean(counts):.1f} points per job (max {max(counts)}) against {full[0]} on the full "
          f"grid of the same lattices (lr every 0.5 octave, wd every octave) and {len(LRS) * len(WDS)} on the "
          f"1-octave grid; max |search - grid| optimum: lr {worst[0]:.3f}, wd {worst[1]:.3f} octaves")
    # Measured: 18.4 points per job (max 23) against 168 and 88; the optima identical (0.000, 0.000).
    assert worst[0] <= 0.5 and worst[1] <= 0.5
    assert max(counts) <= 0.15 * full[0] and np.mean(counts) <= 0.25 * len(LRS) * len(WDS)


def test_the_plus_pattern_costs_fewer_runs_but_is_fooled_by_the_diagonal_valley() -> None:
    """Why the square is the default: on the same surfaces the "+" stops off the optimum."""
    worst, runs = {}, {}
    for pattern in search2d.PATTERNS:
        res = [replay(o, d, pattern=pattern) for o, d in SCENARIOS]
        worst[pattern] = max(max(errors(r)) for r in res)
        runs[pattern] = np.mean([len(x["seen"]) for r in res for x in r.values()])
    print("points per job:", runs, "max optimum error (octaves):", worst)
    assert runs["plus"] < runs["square"] and worst["square"] <= 0.5 < worst["plus"]


def test_the_wd_refinement_is_cheap_and_sharpens_the_wd_optimum() -> None:
    runs, err = {}, {}
    for refine in ((0.5, 0.5), (0.5, 0.0)):  # wd_refine 0.5 against the profile's 0
        res = [replay(o, d, refine=refine) for o, d in SCENARIOS]
        runs[refine] = np.mean([len(x["seen"]) for r in res for x in r.values()])
        err[refine] = max(abs(x["fitted"][0][1] - true_optimum(w, o, d)[1])
                          for r, (o, d) in zip(res, SCENARIOS) for w, x in r.items())
    print("points per job by (lr_refine, wd_refine):", runs, "max |wd - true wd*|:", err)
    assert err[(0.5, 0.5)] < err[(0.5, 0.0)]


def test_an_optimum_beyond_the_lattice_is_an_edge_as_on_the_full_grid() -> None:
    res = replay((-7.0, 5.0), (-0.5, 0.0))  # the wd optimum at 2^5, above the lattice's 2^3
    for r in res.values():
        assert r["fitted"][1] == r["grid"][1] == (False, True)  # lr resolved, wd an edge
        assert r["fitted"][0][1] == r["grid"][0][1] == WDS[-1]
        assert abs(r["fitted"][0][0] - r["grid"][0][0]) <= 0.5
    counts = [len(r["seen"]) for r in res.values()]
    print(f"edge surface: points per job {counts} against {len(res[32]['full'])} on the full grid")
    # Measured: [28, 10, 12]: the tuning width walks 4 octaves in wd from the lattice's middle to its edge.
    assert max(counts) <= 0.2 * len(res[32]["full"])


def test_a_wider_width_starts_where_the_drift_points_and_that_saves_runs() -> None:
    o, drift = (-4.0, 2.0), (-1.0, 0.5)  # far from the lattices' middle (-7, -0.5)
    res = replay(o, drift)
    first = res[WIDTHS[0]]["plan"]
    assert first.start == ((LRS[0] + LRS[-1]) / 2, (WDS[0] + WDS[-1]) / 2) and first.transfer is None
    later = res[WIDTHS[-1]]["plan"]
    assert later.transfer == res[WIDTHS[0]]["fitted"][0] and later.widest
    # the third width starts from the second's argmin plus the drift seen between the first two
    a0, a1 = (search2d.argmin(res[w]["seen"]) for w in WIDTHS[:2])
    assert later.start == (2 * a1[0] - a0[0], 2 * a1[1] - a0[1])
    # starting every width at the lattices' middle instead (no previous width) trains more
    blind = 0
    for w in WIDTHS[1:]:
        plan = search2d.make_plan(LRS, WDS, w, None, {"fitted_opt": res[WIDTHS[0]]["fitted"][0]}, w == WIDTHS[-1],
                                  refine_lr=0.5)
        seen: dict = {}
        while todo := search2d.next_points(plan, seen):
            seen.update({p: mean_surface(w, o, drift)(p) for p in todo})
        blind += len(seen)
    informed = sum(len(res[w]["seen"]) for w in WIDTHS[1:])
    print(f"wider widths' points: {informed} from the drift's prediction, {blind} from the lattices' middle")
    assert informed < 0.7 * blind  # measured 35 against 58


def test_the_transferred_point_is_bracketed_so_it_is_read_without_extrapolation() -> None:
    for o, drift in SCENARIOS:
        res = replay(o, drift)
        tx, ty = res[WIDTHS[0]]["fitted"][0]
        for w in WIDTHS[1:]:
            xs, ys = search2d.lattices(res[w]["plan"])
            cell = product(search.bracket(xs, tx), search.bracket(ys, ty))
            assert all(p in res[w]["seen"] for p in cell)


# -- the steps, unit by unit --------------------------------------------------------------------------------
L3, W3 = (-3.0, -2.0, -1.0, 0.0), (-1.0, 0.0, 1.0)


def test_the_first_batch_is_the_start_and_its_neighbourhood() -> None:
    assert search2d.next_points(search2d.Plan2D(L3, W3, (-2.2, 0.1)), {}) == sorted(product((-3.0, -2.0, -1.0), W3))
    plus = search2d.Plan2D(L3, W3, (-2.0, 0.0), pattern="plus")
    assert search2d.next_points(plus, {}) == [(-3.0, 0.0), (-2.0, -1.0), (-2.0, 0.0), (-2.0, 1.0), (-1.0, 0.0)]
    corner = search2d.Plan2D(L3, W3, (5.0, -9.0))  # clipped to the lattice
    assert search2d.next_points(corner, {}) == [(-1.0, -1.0), (-1.0, 0.0), (0.0, -1.0), (0.0, 0.0)]
    with pytest.raises(ValueError, match="pattern"):
        search2d.Plan2D(L3, W3, (0.0, 0.0), pattern="diamond")


def test_the_search_moves_with_the_argmin_until_bracketed_in_both_directions() -> None:
    plan = search2d.Plan2D(L3, W3, (-2.0, 0.0))
    seen = {p: 1.0 for p in product((-3.0, -2.0, -1.0), W3)}
    seen[(-1.0, 1.0)] = 0.5  # the corner is lowest: go on beyond it, in lr (wd is at its edge)
    assert search2d.next_points(plan, seen) == [(0.0, 0.0), (0.0, 1.0)]
    seen.update({(0.0, 0.0): 0.9, (0.0, 1.0): 0.8})
    assert search2d.next_points(plan, seen) == []  # bracketed in lr, the wd lattice's edge above
    assert search2d.fitted_optimum(seen)[1] == (False, True)
    # a diverged run counts as its initial loss, so the search turns back from it
    assert search.capped({"init_loss": 4.0, "eval_loss": None, "diverged": True}) == 4.0


def test_the_refinement_and_the_read_points() -> None:
    seen = {p: 1.0 + (p[0] + 2) ** 2 + p[1] ** 2 for p in product((-3.0, -2.0, -1.0), W3)}
    assert search2d.next_points(search2d.Plan2D(L3, W3, (-2.0, 0.0)), seen) == []
    fine = search2d.Plan2D(L3, W3, (-2.0, 0.0), refine_lr=0.5, refine_wd=0.5)
    assert search2d.next_points(fine, seen) == sorted(
        p for p in product((-2.5, -2.0, -1.5), (-0.5, 0.0, 0.5)) if p != (-2.0, 0.0))
    lr_only = search2d.Plan2D(L3, W3, (-2.0, 0.0), refine_lr=0.5)
    assert search2d.next_points(lr_only, seen) == [(-2.5, -1.0), (-2.5, 0.0), (-2.5, 1.0), (-1.5, -1.0),
                                                   (-1.5, 0.0), (-1.5, 1.0)]
    # the transferred point's lattice cell first, then (refined) its fine cell
    moved = search2d.Plan2D(L3, W3, (-2.0, 0.0), transfer=(-0.4, 0.7))
    assert search2d.next_points(moved, seen) == [(0.0, 0.0), (0.0, 1.0)]
    widest = search2d.Plan2D(L3, W3, (-2.0, 0.0), widest=True, refine_lr=0.5)
    done = {**seen, **{p: 5.0 for p in product((-2.5, -1.5), W3)}}
    assert search2d.next_points(widest, done) == []  # the +-1 octave window is (-3 .. -1) at wd 0: tried
    assert search2d.predict_start(L3, W3, 64, {"width": 32, "argmin": [-2.0, 0.0], "drift": [-0.5, 1.0]}) == (-2.5, 1.0)
