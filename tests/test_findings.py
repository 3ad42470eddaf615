"""The papers' claims (claims.py) and findings.md (findings.py): verdicts on hand-made CIs, the paired regret
difference on hand-made per-seed scores, and a findings.md written through the whole analysis (metrics ->
leaderboard -> findings) whose every number is a cell of leaderboard.csv, regime.csv or claims.csv as
findings.fmt formats it: nothing is typed.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from headline_tables import GOOD, parabola, runs_of

from transferbench import claims as claims_mod
from transferbench import regime as regime_mod
from transferbench.aggregate import read_table
from transferbench.bootstrap import t975
from transferbench.claims import claims_table, difference_verdict, drift_verdict
from transferbench.findings import FORMATS, fmt, write_findings
from transferbench.leaderboard import write_leaderboard
from transferbench.metrics import write_metrics

NAN = float("nan")


@pytest.mark.parametrize("expect, lo, hi, verdict", [
    ("down", -1.0, -0.5, "supported"), ("down", 0.1, 0.5, "contradicted"),
    ("down", -0.2, 0.2, "contradicted"),  # inside +-FLAT: the optimum does not move measurably
    ("down", -0.6, 0.1, "cannot decide"), ("down", NAN, 0.1, "cannot decide"),
    ("up", 0.5, 1.0, "supported"), ("up", -0.5, -0.1, "contradicted"), ("up", -0.1, 0.1, "contradicted"),
    ("up", -0.1, 0.6, "cannot decide"),
    ("flat", -0.2, 0.2, "supported"), ("flat", 0.3, 0.6, "contradicted"), ("flat", -0.6, -0.3, "contradicted"),
    ("flat", -0.1, 0.4, "cannot decide"), ("flat", -0.1, NAN, "cannot decide"),
])
def test_drift_verdicts_on_hand_intervals(expect, lo, hi, verdict):
    assert drift_verdict(expect, lo, hi) == verdict


@pytest.mark.parametrize("lo, hi, verdict", [(-0.3, -0.1, "supported"), (0.1, 0.3, "contradicted"),
                                             (-0.1, 0.1, "cannot decide"), (NAN, NAN, "cannot decide")])
def test_difference_verdicts_on_hand_intervals(lo, hi, verdict):
    assert difference_verdict(lo, hi) == verdict


def test_claims_table_pairs_the_regrets_by_seed_and_skips_recipes_not_run():
    """mup-independent-wd's regret is mup's minus 0.04-0.05 on every seed (supported, although the two
    recipes' own spreads overlap); against standard the paired differences change sign (cannot decide)."""
    regret = {"mup-independent-wd": (0.01, 0.05, 0.03), "mup": (0.05, 0.10, 0.075), "standard": (0.0, 0.08, 0.02)}
    scores = pd.DataFrame([{"workload": "llama", "recipe": r, "wd": 0.1, "seed": s, "scale": 128, "largest": True,
                            "regret": v[s]} for r, v in regret.items() for s in range(3)])
    transfer = pd.DataFrame([{"workload": "llama", "recipe": r, "wd": 0.1, "drift": d, "drift_lo": d - 0.1,
                              "drift_hi": d + 0.1} for r, d in (("standard", -0.8), ("mup", 0.05),
                                                                ("mup-independent-wd", 0.0))])
    regime = pd.DataFrame([{"workload": "llama", "wd": 0.1, "in_regime": False}])
    table = claims_table(transfer, scores, regime)
    assert set(table["in_regime"]) == {False}  # carried, so an out-of-regime claim is not read as evidence
    drift = table[table["statistic"].str.startswith("drift")].set_index("statistic")["verdict"].to_dict()
    assert drift == {"drift of standard (oct/doubling)": "supported", "drift of mup (oct/doubling)": "contradicted",
                     "drift of mup-independent-wd (oct/doubling)": "supported"}
    pairs = table[table["statistic"].str.startswith("regret")].set_index("statistic")
    assert len(table) == 5  # sqrt-d and warmup-replacement were not run: their claims are left out
    row = pairs.loc["regret of mup-independent-wd minus regret of mup (paired by seed)"]
    d = np.array(regret["mup-independent-wd"]) - np.array(regret["mup"])
    half = t975(2) * d.std(ddof=1) / math.sqrt(3)
    assert row["value"] == pytest.approx(d.mean()) and row["verdict"] == "supported"
    assert (row["lo"], row["hi"]) == pytest.approx((d.mean() - half, d.mean() + half))
    other = pairs.loc["regret of mup-independent-wd minus regret of standard (paired by seed)"]
    assert other["lo"] < 0 < other["hi"] and other["verdict"] == "cannot decide"


JITTER = {32: (-0.1, 0.05, 0.05), 64: (0.05, -0.1, 0.05), 128: (0.05, 0.05, -0.1)}


def profile_runs() -> pd.DataFrame:
    """Two workloads, the three recipes the claims name: standard's optimum falls by an octave per doubling,
    mup's rises, mup-independent-wd's stays; seeds jitter the optima by 0.02 octave (so that three seeds
    separate a recipe that misses by an octave from the best). mlp's standard lives through tau 0.5 only: out of
    regime."""
    small = {w: tuple(0.2 * j for j in js) for w, js in JITTER.items()}

    def drift(k: float):
        return parabola(GOOD, opt={w: -5.0 + k * math.log2(w / 64) for w in GOOD}, jitter=small)

    curves = {"standard": drift(-1.0), "mup": drift(1.0), "mup-independent-wd": drift(0.0)}
    extra = {"mup": {"hidden_lr_mult": lambda w, x, s: 64 / w},
             "mup-independent-wd": {"hidden_lr_mult": lambda w, x, s: 64 / w,
                                    "hidden_wd_mult": lambda w, x, s: w / 64}}
    mlp_extra = {**extra, "standard": {"tau": 0.5}}
    return pd.concat([runs_of(curves, extra=extra), runs_of(curves, workload="mlp", extra=mlp_extra)],
                     ignore_index=True)


def write_all(runs: pd.DataFrame, out: Path) -> str:
    """metrics -> leaderboard -> findings, as the DAG runs them; the text of findings.md."""
    tables = out / "tables"
    write_metrics(runs, tables, n_boot=500)
    read = {n: read_table(tables / f"{n}.csv") for n in ("transfer", "seed_scores", "regime")}
    write_leaderboard(read["transfer"], runs, out / "leaderboard", profile="synthetic",
                      seed_scores=read["seed_scores"], regime=read["regime"])
    write_findings(tables, out / "leaderboard.csv", out / "findings.md", "synthetic")
    return (out / "findings.md").read_text()


NUMBER = re.compile(r"[+-]?\d+\.\d+%?")
ARXIV = re.compile(r"arXiv \d{4}\.\d{4,5}")


def formatted_cells(*tables: pd.DataFrame) -> set[str]:
    """Every numeric cell in every format of findings.FORMATS, and the numbers of the by-width cells
    (already formatted in the table)."""
    out: set[str] = set()
    for t in tables:
        for col in t.columns:
            for x in t[col]:
                if isinstance(x, str) and col == "transferred_by_scale":
                    out |= set(x.split("/"))
                elif isinstance(x, (int, float, np.number)) and not isinstance(x, (bool, np.bool_)):
                    out |= {fmt(x, kind) for kind in FORMATS}
    return out


#: The thresholds the text states (regime.py, claims.py): constants, not results.
THRESHOLDS = {f"{regime_mod.MIN_FACTOR_END:g}", f"{claims_mod.FLAT:g}", f"{regime_mod.MAX_CI_OCTAVES:g}",
              f"{regime_mod.MIN_TAU:g}"}


def test_every_number_in_findings_is_a_formatted_table_cell(tmp_path):
    text = write_all(profile_runs(), tmp_path)
    board = read_table(tmp_path / "leaderboard.csv")
    regime = read_table(tmp_path / "tables" / "regime.csv")
    claims = read_table(tmp_path / "tables" / "claims.csv")
    assert regime.set_index("workload")["in_regime"].to_dict() == {"llama": True, "mlp": False}
    for part in ("## Overall (in-regime workloads)", "### llama: in regime", "### mlp: out of regime (weight decay",
                 "## The papers' claims, tested", "**supported**", "mlp, out of regime", "is outside it: regret",
                 "Wider is not better at the transferred lr for `standard`, `mup`"):
        assert part in text, part
    numbers = NUMBER.findall(ARXIV.sub("", text))  # a claim's source cites its arXiv id: not a number
    assert len(numbers) >= 30 and any(n.endswith("%") for n in numbers)
    cells = formatted_cells(board, regime, claims) | THRESHOLDS
    typed = [n for n in numbers if n not in cells]
    assert not typed, typed
    # and the claims say what the construction does: standard's optimum falls, mup's rises
    llama = claims[claims["workload"] == "llama"].set_index("statistic")["verdict"]
    assert llama["drift of standard (oct/doubling)"] == "supported"
    assert llama["drift of mup-independent-wd (oct/doubling)"] == "supported"


def test_findings_give_each_wd_of_a_workload_its_own_verdict(tmp_path):
    """llama at wd 0.1 (in regime) and wd 1 (tau 0.5 for standard: out of regime)."""
    curves = {"standard": parabola(GOOD, jitter=JITTER), "sqrt-d": parabola(GOOD, opt={128: -4.5}, jitter=JITTER)}
    runs = pd.concat([runs_of(curves, wd=0.1), runs_of(curves, wd=1.0, extra={"standard": {"tau": 0.5}})],
                     ignore_index=True)
    text = write_all(runs, tmp_path)
    assert "- In regime: llama (wd 0.1)." in text and "- Out of regime: llama (wd 1) (weight decay acts" in text
    assert "### llama (wd 0.1): in regime" in text and "### llama (wd 1): out of regime (weight decay" in text
    assert "- llama (wd 0.1): **" in text and "- llama (wd 1), out of regime: **" in text  # the claims


def test_fmt_shows_a_value_that_rounds_to_zero_as_zero():
    """The best recipe's excess over itself is 0 up to rounding: "+0.00%", never "-0.00%" (as on the board)."""
    assert fmt(-5.5e-17, "rel") == "+0.00%" and fmt(-4e-5, "loss") == "0.0000" and fmt(-4e-5, "regret") == "+0.0000"
    assert fmt(-0.5, "drift") == "-0.50" and fmt(0.18876, "rel") == "+18.88%" and fmt(NAN, "loss") == "n/a"
