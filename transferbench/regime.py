"""Regime verdicts (docs/design.md §6): is a workload in the regime the two source papers speak about?

A ranking of recipes means something only where the experiment can show what the papers claim. Per
scope (scopes.py: a (workload, wd), or a workload's joint lr x wd scope) four checks, each True, False or None
(cannot be checked, e.g. with one seed):

- ``wider_better``: at the lr transferred from the base width, the best recipe's (lowest transferred loss)
  seed-mean transferred loss falls at every width step. If wider is not better even there, the widths are
  not in the scaling regime (the model is too small for its data or trained too briefly) and no recipe's
  transfer is being tested.
- ``optimum_resolved``: every recipe's optimal log2 lr has a 95% CI within +-``MAX_CI_OCTAVES`` of its estimate
  (half-width under 1 octave: the lr known to a factor of 2 either way) at every width, and sits inside the lr
  grid (a joint scope: the 2-D optimum's lr and wd, optima_wd.csv, both). A drift or a regret read off an
  optimum that seeds move by octaves is noise. (The full width, e.g. 1.4
  octaves for llama's base width with 3 seeds and half-octave spacing, is about 2 t_{0.975,2} = 8.6 times the
  seeds' standard error of the optimum; a full width under 1 octave would need that error under 0.12 octave.)
- ``wd_acts``: where weight decay is on, the hidden matrices live through at least ``MIN_TAU`` weight-decay
  timescales at the widest width, tau = sum_t lr_t wd_t at the transferred lr (transfer.csv ``tau_widest``),
  for the recipes that keep AdamW's per-step decay lr x wd at the base width's (standard,
  mup-independent-wd, warmup-replacement; hidden lr x wd multiplier >= 1 at the widest width). [Kos25] and
  [Fan25] argue about the steady state that weight decay sets after tau >> 1; below one timescale the
  initial alignment still governs and weight-decay rules are not compared. A recipe that shrinks the
  per-step decay with width (mup, sqrt-d) is expected to fall below: that is its prediction, not the regime.
- ``warmup_completes``: a recipe with a per-step lr factor (warmup-replacement's f_t) ends with it at
  least ``MIN_FACTOR_END`` at the widest width and the transferred lr (runs.csv ``lr_factor_end``); one
  whose warmup never completes trains a different, slower model than the one it replaces.

A workload with a False check is out of regime: shown on the board, left out of the overall ranking, with
the reason printed. Thresholds: CI within +-1 octave, tau >= 1, f_t >= 0.9; ``max_opt_ci`` is the largest
half-width. pandas/numpy only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from transferbench.aggregate import with_axis
from transferbench.config.axes import WORDS
from transferbench.scopes import board_scopes, runs_of, same_wd, wd_key

MAX_CI_OCTAVES = 1.0
MIN_TAU = 1.0
MIN_FACTOR_END = 0.9
CHECKS = ["wider_better", "optimum_resolved", "wd_acts", "warmup_completes"]
COLUMNS = ["workload", "axis", "wd", "in_regime", *CHECKS, "one_base_model", "base_spread",
           "best_recipe", "transferred_by_scale", "max_opt_ci",
           "max_opt_ci_at", "min_tau_widest", "min_tau_at", "min_factor_end", "min_factor_at", "reasons"]


def _num(x: Any) -> float:
    v = pd.to_numeric(pd.Series([x]), errors="coerce").iloc[0]
    return float(v) if pd.notna(v) else np.nan


def _flag(x: Any) -> bool | None:
    if x is None or (isinstance(x, float) and np.isnan(x)) or x is pd.NA:
        return None
    return str(x).strip().lower() in ("true", "1", "1.0")


def _near(g: pd.DataFrame, log2_lr: float) -> pd.DataFrame:
    """The runs of ``g`` at its swept lr nearest ``log2_lr`` (ties -> the lower lr, as the metrics)."""
    grid = np.sort(g["log2_lr"].unique())
    if not len(grid) or not np.isfinite(log2_lr):
        return g.iloc[0:0]
    return g[g["log2_lr"] == grid[np.argmin(np.abs(grid - log2_lr))]]


#: The edge flag of each axis's optimum: optima.csv's lr; optima_wd.csv's lr and wd (a joint scope).
EDGES_1D, EDGES_2D = {"lr": "edge"}, {"lr": "lr_edge", "wd": "edge"}


def _resolved(optima: pd.DataFrame, edges: dict[str, str] = EDGES_1D) -> tuple[bool | None, float, str]:
    """(check, the largest CI half-width in octaves, where) over the optima's ``opt_log2_{axis}_lo/hi`` and
    edge flags, for each axis of ``edges`` (axis -> its edge column); with two axes, where names the axis."""
    if not len(optima):
        return None, np.nan, ""
    parts = []
    for axis, edge_col in edges.items():
        lo, hi = (pd.to_numeric(optima[f"opt_log2_{axis}_{end}"], errors="coerce") for end in ("lo", "hi"))
        # where: "mup d=64" (width), "completep L=8" (depth), "standard T=800" (steps)
        sym = optima["axis"].map(lambda a: WORDS[a].symbol).fillna("d=") if "axis" in optima else "d="
        at = optima["recipe"].astype(str) + " " + sym + optima["scale"].astype(int).astype(str)
        parts.append(pd.DataFrame({"half": (hi - lo) / 2, "edge": optima[edge_col].map(lambda x: _flag(x) is True),
                                   "at": at + (f", {axis}" if len(edges) > 1 else "")}))
    o = pd.concat(parts, ignore_index=True)
    if o["edge"].any():
        return False, np.inf, str(o.loc[o["edge"], "at"].iloc[0])  # max_opt_ci inf: on the edge
    if o["half"].isna().all():
        return None, np.nan, ""
    i = o["half"].idxmax()
    return bool(o.at[i, "half"] < MAX_CI_OCTAVES), float(o.at[i, "half"]), str(o.at[i, "at"])


def _tau(transfer: pd.DataFrame, runs: pd.DataFrame, wd: float) -> tuple[bool | None, float, str]:
    """(check, min tau_widest, the recipe at the minimum) over the recipes that keep the per-step decay. None
    when no recipe is known to keep it (none does, or runs.csv has no multipliers): a recipe that shrinks the
    decay with width is never the one that decides the regime."""
    if not wd > 0 or "tau_widest" not in transfer or not {"hidden_lr_mult", "hidden_wd_mult"} <= set(runs):
        return None, np.nan, ""
    worst, at = np.inf, ""
    for _, row in transfer.iterrows():
        wide = runs[(runs["recipe"] == row["recipe"]) & (runs["scale"] == row["largest_scale"])]
        mult = (pd.to_numeric(wide["hidden_lr_mult"], errors="coerce")
                * pd.to_numeric(wide["hidden_wd_mult"], errors="coerce")).median()
        tau = _num(row["tau_widest"])
        if np.isfinite(mult) and mult >= 1 - 1e-9 and tau < worst:
            worst, at = tau, str(row["recipe"])
    if not np.isfinite(worst):
        return None, np.nan, ""
    return bool(worst >= MIN_TAU), float(worst), at


def _factor(transfer: pd.DataFrame, runs: pd.DataFrame) -> tuple[bool | None, float, str]:
    if "lr_factor_end" not in runs:
        return None, np.nan, ""
    worst, at = np.inf, ""
    for _, row in transfer.iterrows():
        wide = runs[(runs["recipe"] == row["recipe"]) & (runs["scale"] == row["largest_scale"])]
        f = pd.to_numeric(_near(wide, _num(row.get("transfer_log2_lr")))["lr_factor_end"], errors="coerce")
        if f.notna().any() and f.mean() < worst:
            worst, at = float(f.mean()), str(row["recipe"])
    if not np.isfinite(worst):
        return None, np.nan, ""
    return bool(worst >= MIN_FACTOR_END), worst, at




def _base_spread(runs: pd.DataFrame) -> tuple[bool | None, float]:
    """Do the recipes train one model at the base width? The largest spread of eval_loss across recipes at one
    (seed, log2 lr, wd) of the base width (0 when every recipe shares one run there, as one base model makes
    them; runs made before, or a plugin that declares its own base model, show it). Not a regime check: a
    reader's warning that a width comparison is confounded with a base-model difference."""
    runs = with_axis(runs) if len(runs) and "width" in runs else runs
    if "base_scale" not in runs or not len(runs):
        return None, np.nan
    base = runs[runs["scale"] == runs["base_scale"]]
    if "base_model" in base:  # a declared base model is shown on the board; it is not "one model" evidence
        base = base[base["base_model"].fillna("").astype(str).isin(["", "nan"])]
    loss = pd.to_numeric(base["eval_loss"], errors="coerce")
    at = [base["seed"], base["log2_lr"], base["wd"]]
    spread = loss.groupby(at).agg(lambda v: v.max() - v.min() if v.size > 1 else np.nan)
    spread = spread.dropna()
    if not len(spread):
        return None, np.nan
    return bool(spread.max() <= 1e-9), float(spread.max())


def verdict(transfer: pd.DataFrame, optima: pd.DataFrame, runs: pd.DataFrame, workload: str,
            wd: float, optima_wd: pd.DataFrame | None = None) -> dict[str, Any]:
    """The regime row of one scope (scopes.py) from its transfer, optima and runs rows; a joint scope (``wd``
    NaN) is resolved on optima_wd.csv's lr and wd CIs, and its weight decay acts at the transferred (lr, wd)."""
    joint = wd_key(wd) is None
    t = transfer[(transfer["workload"] == workload) & same_wd(transfer["wd"], wd)]
    if joint:
        o = (optima_wd if optima_wd is not None else pd.DataFrame(columns=["workload"]))
        o = o[o["workload"] == workload]
    else:
        o = optima[(optima["workload"] == workload) & same_wd(optima["wd"], wd)]
    r = runs_of(runs, workload, wd)
    axis = str(r["axis"].iloc[0]) if "axis" in r and len(r) else "width"
    o = o.assign(axis=axis) if len(o) else o  # where a verdict points: "mup d=64", "completep L=8"
    loss = pd.to_numeric(t["transferred_loss"], errors="coerce")
    best = t.loc[loss.idxmin()] if loss.notna().any() else None
    row: dict[str, Any] = {"workload": workload, "axis": axis, "wd": wd}
    row["best_recipe"] = None if best is None else best["recipe"]
    row["transferred_by_scale"] = None if best is None else best["transferred_by_scale"]
    row["wider_better"] = None if best is None else _flag(best["wider_better"])
    row["optimum_resolved"], row["max_opt_ci"], row["max_opt_ci_at"] = _resolved(o, EDGES_2D if joint else EDGES_1D)
    on = float(pd.to_numeric(r["wd"], errors="coerce").max()) if joint and len(r) else wd
    row["wd_acts"], row["min_tau_widest"], row["min_tau_at"] = _tau(t, r, on)
    row["warmup_completes"], row["min_factor_end"], row["min_factor_at"] = _factor(t, r)
    row["in_regime"] = not any(row[c] is False for c in CHECKS)
    row["reasons"] = "; ".join(reasons(row))
    row["one_base_model"], row["base_spread"] = _base_spread(r)
    return row


def reasons(row: dict[str, Any]) -> list[str]:
    """Why a workload is out of regime, one phrase per failed check, numbers as in regime.csv."""
    out = []
    words = WORDS[str(row.get("axis") or "width")]
    more, values, name = words.more, words.values.split(" ")[0], words.largest
    if row["wider_better"] is False:
        out.append(f"{more} is not better at the transferred lr ({row['best_recipe']}: "
                   f"{str(row['transferred_by_scale']).replace('/', ' → ')} across {values})")
    if row["optimum_resolved"] is False:
        joint = wd_key(row["wd"]) is None  # a joint scope: its lr and wd both
        what_of = "an optimum" if joint else "an optimal lr"
        what = (f"on the {'' if joint else 'lr '}grid's edge" if not np.isfinite(row["max_opt_ci"])
                else f"95% CI ±{row['max_opt_ci']:.2f} octaves, not under ±{MAX_CI_OCTAVES:g}")
        out.append(f"{what_of} is not resolved: {what} ({row['max_opt_ci_at']})")
    if row["wd_acts"] is False:
        out.append(f"weight decay acts over {row['min_tau_widest']:.2f} < {MIN_TAU:g} timescale at the "
                   f"{name} ({row['min_tau_at']})")
    if row["warmup_completes"] is False:
        out.append(f"the warmup factor ends at {row['min_factor_end']:.2f} < {MIN_FACTOR_END:g} "
                   f"({row['min_factor_at']})")
    return out


def regime_table(transfer: pd.DataFrame, optima: pd.DataFrame, runs: pd.DataFrame,
                 optima_wd: pd.DataFrame | None = None) -> pd.DataFrame:
    """regime.csv: one verdict per scope of transfer.csv (scopes.py: per (workload, wd), or the joint one)."""
    runs = with_axis(runs)  # a runs table of before the axes is a width sweep
    scopes = board_scopes(transfer)
    rows = [verdict(transfer, optima, runs, wl, wd, optima_wd)
            for (wl, wd), _ in scopes.groupby(["workload", "wd"], sort=True, dropna=False)]
    return pd.DataFrame(rows, columns=COLUMNS)
