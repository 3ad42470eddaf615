"""Figures of the weight-decay transfer (wd_transfer.py), per workload that sweeps two or more positive wds:

1. ``wd_heatmap_{workload}.png``: the held-out loss (capped, seed mean) over log2 lr × log2 wd, as excess over
   the width's best cell so that one colour scale shows every width's valley, one row per recipe and one column
   per width; the 2-D optimum (optima_wd.csv) is a cross whose arms are its 95% CIs;
2. ``optimal_wd_{workload}.png``: the optimal log2 base wd against width, one line per recipe with its CI bars
   and its wd drift in the legend (flat = the recipe's wd rule transfers).

Drawn only for workloads whose runs sweep two or more positive wds (the DAG declares them for the workloads
whose profile does: Snakefile ``WD_WORKLOADS``). Same conventions as plots.py (Agg figures, never torch).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from transferbench.aggregate import with_axis
from transferbench.plots_common import _fig, _save, _width_axis, loss_unit


def swept_workloads(runs: pd.DataFrame) -> list[str]:
    """Workloads with two or more positive wds in the runs table."""
    wd = pd.to_numeric(runs["wd"], errors="coerce")
    n = runs[wd > 0].groupby("workload")["wd"].nunique()
    return sorted(str(w) for w in n[n >= 2].index)


def _err(o: pd.Series, col: str) -> list[list[float]]:
    lo, hi = o[f"{col}_lo"] if np.isfinite(o[f"{col}_lo"]) else o[col], o[f"{col}_hi"] if np.isfinite(
        o[f"{col}_hi"]) else o[col]
    return [[max(o[col] - lo, 0.0)], [max(hi - o[col], 0.0)]]


def plot_heatmaps(wl: str, runs: pd.DataFrame, optima_wd: pd.DataFrame, path: Path) -> Path:
    r = runs[pd.to_numeric(runs["wd"], errors="coerce") > 0].assign(log2_wd=lambda d: np.log2(d["wd"].astype(float)))
    recipes, widths = sorted(r["recipe"].unique()), sorted(r["scale"].unique())
    fig = Figure(figsize=(3.3 * len(widths) + 1.2, 2.9 * len(recipes) + 1.0), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(recipes), len(widths), squeeze=False)
    cells = r.groupby(["recipe", "scale", "log2_wd", "log2_lr"])["capped"].mean()
    # The loss falls with width, so one absolute scale leaves the base width one flat colour: colour the excess
    # over the width's best cell (any recipe) instead; one scale then serves every panel and shows each one's
    # valley.
    cells = cells - cells.groupby(level="scale").transform("min")
    hi = float(np.nanpercentile(cells, 60)) if len(cells) else 1.0
    lrs, wds = np.sort(r["log2_lr"].unique()), np.sort(r["log2_wd"].unique())
    mesh = None
    for i, recipe in enumerate(recipes):
        for j, w in enumerate(widths):
            ax = axes[i, j]
            grid = cells.get((recipe, w), pd.Series(dtype=float))
            z = (grid.unstack("log2_lr").reindex(index=wds, columns=lrs) if len(grid)
                 else pd.DataFrame(np.nan, index=wds, columns=lrs))
            mesh = ax.pcolormesh(_edges(lrs), _edges(wds), np.ma.masked_invalid(z.to_numpy(float)), cmap="viridis_r",
                                 vmin=0.0, vmax=max(hi, 1e-9), shading="flat")
            o = optima_wd[(optima_wd["recipe"] == recipe) & (optima_wd["scale"] == w)]
            if len(o) and np.isfinite(o["opt_log2_wd"].iloc[0]):
                o = o.iloc[0]
                ax.errorbar(o["opt_log2_lr"], o["opt_log2_wd"], xerr=_err(o, "opt_log2_lr"),
                            yerr=_err(o, "opt_log2_wd"), color="red", marker="+", ms=10, capsize=3, lw=1.5)
            ax.set_title(f"{recipe}, d={int(w)}", fontsize=9)
            ax.set_xlabel("log2 base learning rate" if i == len(recipes) - 1 else "")
            ax.set_ylabel("log2 base weight decay" if j == 0 else "")
            ax.set_facecolor("0.92")  # not trained
    if mesh is not None:
        fig.colorbar(mesh, ax=axes, shrink=0.6, extend="max",
                     label=f"held-out loss (seed mean, capped at L0) minus the width's best cell ({loss_unit(wl)})")
    fig.suptitle(f"{wl}: loss over lr × weight decay per width (grey: not trained; red cross: the 2-D optimum, "
                 "arms = 95% CIs)\nwd is the base wd: each recipe scales it with width by its own rule", fontsize=10)
    return _save(fig, path)


def _edges(centres: np.ndarray) -> np.ndarray:
    """Cell edges for pcolormesh: midpoints between sorted centres, half a step beyond the ends."""
    c = np.asarray(centres, float)
    if len(c) == 1:
        return np.array([c[0] - 0.5, c[0] + 0.5])
    mid = (c[1:] + c[:-1]) / 2
    return np.concatenate([[c[0] - (mid[0] - c[0])], mid, [c[-1] + (c[-1] - mid[-1])]])


def plot_optimal_wd(wl: str, optima_wd: pd.DataFrame, transfer: pd.DataFrame, path: Path) -> Path:
    fig, (ax,) = _fig(1, size=(6.4, 4.6))
    recipes = sorted(optima_wd["recipe"].unique())
    palette = dict(zip(recipes, sns.color_palette("tab10", 10) * 10, strict=False))
    for k, recipe in enumerate(recipes):
        g = optima_wd[optima_wd["recipe"] == recipe].sort_values("scale")
        dodge = 2.0 ** (0.03 * (k - (len(recipes) - 1) / 2))
        t = transfer[transfer["recipe"] == recipe]
        label = str(recipe)
        if len(t) and np.isfinite(t["wd_drift"].iloc[0]):
            t = t.iloc[0]
            cis = f" [{t['wd_drift_lo']:+.2f}, {t['wd_drift_hi']:+.2f}]" if np.isfinite(t["wd_drift_lo"]) else ""
            label += f": wd drift {t['wd_drift']:+.2f}{cis}"
        err = np.vstack([g["opt_log2_wd"] - g["opt_log2_wd_lo"], g["opt_log2_wd_hi"] - g["opt_log2_wd"]])
        ax.errorbar(g["scale"] * dodge, g["opt_log2_wd"], yerr=np.nan_to_num(np.abs(err)), color=palette[recipe],
                    marker="o", capsize=3, label=label)
        e = g[g["edge"].astype(str).str.lower().isin(("true", "1"))]
        ax.plot(e["scale"] * dodge, e["opt_log2_wd"], "o", ms=11, mfc="none", mec="firebrick", mew=1.5)
    _width_axis(ax, optima_wd["scale"])
    ax.set_ylabel("optimal log2 base weight decay")
    ax.legend(title="recipe: wd drift (octaves/doubling) [95% CI]", fontsize=7, title_fontsize=7)
    fig.suptitle(f"{wl}: optimal weight decay against width\n(flat = the recipe's wd rule transfers;\nbars: 95% "
                 "bootstrap CI over seeds; red ring: on the wd grid's edge)", fontsize=10)
    return _save(fig, path)


def make_wd_plots(runs: pd.DataFrame, optima_wd: pd.DataFrame, transfer: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Both figures of every workload that sweeps wd; ``runs`` as metrics.prepared gives them."""
    runs = with_axis(runs)  # a runs table of before the axes is a width sweep
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    with sns.axes_style("white"):
        for wl in swept_workloads(runs):
            o, t = optima_wd[optima_wd["workload"] == wl], transfer[transfer["workload"] == wl]
            paths.append(plot_heatmaps(wl, runs[runs["workload"] == wl], o, out_dir / f"wd_heatmap_{wl}.png"))
            paths.append(plot_optimal_wd(wl, o, t, out_dir / f"optimal_wd_{wl}.png"))
    return paths
