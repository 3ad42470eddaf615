"""Hand-made runs tables for the headline tests (test_crossfit.py, test_regime.py, test_headline.py,
test_findings.py): loss curves given in closed form, one row per (recipe, width, log2 lr, seed), with every
column the metrics, the regime verdicts and the board read. Not a test module (no ``test_`` prefix).

Curves are parabolas in log2 lr with curvature ``C`` on a 1-octave grid, so the local fit through the argmin
and its neighbours is exact: every optimum, transferred and re-tuned loss has a closed form.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

GRID = np.arange(-9.0, -1.0)  # log2 lr -9 ... -2
WIDTHS = (32, 64, 128)  # base width 64: the tuning width is the middle one
C = 0.1  # curvature of every parabola

Curve = Callable[[int, float, int], float]  # (width, log2 lr, seed) -> eval loss
Value = float | Callable[[int, float, int], float]  # a constant or a function of (width, log2 lr, seed)


def parabola(floor: Mapping[int, float], opt: Mapping[int, float] | float = -5.0,
             jitter: Mapping[int, tuple[float, ...]] | None = None,
             offset: tuple[float, ...] | None = None) -> Curve:
    """loss = floor[w] + offset[s] (widest width only) + C (x - opt[w] - jitter[w][s])^2."""
    def f(w: int, x: float, s: int) -> float:
        o = opt if isinstance(opt, float) else opt.get(w, -5.0)
        j = (jitter or {}).get(w)
        shift = offset[s] if offset is not None and w == max(floor) else 0.0
        return floor[w] + shift + C * (x - o - (j[s] if j else 0.0)) ** 2
    return f


GOOD = {32: 2.3, 64: 2.2, 128: 2.1}  # wider is better at the transferred lr


def runs_of(curves: Mapping[str, Curve], seeds: tuple[int, ...] = (0, 1, 2), workload: str = "llama",
            wd: float = 0.1, widths: tuple[int, ...] = WIDTHS, extra: Mapping[str, Mapping[str, Value]] | None = None,
            fingerprint: Mapping[str, str] | None = None) -> pd.DataFrame:
    """A runs table. ``extra[recipe][column]`` overrides a column (defaults: tau 3, hidden lr and wd
    multipliers 1, no lr factor); ``fingerprint[recipe]`` names whose trainings the recipe's runs are (its own
    by default): two recipes with the same name there are the same trainings."""
    rows = []
    for recipe, curve in curves.items():
        cols: dict[str, Value] = {"tau": 3.0, "hidden_lr_mult": 1.0, "hidden_wd_mult": 1.0, "lr_factor_end": np.nan,
                                  **(extra or {}).get(recipe, {})}
        who = (fingerprint or {}).get(recipe, recipe)
        for w in widths:
            for x in GRID:
                for s in seeds:
                    row: dict[str, Any] = {
                        "workload": workload, "recipe": recipe, "wd": wd, "width": w, "base_width": 64,
                        "log2_lr": float(x), "seed": s, "init_loss": 10.0, "eval_loss": curve(w, float(x), s),
                        "diverged": False, "log2_top_sv": np.nan,
                        "trainer_fingerprint": f"{who}|{workload}|{wd}|{w}|{x}|{s}",
                        "config_hash": f"{recipe}|{workload}|{wd}|{w}|{x}|{s}", "package_version": "0.3.0",
                        "git_commit": "abc", "recipe_arxiv": "2510.19093", "recipe_distribution": "transferbench",
                        "recipe_version": "0.3.0",
                    }
                    row.update({k: v(w, float(x), s) if callable(v) else v for k, v in cols.items()})
                    rows.append(row)
    return pd.DataFrame(rows)
