"""The invariance study's second direction (invariance.py): along (lr x k, wd / k) the top SV has slope 1 in
log2 k, along (lr x j, wd x j) slope 0 in log2 j ([Fan25]: SV ∝ sqrt(eta / lambda)); a study with the first
direction only gives the committed tables unchanged."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from transferbench.aggregate import read_table
from transferbench.invariance import FIT_COLUMNS, ROW_COLUMNS, coordinates, fit

TABLES = Path(__file__).resolve().parents[1] / "results" / "wd-exponent" / "tables"


def study(a: float = 0.5, b: float = -0.5, product: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    points = [(k, -k) for k in (-2, -1, 0, 1, 2)] + ([(j, j) for j in (-2, -1, 1, 2)] if product else [])
    for width in (64, 256):
        for u, v in points:  # log2 lr - log2 eta, log2 wd - log2 lambda
            for s in range(3):
                rows.append({"workload": "mlp", "recipe": "sqrt-d", "width": width, "seed": s, "log2_lr": -7.0 + u,
                             "wd": 2.0 * 2.0**v, "tau": 6.0, "log2_top_sv": a * u + b * v + 0.01 * rng.normal(),
                             "capped": 1.0, "diverged": False, "run_dir": "x"})
    return coordinates(pd.DataFrame(rows), -7.0, 2.0)


def test_both_directions_identify_both_exponents():
    f = fit(study(0.5, -0.5), n_boot=100).set_index(["direction", "width"])
    assert f.loc[("ratio", 64), "sv_slope"] == pytest.approx(1.0, abs=0.02)  # slope_k = a - b
    assert f.loc[("product", 64), "sv_slope"] == pytest.approx(0.0, abs=0.02)  # slope_j = a + b
    assert f.loc[("product", 64), "predicted_slope"] == 0.0
    g = fit(study(0.2, -0.75), n_boot=0).set_index(["direction", "width"])
    s_k, s_j = g.loc[("ratio", 256), "sv_slope"], g.loc[("product", 256), "sv_slope"]
    assert ((s_k + s_j) / 2, (s_j - s_k) / 2) == pytest.approx((0.2, -0.75), abs=0.02)


def test_one_direction_keeps_the_tables_as_they_were():
    t = study(product=False)
    assert list(t.columns) == ROW_COLUMNS and list(fit(t, n_boot=10).columns) == FIT_COLUMNS


@pytest.mark.skipif(not (TABLES / "invariance.csv").exists(), reason="no committed invariance study")
def test_the_committed_invariance_fit_is_reproduced():
    rows = read_table(TABLES / "invariance.csv")
    again = coordinates(rows.drop(columns=["log2_k", "log2_j", "direction"], errors="ignore"), -7.0, 2.0)
    assert list(again.columns) == list(rows.columns) and np.allclose(again["log2_k"], rows["log2_k"])
    committed = read_table(TABLES / "invariance_fit.csv")
    pd.testing.assert_frame_equal(fit(rows), committed, check_dtype=False)
    assert math.isclose(committed["predicted_slope"].iloc[0], 1.0)


def _arg(cmd: str, flag: str) -> float:
    return float(cmd.split(flag + " ")[1].split()[0])


@pytest.mark.parametrize("directions", [None, ["ratio"], ["ratio", "product"], ["product"]])
def test_the_jobs_move_along_each_direction_asked_for(directions: list[str] | None) -> None:
    from transferbench.config.grid import invariance_jobs
    from transferbench.config.profile import load_profile

    profile = load_profile(Path(__file__).resolve().parents[1] / "config" / "wd-exponent.yaml")
    study = {k: v for k, v in profile["invariance"].items() if k not in ("directions", "log2_js")}
    study["log2_ks"] = [-1, 0, 1, 2]
    if directions is not None:
        study["directions"] = directions
    js = invariance_jobs({**profile, "invariance": study})
    assert len({j.key for j in js}) == len(js)  # the product's lines may coincide with the ratio's: own study dir
    widths = study["widths"]
    seen = {}
    for j in js:
        u = _arg(j.command(), "--log2-lr") - study["log2_lr"]
        v = math.log2(_arg(j.command(), "--wd")) - math.log2(study["wd"])
        seen.setdefault(j.study, set()).add((j.width, round(u, 6), round(v, 6)))
    ratio = {(w, k, -k) for w in widths for k in (-1, 0, 1, 2)}
    product = {(w, k, k) for w in widths for k in (-1, 1, 2)}
    want = {"invariance": ratio} if directions in (None, ["ratio"]) else {"invariance": ratio,
                                                                          "invariance-product": product}
    if directions == ["product"]:
        want = {"invariance-product": product | {(w, 0, 0) for w in widths}}
    assert seen == want


def test_the_product_direction_takes_its_own_steps() -> None:
    """``log2_js``: the product direction's steps (j < 1 would leave the steady state), the ratio's unchanged."""
    from transferbench.config.grid import invariance_points

    study = {"log2_lr": -7.0, "wd": 2.0, "log2_ks": [-2, 0, 2], "directions": ["ratio", "product"], "log2_js": [1, 2]}
    pts = {(name, u + 7.0, round(math.log2(wd / 2.0), 6)) for name, u, wd in invariance_points(study)}
    assert pts == {("invariance", k, -k) for k in (-2, 0, 2)} | {("invariance-product", j, j) for j in (1, 2)}
