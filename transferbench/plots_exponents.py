"""Figures of the weight-decay-exponent study (wd_exponent.py, exponents.py, invariance.py):

1. ``sv_exponent.png``: measured slope of log2 top singular value against log2 width at the transferred lr
   against [Fan25]'s prediction 0.75 + (lr exponent - wd exponent)/2, one point per recipe and workload,
   with the identity line (every profile);
2. ``wd_exponent.png``: regret_rel and drift against the hidden weight-decay exponent p of
   ``wd-power[p=...]``, a line per workload, with the regret-minimising p and its CI (profiles that sweep p);
3. ``sv_law.png``: [Fan25]'s law fitted as a regression (sv_law.py), measured against predicted top SV and the
   fitted exponents beside (½, −½, ¾) (every profile);
4. ``invariance_{workload}.png``: top singular value and loss along lr x k, wd / k (profiles with an
   ``invariance`` study).
Same conventions as plots.py (Agg figures, never torch).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns

from transferbench.plots_common import _empty, _fig, _save
from transferbench.sv_law import LAW, STEADY_TAU, steady

MARKERS = ("o", "s", "^", "D", "v", "P")


def _err(t: pd.DataFrame, col: str) -> np.ndarray:
    return np.nan_to_num(np.abs(np.vstack([t[col] - t[f"{col}_lo"], t[f"{col}_hi"] - t[col]])))


def plot_sv_exponents(transfer: pd.DataFrame, path: Path, steady_tau: float = 3.0) -> Path:
    fig, (ax,) = _fig(1, size=(7.2, 5.6))
    t = transfer[np.isfinite(transfer["sv_exponent"]) & np.isfinite(transfer["sv_exponent_fan"])]
    if t.empty:
        _empty(ax, "no sv_exponent: needs two widths, weight decay and singular values")
        return _save(fig, path)
    recipes = sorted(t["recipe"].unique())
    palette = dict(zip(recipes, sns.color_palette("tab10", 10) * 10, strict=False))
    marker = dict(zip(sorted(t["workload"].unique()), MARKERS * 3, strict=False))
    lo = float(np.nanmin([t["sv_exponent_fan"].min(), t["sv_exponent_lo"].min(), t["sv_exponent"].min()])) - 0.1
    hi = float(np.nanmax([t["sv_exponent_fan"].max(), t["sv_exponent_hi"].max(), t["sv_exponent"].max()])) + 0.1
    ax.plot([lo, hi], [lo, hi], color="0.5", lw=1, ls="--", label="measured = predicted")
    n = max(len(recipes), 1)
    for (wl, recipe), g in t.groupby(["workload", "recipe"]):
        steady = bool((g["tau"] >= steady_tau).all())
        dodge = 0.012 * (recipes.index(recipe) - (n - 1) / 2)
        ax.errorbar(g["sv_exponent_fan"] + dodge, g["sv_exponent"], yerr=_err(g, "sv_exponent"), color=palette[recipe],
                    marker=marker[wl], mfc=palette[recipe] if steady else "white", capsize=3, ls="none", ms=7)
    for recipe in recipes:
        ax.plot([], [], "s", color=palette[recipe], label=recipe)
    for wl, m in marker.items():
        ax.plot([], [], m, color="0.3", label=f"workload {wl}")
    ax.plot([], [], "o", mfc="white", mec="0.3", label=f"hollow: tau < {steady_tau:g} (not steady state)")
    ax.set_xlabel("predicted: 0.75 + (lr exponent - wd exponent) / 2   [Fan25]")
    ax.set_ylabel("measured slope of log2 top SV vs log2 width")
    ax.legend(fontsize=7, loc="upper left")
    fig.suptitle("Fan et al.'s singular-value law: top SV ∝ sqrt(η/λ)·d^0.75\n(bars: 95% bootstrap CI over "
                 "seeds, at the transferred lr)", fontsize=10)
    return _save(fig, path)


def plot_wd_exponent(rows: pd.DataFrame, best: pd.DataFrame, path: Path) -> Path:
    fig, axes = _fig(3, ncols=3, size=(5.0, 4.0))
    if rows.empty:
        for ax in axes:
            _empty(ax, "no wd-power[p=...] rows")
        return _save(fig, path)
    keys = list(rows.groupby(["workload", "wd", "variant"]).groups)
    palette = dict(zip(keys, sns.color_palette("tab10", 10) * 10, strict=False))
    for key, g in rows.groupby(["workload", "wd", "variant"]):
        c = palette[key]
        name = f"{key[0]} (wd {key[1]:g}{'' if key[2] == '-' else ', ' + key[2]})"
        b = best[(best["workload"] == key[0]) & (best["wd"] == key[1]) & (best["variant"] == key[2])]
        label = name
        if len(b) and np.isfinite(b["best_p"].iloc[0]):
            r = b.iloc[0]
            label += f": best p {r['best_p']:.2f} [{r['best_p_lo']:.2f}, {r['best_p_hi']:.2f}]"
            label += " (edge)" if r["best_p_edge"] else ""
            axes[0].axvspan(r["best_p_lo"], r["best_p_hi"], color=c, alpha=0.12)
            axes[0].axvline(r["best_p"], color=c, lw=1, ls=":")
        score = "regret_oos_rel" if "regret_oos_rel" in g else "regret_rel"  # a wd_exponent.csv of 0.2
        axes[0].errorbar(g["p"], g[score], yerr=_err(g, score), color=c, marker="o", capsize=3, label=label)
        axes[1].errorbar(g["p"], g["drift"], yerr=_err(g, "drift"), color=c, marker="o", capsize=3, label=name)
        axes[2].errorbar(g["p"], g["sv_exponent"], yerr=_err(g, "sv_exponent"), color=c, marker="o", capsize=3,
                         label=f"{name} measured")
        axes[2].plot(g["p"], g["sv_exponent_fan"], color=c, ls="--", lw=1, label=f"{name} [Fan25] 0.25 - p/2")
    axes[0].axhline(0, color="0.5", lw=1)  # out-of-sample regret may be negative
    axes[1].axhline(0, color="0.5", lw=1)
    labels = ("out-of-sample relative regret (lower is better)", "drift of the optimal log2 lr per doubling",
              "slope of log2 top SV vs log2 width")
    for ax, ylabel in zip(axes, labels, strict=True):
        ax.set_xlabel("hidden weight-decay exponent p (wd = λ·m^p)")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=6)
        for p, name in ((0.0, "mup"), (0.5, "sqrt-d"), (1.0, "Kosson")):
            ax.axvline(p, color="0.85", lw=0.8, zorder=0)
            ax.text(p, 1.0, name, transform=ax.get_xaxis_transform(), fontsize=6, ha="center", va="bottom",
                    color="0.4")
    fig.suptitle("Which hidden weight-decay exponent transfers? (bars: 95% bootstrap CI over seeds; band: CI "
                 "of the regret-minimising p)", fontsize=10)
    return _save(fig, path)


def make_exponent_plots(transfer: pd.DataFrame, rows: pd.DataFrame | None, best: pd.DataFrame | None,
                        out_dir: Path) -> list[Path]:
    """sv_exponent.png always; wd_exponent.png when ``rows`` has wd-power rows."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [plot_sv_exponents(transfer, out_dir / "sv_exponent.png")]
    if rows is not None and len(rows):
        paths.append(plot_wd_exponent(rows, best if best is not None else pd.DataFrame(), out_dir / "wd_exponent.png"))
    return paths


def plot_sv_law(runs: pd.DataFrame, table: pd.DataFrame, path: Path, tau_min: float = STEADY_TAU) -> Path:
    """sv_law.png: per workload, measured log2 top SV against the law's prediction (½ log2 eta − ½ log2 lambda
    + ¾ log2 d, its constant the mean residual per recipe), and the fitted exponents with CIs beside the law's."""
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
        rows = table[(table["workload"] == wl) & table["identified"].astype(str).str.lower().isin(("true", "1"))]
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
        bx.legend(fontsize=6, loc="best")
        if rows.empty:
            bx.text(0.5, 0.5, "no exponent identified by this sweep", ha="center", transform=bx.transAxes,
                    color="0.4")
    fig.suptitle("Fan et al.'s singular-value law, top SV ∝ (η/λ)^½ · d^¾, fitted on the steady-state runs\n"
                 "(bars: 95% bootstrap CI over seeds; missing: exponent not identified by the sweep)", fontsize=10)
    return _save(fig, path)
