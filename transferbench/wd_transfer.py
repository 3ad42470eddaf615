"""Does the optimal weight decay transfer? The lr x wd analysis of one (workload, recipe) (docs/design.md §6).

Where a profile sweeps two or more positive weight decays (``wd`` is the *base* wd lambda: each recipe scales
it with width by its own rule, so a flat optimum means the rule transfers), the runs of one (workload,
recipe) form a loss surface per width over (log2 lr, log2 wd), NaN where nothing was trained (the 2-D search
trains only near the optimum). From it:

- **profile over lr**: at each wd, the loss at its own best lr, fit.fitted_min of that wd's lr curve (the
  local parabola's minimum, so a lattice that misses the lr optimum by half a step does not bias it), and
  that lr, fit.parabola_optimum;
- **optimal wd** (``optima_wd.csv``): fit.parabola_optimum of the profile over log2 wd (the same local
  parabola as the optimal lr, with its edge flag); the **2-D optimum** is (lr*(wd*), wd*), lr*(wd) read
  off linearly between the wds that bracket wd*. min over (lr, wd) = min over wd of min over lr, so this is
  the joint optimum also when AdamW's loss valley runs diagonally ([Kos25] arXiv 2510.19093 §3: the loss
  depends much on lr x wd; [Fan25] arXiv 2510.15262 Eq. 3: on lr / wd), where axis parabolas through the
  argmin would find the conditional minima;
- **wd_drift**: fit.slope of log2 wd* on log2 d, octaves per doubling of width (0 = the rule transfers);
  CIs from one bootstrap over the workload's seed ids per workload (the same draws for every recipe);
- **the joint scope** (scopes.py: three or more wds): a transfer.csv row and seed_scores.csv rows with ``wd``
  empty, holding the 2-D transfer in the lr columns' names, so that the board, regime and claims read it as
  any other scope;
- **joint-transfer regret**, cross-fitted over seeds as crossfit.py does for the lr: for each seed s the
  base width's and the widest width's 2-D optima are chosen on the other seeds' mean surface, and seed s
  is scored on its own surface (:func:`surface_loss`) at both; regret_joint = L_s(widest, transferred)
  - L_s(widest, re-tuned), not clamped, Student t CIs over seeds.
numpy/pandas only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from transferbench import crossfit
from transferbench.aggregate import with_axis
from transferbench.bootstrap import ci, cube, on_seeds, resamples, seed_means, stream
from transferbench.crossfit import _mean_curve, t_interval
from transferbench.fit import fitted_loss, slope
from transferbench.scopes import MIN_JOINT_WDS

OPTIMA_WD_COLUMNS = ["workload", "recipe", "scale", "n_seeds", "opt_log2_wd", "opt_log2_wd_lo",
                     "opt_log2_wd_hi", "opt_loss", "edge", "opt_log2_lr", "opt_log2_lr_lo", "opt_log2_lr_hi",
                     "lr_edge"]
#: transfer.csv's weight-decay columns: per (workload, recipe), on each of its wd rows; NaN without a wd sweep.
WD_TRANSFER_COLUMNS = ["wd_drift", "wd_drift_lo", "wd_drift_hi", "wd_drift_edge", "joint_transferred_loss",
                       "joint_transferred_loss_lo", "joint_transferred_loss_hi", "joint_retuned_loss",
                       "regret_joint", "regret_joint_lo", "regret_joint_hi", "regret_joint_rel",
                       "regret_joint_rel_lo", "regret_joint_rel_hi", "joint_transfer_log2_lr",
                       "joint_transfer_log2_wd"]
JOINT_SEED_COLUMNS = ["workload", "recipe", "seed", "scale", "largest", "transfer_log2_lr", "transfer_log2_wd",
                      "transferred_loss", "retuned_loss", "regret"]


# -- surfaces (D wds x L lrs) ----------------------------------------------------------------------------
def local_optima(x: np.ndarray, curves: np.ndarray) -> tuple[np.ndarray, ...]:
    """fit.parabola_optimum and fit.fitted_min of every curve of ``curves`` (..., X) over grid ``x`` at once:
    (optimum, observed minimum, fitted minimum, edge), each of shape (...). The same local parabola (the
    argmin of the finite points and its nearest finite neighbours, the vertex clamped to them; the argmin
    itself at an edge or without curvature), vectorised because the bootstrap asks for thousands of them."""
    x = np.asarray(x, float)
    y = np.asarray(curves, float)
    shape, n = y.shape[:-1], y.shape[-1]
    y = y.reshape(-1, n)
    ok = np.isfinite(y)
    has = ok.any(axis=1)
    i = np.argmin(np.where(ok, y, np.inf), axis=1)
    idx = np.arange(n)
    left = np.where(ok & (idx < i[:, None]), idx, -1).max(axis=1)
    right = np.where(ok & (idx > i[:, None]), idx, n).min(axis=1)
    edge = has & ((left < 0) | (right >= n))
    li, ri = np.clip(left, 0, n - 1), np.clip(right, 0, n - 1)
    rows = np.arange(len(y))
    x0, x1, x2 = x[li], x[i], x[ri]
    y0, y1, y2 = y[rows, li], y[rows, i], y[rows, ri]
    with np.errstate(invalid="ignore", divide="ignore"):
        d01, d12 = (y1 - y0) / (x1 - x0), (y2 - y1) / (x2 - x1)  # divided differences (fit._local_fit)
        a = (d12 - d01) / (x2 - x0)
        fit = has & ~edge & (a > 0)
        vertex = np.clip(-(d01 - a * (x0 + x1)) / (2 * a), x0, x2)
        at_vertex = y0 + d01 * (vertex - x0) + a * (vertex - x0) * (vertex - x1)
    opt = np.where(fit, vertex, x1)
    fmin = np.where(fit, np.minimum(at_vertex, y1), y1)
    out = [np.where(has, v, np.nan) for v in (opt, y1, fmin)] + [edge]
    return tuple(v.reshape(shape) for v in out)


def joint_optima(lrs: np.ndarray, log2_wds: np.ndarray, surfaces: np.ndarray) -> tuple[np.ndarray, ...]:
    """(log2 lr*, log2 wd*, the profile's minimum, wd edge, lr edge) of (..., D, L) surfaces (module doc):
    the profile over lr (each wd row's fitted minimum and optimal lr), its parabola optimum over log2 wd,
    and lr*(wd) read linearly in log2 wd between the rows that bracket wd*."""
    lr_at, _, best, lr_edge = local_optima(lrs, surfaces)  # (..., D)
    y, loss, _, wd_edge = local_optima(log2_wds, best)  # (...)
    shape = y.shape
    lr_at, lr_edge = lr_at.reshape(-1, len(log2_wds)), lr_edge.reshape(-1, len(log2_wds))
    x, near_edge = np.full(lr_at.shape[0], np.nan), np.zeros(lr_at.shape[0], bool)
    for k, (row, yk) in enumerate(zip(lr_at, y.reshape(-1), strict=True)):
        ok = np.isfinite(row)
        if ok.any() and np.isfinite(yk):
            x[k] = np.interp(yk, log2_wds[ok], row[ok])
            near_edge[k] = lr_edge[k, np.flatnonzero(ok)[np.argmin(np.abs(log2_wds[ok] - yk))]]
    return x.reshape(shape), y, loss, wd_edge, near_edge.reshape(shape)


def joint_optimum(lrs: np.ndarray, log2_wds: np.ndarray, surface: np.ndarray) -> tuple[float, float, float, bool,
                                                                                        bool]:
    """joint_optima of one (D, L) surface, as plain numbers."""
    x, y, loss, wd_edge, lr_edge = joint_optima(lrs, log2_wds, surface[None])
    return float(x[0]), float(y[0]), float(loss[0]), bool(wd_edge[0]), bool(lr_edge[0])


def surface_loss(lrs: np.ndarray, log2_wds: np.ndarray, surface: np.ndarray, x: float, y: float) -> float:
    """The surface at (log2 lr ``x``, log2 wd ``y``) as the metrics see it: each wd row read at ``x`` by
    fit.fitted_loss (rows whose trained lrs do not span ``x`` are left out unless none does, then every
    row is read clamped, as a 1-D curve is), then that column read at ``y`` by fit.fitted_loss over log2
    wd. Transferred and re-tuned losses are both read off this one interpolant, so a transfer that lands
    on the optimum scores 0 whether or not it is a grid point."""
    if not (np.isfinite(x) and np.isfinite(y)):
        return np.nan
    col = np.full(len(surface), np.nan)
    for j, row in enumerate(surface):
        xs = lrs[np.isfinite(row)]
        if len(xs) and xs.min() - 1e-9 <= x <= xs.max() + 1e-9:
            col[j] = fitted_loss(lrs, row, x)
    if not np.isfinite(col).any():
        col = np.array([fitted_loss(lrs, row, x) if np.isfinite(row).any() else np.nan for row in surface])
    return fitted_loss(log2_wds, col, y) if np.isfinite(col).any() else np.nan


# -- cross-fitting ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class JointFit:
    """Per seed (rows: the workload's seed ids, NaN where the recipe lacks one) of one (workload, recipe)."""

    transferred: np.ndarray  # (S, W): L_s(w, base width's 2-D optimum chosen on the other seeds)
    retuned: np.ndarray  # (S,): L_s(widest, the widest width's own 2-D optimum chosen on the other seeds)
    transfer_lr: np.ndarray  # (S,) log2 lr of the transferred point
    transfer_wd: np.ndarray  # (S,) log2 wd of the transferred point
    crossfit: bool  # False with one seed: in-sample

    @property
    def regret(self) -> np.ndarray:
        return self.transferred[:, -1] - self.retuned


def cross_fit_joint(lrs: np.ndarray, log2_wds: np.ndarray, a: np.ndarray, tuning: int) -> JointFit:
    """Leave-one-seed-out transferred and re-tuned losses on a (S, W, D, L) capped-loss cube (widest last)."""
    n_seeds, n_widths = a.shape[:2]
    ids = np.flatnonzero(np.isfinite(a).reshape(n_seeds, -1).any(axis=1))
    transferred = np.full((n_seeds, n_widths), np.nan)
    retuned, at_lr, at_wd = (np.full(n_seeds, np.nan) for _ in range(3))
    crossfit = len(ids) >= 2
    for s in ids:
        mean = _mean_curve(a[[i for i in ids if i != s]] if crossfit else a[[s]])  # (W, D, L)
        xb, yb = joint_optimum(lrs, log2_wds, mean[tuning])[:2]
        xw, yw = joint_optimum(lrs, log2_wds, mean[-1])[:2]
        at_lr[s], at_wd[s] = xb, yb
        transferred[s] = [surface_loss(lrs, log2_wds, a[s, w], xb, yb) for w in range(n_widths)]
        retuned[s] = surface_loss(lrs, log2_wds, a[s, -1], xw, yw)
    return JointFit(transferred, retuned, at_lr, at_wd, crossfit)


def _summary(jf: JointFit) -> dict[str, Any]:
    """transfer.csv's joint columns: crossfit.summary's means and t intervals over seeds, renamed."""
    cf = crossfit.summary(jf)  # JointFit has CrossFit's fields (transferred, retuned, regret, transfer_lr, crossfit)
    out = {f"joint_{k}": cf[k] for k in ("transferred_loss", "transferred_loss_lo", "transferred_loss_hi",
                                         "retuned_loss", "transfer_log2_lr")}
    out.update({k.replace("_oos", "_joint"): cf[k] for k in cf if k.startswith("regret_oos")})
    out["joint_transfer_log2_wd"] = t_interval(jf.transfer_wd)[0]
    return out


def _tau_at(g: pd.DataFrame, width: int, x: float, y: float) -> float:
    """runs.csv's ``tau`` (weight-decay timescales lived through) at ``width``, seed mean of the trained (lr,
    wd) nearest (log2 lr ``x``, log2 wd ``y``); NaN without a tau column or a point."""
    r = g[g["scale"] == width]
    if "tau" not in r or not len(r) or not (np.isfinite(x) and np.isfinite(y)):
        return np.nan
    d = np.abs(r["log2_lr"].astype(float) - x) + np.abs(np.log2(r["wd"].astype(float)) - y)
    return float(pd.to_numeric(r.loc[d == d.min(), "tau"], errors="coerce").mean())


def _scope(key: tuple, g: pd.DataFrame, widths: np.ndarray, tune: int, opt_lr: np.ndarray, edge: bool,
           best: float, n_seeds: int, jf: JointFit) -> dict[str, Any]:
    """The workload's joint (lr x wd) scope row of transfer.csv (``wd`` empty, scopes.py): transfer.csv's lr
    columns for the 2-D transfer, so that the board, regime and claims read it as any other scope. drift is
    the joint optimum's log2 lr on log2 d (the lr a user re-tunes together with the wd); regret and the
    in-sample columns are left empty (the cross-fitted ones are the numbers)."""
    first = g.iloc[0]
    drift = np.array([slope(np.log2(widths.astype(float)), o) for o in opt_lr])
    lo, hi = ci(drift, n_seeds)
    at_lr, at_wd = t_interval(jf.transfer_lr)[0], t_interval(jf.transfer_wd)[0]
    return {"workload": key[0], "recipe": key[1], "wd": np.nan, "scales": "/".join(str(int(w)) for w in widths),
            "tuning_scale": tune, "largest_scale": int(widths[-1]), "drift": drift[0], "drift_lo": lo,
            "drift_hi": hi, "drift_edge": edge, "best_loss": best, "n_seeds": n_seeds,
            "recipe_arxiv": first.get("recipe_arxiv"), "recipe_distribution": first.get("recipe_distribution"),
            "recipe_version": first.get("recipe_version"), **crossfit.summary(jf),
            "tau": _tau_at(g, tune, at_lr, at_wd), "tau_widest": _tau_at(g, int(widths[-1]), at_lr, at_wd)}


def _seed_rows(key: tuple, union: np.ndarray, widths: np.ndarray, jf: JointFit) -> list[list]:
    rows = []
    for i, s in enumerate(union):
        if not np.isfinite(jf.transfer_wd[i]):
            continue
        for j, w in enumerate(widths):
            wide = j == len(widths) - 1
            rows.append([*key, int(s), int(w), wide, jf.transfer_lr[i], jf.transfer_wd[i], jf.transferred[i, j],
                         jf.retuned[i] if wide else np.nan, jf.regret[i] if wide else np.nan])
    return rows


# -- one (workload, recipe) ---------------------------------------------------------------------------------
class WdTables(NamedTuple):
    """wd_tables' tables. ``scopes`` and ``scope_seeds`` are the joint (lr x wd) scope's transfer.csv and
    seed_scores.csv rows (``wd`` empty, scopes.py), for a (workload, recipe) with MIN_JOINT_WDS positive wds."""

    optima_wd: pd.DataFrame
    wd_columns: pd.DataFrame  # the transfer.csv wd columns per (workload, recipe)
    joint_scores: pd.DataFrame  # seed_scores_joint.csv
    scopes: pd.DataFrame
    scope_seeds: pd.DataFrame


def wd_group(key: tuple, g: pd.DataFrame, n_boot: int, seed: int,
             union: np.ndarray | None = None) -> tuple[list[list], dict, list[list], dict, list[list]] | None:
    """(optima_wd rows, the transfer.csv wd columns, seed_scores_joint rows, the joint scope's transfer.csv row
    and its seed_scores.csv rows, or None and [] with fewer than MIN_JOINT_WDS wds) of one (workload, recipe),
    from metrics.prepared runs (``capped``, ``bad``); None when fewer than two positive wds were swept (wd = 0
    has no log). ``union``: the workload's sorted seed ids (the resampled ids, paired across recipes). The
    optimum transferred is the base width's (``base_width``, else the narrowest: metrics.tuning_width)."""
    g = g[pd.to_numeric(g["wd"], errors="coerce") > 0]
    if g["wd"].nunique() < 2:
        return None
    (seeds, widths, wds, lrs), a = cube(g, ["seed", "scale", "wd", "log2_lr"])
    union = seeds if union is None else union
    a = on_seeds(a, seeds, union)
    alive = g.groupby("scale")["bad"].apply(lambda b: bool((~b).any())).reindex(widths).to_numpy(bool)
    a[:, ~alive] = np.nan  # as metrics._lr_group: no optimum where every run diverged
    lrs, log2_wd = lrs.astype(float), np.log2(wds.astype(float))
    weights = resamples(len(union), n_boot, stream(seed, ("wd", key[0])))
    means = seed_means(weights, a)  # (1 + B, W, D, L): row 0 the estimate, rows 1.. the resamples
    opt_lr, opt_wd, opt_loss, wd_edges, lr_edges = joint_optima(lrs, log2_wd, means)  # each (1 + B, W)
    wd_edge, lr_edge = wd_edges[0], lr_edges[0]
    drift = np.array([slope(np.log2(widths.astype(float)), o) for o in opt_wd])
    lo, hi = ci(drift, len(seeds))
    rows = []
    for j, w in enumerate(widths):
        n = int(g.loc[g["scale"] == w, "seed"].nunique())
        wlo, whi = np.clip(ci(opt_wd[:, j], n), log2_wd.min(), log2_wd.max())
        llo, lhi = np.clip(ci(opt_lr[:, j], n), lrs.min(), lrs.max())
        rows.append([*key, int(w), n, opt_wd[0, j], wlo, whi, opt_loss[0, j], bool(wd_edge[j]), opt_lr[0, j],
                     llo, lhi, bool(lr_edge[j])])
    base = float(pd.to_numeric(g["base_scale"], errors="coerce").median()) if "base_scale" in g else np.nan
    tune = int(base) if np.isfinite(base) and base in widths else int(widths.min())
    jf = cross_fit_joint(lrs, log2_wd, a, int(np.flatnonzero(widths == tune)[0]))
    cols = {"workload": key[0], "recipe": key[1], "wd_drift": drift[0], "wd_drift_lo": lo, "wd_drift_hi": hi,
            "wd_drift_edge": bool(wd_edge.any()), **_summary(jf)}
    scope = _scope(key, g, widths, tune, opt_lr, bool(wd_edge.any() or lr_edge.any()), float(opt_loss[0, -1]),
                   len(seeds), jf)
    if len(widths) < 2:  # nothing is transferred with a single width
        cols.update({k: np.nan for k in cols if k.startswith(("regret_joint", "joint_"))})
        scope.update({k: np.nan for k in scope if k.startswith(("regret_oos", "transferred_loss"))})
    if len(wds) < MIN_JOINT_WDS:  # two wds stay two scopes (scopes.py): no joint row
        return rows, cols, _seed_rows(key, union, widths, jf), None, []
    return (rows, cols, _seed_rows(key, union, widths, jf), scope,
            crossfit.seed_rows((*key, np.nan), union, widths, jf))


def wd_tables(ready: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> WdTables:
    """WdTables of metrics.prepared runs; header only (and no wd rows) where no workload sweeps two or more
    positive wds. ``scopes`` has the columns the rows have (metrics.py reindexes it to transfer.csv's)."""
    ready = with_axis(ready)  # a runs table of before the axes is a width sweep
    rows, cols, seed_rows, scopes, scope_seeds = [], [], [], [], []
    for (wl, recipe), g in ready.groupby(["workload", "recipe"], sort=True):
        union = np.sort(ready.loc[ready["workload"] == wl, "seed"].unique())
        res = wd_group((wl, recipe), g, n_boot, seed, union)
        if res is not None:
            rows += res[0]
            cols.append(res[1])
            seed_rows += res[2]
            if res[3] is not None:
                scopes.append({**res[3], **res[1]})
                scope_seeds += res[4]
    return WdTables(pd.DataFrame(rows, columns=OPTIMA_WD_COLUMNS),
                    pd.DataFrame(cols, columns=["workload", "recipe", *WD_TRANSFER_COLUMNS]),
                    pd.DataFrame(seed_rows, columns=JOINT_SEED_COLUMNS), pd.DataFrame(scopes),
                    pd.DataFrame(scope_seeds, columns=JOINT_SEED_COLUMNS[:2] + ["wd"] + [
                        c for c in JOINT_SEED_COLUMNS[2:] if c != "transfer_log2_wd"]))
