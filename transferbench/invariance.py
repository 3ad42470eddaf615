"""[Fan25]'s invariance check (arXiv 2510.15262): in AdamW's steady state the top singular value of a hidden
matrix depends on eta/lambda only, as sqrt(eta/lambda).

The profile's ``invariance`` study trains one recipe at lr = eta x k and wd = lambda / k for a few k
(grid.invariance_jobs). Along that line lr x wd, the per-step decay and so the number of weight-decay
timescales tau, stays fixed, while eta/lambda moves by k^2: the prediction is top SV ∝ k, a slope of exactly
1 for log2 top SV against log2 k, i.e. the normalised log2(SV / k) flat. The loss has no such prediction;
it is drawn so one sees what the move costs.

- ``invariance.csv``: one row per run (width, seed, log2_k, lr, wd, tau, log2_top_sv, capped loss);
- ``invariance_fit.csv``: per width, the slope of the seed-mean log2 top SV against log2 k with a bootstrap
  CI over seeds (bootstrap.py), the predicted 1, and the seed-mean loss at each end of the k range.
numpy/pandas/matplotlib only.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from transferbench.aggregate import load_record, record_row
from transferbench.bootstrap import ci, on_seeds, resamples, seed_means, stream
from transferbench.fit import slope
from transferbench.metrics import prepared

PREDICTED_SLOPE = 1.0
ROW_COLUMNS = ["workload", "recipe", "width", "seed", "log2_k", "log2_lr", "wd", "tau", "log2_top_sv", "capped",
               "diverged", "run_dir"]
FIT_COLUMNS = ["workload", "recipe", "width", "n_seeds", "log2_ks", "sv_slope", "sv_slope_lo", "sv_slope_hi",
               "predicted_slope", "loss_at_min_k", "loss_at_max_k", "tau"]


def runs_table(records: list[Path], log2_lr: float, wd: float) -> pd.DataFrame:
    """The study's runs with their log2 k = ((log2 lr - log2 eta) - (log2 wd - log2 lambda)) / 2."""
    rows = [record_row(load_record(p), p) for p in records]
    t = prepared(pd.DataFrame(rows))
    t["log2_k"] = ((t["log2_lr"] - log2_lr) - (np.log2(t["wd"].astype(float)) - math.log2(wd))) / 2
    t["log2_k"] = t["log2_k"].round(6)
    return t.reindex(columns=ROW_COLUMNS).sort_values(["width", "log2_k", "seed"]).reset_index(drop=True)


def fit(t: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    out = []
    for (wl, recipe, width), g in t.groupby(["workload", "recipe", "width"], sort=True):
        ok = g[~g["diverged"].astype(bool)]
        cube = ok.pivot_table(index="seed", columns="log2_k", values="log2_top_sv", aggfunc="mean")
        seeds, ks = cube.index.to_numpy(), cube.columns.to_numpy(float)
        union = np.sort(g["seed"].unique())
        weights = resamples(len(union), n_boot, stream(seed, ("invariance", wl, int(width))))
        means = seed_means(weights, on_seeds(cube.to_numpy(float), seeds, union))
        slopes = np.array([slope(ks, row) for row in means])
        lo, hi = ci(slopes, len(seeds))
        loss = g.groupby("log2_k")["capped"].mean()
        out.append({"workload": wl, "recipe": recipe, "width": int(width), "n_seeds": len(seeds),
                    "log2_ks": "/".join(f"{k:g}" for k in ks), "sv_slope": slopes[0], "sv_slope_lo": lo,
                    "sv_slope_hi": hi, "predicted_slope": PREDICTED_SLOPE,
                    "loss_at_min_k": float(loss.iloc[0]), "loss_at_max_k": float(loss.iloc[-1]),
                    "tau": float(g["tau"].mean())})
    return pd.DataFrame(out, columns=FIT_COLUMNS)


def plot(t: pd.DataFrame, fits: pd.DataFrame, path: Path) -> Path:
    import seaborn as sns

    from transferbench.plots import _fig, _save

    fig, axes = _fig(2, ncols=2, size=(5.4, 4.2))
    widths = sorted(t["width"].unique())
    palette = dict(zip(widths, sns.color_palette("viridis", max(len(widths), 1)), strict=False))
    for width, g in t.groupby("width"):
        ok = g[~g["diverged"].astype(bool)]
        m = ok.groupby("log2_k")["log2_top_sv"].agg(["mean", "std"])
        f = fits[fits["width"] == width].iloc[0]
        label = f"d={width}: slope {f['sv_slope']:.2f} [{f['sv_slope_lo']:.2f}, {f['sv_slope_hi']:.2f}]"
        axes[0].errorbar(m.index, m["mean"], yerr=m["std"].fillna(0), color=palette[width], marker="o", capsize=3,
                         label=label)
        k0 = m["mean"].get(0.0, m["mean"].iloc[len(m) // 2])
        x0 = 0.0 if 0.0 in m.index else m.index[len(m) // 2]
        axes[0].plot(m.index, k0 + PREDICTED_SLOPE * (m.index - x0), color=palette[width], ls="--", lw=1)
        loss = g.groupby("log2_k")["capped"].agg(["mean", "std"])
        axes[1].errorbar(loss.index, loss["mean"], yerr=loss["std"].fillna(0), color=palette[width], marker="o",
                         capsize=3, label=f"d={width} (tau {f['tau']:.1f})")
    axes[0].plot([], [], color="0.4", ls="--", lw=1, label="[Fan25]: SV ∝ sqrt(η/λ) ∝ k (slope 1)")
    axes[0].set_ylabel("log2 top singular value (mean over hidden matrices)")
    axes[1].set_ylabel("held-out loss (capped)")
    for ax in axes:
        ax.set_xlabel("log2 k   (lr = η·k, wd = λ/k: lr·wd fixed, η/λ x k²)")
        ax.legend(fontsize=7)
    wl, recipe = t["workload"].iloc[0], t["recipe"].iloc[0]
    fig.suptitle(f"{wl}, {recipe}: does the top SV follow η/λ alone? (bars: sd over seeds)", fontsize=10)
    return _save(fig, path)


def write(records: list[Path], log2_lr: float, wd: float, tables: Path, plots: Path) -> list[Path]:
    t = runs_table(records, log2_lr, wd)
    fits = fit(t)
    tables.mkdir(parents=True, exist_ok=True)
    plots.mkdir(parents=True, exist_ok=True)
    paths = [tables / "invariance.csv", tables / "invariance_fit.csv"]
    t.to_csv(paths[0], index=False)
    fits.to_csv(paths[1], index=False)
    return [*paths, plot(t, fits, plots / f"invariance_{t['workload'].iloc[0]}.png")]
