"""Which hidden weight-decay exponent transfers? The ``wd-power[p=...]`` rows of transfer.csv against p.

[Fan25] (arXiv 2510.15262) scale the hidden weight decay as m^0.5, [Kos25] (arXiv 2510.19093) as m^1, μP
([Yang22]) leaves it alone (m^0). A profile that sweeps ``wd-power[p=...]`` (config/wd-exponent.yaml) gets:

- ``wd_exponent.csv``: per (workload, wd, variant) and p, the transfer metrics of that instance: the
  out-of-sample relative regret (regret_oos_rel, crossfit.py) and the in-sample regret_rel, drift, with their
  CIs, sv_exponent against [Fan25]'s prediction, tau. A *variant* is everything but p (an option a plugin's
  wd-power-like recipe may add), so only instances that differ in p alone share a line.
- ``wd_exponent_best.csv``: per (workload, wd, variant) the p that minimises the out-of-sample relative
  regret (per seed: cross-fitted regret / re-tuned loss, seed_scores.csv): the vertex of the parabola through
  the grid argmin and its two neighbours in p (fit.parabola_optimum) of the seed-mean, with a CI from a
  paired bootstrap over seeds (one seed draw per resample for all p), the edge flag when the argmin is the
  smallest or largest p swept, and the grid argmin with the share of resamples that pick it. That is the
  suite's answer to the two papers' disagreement, for its own models and data.
numpy/pandas only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from transferbench.bootstrap import ci, resamples, seed_means, stream
from transferbench.fit import parabola_optimum
from transferbench.recipes.instance import InstanceError, parse

RECIPE = "wd-power"
ROW_COLUMNS = ["workload", "wd", "variant", "p", "recipe", "regret_oos_rel", "regret_oos_rel_lo", "regret_oos_rel_hi",
               "regret_rel", "regret_rel_lo", "regret_rel_hi",
               "drift", "drift_lo", "drift_hi", "sv_exponent", "sv_exponent_lo", "sv_exponent_hi",
               "sv_exponent_fan", "tau", "tau_widest", "n_seeds"]
BEST_COLUMNS = ["workload", "wd", "variant", "ps", "best_p", "best_p_lo", "best_p_hi", "best_p_edge",
                "grid_best_p", "grid_best_p_share", "n_seeds"]


def _p_and_variant(recipe: str) -> tuple[float, str] | None:
    """(p, the label without p) of a wd-power instance that sets p; None for any other recipe."""
    try:
        name, options = parse(recipe)
    except InstanceError:
        return None
    if name != RECIPE or "p" not in options:
        return None
    rest = ",".join(f"{k}={v}" for k, v in sorted(options.items()) if k != "p")
    return float(options["p"]), rest or "-"


def oos_samples(seed_scores: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> dict[tuple, np.ndarray]:
    """Per (workload, recipe, wd): the seed mean of the cross-fitted relative regret (regret / re-tuned loss at
    the widest width, seed_scores.csv) on the estimate and on paired bootstrap resamples (one draw of the
    workload's seed ids per resample, shared by every recipe), a (1 + B,) array."""
    wide = seed_scores[seed_scores["largest"].map(lambda x: str(x).lower() in ("true", "1"))]
    out: dict[tuple, np.ndarray] = {}
    for (wl, wd), g in wide.groupby(["workload", "wd"], sort=True):
        rel = (pd.to_numeric(g["regret"], errors="coerce") / pd.to_numeric(g["retuned_loss"], errors="coerce"))
        table = rel.groupby([g["recipe"], g["seed"]]).mean().unstack("seed")  # (R, S)
        weights = resamples(table.shape[1], n_boot, stream(seed, ("wd_exponent", wl, wd)))
        means = seed_means(weights, table.to_numpy(float).T)  # (1 + B, R)
        for j, recipe in enumerate(table.index):
            out[(wl, recipe, wd)] = means[:, j]
    return out


def tables(transfer: pd.DataFrame, samples: dict[tuple, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows, best) from transfer.csv and the bootstrap samples of the score the best p minimises (metrics passes
    :func:`oos_samples`), keyed (workload, recipe, wd), each a (1 + B,) array, row 0 the estimate."""
    found = [(i, *pv) for i, r in transfer.iterrows() if (pv := _p_and_variant(str(r["recipe"]))) is not None]
    if not found:
        return pd.DataFrame(columns=ROW_COLUMNS), pd.DataFrame(columns=BEST_COLUMNS)
    rows = transfer.loc[[i for i, _, _ in found]].copy()
    rows["p"] = [p for _, p, _ in found]
    rows["variant"] = [v for _, _, v in found]
    rows = rows.sort_values(["workload", "wd", "variant", "p"]).reset_index(drop=True)
    best = []
    for (wl, wd, variant), g in rows.groupby(["workload", "wd", "variant"], sort=True):
        if len(g) < 3:  # a parabola needs three p values
            continue
        ps = g["p"].to_numpy(float)
        curves = np.array([samples[(wl, r, wd)] for r in g["recipe"]], float)  # (P, 1 + B)
        res = np.array([parabola_optimum(ps, curves[:, b]) for b in range(curves.shape[1])], float)
        n = int(g["n_seeds"].min())
        lo, hi = np.clip(ci(res[:, 0], n), ps.min(), ps.max())
        ok = np.isfinite(curves).all(axis=0)
        picks = ps[np.argmin(np.where(np.isfinite(curves), curves, np.inf), axis=0)]
        grid_best = picks[0]
        share = float(np.mean(picks[1:][ok[1:]] == grid_best)) if ok[1:].any() else np.nan
        best.append({"workload": wl, "wd": wd, "variant": variant, "ps": "/".join(f"{p:g}" for p in ps),
                     "best_p": res[0, 0], "best_p_lo": lo, "best_p_hi": hi, "best_p_edge": bool(res[0, 2]),
                     "grid_best_p": grid_best, "grid_best_p_share": share, "n_seeds": n})
    return rows[ROW_COLUMNS], pd.DataFrame(best, columns=BEST_COLUMNS)
