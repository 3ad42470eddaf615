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
numpy/pandas only (the plot: matplotlib via plots.py).
"""

from __future__ import annotations

from pathlib import Path

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


def plot(runs: pd.DataFrame, table: pd.DataFrame, path: Path, tau_min: float = STEADY_TAU) -> Path:
    """sv_law.png: per workload, measured log2 top SV against the law's prediction (½ log2 eta − ½ log2 lambda
    + ¾ log2 d, its constant the mean residual per recipe), and the fitted exponents with CIs beside the law's."""
    import seaborn as sns

    from transferbench.plots import _empty, _fig, _save

    t = steady(runs, tau_min)
    wls = sorted(t["workload"].unique()) or ["-"]
    fig, axes = _fig(2 * len(wls), ncols=2, size=(5.6, 4.4))
    recipes = sorted(set(t["recipe"]) | {"pooled"})
    palette = dict(zip(recipes, sns.color_palette("tab10", 10) * 10, strict=False))
    for i, wl in enumerate(wls):
        ax, bx = axes[2 * i], axes[2 * i + 1]
        g = t[t["workload"] == wl]
        if g.empty:
            _empty(ax, f"no steady-state runs (tau >= {tau_min:g}, weight decay, top SV)")
            _empty(bx, "nothing to fit")
            continue
        law = LAW["lr"] * g["x_lr"] + LAW["wd"] * g["x_wd"] + LAW["width"] * g["x_width"]
        pred = law + (g["y"] - law).groupby(g["recipe"]).transform("mean")
        for recipe, idx in g.groupby("recipe").groups.items():
            ax.plot(pred[idx], g.loc[idx, "y"], "o", ms=3, alpha=0.6, color=palette[recipe], label=recipe)
        lo, hi = float(min(pred.min(), g["y"].min())), float(max(pred.max(), g["y"].max()))
        ax.plot([lo, hi], [lo, hi], "--", color="0.4", lw=1, label="measured = law")
        ax.set_xlabel("law: ½·log2 η_hidden − ½·log2 λ_hidden + ¾·log2 d + const(recipe)")
        ax.set_ylabel("measured log2 top singular value")
        ax.set_title(f"{wl}: {len(g)} runs with tau ≥ {tau_min:g}", fontsize=9)
        ax.legend(fontsize=6)
        rows = table[table["workload"] == wl]
        n = max(len(rows), 1)
        for j, (_, r) in enumerate(rows.iterrows()):
            xs = np.arange(3) + 0.8 * (j - (n - 1) / 2) / n
            ys = np.array([r[f"exp_{k}"] for k in LAW], float)
            err = np.abs(np.array([[r[f"exp_{k}"] - r[f"exp_{k}_lo"], r[f"exp_{k}_hi"] - r[f"exp_{k}"]] for k in LAW],
                                  float).T)
            bx.errorbar(xs, ys, yerr=np.nan_to_num(err), fmt="o", capsize=3, color=palette.get(r["recipe"], "0.2"),
                        label=str(r["recipe"]))
        bx.plot(np.arange(3), list(LAW.values()), "k_", ms=28, mew=2, label="[Fan25]: ½, −½, ¾")
        bx.set_xticks(range(3), ["lr exponent a", "wd exponent b", "width exponent c"])
        bx.axhline(0, color="0.7", lw=0.8)
        bx.set_ylabel("fitted exponent of log2 top SV [95% CI]")
        bx.legend(fontsize=6)
    fig.suptitle("Fan et al.'s singular-value law, top SV ∝ (η/λ)^½ · d^¾, fitted on the steady-state runs\n"
                 "(bars: 95% bootstrap CI over seeds; missing: exponent not identified by the sweep)", fontsize=10)
    return _save(fig, path)
