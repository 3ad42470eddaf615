"""The headline as a figure: what you get at every width when the lr is tuned at the base width.

``transferred_{workload}.png``: per recipe (identical trainings drawn once, labelled with their aliases), the
cross-fitted transferred loss against width (seed_scores.csv: chosen on the other seeds, scored on the held-out
one; bars are 95% t intervals over seeds), and at the widest width the loss of re-tuning there (open marker).
A falling line is "wider is better"; the gap between a line's last point and its open marker is its regret.
Never imports torch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from transferbench.aggregate import with_axis
from transferbench.config.axes import WORDS
from transferbench.crossfit import t_interval
from transferbench.headline import alias_groups
from transferbench.plots_common import axis_of, loss_unit
from transferbench.scopes import board_scopes, joint_workloads, same_wd, wd_key
from transferbench.scopes import label as scope_label


def _stats(values: pd.Series) -> tuple[float, float]:
    mean, lo, hi, _ = t_interval(pd.to_numeric(values, errors="coerce").to_numpy(float))
    return mean, (hi - mean) if np.isfinite(hi) else 0.0


def plot_transferred(workload: str, seed_scores: pd.DataFrame, runs: pd.DataFrame, path: Path) -> Path:
    """Write ``path`` for one workload (every wd scope gets its own panel; a workload that searches lr x wd
    one, its joint scope: the (lr, wd) tuned together at the base width, scopes.py)."""
    s = board_scopes(seed_scores[seed_scores["workload"] == workload])
    wds = sorted(s["wd"].unique(), key=lambda w: (np.isnan(w), w)) or [np.nan]
    fig = Figure(figsize=(6.4 * len(wds), 4.6))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(wds), squeeze=False)
    groups = alias_groups(runs[runs["workload"] == workload], joint_workloads(s))
    name = WORDS[axis_of(runs[runs["workload"] == workload])].name
    for ax, wd in zip(axes[0], wds, strict=True):
        g = s[same_wd(s["wd"], wd)]
        names = groups.get((workload, wd_key(wd)), [[r] for r in sorted(g["recipe"].unique())])
        palette = sns.color_palette("tab10", max(len(names), 1))
        for color, group in zip(palette, names, strict=False):
            r = g[g["recipe"] == group[0]]
            if not len(r):
                continue
            by = r.groupby("scale")["transferred_loss"]
            widths = np.array(sorted(r["scale"].unique()), float)
            stats = np.array([_stats(by.get_group(w)) for w in widths])
            label = group[0] + (f" (= {', '.join(group[1:])})" if len(group) > 1 else "")
            ax.errorbar(widths, stats[:, 0], yerr=stats[:, 1], color=color, marker="o", capsize=3, label=label)
            wide = r[r["largest"].map(lambda x: str(x).lower() in ("true", "1"))]
            mean, err = _stats(wide["retuned_loss"])
            ax.errorbar([widths[-1] * 1.04], [mean], yerr=[err], color=color, marker="o", mfc="white", capsize=3,
                        ls="none")
        ax.set_xscale("log", base=2)
        ticks = sorted(g["scale"].unique())
        ax.set_xticks(ticks, [str(int(w)) for w in ticks])
        ax.minorticks_off()
        ax.set_xlabel(f"{name} (open markers: re-tuned at the largest {name})")
        tuned = "the (lr, wd)" if wd_key(wd) is None else "the lr"
        ax.set_ylabel(f"held-out loss ({loss_unit(workload)}) at {tuned} tuned at the base {name}")
        ax.set_title(scope_label(workload, wd, len(wds) > 1))
        ax.legend(fontsize=7)
    what = "the (lr, wd)" if any(wd_key(w) is None for w in wds) else "the lr"
    fig.suptitle(f"What you get: the loss at {what} tuned at the base {name}\n(cross-fitted over seeds; bars: 95% "
                 "t intervals over seeds, unpaired)", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def make_transfer_plots(seed_scores: pd.DataFrame, runs: pd.DataFrame, out_dir: Path,
                        workloads: list[str] | None = None) -> list[Path]:
    """``transferred_{workload}.png`` for every workload of ``runs`` (an empty panel when it has no scores)."""
    runs = with_axis(runs)  # a runs table of before the axes is a width sweep
    names = workloads or sorted(runs["workload"].unique())
    with sns.axes_style("whitegrid"):
        return [plot_transferred(wl, seed_scores, runs, Path(out_dir) / f"transferred_{wl}.png") for wl in names]
