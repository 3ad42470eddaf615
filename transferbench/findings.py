"""findings.md: what one profile's results say, written from its tables (never typed).

Every number in it is a cell of leaderboard.csv, regime.csv or claims.csv formatted by :func:`fmt`, so a
reader (and tests/test_findings.py) can find each one in a table. The README quotes only numbers that occur
in a results/**/*.md file. pandas only; ``python -m transferbench findings`` writes it and claims.csv.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from transferbench import findings_wd, scopes
from transferbench.board_render import _f, _yes, regime_label, verdict_of
from transferbench.citation import finite
from transferbench.claims import FLAT
from transferbench.config.axes import WORDS, axis_of_table

#: Formats of the columns a finding quotes: the same as the board's, so both show the same digits.
FORMATS = {"loss": "{:.4f}", "regret": "{:+.4f}", "rel": "{:+.2%}", "drift": "{:+.2f}", "tau": "{:.2f}",
           "ci": "{:.2f}"}


def fmt(x: Any, kind: str) -> str:
    """A table cell as the findings (and the board, board_render._f) show it."""
    return _f(x, FORMATS[kind])


def _ci(x: Any, lo: Any, hi: Any, kind: str) -> str:
    return fmt(x, kind) + (f" [{fmt(lo, kind)}, {fmt(hi, kind)}]" if finite(lo) and finite(hi) else "")


def _set(g: pd.DataFrame, name: str) -> str:
    members = g[g[f"in_set_{name}"].map(lambda x: _yes(x) is True)]
    return ", ".join(f"`{r}`" for r in members["recipe"])


def _workload(g: pd.DataFrame, verdict: pd.Series | None) -> list[str]:
    wl = str(g["scope"].iloc[0])
    g = g.sort_values(["rank_transferred", "transferred_mean"])
    best = g.iloc[0]
    if verdict is not None and not _yes(verdict["in_regime"]):
        head = f"### {wl}: out of regime ({verdict['reasons']})"
    else:
        head = f"### {wl}: in regime"
    decided = bool(g["set_decided"].map(_yes).any())
    axis = axis_of_table(g)
    name, comparative = WORDS[axis].name, WORDS[axis].more
    lines = [head, ""]
    lines.append(f"- What you get: `{best['recipe']}` has the lowest transferred loss at the {WORDS[axis].largest}, "
                 f"{_ci(best['transferred_mean'], best['transferred_lo'], best['transferred_hi'], 'loss')}"
                 + (f"; the data cannot tell {_set(g, 'transferred')} apart (95% confidence set)."
                    if decided and (g["in_set_transferred"].map(_yes).sum() > 1) else
                    "; it is alone in the 95% confidence set." if decided else
                    "; with one seed the data cannot rank it against the others."))
    by_regret = g.sort_values(["rank_regret", "regret_mean"])
    top = by_regret.iloc[0]
    lines.append(f"- How well it transfers: lowest out-of-sample regret `{top['recipe']}`, "
                 f"{_ci(top['regret_mean'], top['regret_lo'], top['regret_hi'], 'regret')}; confidence set: "
                 f"{_set(g, 'regret') if decided else 'not decided (one seed)'}.")
    for _, r in by_regret.iterrows():
        if decided and not _yes(r["in_set_regret"]):
            lines.append(f"  - `{r['recipe']}` is outside it: regret "
                         f"{_ci(r['regret_mean'], r['regret_lo'], r['regret_hi'], 'regret')} "
                         f"({fmt(r['regret_oos_rel'], 'rel')} of the re-tuned loss), drift "
                         f"{_ci(r['drift'], r['drift_lo'], r['drift_hi'], 'drift')} octaves per doubling.")
    worse = [str(r["recipe"]) for _, r in g.iterrows() if _yes(r["wider_better"]) is False]
    if worse:
        what = "(lr, wd)" if scopes.wd_key(g["wd"].iloc[0]) is None else "lr"
        lines.append(f"- {comparative.capitalize()} is not better at the transferred {what} for "
                     f"{', '.join(f'`{w}`' for w in worse)}.")
    lines.append(f"- How far the optimal lr moves per doubling of {name} (octaves; none = it transfers): "
                 + "; ".join(f"`{r['recipe']}` {_ci(r['drift'], r['drift_lo'], r['drift_hi'], 'drift')}"
                             f" ({_moves(r)})" for _, r in g.sort_values("recipe").iterrows()) + ".")
    return lines + [""]


def _moves(r: pd.Series) -> str:
    """What a drift's 95% CI says: inside ±FLAT octave per doubling it stays put; clear of 0 it moves (up or
    down); else the data cannot decide."""
    lo, hi = r["drift_lo"], r["drift_hi"]
    if not (finite(lo) and finite(hi)):
        return "no CI"
    if _yes(r.get("drift_edge")):
        return "an optimum on the grid's edge: not an estimate"
    if -FLAT <= lo and hi <= FLAT:
        return "stays put"
    if lo > 0 or hi < 0:
        return "moves" + (" up" if lo > 0 else " down")
    return "the data cannot decide"


def _claims(claims: pd.DataFrame) -> list[str]:
    if not len(claims):
        return []
    lines = ["## The papers' claims, tested", "",
             "Supported / contradicted: the 95% CI is on one side (drift claims: 'stays put' means inside "
             f"±{FLAT:g} octave per doubling); otherwise the data cannot decide. Out-of-regime workloads are listed "
             "but are not evidence.", ""]
    many = scopes.many_wds(claims)
    for (claim, source), g in claims.groupby(["claim", "source"], sort=False):
        lines.append(f"- *{claim}* ({source}):")
        for _, r in g.iterrows():
            where = scopes.label(r["workload"], r["wd"], many) + (
                "" if _yes(r["in_regime"]) is not False else ", out of regime")
            kind = "drift" if str(r["statistic"]).startswith(("drift", "wd drift")) else "regret"
            lines.append(f"  - {where}: **{r['verdict']}**, {r['statistic']} "
                         f"{_ci(r['value'], r['lo'], r['hi'], kind)}")
    return lines + [""]


def findings(board: pd.DataFrame, regime: pd.DataFrame, claims: pd.DataFrame, profile: str = "") -> str:
    """The Markdown text of findings.md."""
    hashes = board["sweep_hash"].dropna() if "sweep_hash" in board else pd.Series(dtype=object)
    sweep = str(hashes.iloc[0]) if len(hashes) else "unknown"
    lines = [f"# Findings: profile {profile or 'not named'}", "",
             f"Generated by `python -m transferbench findings` from this profile's tables (sweep {sweep}); "
             "do not edit. Transferred loss and regret are cross-fitted over seeds (chosen on the other seeds, "
             "scored on the held-out one), with 95% t intervals over seeds.", ""]
    ins = [regime_label(r, regime) for _, r in regime.iterrows() if _yes(r["in_regime"])]
    outs = [f"{regime_label(r, regime)} ({r['reasons']})" for _, r in regime.iterrows() if not _yes(r["in_regime"])]
    lines += ["## Regime", "", f"- In regime: {', '.join(ins) or 'none'}.",
              f"- Out of regime: {'; '.join(outs) or 'none'}."]
    if "one_base_model" in regime:
        split = [f"{r['workload']} (up to {fmt(r['base_spread'], 'loss')})" for _, r in regime.iterrows()
                 if _yes(r["one_base_model"]) is False]
        if split:
            lines.append("- **Not one base model**: at the base width the recipes' held-out losses differ, so every "
                         "width comparison is confounded with a base-model difference (runs made before one base "
                         f"model, or a recipe that declares its own): {', '.join(split)}.")
    lines.append("")
    overall = board[board["scope"] == "overall"]
    if len(overall):
        o = overall.sort_values(["rank_transferred", "transferred_mean"])
        best = o.iloc[0]
        lines += ["## Overall (in-regime workloads)", "",
                  f"- What you get: `{best['recipe']}` is best, its transferred loss "
                  f"{_ci(best['transferred_mean'], best['transferred_lo'], best['transferred_hi'], 'rel')} above the "
                  f"best recipe's on average; 95% confidence set: {_set(o, 'transferred')}.",
                  f"- How well it transfers: 95% confidence set by regret: {_set(o, 'regret')}.", ""]
    lines += ["## Per workload", ""]
    for _, g in board[board["scope"] != "overall"].groupby("scope", sort=True):
        lines += _workload(g, verdict_of(regime, g["workload"].iloc[0], g["wd"].iloc[0]))
    lines += findings_wd.section(board, _ci, fmt)  # only where a profile sweeps wd
    lines += _claims(claims)
    return "\n".join(lines)


def write_findings(tables: Path, board_csv: Path, out: Path, profile: str = "") -> list[Path]:
    """claims.csv (into ``tables``) and findings.md (``out``) from a profile's tables and leaderboard.csv."""
    from transferbench.aggregate import read_table
    from transferbench.claims import claims_table

    tables = Path(tables)
    regime = read_table(tables / "regime.csv")
    claims = claims_table(read_table(tables / "transfer.csv"), read_table(tables / "seed_scores.csv"), regime)
    claims.to_csv(tables / "claims.csv", index=False)
    Path(out).write_text(findings(read_table(board_csv), regime, claims, profile))
    return [tables / "claims.csv", Path(out)]
