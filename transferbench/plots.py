"""Figures of docs/design.md §7, one set per workload, from the tables only (runs, optima, transfer, coord_check):

1. ``lr_sweep_{workload}.png``: capped loss against log2 lr per width, one panel per recipe;
2. ``optimal_lr_{workload}.png``: the fitted optimal log2 lr against width, with bootstrap CIs and drift;
3. ``singular_values_{workload}.png``: log2 top singular value at the transferred lr against width ([Fan25]);
4. ``coord_check_{workload}.png``: logits and sublayer-output RMS against width for the first steps,
   drawn like the coordinate checks of microsoft/mup.

Figures are matplotlib ``Figure`` objects rendered by the Agg canvas (no pyplot state, no display), so
plotting works headless and in parallel. Partial data (all runs diverged, one width, one seed, one lr)
draws what it can; every file is always written so the DAG's outputs are fixed. Never imports torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D

from transferbench import plots_coord
from transferbench.aggregate import with_axis
from transferbench.config.axes import WORDS
from transferbench.fit import fitted_loss
from transferbench.metrics import prepared, sv_at_lr
from transferbench.plots_common import _empty, _fig, _save, _width_axis, axis_of, loss_unit


def _panels(df: pd.DataFrame) -> list[tuple[str, float]]:
    return sorted({(str(r), float(w)) for r, w in zip(df["recipe"], df["wd"], strict=True)})


def _panel_title(recipe: str, wd: float, many_wd: bool) -> str:
    return f"{recipe}, wd={wd:g}" if many_wd else recipe


# -- 1. loss against learning rate ------------------------------------------------------------------
def _ylim(stats: pd.DataFrame, floor: float | None) -> tuple[float, float, bool]:
    """y-range over non-diverged cells (so capped divergences do not squash the curves)."""
    ok = stats[~stats["div"]] if (~stats["div"]).any() else stats
    lo = float((ok["mean"] - ok["sd"].fillna(0)).min())
    hi = float((ok["mean"] + ok["sd"].fillna(0)).max())
    if not np.isfinite(lo) or not np.isfinite(hi):
        return 0.0, 1.0, False
    show_floor = floor is not None and np.isfinite(floor) and floor >= lo - 0.5 * max(hi - lo, 1e-9)
    if show_floor:
        lo = min(lo, float(floor))
    pad = 0.08 * (hi - lo) if hi > lo else 0.05 * max(abs(hi), 1.0)
    return lo - pad, hi + 2.5 * pad, show_floor


def plot_lr_sweep(wl: str, runs: pd.DataFrame, optima: pd.DataFrame, path: Path, floor: float | None) -> Path:
    panels = _panels(runs)
    many_wd = runs["wd"].nunique() > 1
    name, sym = WORDS[axis_of(runs)].name, WORDS[axis_of(runs)].symbol
    fig, axes = _fig(max(len(panels), 1))
    if not panels:
        _empty(axes[0], "no runs")
    unit = loss_unit(wl)
    for ax, (recipe, wd) in zip(axes, panels, strict=False):
        g = runs[(runs["recipe"] == recipe) & (runs["wd"] == wd)]
        stats = g.groupby(["scale", "log2_lr"]).agg(
            mean=("capped", "mean"), sd=("capped", "std"), div=("bad", "any")).reset_index()
        widths = sorted(stats["scale"].unique())
        colors = dict(zip(widths, sns.color_palette("crest", max(len(widths), 1)), strict=False))
        lo, hi, show_floor = _ylim(stats, floor)
        notes = []
        for w in widths:
            o = optima[(optima["recipe"] == recipe) & (optima["wd"] == wd) & (optima["scale"] == w)]
            if _sweep_line(ax, stats[stats["scale"] == w].sort_values("log2_lr"), o, colors[w], f"{sym}{int(w)}", lo,
                           hi):
                notes.append(str(int(w)))
        if show_floor:
            ax.axhline(floor, ls="--", color="0.3", lw=1)
        ax.set_ylim(lo, hi)
        ax.set_xlabel(f"log2 base learning rate (lr at the base {name})")
        ax.set_ylabel(f"eval loss, capped at initial loss ({unit})")
        title = _panel_title(recipe, wd, many_wd)
        dead = not (~stats["div"]).any()
        if dead:
            title += "\nevery run diverged: no optimum"
        elif notes:
            title += f"\nedge optimum at {sym}{', '.join(notes)}: widen the lr grid"
        ax.set_title(title, fontsize=10, color="firebrick" if dead or notes else "black")
        extra = _sweep_legend(bool(notes), bool(stats["div"].any()), floor if show_floor else None)
        ax.legend(handles=ax.get_legend_handles_labels()[0] + extra, fontsize=7, loc="upper left")
    fig.suptitle(f"{wl}: final eval loss against learning rate, one line per {name} (mean over seeds ± sd)")
    return _save(fig, path)


def _sweep_line(ax: Any, s: pd.DataFrame, o: pd.DataFrame, c: Any, label: str, lo: float, hi: float) -> bool:
    """One width's (depth's, horizon's) curve (mean ± sd), its diverged runs (crosses at the top) and its fitted
    optimum (a star on the fitted curve, hollow on a grid edge); True when that optimum is on the edge."""
    ax.plot(s["log2_lr"], s["mean"], "-o", ms=3, color=c, label=label)
    if s["sd"].notna().any():
        ax.fill_between(s["log2_lr"], s["mean"] - s["sd"], s["mean"] + s["sd"], color=c, alpha=0.2, lw=0)
    d = s[s["div"]]
    ax.plot(d["log2_lr"], np.full(len(d), hi - 0.04 * (hi - lo)), "x", color=c, ms=7, mew=2)
    if not len(o) or not np.isfinite(o["opt_log2_lr"].iloc[0]):
        return False
    x = float(o["opt_log2_lr"].iloc[0])
    y = min(fitted_loss(s["log2_lr"], s["mean"], x), hi - 0.1 * (hi - lo))
    edge = bool(o["edge"].iloc[0])
    ax.plot([x], [y], "*", ms=14, color=c, mec="black", mfc="none" if edge else c, zorder=5)
    return edge


def _sweep_legend(edge: bool, diverged: bool, floor: float | None) -> list[Line2D]:
    extra = [Line2D([], [], marker="*", ls="", color="0.4", ms=10, label="fitted optimum")]
    if edge:
        extra.append(Line2D([], [], marker="*", ls="", mfc="none", mec="black", ms=10, label="optimum on grid edge"))
    if diverged:
        extra.append(Line2D([], [], marker="x", ls="", color="0.4", mew=2, label="diverged (drawn at top)"))
    if floor is not None:
        extra.append(Line2D([], [], ls="--", color="0.3", label=f"best achievable loss {floor:.3g}"))
    return extra


# -- 2. optimal learning rate against width ---------------------------------------------------------
def _transfer_row(transfer: pd.DataFrame, recipe: str, wd: float) -> pd.Series | None:
    t = transfer[(transfer["recipe"] == recipe) & (transfer["wd"] == wd)]
    return t.iloc[0] if len(t) else None


def plot_optimal_lr(wl: str, optima: pd.DataFrame, transfer: pd.DataFrame, path: Path) -> Path:
    wds = sorted(optima["wd"].unique()) or [np.nan]
    fig, axes = _fig(len(wds), size=(6.0, 4.2))
    palette = dict(zip(sorted(optima["recipe"].unique()), sns.color_palette("tab10", 10) * 10, strict=False))
    axis = axis_of(optima)
    for ax, wd in zip(axes, wds, strict=False):
        o = optima[optima["wd"] == wd]
        if o["opt_log2_lr"].notna().sum() == 0:
            _empty(ax, "no optimum could be fitted")
            continue
        n_rec = o["recipe"].nunique()
        for i, (recipe, g) in enumerate(o.groupby("recipe")):
            g = g.sort_values("scale")
            dodge = 2.0 ** (0.03 * (i - (n_rec - 1) / 2))  # side by side, so the error bars stay readable
            t = _transfer_row(transfer, recipe, wd)
            label = str(recipe)
            if t is not None and np.isfinite(t["drift"]):
                ci = f" [{t['drift_lo']:+.2f}, {t['drift_hi']:+.2f}]" if np.isfinite(t["drift_lo"]) else ""
                label += f": drift {t['drift']:+.2f}{ci}" + (" (edge!)" if t["drift_edge"] else "")
            err = np.vstack([g["opt_log2_lr"] - g["opt_log2_lr_lo"], g["opt_log2_lr_hi"] - g["opt_log2_lr"]])
            c = palette[recipe]
            ax.errorbar(g["scale"] * dodge, g["opt_log2_lr"], yerr=np.nan_to_num(np.abs(err)), color=c,
                        marker="o", capsize=3, label=label)
            e = g[g["edge"].astype(bool)]
            ax.plot(e["scale"] * dodge, e["opt_log2_lr"], "o", ms=11, mfc="none", mec="firebrick", mew=1.5)
        _width_axis(ax, o["scale"], axis)
        ax.set_ylabel("optimal log2 base learning rate")
        ax.set_title(f"wd={wd:g}" if len(wds) > 1 else "", fontsize=10)
        ax.legend(title="recipe: drift (octaves/doubling) [95% CI]", fontsize=7, title_fontsize=7)
    fig.suptitle(f"{wl}: optimal learning rate against {WORDS[axis].name}\n(flat = the lr transfers; bars: 95% "
                 "bootstrap CI over seeds;\nred ring: optimum on the lr grid's edge, not an estimate)",
                 fontsize=10)
    return _save(fig, path)


# -- 3. singular values against width ---------------------------------------------------------------
def plot_singular_values(wl: str, runs: pd.DataFrame, optima: pd.DataFrame, transfer: pd.DataFrame,
                         path: Path) -> Path:
    wds = sorted(runs["wd"].unique()) or [np.nan]
    fig, axes = _fig(len(wds), size=(6.0, 4.2))
    palette = dict(zip(sorted(runs["recipe"].unique()), sns.color_palette("tab10", 10) * 10, strict=False))
    for ax, wd in zip(axes, wds, strict=False):
        drawn = False
        for recipe, g in runs[runs["wd"] == wd].groupby("recipe"):
            t = _transfer_row(transfer, recipe, wd)
            if t is None:
                continue
            o = optima[(optima["recipe"] == recipe) & (optima["wd"] == wd)]
            o = o[o["scale"] == t["tuning_scale"]]
            at = float(o["opt_log2_lr"].iloc[0]) if len(o) else np.nan
            sv = sv_at_lr(g, at).dropna()
            if sv.empty:
                continue
            spread = f" (spread {t['sv_spread']:.2f})" if np.isfinite(t["sv_spread"]) else ""
            ax.plot(sv.index, sv.values, "-o", color=palette[recipe], label=f"{recipe}{spread}")
            drawn = True
        if not drawn:
            _empty(ax, "no singular values at the transferred lr")
            continue
        _width_axis(ax, runs["scale"], axis_of(runs))
        ax.set_ylabel("log2 top singular value (mean over hidden matrices)")
        ax.set_title(f"wd={wd:g}" if len(wds) > 1 else "", fontsize=10)
        ax.legend(title="recipe (max - min over widths)", fontsize=7, title_fontsize=7)
    fig.suptitle(f"{wl}: top singular value of hidden matrices at the transferred lr\n(flat = invariant "
                 "spectrum across widths, Fan et al. 2025)", fontsize=10)
    return _save(fig, path)


# -- entry point ------------------------------------------------------------------------------------
def make_plots(runs: pd.DataFrame, optima: pd.DataFrame, transfer: pd.DataFrame, coord: pd.DataFrame | None,
               out_dir: Path, best_loss: Mapping[str, float] | None = None) -> list[Path]:
    """Write the four figures of every workload in ``runs`` to ``out_dir``; return their paths.

    ``best_loss`` maps workload -> best achievable loss (aggregate.best_loss_by_workload), drawn dashed.
    """
    runs = with_axis(runs)  # a runs table of before the axes is a width sweep
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = prepared(runs)
    coord = coord if coord is not None else pd.DataFrame(columns=["workload", "recipe", "wd", "log2_lr"])
    paths = []
    with sns.axes_style("whitegrid"):
        for wl in sorted(runs["workload"].unique()):
            r = runs[runs["workload"] == wl]
            o, t = optima[optima["workload"] == wl], transfer[transfer["workload"] == wl]
            paths.append(plot_lr_sweep(wl, r, o, out_dir / f"lr_sweep_{wl}.png", (best_loss or {}).get(wl)))
            paths.append(plot_optimal_lr(wl, o, t, out_dir / f"optimal_lr_{wl}.png"))
            paths.append(plot_singular_values(wl, r, o, t, out_dir / f"singular_values_{wl}.png"))
            c = coord[coord["workload"] == wl]
            paths.append(plots_coord.plot_coord_check(wl, r, c, out_dir / f"coord_check_{wl}.png"))
    return paths
