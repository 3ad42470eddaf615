"""The leaderboard as Markdown, and the sections (title, text, header, rows) the Markdown and the HTML page
(board_html.py) share, from leaderboard.csv's rows and regime.csv.

Every cell is formatted from a table cell (leaderboard.py builds the table); nothing here computes a number.
The ``bundles`` column, shown only when some run names its bundle, comes from the runs behind each row
(board_provenance.py, as leaderboard.csv's). Never imports torch.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import pandas as pd

from transferbench import board_provenance, board_wd, scopes
from transferbench.citation import bibtex, board_title, finite, sweep_hash, versions
from transferbench.config.axes import WORDS, axis_of_table

INTRO = ("Tune the learning rate at the base width, train the widest model with it: what do you get, and how "
         "well did the lr transfer? **Transferred loss** is the held-out loss at the widest width at the lr "
         "chosen at the base width; **regret** is that loss minus the loss of re-tuning the lr at the widest "
         "width. Both are cross-fitted over seeds: the lrs are chosen on the other seeds and scored on the "
         "held-out one, so the regret is the excess over re-tuning with the same budget and can be negative. "
         "Cite the transferred-loss rank for *which recipe gives the best wide model from a small-model tuning*; "
         "cite the regret rank for *whose optimal lr stays put* (a recipe can transfer perfectly to a worse "
         "model).")
#: Added to INTRO where a workload is a joint (lr x wd) scope (scopes.py).
JOINT_INTRO = ("A workload marked (lr × wd) searched the weight decay too: there the lr and the wd are tuned "
               "together at the base width and carried to the widest, and the regret is against re-tuning both.")
TIE_NOTE = ("=1: in the 95% model confidence set of the best (Hansen, Lunde & Nason 2011, bootstrap over seeds "
            "paired across recipes, with a Student-t guard for few seeds; the worst point estimate is eliminated "
            "first, so the set is always the best k recipes and never holds a recipe worse than one it "
            "excludes). Recipes outside the set are ranked after it by their means.")
SEED_NOTE = ("One seed: nothing can be held out, so the numbers are in-sample, without CIs, and no recipe is "
             "told from another: the data cannot decide. Add seeds to the profile (seeds: [0, 1, 2]).")
EDGE_NOTE = "† an optimal lr lies on the edge of the lr grid for some width: the drift is a bound (widen the grid)."
REGIME_NOTE = ("Regime: a workload is ranked overall only if wider is better at the best recipe's transferred lr, "
               "every optimal lr is resolved (95% CI within ±1 octave, inside the grid), weight decay acts over at "
               "least one timescale at the widest width (tau = sum of lr x wd over the steps, for the recipes "
               "that keep the per-step decay) and a warmup factor ends at 0.9 or more. Out-of-regime workloads "
               "are shown with the reason.")


def _f(x: Any, fmt: str) -> str:
    """``x`` in format ``fmt``; a value that rounds to zero is shown as zero, never "-0.00%" (the best recipe's
    excess over itself is 0 up to floating-point rounding)."""
    if not finite(x):
        return "n/a"
    text = fmt.format(float(x))
    return fmt.format(0.0) if not text.lstrip("+-").strip("0.%") else text


show_number = _f  # the same rule for boards.md (boards.py)


def _ci(x: Any, lo: Any, hi: Any, fmt: str) -> str:
    return _f(x, fmt) + (f" [{_f(lo, fmt)}, {_f(hi, fmt)}]" if finite(lo) and finite(hi) else "")


def _yes(x: Any) -> bool | None:
    if x is None or (isinstance(x, float) and pd.isna(x)) or x is pd.NA:
        return None
    return str(x).strip().lower() in ("true", "1", "1.0")


def _intro(regime: pd.DataFrame) -> str:
    return INTRO + (" " + JOINT_INTRO if scopes.joint_workloads(regime) else "") + _axis_intro(regime)


def _axis_intro(regime: pd.DataFrame) -> str:
    """Where a workload scales depth or the horizon (config/axes.py), how to read this page's width words."""
    axes = regime.drop_duplicates("workload").set_index("workload")["axis"] if "axis" in regime else pd.Series()
    out = []
    for axis in ("depth", "steps"):
        wls = sorted(str(w) for w, a in axes.items() if a == axis)
        if wls:
            name, values = WORDS[axis].name, WORDS[axis].values
            out.append(f" {', '.join(wls)} {'scales' if len(wls) == 1 else 'scale'} the {name}, not the width: read "
                       f"\"base width\" as the base {name} and \"widest width\" as the largest of its {values}.")
    return "".join(out)


def regime_label(r: pd.Series, regime: pd.DataFrame) -> str:
    """A regime row's name, as the board's scope (scopes.label): its workload, with its wd when some workload
    swept several, ``(lr × wd)`` for a joint scope."""
    return scopes.label(r["workload"], r["wd"], scopes.many_wds(regime))


def verdict_of(regime: pd.DataFrame, workload: Any, wd: Any) -> pd.Series | None:
    """The regime row of one scope (a (workload, wd), or the joint one: wd NaN), None when regime.csv has none."""
    v = regime[(regime["workload"] == workload).to_numpy() & scopes.same_wd(regime["wd"], wd).to_numpy()]
    return v.iloc[0] if len(v) else None


def _text(x: Any) -> bool:
    """A non-empty text cell (an empty CSV cell reads back as NaN, never as "")."""
    return isinstance(x, str) and bool(x)


def _check(x: Any, detail: str) -> str:
    flag = _yes(x)
    return ("n/a" if flag is None else "yes" if flag else "**no**") + (f" ({detail})" if detail else "")


def _rank(row: pd.Series, name: str, n_in_set: int) -> str:
    r = int(row[f"rank_{name}"])
    return f"={r}" if _yes(row[f"in_set_{name}"]) and n_in_set > 1 and _yes(row["set_decided"]) else str(r)


def _recipe(row: pd.Series) -> str:
    aliases = row.get("aliases")
    return str(row["recipe"]) + (f" (= {aliases})" if isinstance(aliases, str) and aliases else "")


def _regime_rows(regime: pd.DataFrame) -> list[list[Any]]:
    rows = []
    for _, r in regime.iterrows():
        rows.append([regime_label(r, regime), "in regime" if _yes(r["in_regime"]) else "**out of regime**",
                     _check(r["wider_better"], str(r["transferred_by_scale"]).replace("/", " → ")
                            if isinstance(r["transferred_by_scale"], str) else ""),
                     _check(r["optimum_resolved"], f"max CI ±{_f(r['max_opt_ci'], '{:.2f}')} oct, "
                            f"{r['max_opt_ci_at']}" if finite(r["max_opt_ci"]) else
                            f"grid edge, {r['max_opt_ci_at']}" if _text(r["max_opt_ci_at"]) else ""),
                     _check(r["wd_acts"], f"tau {_f(r['min_tau_widest'], '{:.2f}')}" if finite(r["min_tau_widest"])
                            else ""),
                     _check(r["warmup_completes"], f"f_T {_f(r['min_factor_end'], '{:.2f}')}"
                            if finite(r["min_factor_end"]) else ""),
                     str(r["reasons"]) if isinstance(r["reasons"], str) else "",
                     _base_cell(r)])
    return rows


def _base_cell(r: pd.Series) -> str:
    """Whether every recipe trained the same runs at the base width (regime.csv one_base_model)."""
    flag = _yes(r.get("one_base_model"))
    if flag is None:
        return "n/a"
    return "yes" if flag else f"**no**: base-width losses differ by up to {_f(r.get('base_spread'), '{:.4f}')}"


def _cite(row: pd.Series) -> tuple[str | None]:
    a = row.get("recipe_arxiv")
    return (str(a) if isinstance(a, str) and a not in ("", "nan") else None,)


def _provenance(row: pd.Series) -> list[str]:
    """The recipe's distribution and version cells (a plugin's package and its version; README)."""
    return [str(row.get(c)) if _text(row.get(c)) and row.get(c) != "nan" else "—"
            for c in ("recipe_distribution", "recipe_version")]


class Section(NamedTuple):
    """One table of the board: its title, the text above it, its header and rows (link cells are (arxiv id,)
    tuples, rendered per format) and, for a ranking table, per row the leaderboard.csv row whose runs stand
    behind it and whether that is its workload's joint (lr, wd) scope (board_provenance.runs_behind)."""

    title: str
    text: str
    header: list[str]
    rows: list[list[Any]]
    keys: list[tuple[pd.Series, bool]] | None = None


def _sections(table: pd.DataFrame, regime: pd.DataFrame, runs: pd.DataFrame | None = None) -> list[Section]:
    """The board's tables, in page order; ``runs``: add a ``bundles`` column to the ranking tables when some
    row's runs name a bundle."""
    out = [Section("Regime verdicts", "", ["workload", "verdict", "wider is better (best recipe, by width)",
                                           "optimal lr resolved" if not scopes.joint_workloads(regime) else
                                           "optimum resolved (lr; lr × wd: both)",
                                           "weight decay acts (min tau, widest)", "warmup completes", "reason",
                                           "one base model"], _regime_rows(regime))]
    overall = table[table["scope"] == "overall"]
    ranked_on = ", ".join(regime_label(r, regime) for _, r in regime.iterrows() if _yes(r["in_regime"]))
    if len(overall):
        n_t, n_r = int(overall["in_set_transferred"].map(_yes).sum()), int(overall["in_set_regret"].map(_yes).sum())
        rows = [[_rank(r, "transferred", n_t), _rank(r, "regret", n_r), _recipe(r),
                 _ci(r["transferred_mean"], r["transferred_lo"], r["transferred_hi"], "{:+.2%}"),
                 _ci(r["regret_mean"], r["regret_lo"], r["regret_hi"], "{:+.2%}"),
                 str(r["base_model"]) if isinstance(r["base_model"], str) and r["base_model"] else "shared",
                 _cite(r), *_provenance(r)] for _, r in overall.iterrows()]
        out.append(Section(f"Overall: workloads in regime ({ranked_on})",
                           "Per seed, the mean over those workloads of the excess transferred loss over the "
                           "workload's best recipe, and of the regret relative to the best re-tuned loss; 95% t "
                           "intervals over seeds.",
                           ["rank: what you get", "rank: how well it transfers", "recipe", "transferred loss vs best",
                            "regret (relative)", "base model", "citation", "distribution", "version"], rows,
                           [(r, False) for _, r in overall.iterrows()]))
    else:
        out.append(Section("Overall", "No workload is in regime: nothing is ranked overall.", [], []))
    for scope, g in table[table["scope"] != "overall"].groupby("scope", sort=True):
        n_t, n_r = int(g["in_set_transferred"].map(_yes).sum()), int(g["in_set_regret"].map(_yes).sum())
        rows = []
        for _, r in g.iterrows():
            edge = " †" if _yes(r["drift_edge"]) else ""
            rows.append([_rank(r, "transferred", n_t), _rank(r, "regret", n_r), _recipe(r),
                         _ci(r["transferred_mean"], r["transferred_lo"], r["transferred_hi"], "{:.4f}"),
                         _ci(r["transferred_mean"] - g["transferred_mean"].min(), r["transferred_vs_best_lo"],
                             r["transferred_vs_best_hi"], "{:+.4f}"),
                         ("yes" if _yes(r["wider_better"]) else "no" if _yes(r["wider_better"]) is False else "n/a")
                         + (f" ({r['transferred_by_scale'].replace('/', ' → ')})"
                            if _text(r["transferred_by_scale"]) else ""),  # no losses by scale: nothing, not "(nan)"
                         _ci(r["regret_mean"], r["regret_lo"], r["regret_hi"], "{:+.4f}"),
                         _ci(r["regret_oos_rel"], r["regret_oos_rel_lo"], r["regret_oos_rel_hi"], "{:+.2%}"),
                         _ci(r["drift"], r["drift_lo"], r["drift_hi"], "{:+.2f}") + edge,
                         _f(r["retuned_loss"], "{:.4f}"), _cite(r), *_provenance(r)])
        verdict = verdict_of(regime, g["workload"].iloc[0], g["wd"].iloc[0])
        text = ("In regime." if verdict is not None and _yes(verdict["in_regime"]) else
                "**Out of regime, not ranked overall:** " + (str(verdict["reasons"]) if verdict is not None else ""))
        axis = axis_of_table(g)
        out.append(Section(f"Workload: {scope} ({WORDS[axis].values} {g['scales'].iloc[0]})", text,
                           ["rank: what you get", "rank: how well it transfers", "recipe", "transferred loss [95% CI]",
                            "vs best [95% CI]", f"{WORDS[axis].more} is better (by {axis})", "regret [95% CI]",
                            "regret (relative)", "drift (oct/doubling)", "re-tuned loss", "citation", "distribution",
                            "version"], rows, [(r, False) for _, r in g.iterrows()]))
    out += [Section(*s, _wd_keys(table, s)) for s in board_wd.sections(table, _ci, _f, _rank, _recipe, _yes)]
    return _with_bundles(out, regime, runs)


def _wd_keys(table: pd.DataFrame, section: tuple) -> list[tuple[pd.Series, bool]]:
    """The board rows of a weight-decay transfer table (board_wd.sections: one per recipe of the workload its
    title names, its recipe cell as _recipe writes it), each with its workload's joint scope."""
    workload = section[0].split(": ", 1)[1]
    rows = table[(table["scope"] != "overall") & (table["workload"].astype(str) == workload)
                 & pd.to_numeric(table["wd_drift"], errors="coerce").notna()]  # board_wd.sections' rows
    by_cell = {_recipe(r): r for _, r in rows.drop_duplicates("recipe").iterrows()}
    return [(by_cell[row[1]], True) for row in section[3]]


def _with_bundles(sections: list[Section], regime: pd.DataFrame, runs: pd.DataFrame | None) -> list[Section]:
    """The ranking tables with a last ``bundles`` column when some row's runs name a bundle; else unchanged."""
    if runs is None or "bundle" not in runs:
        return sections
    cells = [[board_provenance.bundles(board_provenance.runs_behind(r, runs, regime, joint)) or "—"
              for r, joint in s.keys] if s.keys else None for s in sections]
    if not any(c != "—" for cs in cells if cs for c in cs):
        return sections
    return [s._replace(header=s.header + ["bundles"], rows=[r + [c] for r, c in zip(s.rows, cs)]) if cs else s
            for s, cs in zip(sections, cells)]


def _notes(table: pd.DataFrame) -> list[str]:
    one_seed = bool(len(table)) and not table["set_decided"].map(_yes).any()
    wd = [board_wd.NOTE] if "rank_regret_joint" in table else []
    return [REGIME_NOTE, TIE_NOTE, EDGE_NOTE] + wd + ([SEED_NOTE] if one_seed else [])


def _facts(runs: pd.DataFrame, profile: str) -> list[str]:
    commits = sorted({str(c) for c in runs["git_commit"].dropna()}) if "git_commit" in runs else []
    return [f"profile: {profile or 'not named'}",
            f"sweep hash: {sweep_hash(runs)} (sha256 of the sorted unique config_hash values, first 12 hex)",
            f"transferbench version(s): {versions(runs)}", f"runs: {len(runs)}",
            f"git commit(s): {', '.join(commits) or 'unknown'}"] + _bundle_facts(runs)


def _bundle_facts(runs: pd.DataFrame) -> list[str]:
    """A merged board's bundles (runs.csv ``bundle``, written by merge) with how many runs each gave."""
    labels = runs["bundle"].dropna().astype(str).str.strip() if "bundle" in runs else pd.Series(dtype=str)
    labels = labels[labels != ""]
    if not len(labels):
        return []
    counts = labels.value_counts().sort_index()
    return ["merged from bundles (bundles.csv beside the board has their sha256): "
            + "; ".join(f"{b} ({n} runs)" for b, n in counts.items())]


def _described(table: pd.DataFrame, meta: dict | None) -> list[tuple[str, dict]]:
    shown = set(table["recipe"]) | {a.strip() for s in table["aliases"].dropna() for a in str(s).split(",")}
    return [(n, m) for n, m in sorted((meta or {}).items()) if n in shown and isinstance(m, dict)]


def to_markdown(table: pd.DataFrame, regime: pd.DataFrame, runs: pd.DataFrame, meta: dict | None = None,
                profile: str = "") -> str:
    def md(rows: list[list[Any]], header: list[str]) -> list[str]:
        cells = [[(f"[arXiv:{c[0]}](https://arxiv.org/abs/{c[0]})" if c[0] else "—") if isinstance(c, tuple)
                  else str(c).replace("|", "\\|") for c in r] for r in rows]
        return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(c) + " |"
                                                                                 for c in cells)]

    parts = [f"# {board_title(profile)}", "", _intro(regime), ""]
    for title, text, header, rows, _ in _sections(table, regime, runs):
        parts += [f"## {title}", ""] + ([text, ""] if text else []) + (md(rows, header) + [""] if header else [])
    parts += [n + "\n" for n in _notes(table)]
    described = _described(table, meta)
    if described:
        parts += ["## Recipes", ""] + [f"- **{n}**: {m.get('summary', '')}" for n, m in described] + [""]
    parts += ["---", ""] + [f"- {f}" for f in _facts(runs, profile)]
    parts += ["", "Cite this leaderboard:", "", "```bibtex", bibtex(runs, profile), "```", ""]
    return "\n".join(parts)
