"""Transfer metrics (docs/design.md §6) computed from the runs table: optimal lr per width, drift, transfer
regret, lr sensitivity, "wider is better" and singular-value invariance, with bootstrap CIs over seeds.

Everything is per (workload, recipe, wd). The loss of a run is its ``eval_loss`` capped at its initial
loss L0, and a diverged run counts as L0: min(L, L0) as in the lr sensitivity of Wortsman et al. 2023
(arXiv 2309.14322), so a divergence is a bad result, never a missing one. Confidence intervals come
from one bootstrap over seed ids per group (all widths resampled jointly), as t intervals on the
bootstrap standard error, honest with few seeds (``bootstrap.py``). The curve fits it reads the loss curves
with are in ``fit.py`` (numpy only; re-exported here). Pure pandas/numpy: this module never imports torch.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from transferbench import crossfit, exponents, wd_exponent
from transferbench.aggregate import as_flag, axis_column, with_axis
from transferbench.bootstrap import ci, cube, on_seeds, resamples, seed_means, stream
from transferbench.fit import (  # noqa: F401  (fitted_min, parabola_optimum, SENSITIVITY_OCTAVES: re-exported)
    SENSITIVITY_OCTAVES,
    curve_optima,
    fitted_loss,
    fitted_min,
    parabola_optimum,
    regret_at,
    sensitivity,
    slope,
    wider_worse_frac,
)
from transferbench.regime import regime_table
from transferbench.sv_law import sv_law_table
from transferbench.ties import TIE_COLUMNS, add_tie_columns, regret_rel_samples
from transferbench.wd_transfer import (  # noqa: F401  (the column lists: re-exported)
    JOINT_SEED_COLUMNS,
    OPTIMA_WD_COLUMNS,
    WD_TRANSFER_COLUMNS,
    wd_tables,
)

GROUP = ["workload", "recipe", "wd"]
#: The headline's cross-fitted columns (crossfit.py): what a user gets and how well the optimum transfers.
crossfit_columns = ["transferred_loss", "transferred_loss_lo", "transferred_loss_hi", "transferred_by_scale",
                    "wider_better", "retuned_loss", "regret_oos", "regret_oos_lo", "regret_oos_hi",
                    "regret_oos_rel", "regret_oos_rel_lo", "regret_oos_rel_hi", "transfer_log2_lr", "crossfit"]
SEED_COLUMNS = ["workload", "recipe", "wd", "seed", "scale", "largest", "transfer_log2_lr", "transferred_loss",
                "retuned_loss", "regret"]
OPTIMA_COLUMNS = ["workload", "recipe", "wd", "scale", "n_seeds", "opt_log2_lr", "opt_log2_lr_lo",
                  "opt_log2_lr_hi", "opt_loss", "edge"]
TRANSFER_COLUMNS = ["workload", "recipe", "wd", "scales", "tuning_scale", "largest_scale", "drift", "drift_lo",
                    "drift_hi", "drift_edge", "regret", "regret_lo", "regret_hi", "regret_rel", "best_loss",
                    "sensitivity", "wider_worse_frac", "sv_spread", *exponents.COLUMNS, "n_seeds", "recipe_arxiv",
                    "recipe_distribution", "recipe_version", *crossfit_columns]
#: Extra transfer.csv columns: name -> function of one group's context (its runs as ``group``; ``widths``,
#: ``grid``; the seed-mean curves ``means`` (1 + B, W, L), row 0 the estimate and rows 1.. the bootstrap
#: resamples; ``opt``, ``opt_loss``, ``edge`` (1 + B, W); the indices ``tuning`` and ``widest``; and the
#: ``summary`` so far). Adding a metric column is one entry here (docs/extending.md).
COLUMN_HOOKS: dict[str, Callable[[dict[str, Any]], Any]] = {}


# -- pure building blocks ---------------------------------------------------------------------------
def capped_loss(runs: pd.DataFrame) -> pd.Series:
    """min(eval_loss, init_loss), with diverged or non-finite runs at init_loss (Wortsman et al. 2023)."""
    loss = pd.to_numeric(runs["eval_loss"], errors="coerce").astype(float)
    l0 = pd.to_numeric(runs["init_loss"], errors="coerce").astype(float)
    bad = runs["diverged"].astype(bool) | ~np.isfinite(loss)
    return loss.where(~bad, l0).clip(upper=l0)


def sv_at_lr(g: pd.DataFrame, log2_lr: float) -> pd.Series:
    """Per width: log2 top singular value (seed mean) at the grid lr nearest ``log2_lr`` ([Fan25])."""
    out = {}
    for width, gw in g.groupby("scale"):
        grid = np.sort(gw["log2_lr"].unique())
        if not np.isfinite(log2_lr) or len(grid) == 0:
            out[width] = np.nan
            continue
        near = grid[np.argmin(np.abs(grid - log2_lr))]  # ties -> the lower lr
        out[width] = pd.to_numeric(gw.loc[gw["log2_lr"] == near, "log2_top_sv"], errors="coerce").mean()
    return pd.Series(out, dtype=float, name="log2_top_sv").rename_axis("scale")


def tuning_width(widths: np.ndarray, base_width: float) -> int:
    """The width whose optimum is transferred: ``base_width`` if swept, else the narrowest."""
    widths = np.asarray(widths)
    return int(base_width) if np.isfinite(base_width) and base_width in widths else int(widths.min())


# -- per group ----------------------------------------------------------------------------------------
def _width_rows(key: tuple, g: pd.DataFrame, widths: np.ndarray, grid: np.ndarray, opt: np.ndarray,
                opt_loss: np.ndarray, edge: np.ndarray) -> list[list]:
    """Per width: [*key, width, n_seeds, opt, opt_lo, opt_hi, opt_loss, edge] (row 0 = point estimate).
    The CI is clipped to the grid: an optimum is never fitted outside it."""
    rows = []
    for j, w in enumerate(widths):
        n = int(g.loc[g["scale"] == w, "seed"].nunique())
        lo, hi = np.clip(ci(opt[:, j], n), grid.min(), grid.max())
        rows.append([*key, int(w), n, opt[0, j], lo, hi, opt_loss[0, j], bool(edge[0, j])])
    return rows


def _lr_group(key: tuple, g: pd.DataFrame, n_boot: int, seed: int,
              union: np.ndarray | None = None) -> tuple[list[list], dict]:
    """Optima per width and the transfer summary of one (workload, recipe, wd), docs/design.md §6.
    ``union``: the sorted seed ids of the whole workload (default: this group's), the resampled ids."""
    (seeds, widths, grid), a = cube(g, ["seed", "scale", "log2_lr"])
    union = seeds if union is None else union
    a = on_seeds(a, seeds, union)  # NaN rows for the workload's seeds this recipe lacks
    # A width at which every run diverged has no optimum (its capped curve is flat at L0): NaN, so that
    # the derived metrics are NaN (ranked last) instead of a perfect-looking zero regret.
    alive = g.groupby("scale")["bad"].apply(lambda b: bool((~b).any())).reindex(widths).to_numpy(bool)
    a[:, ~alive, :] = np.nan
    # Row 0 of every (1 + B, ...) array is the estimate on all seeds, rows 1.. are bootstrap resamples,
    # the same seed draw for every width (so drift and regret CIs keep the across-width correlation).
    # One resample matrix per (workload, wd) over the workload's seed ids, not per recipe: every recipe
    # gets the same seed draws, so the differences between recipes are paired by seed (ties.py).
    weights = resamples(len(union), n_boot, stream(seed, (key[0], key[2])))
    means = seed_means(weights, a)  # (1+B, W, L)
    opt, opt_loss, edge = curve_optima(grid, means)
    tune = tuning_width(widths, float(pd.to_numeric(g["base_scale"], errors="coerce").median()))
    t, wide = int(np.flatnonzero(widths == tune)[0]), len(widths) - 1
    drift = np.array([slope(np.log2(widths.astype(float)), o) for o in opt])
    # Regret: the widest width's fitted loss at the tuning width's optimum, minus its fitted minimum
    # (both on the same local fit, so a perfect transfer between grid points scores 0, not a grid bias).
    regret = np.array([regret_at(grid, means[b, wide], opt[b, t]) for b in range(len(opt))])
    if len(widths) < 2:  # nothing is transferred with a single width
        regret[:] = np.nan
    at = opt[0, t]  # the transferred log2 lr
    sv = sv_at_lr(g, at)
    best = opt_loss[0, wide]
    first = g.iloc[0]
    summary = {
        "workload": key[0], "recipe": key[1], "wd": key[2],
        "scales": "/".join(str(int(w)) for w in widths), "tuning_scale": tune,
        "largest_scale": int(widths[wide]),
        "drift": drift[0], "drift_lo": ci(drift, len(seeds))[0], "drift_hi": ci(drift, len(seeds))[1],
        "drift_edge": bool(edge[0].any()),
        # Regret is >= 0 by construction (the fitted curve is never below its fitted minimum).
        "regret": regret[0], "regret_lo": max(ci(regret, len(seeds))[0], 0.0),
        "regret_hi": ci(regret, len(seeds))[1],
        "regret_rel": regret[0] / best if best else np.nan, "best_loss": best,
        "sensitivity": sensitivity(grid, means[0, wide]),
        "wider_worse_frac": wider_worse_frac(widths, [fitted_loss(grid, m, at) for m in means[0]]),
        "sv_spread": float(sv.max() - sv.min()) if sv.notna().sum() >= 2 else np.nan,
        "n_seeds": len(seeds), "recipe_arxiv": first.get("recipe_arxiv"),
        "recipe_distribution": first.get("recipe_distribution"),
        "recipe_version": first.get("recipe_version"),
    }
    cf = crossfit.cross_fit(grid, a, t)
    summary.update(crossfit.summary(cf))
    summary["_seed_rows"] = crossfit.seed_rows(key, union, widths, cf)
    summary["_regret_rel"] = regret_rel_samples(regret, opt_loss[:, wide]), frozenset(seeds.tolist())
    ctx = {"group": g, "scales": widths, "grid": grid, "means": means, "opt": opt, "opt_loss": opt_loss,
           "edge": edge, "tuning": t, "largest": wide, "summary": summary, "weights": weights, "union": union}
    summary.update(exponents.columns(ctx))  # sv_exponent and [Fan25]'s prediction (exponents.py)
    summary.update({name: hook(ctx) for name, hook in COLUMN_HOOKS.items()})
    return _width_rows(key, g, widths, grid, opt, opt_loss, edge), summary


# -- public entry points ------------------------------------------------------------------------------
def prepared(runs: pd.DataFrame) -> pd.DataFrame:
    """A copy of the runs table with ``diverged`` as bool, ``capped`` (the loss the metrics use:
    capped_loss) and ``bad`` (diverged or no finite loss): shared by the metrics and the plots. Its ``scale``
    is each run's value on its sweep's axis (aggregate.with_axis), the coordinate every metric is a function of."""
    runs = with_axis(runs).copy()
    runs["diverged"] = as_flag(runs["diverged"])
    runs["capped"] = capped_loss(runs)
    runs["bad"] = runs["diverged"] | ~np.isfinite(pd.to_numeric(runs["eval_loss"], errors="coerce"))
    return runs


def compute_wd_metrics(
    runs: pd.DataFrame, n_boot: int = 1000, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(optima_wd, wd_transfer): optimal log2 wd (and the 2-D optimum) per workload x recipe x width, its
    drift with width and the joint-transfer regret (wd_transfer.py)."""
    wd = wd_tables(prepared(runs), n_boot, seed)
    return wd.optima_wd, wd.wd_columns


def compute_metrics(
    runs: pd.DataFrame, n_boot: int = 1000, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(optima, transfer) tables of docs/design.md §6; transfer's wd columns (wd_transfer.py) are NaN unless
    two or more positive wds were swept."""
    optima, transfer, _, _, _ = _all_metrics(runs, n_boot, seed)
    return optima, transfer


def _all_metrics(runs: pd.DataFrame, n_boot: int, seed: int) -> tuple[Any, ...]:
    """(optima, transfer, optima_wd, regret_rel samples, seed_scores)."""
    return _every_table(runs, n_boot, seed)[:5]


def _every_table(runs: pd.DataFrame, n_boot: int, seed: int) -> tuple[Any, ...]:
    """_all_metrics' tables and seed_scores_joint (wd_transfer.py)."""
    ready = prepared(runs)
    union = {wl: np.sort(g["seed"].unique()) for wl, g in ready.groupby("workload")}
    rows, summaries = [], []
    for key, g in ready.groupby(GROUP, sort=True):
        r, s = _lr_group(key, g, n_boot, seed, union[key[0]])
        rows += r
        summaries.append(s)
    optima = pd.DataFrame(rows, columns=OPTIMA_COLUMNS)
    seed_rows = [row for s in summaries for row in s.pop("_seed_rows")]
    samples = {(s["workload"], s["recipe"], s["wd"]): s.pop("_regret_rel") for s in summaries}
    transfer = pd.DataFrame(summaries, columns=[*TRANSFER_COLUMNS, *COLUMN_HOOKS])
    transfer = add_tie_columns(transfer, {k: v[0] for k, v in samples.items()},
                               {k: v[1] for k, v in samples.items()})
    transfer = transfer[[*TRANSFER_COLUMNS, *TIE_COLUMNS, *COLUMN_HOOKS]]  # hooks last (docs/extending.md)
    wd = wd_tables(ready, n_boot, seed)
    # Always the same columns: empty (NaN) where a workload sweeps one wd (wd_transfer.py).
    transfer = transfer.merge(wd.wd_columns, on=["workload", "recipe"], how="left")
    # Where a workload sweeps wd, its joint (lr x wd) scope rows follow its per-wd rows (``wd`` empty,
    # scopes.py): the scope the board, regime and claims read for it.
    if len(wd.scopes):  # (an empty concat would turn the int columns to float)
        transfer = pd.concat([transfer, wd.scopes.reindex(columns=transfer.columns)], ignore_index=True)
    transfer = transfer[[*TRANSFER_COLUMNS, *TIE_COLUMNS, *WD_TRANSFER_COLUMNS, *COLUMN_HOOKS]]  # hooks last
    seed_scores = pd.DataFrame(seed_rows, columns=SEED_COLUMNS)
    if len(wd.scope_seeds):
        seed_scores = pd.concat([seed_scores, wd.scope_seeds], ignore_index=True)
    return optima, transfer, wd.optima_wd, {k: v[0] for k, v in samples.items()}, seed_scores, wd.joint_scores


def write_metrics(runs: pd.DataFrame, out_dir: Path, n_boot: int = 1000, seed: int = 0) -> list[Path]:
    """Write optima.csv, transfer.csv, optima_wd.csv, wd_exponent.csv, wd_exponent_best.csv, seed_scores.csv,
    regime.csv (regime.py), seed_scores_joint.csv and sv_law.csv (sv_law.py) to ``out_dir`` (optima_wd.csv and
    seed_scores_joint.csv have rows only when two or more positive wd values were swept, wd_transfer.py; the wd_exponent
    tables only for ``wd-power[p=...]`` rows, wd_exponent.py; all are always written so the DAG's outputs
    are fixed)."""
    runs = with_axis(runs)
    optima, transfer, optima_wd, samples, seed_scores, joint_scores = _every_table(runs, n_boot, seed)
    p_rows, p_best = wd_exponent.tables(transfer, wd_exponent.oos_samples(seed_scores, n_boot, seed))
    regime = regime_table(transfer, optima, runs, optima_wd)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = ("optima", "transfer", "optima_wd", "wd_exponent", "wd_exponent_best", "seed_scores", "regime",
             "seed_scores_joint", "sv_law")
    paths = [out_dir / f"{name}.csv" for name in names]
    # Every table of a metric along the axis says which axis (``scale`` is its value); sv_law is about width.
    tables = (*(axis_column(t, runs) for t in (optima, transfer, optima_wd, p_rows, p_best, seed_scores, regime,
                                                joint_scores)), sv_law_table(runs, n_boot, seed))
    for table, path in zip(tables, paths, strict=True):
        table.to_csv(path, index=False)
    return paths
