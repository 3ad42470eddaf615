"""What every figure module shares (plots.py, plots_coord.py, plots_transfer.py, plots_exponents.py,
plots_wd.py, invariance.py): the loss unit of a workload, the panel grid, saving, an empty panel's message and
the log2 width axis. Agg figures only, never pyplot, never torch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from transferbench.config.axes import WORDS
from transferbench.config.axes import axis_of_table as axis_of  # noqa: F401 (the plots' name)


def loss_unit(workload: str) -> str:
    """The workload's loss unit from its spec (transferbench.workloads); "loss units" for one not registered here."""
    from transferbench import workloads

    try:
        return workloads.get(workload).loss_unit
    except workloads.UnknownWorkload:
        return "loss units"


PANEL = (4.4, 3.4)  # inches per panel


def _fig(n: int, ncols: int = 3, size: tuple[float, float] = PANEL) -> tuple[Figure, list]:
    ncols = max(1, min(n, ncols))
    nrows = max(1, -(-n // ncols))
    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows + 0.8), layout="constrained")
    FigureCanvasAgg(fig)
    axes = list(np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel())
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=110)
    return path


def _empty(ax, msg: str) -> None:
    ax.text(0.5, 0.5, msg, ha="center", va="center", transform=ax.transAxes, color="0.4", wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])


def _width_axis(ax, widths, axis: str = "width") -> None:
    """A log2 x axis with a tick at every value of the sweep's scale axis."""
    widths = sorted({int(w) for w in widths})
    ax.set_xscale("log", base=2)
    if widths:
        ax.set_xticks(widths, [str(w) for w in widths])
        ax.minorticks_off()
    ax.set_xlabel(f"{WORDS[axis].label} (log2 scale)")
