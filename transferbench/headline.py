"""The leaderboard's headline (docs/design.md §6): two rankings, honest ties, duplicates shown once.

Per scope (scopes.py: a (workload, wd), or a workload's joint lr x wd scope) and overall, every recipe gets two
ranks from the cross-fitted per-seed scores of ``seed_scores.csv`` (crossfit.py), compared paired by seed:

- **transferred loss**, "what you get": the held-out loss at the widest width when trained at the lr tuned at
  the base width. Cite it to say which recipe gives the best wide model for a small-model tuning budget.
- **out-of-sample regret**, "how well it transfers": transferred loss minus the loss of re-tuning at the widest
  width. Cite it to say whose optimum stays put; a recipe can transfer perfectly to a worse model.

Ties are a 95% model confidence set (mcs.py: Hansen, Lunde & Nason 2011, eliminating the worst point estimate,
so the set is always the best k recipes: it can never hold a recipe worse than one it excludes). Every recipe in
the set shares rank 1; the others are ranked after it by their means. Recipes that are the same training at
every width, lr and seed (one trainer fingerprint set, shared.py) are one row, named once with its aliases.

Overall: only workloads in regime (regime.py) count. A recipe's per-seed overall score is the mean over those
workloads of its relative excess over the workload's best mean (transferred loss / best - 1; regret / best
re-tuned loss), since nats and MSE are not on one scale; the seed ids pair across workloads. pandas/numpy only.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from transferbench import scopes
from transferbench.aggregate import with_axis
from transferbench.crossfit import t_interval
from transferbench.mcs import confidence_set
from transferbench.scopes import same_wd, wd_key

SCORES = {"transferred": "transferred_loss", "regret": "regret"}
SCOPE_COLUMNS = ["scope", "workload", "wd", "recipe", "aliases", "in_regime"]
for _name in SCORES:
    SCOPE_COLUMNS += [f"rank_{_name}", f"in_set_{_name}", f"p_{_name}", f"{_name}_mean", f"{_name}_lo",
                      f"{_name}_hi", f"{_name}_vs_best_lo", f"{_name}_vs_best_hi"]
SCOPE_COLUMNS += ["set_decided", "n_seeds"]


def _order_key(name: str) -> tuple[int, str]:
    """The alias group's name: a plain recipe before an instance (``mup`` before ``wd-power[p=0]``)."""
    return (1 if re.search(r"\[", name) else 0, name)


def alias_groups(runs: pd.DataFrame, joint: set[str] | frozenset = frozenset()) -> dict[tuple[str, float | None],
                                                                                     list[list[str]]]:
    """Per scope (workload, wd key: scopes.wd_key, None for a ``joint`` workload's lr x wd scope, which
    holds its runs at every positive wd): recipes whose runs are the same trainings (equal sets of (width,
    log2_lr, wd, seed, trainer_fingerprint)), each group sorted with its display name first."""
    runs = with_axis(runs)  # a runs table of before the axes is a width sweep
    out: dict[tuple[str, float | None], list[list[str]]] = {}
    fp = "trainer_fingerprint"
    keyed = runs.assign(_scope=[None if str(wl) in joint else wd_key(wd) for wl, wd in zip(runs["workload"],
                                                                                          runs["wd"], strict=True)])
    for (wl, wd), g in keyed.groupby(["workload", "_scope"], sort=True, dropna=False):
        wd = wd_key(wd)
        if wd is None:
            g = scopes.runs_of(g, wl, None)
        keys: dict[Any, list[str]] = {}
        for recipe, gr in g.groupby("recipe", sort=True):
            if fp in gr and gr[fp].notna().all():
                key = frozenset(zip(gr["scale"], gr["log2_lr"], gr["wd"], gr["seed"], gr[fp]))
            else:
                key = recipe  # no fingerprints (an old table): never an alias
            keys.setdefault(key, []).append(str(recipe))
        out[(wl, wd)] = sorted((sorted(v, key=_order_key) for v in keys.values()), key=lambda v: v[0])
    return out


def _matrix(seed_scores: pd.DataFrame, recipes: list[str], column: str) -> tuple[np.ndarray, np.ndarray]:
    """(R, S) per-seed scores at the widest width over the union of seed ids, NaN where missing."""
    wide = seed_scores[seed_scores["largest"].map(lambda x: str(x).lower() in ("true", "1"))]
    table = wide.pivot_table(index="recipe", columns="seed", values=column, aggfunc="mean")
    table = table.reindex(index=recipes)
    return table.to_numpy(float), table.columns.to_numpy()


def _ranked(scores: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Means, CIs, the confidence set and ranks of (R, S) scores (lower is better)."""
    stats = np.array([t_interval(row)[:3] for row in scores]) if len(scores) else np.zeros((0, 3))
    cs = confidence_set(scores, seed=seed)
    mean = stats[:, 0]
    order = np.argsort(np.where(np.isfinite(mean), mean, np.inf), kind="stable")
    rank = np.empty(len(mean), int)
    rank[order] = np.arange(1, len(mean) + 1)
    rank[cs.in_set] = 1
    best = int(order[0]) if len(order) else 0
    # paired by seed; the best against itself is [0, 0] with two seeds or more, no interval with one
    vs = np.array([t_interval(scores[r] - scores[best])[1:3] for r in range(len(scores))]) if len(scores) \
        else np.zeros((0, 2))
    return {"mean": mean, "lo": stats[:, 1], "hi": stats[:, 2], "in_set": cs.in_set, "p": cs.p_value,
            "rank": rank, "vs_lo": vs[:, 0], "vs_hi": vs[:, 1], "decided": np.full(len(mean), cs.decided),
            "n": np.full(len(mean), cs.n_seeds)}


def _rows(scope: str, wl: Any, wd: Any, groups: list[list[str]], in_regime: Any,
          scores: dict[str, np.ndarray], seed: int) -> list[dict[str, Any]]:
    ranked = {name: _ranked(m, seed) for name, m in scores.items()}
    rows = []
    for i, group in enumerate(groups):
        row = {"scope": scope, "workload": wl, "wd": wd, "recipe": group[0], "aliases": ", ".join(group[1:]),
               "in_regime": in_regime}
        for name, r in ranked.items():
            row.update({f"rank_{name}": int(r["rank"][i]), f"in_set_{name}": bool(r["in_set"][i]),
                        f"p_{name}": r["p"][i], f"{name}_mean": r["mean"][i], f"{name}_lo": r["lo"][i],
                        f"{name}_hi": r["hi"][i], f"{name}_vs_best_lo": r["vs_lo"][i],
                        f"{name}_vs_best_hi": r["vs_hi"][i]})
        first = ranked["transferred"]
        row["set_decided"], row["n_seeds"] = bool(first["decided"][i]), int(first["n"][i])
        rows.append(row)
    return rows


def headline(seed_scores: pd.DataFrame, runs: pd.DataFrame, regime: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """One row per (scope, recipe): the two rankings with CIs and confidence sets; scope is the workload
    (with ``wd`` when a workload swept several; ``(lr × wd)`` for a joint scope, scopes.py) or ``overall``
    (in-regime workloads only)."""
    runs = with_axis(runs)  # a runs table of before the axes is a width sweep
    joint = scopes.joint_workloads(seed_scores)
    groups = alias_groups(runs, joint)
    verdicts = {(r["workload"], wd_key(r["wd"])): bool(r["in_regime"]) for _, r in regime.iterrows()}
    many_wd = scopes.many_wds(runs) or bool(joint)
    rows: list[dict[str, Any]] = []
    relative: dict[str, list[pd.DataFrame]] = {name: [] for name in SCORES}
    for (wl, wd), gs in groups.items():
        names = [g[0] for g in gs]
        sc = seed_scores[(seed_scores["workload"] == wl) & same_wd(seed_scores["wd"], wd)]
        mats = {name: _matrix(sc, names, col) for name, col in SCORES.items()}
        ok = verdicts.get((wl, wd), True)
        scope = scopes.label(wl, wd, many_wd)
        rows += _rows(scope, wl, np.nan if wd is None else wd, gs, ok, {k: v[0] for k, v in mats.items()}, seed)
        if ok:
            retuned = _matrix(sc, names, "retuned_loss")[0]
            for name, (m, seeds) in mats.items():
                best = np.nanmin(t_rows(m)) if name == "transferred" else np.nanmin(t_rows(retuned))
                excess = m / best - 1.0 if name == "transferred" else m / best
                relative[name].append(pd.DataFrame(excess, index=names, columns=seeds))
    rows += _overall(relative, seed)
    return pd.DataFrame(rows, columns=SCOPE_COLUMNS)


def t_rows(m: np.ndarray) -> np.ndarray:
    """Row means of an (R, S) array over its finite values (NaN for an empty row)."""
    return np.array([t_interval(r)[0] for r in m]) if len(m) else np.zeros(0)


def _overall(relative: dict[str, list[pd.DataFrame]], seed: int) -> list[dict[str, Any]]:
    """Overall rows: per-seed relative scores averaged over the in-regime workloads; a recipe missing from
    one of them is not ranked overall."""
    if not relative["transferred"]:
        return []
    common = sorted(set.intersection(*(set(f.index) for f in relative["transferred"])), key=_order_key)
    if not common:  # no recipe runs on every in-regime workload: nothing to rank overall
        return []
    scores = {}
    for name, frames in relative.items():
        stacked = np.stack([f.reindex(index=common, columns=sorted(set().union(*(f.columns for f in frames))))
                            .to_numpy(float) for f in frames])
        with np.errstate(invalid="ignore"):
            scores[name] = np.nanmean(stacked, axis=0)
            scores[name][np.isnan(stacked).any(axis=0)] = np.nan  # a seed missing in one workload
    return _rows("overall", "overall", np.nan, [[c] for c in common], True, scores, seed)
