"""The source papers' claims, tested on one profile's tables: claims.csv (supported, contradicted, or the data
cannot decide), the table findings.md is formatted from.

Each claim is a statement about a statistic with a 95% CI from transfer.csv (drift, out-of-sample regret) or
from paired per-seed differences of seed_scores.csv (Student t over seeds), judged per workload:

- a drift claim "the optimum moves" with a sign: supported when the CI excludes 0 on that side, contradicted
  when it lies on the other side or inside +-``FLAT`` (the optimum does not move measurably), else undecided;
- a drift claim "the optimum stays put": supported when the CI lies inside +-``FLAT`` octaves per doubling of
  width, contradicted when it excludes that band, else undecided;
- a comparison "A transfers better than B" (regret of A minus regret of B, paired by seed): supported when the
  CI is below 0, contradicted when above 0, else undecided.

FLAT = 0.25 octave per doubling: over the 2-3 doublings of a tiny sweep that is at most 3/4 octave, within the
factor-of-two lr error practitioners accept. Claims whose recipes a profile does not run are left out. Rows
carry the workload's regime verdict: a claim tested out of regime is reported, but is not evidence. Claims are
tested per scope (scopes.py): on a workload that searches lr x wd, on its joint scope only (the drift is then the
lr of the joint (lr, wd) optimum: the lr a user re-tunes together with the wd; the regrets are the joint ones).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from transferbench.config.axes import axis_of_table
from transferbench.crossfit import t_interval
from transferbench.scopes import board_scopes, same_wd, wd_key

FLAT = 0.25
KOS25, FAN25 = "Kosson et al. 2025 (arXiv 2510.19093)", "Fan et al. 2025 (arXiv 2510.15262)"
COLUMNS = ["workload", "wd", "in_regime", "claim", "source", "statistic", "value", "lo", "hi", "verdict"]

#: (recipe, expected drift: "down", "up" or "flat", the claim, its source)
DRIFT_CLAIMS = [
    ("standard", "down", "under standard parameterization the optimal lr falls as width grows", KOS25),
    ("mup", "up", "muP with coupled weight decay: the optimal lr drifts to larger values as width grows", KOS25),
    ("mup-independent-wd", "flat", "muP with independent weight decay: the optimal lr transfers across widths",
     KOS25),
    ("warmup-replacement", "flat", "a warmup in place of muP's lr scaling: the optimal lr transfers", KOS25),
    ("sqrt-d", "flat", "the sqrt(d) weight-decay rule with muP's lr: the optimal lr transfers", FAN25),
]
YANG23, DEY25 = "Yang et al. 2023 (arXiv 2310.02244)", "Dey et al. 2025 (arXiv 2505.01618)"
BJO24 = "Bjorck et al. 2024 (arXiv 2409.19913)"
#: The drift claims of a sweep along each scale axis (config/axes.py); the regret and weight-decay claims are
#: about width and are tested on width sweeps only.
AXIS_DRIFT_CLAIMS = {
    "width": DRIFT_CLAIMS,
    "depth": [
        ("depth-mup", "flat", "Depth-muP (branches x L^-1/2, Adam lr x L^-1/2): the optimal lr transfers across "
         "depth", YANG23),
        ("completep", "flat", "CompleteP (branches x L^-1): the optimal lr transfers across depth", DEY25),
    ],
    "steps": [
        ("mup-independent-wd", "down", "at a fixed weight decay the optimal lr falls as the number of training steps "
         "grows", BJO24),
    ],
}
#: Weight-decay drift claims, tested where a profile sweeps wd (transfer.csv ``wd_drift``, on the *base* wd each
#: recipe scales by its rule): [Kos25] independent wd (hidden wd x m under muP's lr / m) keeps the optimum put, so
#: coupled wd (muP's constant wd) needs a larger base wd as width grows; [Fan25] the sqrt(d) rule transfers.
WD_DRIFT_CLAIMS = [
    ("mup-independent-wd", "flat", "independent weight decay (wd x m under muP): the optimal wd transfers across "
     "scales", KOS25),
    ("mup", "up", "muP with coupled weight decay: the optimal base wd grows with width", KOS25),
    ("sqrt-d", "flat", "the sqrt(d) weight-decay rule: the optimal wd transfers across widths", FAN25),
]
#: (A, B, the claim, its source): A's out-of-sample regret is lower than B's.
REGRET_CLAIMS = [
    ("mup-independent-wd", "mup", "independent weight decay transfers better than muP's coupled weight decay",
     KOS25),
    ("mup-independent-wd", "standard", "muP with independent weight decay transfers better than standard "
     "parameterization", KOS25),
    ("sqrt-d", "mup", "the sqrt(d) rule transfers better than muP with coupled weight decay", FAN25),
]


def drift_verdict(expect: str, lo: float, hi: float) -> str:
    """The verdict on a drift claim from the drift's 95% CI [lo, hi] (octaves per doubling of width)."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "cannot decide"
    flat = -FLAT <= lo and hi <= FLAT
    if expect == "flat":
        return "supported" if flat else "contradicted" if hi < -FLAT or lo > FLAT else "cannot decide"
    moved = hi < 0 if expect == "down" else lo > 0
    wrong_way = lo > 0 if expect == "down" else hi < 0
    return "supported" if moved else "contradicted" if wrong_way or flat else "cannot decide"


def difference_verdict(lo: float, hi: float) -> str:
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "cannot decide"
    return "supported" if hi < 0 else "contradicted" if lo > 0 else "cannot decide"


def claims_table(transfer: pd.DataFrame, seed_scores: pd.DataFrame, regime: pd.DataFrame) -> pd.DataFrame:
    """claims.csv: every applicable claim on every (workload, wd)."""
    rows: list[dict[str, Any]] = []
    verdicts = {(r["workload"], wd_key(r["wd"])): r["in_regime"] for _, r in regime.iterrows()}
    for (wl, wd), t in board_scopes(transfer).groupby(["workload", "wd"], sort=True, dropna=False):
        base = {"workload": wl, "wd": wd, "in_regime": verdicts.get((wl, wd_key(wd)))}
        joint = wd_key(wd) is None  # the lr of the joint (lr, wd) optimum (scopes.py)
        by = t.set_index("recipe")
        axis = axis_of_table(t)
        for recipe, expect, claim, source in AXIS_DRIFT_CLAIMS.get(axis, []):
            if recipe not in by.index:
                continue
            r = by.loc[recipe]
            lo, hi = float(r["drift_lo"]), float(r["drift_hi"])
            per = "" if axis == "width" else f" of {axis}"
            what = f"drift of {recipe}{' (lr of the joint optimum)' if joint else ''} (oct/doubling{per})"
            rows.append({**base, "claim": claim, "source": source, "statistic": what,
                         "value": float(r["drift"]), "lo": lo, "hi": hi, "verdict": drift_verdict(expect, lo, hi)})
        if axis != "width":
            continue
        wide = seed_scores[(seed_scores["workload"] == wl) & same_wd(seed_scores["wd"], wd)
                           & seed_scores["largest"].map(lambda x: str(x).lower() in ("true", "1"))]
        per_seed = wide.pivot_table(index="seed", columns="recipe", values="regret", aggfunc="mean")
        for a, b, claim, source in REGRET_CLAIMS:
            if a not in per_seed or b not in per_seed:
                continue
            mean, lo, hi, _ = t_interval((per_seed[a] - per_seed[b]).to_numpy(float))
            rows.append({**base, "claim": claim, "source": source,
                         "statistic": f"regret of {a} minus regret of {b} (paired by seed)", "value": mean,
                         "lo": lo, "hi": hi, "verdict": difference_verdict(lo, hi)})
    return pd.DataFrame(rows + _wd_claims(transfer, verdicts), columns=COLUMNS)


def _wd_claims(transfer: pd.DataFrame, verdicts: dict) -> list[dict[str, Any]]:
    """WD_DRIFT_CLAIMS, once per workload that sweeps wd (``wd`` empty: the claim is about every wd; in regime only
    if the workload is at every wd)."""
    if "wd_drift" not in transfer:
        return []
    if "axis" in transfer:  # claims about width
        transfer = transfer[transfer["axis"].fillna("width") == "width"]
    rows = []
    for wl, t in transfer.groupby("workload", sort=True):
        by = t.drop_duplicates("recipe").set_index("recipe")
        # The joint scope's verdict (scopes.py); a profile without one: in regime only if it is at every wd.
        ins = [v for (w, k), v in verdicts.items() if w == wl and k is None] or [
            v for (w, _), v in verdicts.items() if w == wl]
        base = {"workload": wl, "wd": np.nan, "in_regime": bool(ins) and all(bool(v) for v in ins)}
        for recipe, expect, claim, source in WD_DRIFT_CLAIMS:
            if recipe not in by.index or not np.isfinite(float(by.loc[recipe, "wd_drift"])):
                continue  # not run, or one wd swept
            r = by.loc[recipe]
            lo, hi = float(r["wd_drift_lo"]), float(r["wd_drift_hi"])
            rows.append({**base, "claim": claim, "source": source, "statistic": f"wd drift of {recipe} (oct/doubling)",
                         "value": float(r["wd_drift"]), "lo": lo, "hi": hi, "verdict": drift_verdict(expect, lo, hi)})
    return rows
