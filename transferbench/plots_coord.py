"""The coordinate-check figure (plots.py's fourth): ``coord_check_{workload}.png``, logits and sublayer-output
RMS against width for the first steps, at the largest lr without divergence, drawn like the coordinate checks
of microsoft/mup (flat across widths = activations stay Θ(1) as width grows). Same conventions as plots.py
(Agg figures, never torch).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatter

from transferbench.plots_common import _empty, _save, _width_axis


def _coord_lr(runs: pd.DataFrame, lrs: np.ndarray) -> tuple[float, bool]:
    """Largest log2 lr (among ``lrs``) at which no width diverged; else the smallest (flagged False)."""
    bad = runs.groupby("log2_lr")["bad"].any()
    safe = [x for x in lrs if x in bad.index and not bad[x]]
    return (max(safe), True) if safe else (min(lrs), False)


class _PlainLog(LogFormatter):
    """matplotlib's choice of which log ticks to label, written as plain numbers (0.6, not 6e-01)."""

    def __call__(self, x: float, pos: int | None = None) -> str:
        return f"{x:.3g}" if super().__call__(x, pos) else ""


def plot_coord_check(wl: str, runs: pd.DataFrame, coord: pd.DataFrame, path: Path) -> Path:
    recipes = sorted(coord["recipe"].unique()) if len(coord) else []
    wd = coord["wd"].value_counts().idxmax() if len(coord) else np.nan  # the most common wd
    fig = Figure(figsize=(3.4 * max(len(recipes), 1), 6.2), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, max(len(recipes), 1), squeeze=False)
    if not recipes:
        for ax in axes.ravel():
            _empty(ax, "no coordinate-check data")
    for j, recipe in enumerate(recipes):
        c = coord[(coord["recipe"] == recipe) & (coord["wd"] == wd)]
        r = runs[(runs["recipe"] == recipe) & (runs["wd"] == wd)]
        x, safe = _coord_lr(r, np.sort(c["log2_lr"].unique()))
        c = c[c["log2_lr"] == x].groupby(["quantity", "step", "width"])["value"].mean().reset_index()
        steps = sorted(c["step"].unique())
        colors = dict(zip(steps, sns.color_palette("flare", max(len(steps), 1)), strict=False))
        for i, q in enumerate(("logits_rms", "hidden_rms")):
            ax = axes[i, j]
            cq = c[(c["quantity"] == q) & (c["value"] > 0)]  # zero-init readouts give 0 at step 0: no log
            for step, s in cq.groupby("step"):
                ax.plot(s["width"], s["value"], "-o", ms=3, color=colors[step], label=f"step {int(step)}")
            if cq.empty:
                _empty(ax, "no positive values")
                continue
            _width_axis(ax, cq["width"])
            ax.set_yscale("log")
            # Plain numbers; minor ticks labelled only as far as they fit (all under half a decade).
            ax.yaxis.set_major_formatter(_PlainLog(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
            ax.yaxis.set_minor_formatter(_PlainLog(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
            ax.set_ylabel(("RMS of output logits" if q == "logits_rms" else "mean RMS of sublayer outputs")
                          + " (log)")
            ax.legend(fontsize=6)
            zeros = sorted(c.loc[(c["quantity"] == q) & (c["value"] <= 0), "step"].unique())
            if zeros:  # e.g. a zero-initialised readout gives logits of exactly 0 at step 0
                ax.text(0.98, 0.02, f"step {', '.join(str(int(t)) for t in zeros)}: 0, not drawn (log axis)",
                        transform=ax.transAxes, ha="right", va="bottom", fontsize=6, color="0.4")
        note = "" if safe else " (every lr diverged somewhere)"
        axes[0, j].set_title(f"{recipe}\nlog2 lr = {x:g}{note}", fontsize=9,
                             color="black" if safe else "firebrick")
    fig.suptitle(f"{wl}: coordinate check, wd={wd:g}, at the largest lr without "
                 "divergence\n(flat across widths = activations stay Θ(1) as width grows)", fontsize=10)
    return _save(fig, path)
