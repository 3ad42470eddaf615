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
- A study that also moves along the second direction, lr x j and wd x j (eta / lambda fixed, tau moving by
  j^2; the job side is grid.invariance_jobs'), adds ``log2_j`` and ``direction`` to invariance.csv and per
  width a ``product`` row to invariance_fit.csv (slope on log2 j, predicted 0): the two slopes identify both of
  the law's exponents (fit()).
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
    """The study's runs with their log2 k = ((log2 lr - log2 eta) - (log2 wd - log2 lambda)) / 2; where the study
    also moves along the second direction (lr x k, wd x k), with log2 j = ((log2 lr - log2 eta) + (log2 wd -
    log2 lambda)) / 2 and ``direction`` (``ratio``: j = 0; ``product``: k = 0, j != 0)."""
    return coordinates(prepared(pd.DataFrame([record_row(load_record(p), p) for p in records])), log2_lr, wd)


def coordinates(t: pd.DataFrame, log2_lr: float, wd: float) -> pd.DataFrame:
    """runs_table's columns from prepared runs: log2 k, and log2 j and direction where some run has j != 0."""
    u = t["log2_lr"] - log2_lr
    v = np.log2(t["wd"].astype(float)) - math.log2(wd)
    t = t.assign(log2_k=((u - v) / 2).round(6), log2_j=((u + v) / 2).round(6))
    columns = ROW_COLUMNS
    if (t["log2_j"] != 0).any():  # the second direction: eta/lambda fixed, lr x wd (tau) moves by j^2
        t["direction"] = np.where(t["log2_j"] == 0, "ratio", "product")
        columns = [*ROW_COLUMNS[:5], "log2_j", "direction", *ROW_COLUMNS[5:]]
    return t.reindex(columns=columns).sort_values(["width", "log2_k", "seed"]).reset_index(drop=True)


def fit(t: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """invariance_fit.csv: per width the slope along (lr x k, wd / k), predicted 1; where the study has the
    second direction, also per width the slope of log2 top SV on log2 j along (lr x j, wd x j), predicted 0 (eta /
    lambda fixed), in rows with ``direction`` ``product``. The two slopes give both exponents of [Fan25]'s law,
    log2 SV = a log2 lr + b log2 wd + c: slope_k = a - b, slope_j = a + b (law: a = 1/2, b = -1/2)."""
    if "direction" not in t:
        return _fit(t, "log2_k", PREDICTED_SLOPE, n_boot, seed)
    ratio = _fit(t[t["log2_j"] == 0], "log2_k", PREDICTED_SLOPE, n_boot, seed).assign(direction="ratio")
    product = _fit(t[t["log2_k"] == 0].assign(log2_k=lambda d: d["log2_j"]), "log2_k", 0.0, n_boot,
                   seed).assign(direction="product")
    return pd.concat([ratio, product], ignore_index=True)[[*FIT_COLUMNS[:5], "direction", *FIT_COLUMNS[5:]]]


def _fit(t: pd.DataFrame, coord: str, predicted: float, n_boot: int, seed: int) -> pd.DataFrame:
    out = []
    for (wl, recipe, width), g in t.groupby(["workload", "recipe", "width"], sort=True):
        ok = g[~g["diverged"].astype(bool)]
        cube = ok.pivot_table(index="seed", columns=coord, values="log2_top_sv", aggfunc="mean")
        seeds, ks = cube.index.to_numpy(), cube.columns.to_numpy(float)
        union = np.sort(g["seed"].unique())
        weights = resamples(len(union), n_boot, stream(seed, ("invariance", wl, int(width))))
        means = seed_means(weights, on_seeds(cube.to_numpy(float), seeds, union))
        slopes = np.array([slope(ks, row) for row in means])
        lo, hi = ci(slopes, len(seeds))
        loss = g.groupby(coord)["capped"].mean()
        out.append({"workload": wl, "recipe": recipe, "width": int(width), "n_seeds": len(seeds),
                    "log2_ks": "/".join(f"{k:g}" for k in ks), "sv_slope": slopes[0], "sv_slope_lo": lo,
                    "sv_slope_hi": hi, "predicted_slope": predicted,
                    "loss_at_min_k": float(loss.iloc[0]), "loss_at_max_k": float(loss.iloc[-1]),
                    "tau": float(g["tau"].mean())})
    return pd.DataFrame(out, columns=FIT_COLUMNS)


def plot(t: pd.DataFrame, fits: pd.DataFrame, path: Path) -> Path:
    import seaborn as sns

    from transferbench.plots_common import _fig, _save

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
    ratio = t[t["log2_j"] == 0] if "log2_j" in t else t  # the plot: the (lr x k, wd / k) direction
    ratio_fits = fits[fits["direction"] == "ratio"] if "direction" in fits else fits
    return [*paths, plot(ratio, ratio_fits, plots / f"invariance_{t['workload'].iloc[0]}.png")]
