"""Width exponents of the top singular value ([Fan25], arXiv 2510.15262): measured and predicted.

[Fan25] find that in AdamW's steady state the top singular value of a hidden matrix scales as
sqrt(eta/lambda) x d^0.75, with eta and lambda that matrix's own lr and weight-decay coefficient. A recipe
that scales them as m^a and m^b therefore predicts a slope of 0.75 + (a - b)/2 for log2 top SV against
log2 width: standard 0.75, mup 0.25, mup-independent-wd -0.25, sqrt-d 0, wd-power[p] 0.25 - p/2.

- ``sv_exponent`` (transfer.csv): the least-squares slope of the seed-mean log2 top singular value (the
  mean over hidden matrices of log2 sigma_max, runs.csv ``log2_top_sv``, at the end of training) against
  log2 width, at the transferred lr (the tuning width's optimum, each width's nearest swept lr), with the
  bootstrap CI of the other metrics (the same seed draws).
- ``sv_exponent_fan``: the prediction, from the hidden multipliers the runs applied (runs.csv
  ``hidden_lr_mult`` and ``hidden_wd_mult``, read from the records, so a plugin gets its prediction too).
  Per-step factors are left out: warmup-replacement's f_t -> 1 at steady state, so it predicts 0.75.
- ``tau`` and ``tau_widest``: how many weight-decay timescales the hidden matrices lived through at the
  transferred lr (runs.csv ``tau``, seed mean), at the tuning and the widest width. The law is about
  steady state, tau >> 1; a row with small tau is not a test of it.
numpy/pandas only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from transferbench.bootstrap import ci, on_seeds, seed_means
from transferbench.fit import slope

#: [Fan25]'s exponent of width in the top singular value at fixed per-matrix lr and weight decay.
FAN_D_EXPONENT = 0.75
NEEDED = ("log2_top_sv", "hidden_lr_mult", "hidden_wd_mult", "tau")
COLUMNS = ["sv_exponent", "sv_exponent_lo", "sv_exponent_hi", "sv_exponent_fan", "tau", "tau_widest"]


def fan_exponent(widths: Sequence[float], lr_mults: Sequence[float], wd_mults: Sequence[float]) -> float:
    """0.75 + (a - b)/2 with a, b the slopes of log2 hidden lr and wd multipliers against log2 width;
    NaN without weight decay (no steady state) or with fewer than two widths."""
    lr, wd = np.asarray(lr_mults, float), np.asarray(wd_mults, float)
    if not (np.all(lr > 0) and np.all(wd > 0)):
        return np.nan
    x = np.log2(np.asarray(widths, float))
    return FAN_D_EXPONENT + 0.5 * (slope(x, np.log2(lr)) - slope(x, np.log2(wd)))


def _at_lr(g: pd.DataFrame, widths: np.ndarray, log2_lr: float, column: str) -> pd.DataFrame:
    """Per seed (rows) and width (columns): ``column`` at each width's swept lr nearest ``log2_lr`` (ties
    -> the lower lr, as metrics.sv_at_lr); NaN for diverged runs and missing cells."""
    out = pd.DataFrame(np.nan, index=np.sort(g["seed"].unique()), columns=widths)
    if not np.isfinite(log2_lr):
        return out
    for w in widths:
        gw = g[g["scale"] == w]
        grid = np.sort(gw["log2_lr"].unique())
        if not len(grid):
            continue
        near = grid[np.argmin(np.abs(grid - log2_lr))]
        cell = gw[(gw["log2_lr"] == near) & ~gw["bad"]]
        values = pd.to_numeric(cell[column], errors="coerce").groupby(cell["seed"]).mean()
        out.loc[values.index, w] = values.to_numpy(float)
    return out


def columns(ctx: dict[str, Any]) -> dict[str, float]:
    """The COLUMNS of one (workload, recipe, wd) group from metrics._lr_group's context (it needs the
    resample ``weights`` and the workload's seed ids ``union``)."""
    g, widths, weights, union = ctx["group"], ctx["scales"], ctx["weights"], ctx["union"]
    g = g.reindex(columns=[*g.columns, *(c for c in NEEDED if c not in g.columns)])  # a runs table of 0.2
    at = float(ctx["opt"][0, ctx["tuning"]])
    sv = _at_lr(g, widths, at, "log2_top_sv")
    a = on_seeds(sv.to_numpy(float), sv.index.to_numpy(), union)
    means = seed_means(weights, a)  # (1 + B, W)
    x = np.log2(widths.astype(float))
    slopes = np.array([slope(x, row) for row in means])
    lo, hi = ci(slopes, int(np.isfinite(a).any(axis=1).sum()))
    mults = g.groupby("scale")[["hidden_lr_mult", "hidden_wd_mult"]].median().reindex(widths)
    tau = _at_lr(g, widths, at, "tau").mean(axis=0)
    return {
        "sv_exponent": slopes[0], "sv_exponent_lo": lo, "sv_exponent_hi": hi,
        "sv_exponent_fan": fan_exponent(widths, mults["hidden_lr_mult"], mults["hidden_wd_mult"]),
        "tau": float(tau.iloc[ctx["tuning"]]), "tau_widest": float(tau.iloc[ctx["largest"]]),
    }
