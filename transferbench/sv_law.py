"""[Fan25]'s singular-value law as a regression (arXiv 2510.15262): in AdamW's steady state the top singular
value of a hidden matrix is ∝ sqrt(eta/lambda) · d^(3/4), eta and lambda the matrix's own lr and weight-decay
coefficient (AdamW's, per-step decay eta·lambda) and d the width. So

    log2 top SV = a · log2 eta_hidden + b · log2 lambda_hidden + c · log2 d + const,   law: (a, b, c) = (½, −½, ¾)

(docs/design.md §6 states the same law, exponents.py its width slope 0.75 + (lr exponent − wd exponent)/2).

- eta_hidden = 2^log2_lr · hidden_lr_mult, lambda_hidden = wd · hidden_wd_mult (runs.csv: the peak values the
  recipe applied to the hidden groups, read from the records' param_groups); top SV = runs.csv ``log2_top_sv``
  (mean over the hidden matrices of log2 sigma_max at the end of training).
- **Steady state**: a run enters when it did not diverge, has a finite top SV and weight decay, and lived
  through tau >= ``STEADY_TAU`` = 3 weight-decay timescales (runs.csv ``tau`` = Σ_t lr_t·wd_t over the trained
  steps, mean over hidden groups: the distance from the init decays as e^-tau, < 5% at 3; the threshold of
  plots_exponents' hollow markers).
- Fits per (workload, recipe) and pooled per workload (``recipe`` = ``pooled``: one intercept per recipe, common
  exponents), by least squares on the runs, with 95% t intervals from a bootstrap over the workload's seed ids
  (bootstrap.py). An exponent is *identified* only if its regressor varies apart from the others (the design
  matrix has full rank): a sweep over lr at one wd cannot separate the wd exponent from the width's, and those
  rows are NaN with ``identified`` false.
numpy/pandas only; the plot is plots_exponents.plot_sv_law.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from transferbench.bootstrap import ci, resamples, stream

STEADY_TAU = 3.0
LAW = {"lr": 0.5, "wd": -0.5, "width": 0.75}  # [Fan25]: sqrt(eta / lambda) · d^(3/4)
COLUMNS = ["workload", "recipe", "n_runs", "n_seeds", "tau_min", "identified"] + [
    c for k in LAW for c in (f"exp_{k}", f"exp_{k}_lo", f"exp_{k}_hi", f"predicted_{k}")] + ["r2"]


def steady(runs: pd.DataFrame, tau_min: float = STEADY_TAU) -> pd.DataFrame:
    """The runs the law speaks about, with their regressors ``x_lr``, ``x_wd``, ``x_width`` and ``y``."""
    num = {c: pd.to_numeric(runs.get(c, pd.Series(np.nan, index=runs.index)), errors="coerce")
           for c in ("log2_lr", "wd", "hidden_lr_mult", "hidden_wd_mult", "width", "log2_top_sv", "tau")}
    diverged = runs["diverged"].astype(str).str.strip().str.lower().isin(("true", "1", "1.0"))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = runs.assign(x_lr=num["log2_lr"] + np.log2(num["hidden_lr_mult"]),
                        x_wd=np.log2(num["wd"] * num["hidden_wd_mult"]), x_width=np.log2(num["width"]),
                        y=num["log2_top_sv"], tau_=num["tau"])
    ok = ~diverged & (t["tau_"] >= tau_min)
    for c in ("x_lr", "x_wd", "x_width", "y"):
        ok &= np.isfinite(t[c])
    return t[ok]


def _design(t: pd.DataFrame, pooled: bool) -> np.ndarray:
    cols = [t["x_lr"], t["x_wd"], t["x_width"]]
    if pooled:  # one intercept per recipe
        cols += [(t["recipe"] == r).astype(float) for r in sorted(t["recipe"].unique())]
    else:
        cols.append(pd.Series(1.0, index=t.index))
    return np.column_stack([np.asarray(c, float) for c in cols])


def _fits(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted least squares for every row of ``w`` (B, N) at once (weights: how often a run's seed was drawn),
    by the normal equations X'WX b = X'Wy; the three exponents (B, 3), NaN where the design is not of full
    rank (not identified) or a resample leaves it singular."""
    k = x.shape[1]
    if np.linalg.matrix_rank(x) < k:
        return np.full((len(w), 3), np.nan)
    gram = np.einsum("bn,ni,nj->bij", w, x, x)
    rhs = np.einsum("bn,ni,n->bi", w, x, y)
    out = np.full((len(w), 3), np.nan)
    ok = np.linalg.cond(gram) < 1e12
    if ok.any():
        out[ok] = np.linalg.solve(gram[ok], rhs[ok][..., None])[:, :3, 0]
    return out


def fit_group(t: pd.DataFrame, union: np.ndarray, weights: np.ndarray, pooled: bool) -> dict:
    """One row of sv_law.csv for the steady runs ``t`` of one group."""
    x, y = _design(t, pooled), t["y"].to_numpy(float)
    pos = np.searchsorted(union, t["seed"].to_numpy())
    est = _fits(x, y, weights[:, pos])  # (1 + B, 3): row 0 on every seed once
    n_seeds = int(t["seed"].nunique())
    row: dict = {"n_runs": len(t), "n_seeds": n_seeds, "identified": bool(np.isfinite(est[0]).all())}
    for i, k in enumerate(LAW):
        lo, hi = ci(est[:, i], n_seeds)
        row.update({f"exp_{k}": est[0, i], f"exp_{k}_lo": lo, f"exp_{k}_hi": hi, f"predicted_{k}": LAW[k]})
    if row["identified"]:
        resid = y - x @ np.linalg.lstsq(x, y, rcond=None)[0]
        row["r2"] = float(1 - resid.var() / y.var()) if y.var() > 0 else np.nan
    return row


def sv_law_table(runs: pd.DataFrame, n_boot: int = 1000, seed: int = 0,
                 tau_min: float = STEADY_TAU) -> pd.DataFrame:
    """sv_law.csv: per (workload, recipe) and pooled per workload (module doc); header only without steady runs."""
    rows = []
    for wl, g in steady(runs, tau_min).groupby("workload", sort=True):
        union = np.sort(g["seed"].unique())
        weights = resamples(len(union), n_boot, stream(seed, ("sv_law", wl)))
        groups = [(str(r), gr, False) for r, gr in g.groupby("recipe", sort=True)] + [("pooled", g, True)]
        for recipe, gr, pooled in groups:
            if len(gr) < 2:
                continue
            rows.append({"workload": wl, "recipe": recipe, "tau_min": tau_min,
                         **fit_group(gr, union, weights, pooled)})
    return pd.DataFrame(rows, columns=COLUMNS)
