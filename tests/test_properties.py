"""Property-based tests (hypothesis): record validation never lets a corrupt value through and never
fails with anything but a RecordError naming the file; the transfer metrics never crash and keep their
invariants on random runs tables (NaN losses, a single width, a single lr, every run diverged,
duplicated rows). Subnormal floats are not drawn: the trainer flushes denormals process-wide
(torch.set_flush_denormal), and an earlier test in the same process may have trained."""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from transferbench.aggregate import coord_rows, record_row
from transferbench.config import config_hash, resolve_run_config
from transferbench.metrics import compute_metrics
from transferbench.validate import RecordError, validate_record

CFG = resolve_run_config({"workload": "mlp", "recipe": "mup", "width": 32, "base_width": 16, "log2_lr": -6.0,
                          "steps": 10}).as_dict()
GOOD = {
    "schema_version": 2, "config": CFG, "config_hash": config_hash(CFG),
    "summary": {"init_loss": 1.5, "final_loss": 0.4, "eval_loss": 0.5, "diverged": False, "diverged_step": None,
                "failure": None, "steps_completed": 10},
    "coord_check": {"step": [0], "logits_rms": [0.1], "hidden_rms": [1.0]},
}
SCALAR = st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_subnormal=False) | st.text(max_size=5)
JSON = st.recursive(SCALAR,
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
                    max_leaves=6)
FIELDS = [("summary", k) for k in GOOD["summary"]] + [("config", k) for k in ("width", "seed", "log2_lr", "wd",
                                                                            "steps", "recipe", "workload")]
FIELDS += [(None, k) for k in ("schema_version", "config_hash", "summary", "config")]


@settings(max_examples=150, deadline=None)
@given(edits=st.lists(st.tuples(st.sampled_from(FIELDS), st.one_of(st.just("<delete>"), JSON)), min_size=1,
                      max_size=3))
def test_validation_accepts_consistent_records_and_names_the_file_otherwise(edits: list) -> None:
    rec = copy.deepcopy(GOOD)
    for (section, key), value in edits:
        node = rec if section is None else rec.get(section)
        if not isinstance(node, dict):
            continue
        if value == "<delete>":
            node.pop(key, None)
        else:
            node[key] = value
    try:
        validate_record(rec, "some/record.json")
    except RecordError as exc:
        assert str(exc).startswith("some/record.json: ")
        return
    # Accepted: then every number the tables use is what the record says, and usable.
    row = record_row(rec, "some/record.json")
    coord_rows(rec)
    assert isinstance(row["diverged"], bool)
    assert math.isfinite(row["init_loss"]) and row["init_loss"] >= 0
    if not row["diverged"]:
        assert math.isfinite(row["eval_loss"]) and row["eval_loss"] >= 0
    assert rec["config_hash"] == config_hash(rec["config"])


LOSS = st.one_of(st.floats(0.0, 10.0, allow_subnormal=False), st.just(math.nan), st.just(math.inf))


@st.composite
def runs_tables(draw: st.DrawFn) -> pd.DataFrame:
    widths = draw(st.lists(st.sampled_from([16, 32, 64, 128]), min_size=1, max_size=3, unique=True))
    lrs = draw(st.lists(st.sampled_from([-9.0, -8.0, -7.0, -6.0, -5.0]), min_size=1, max_size=5, unique=True))
    seeds = draw(st.lists(st.integers(0, 3), min_size=1, max_size=3, unique=True))
    recipes = draw(st.lists(st.sampled_from(["mup", "standard"]), min_size=1, max_size=2, unique=True))
    rows = []
    for recipe in recipes:
        for w in widths:
            for x in lrs:
                for s in seeds:
                    loss, init = draw(LOSS), draw(st.floats(1.0, 10.0, allow_subnormal=False))
                    rows.append({"workload": "llama", "recipe": recipe, "wd": 0.1, "width": w, "base_width": 32,
                                 "log2_lr": x, "seed": s, "init_loss": init, "eval_loss": loss,
                                 "diverged": draw(st.booleans()) or not loss <= init,
                                 "log2_top_sv": draw(st.floats(-3, 3, allow_subnormal=False)), "recipe_arxiv": None,
                                 "recipe_distribution": "transferbench", "recipe_version": "0.2.0"})
    table = pd.DataFrame(rows)
    if draw(st.booleans()):  # duplicated rows
        table = pd.concat([table, table.sample(frac=0.3, random_state=0)], ignore_index=True)
    return table


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(runs=runs_tables())
def test_metrics_never_crash_and_keep_their_invariants(runs: pd.DataFrame) -> None:
    optima, transfer = compute_metrics(runs, n_boot=20)
    for (recipe,), g in optima.groupby(["recipe"]):
        grid = runs.loc[runs["recipe"] == recipe, "log2_lr"]
        ok = g["opt_log2_lr"].dropna()
        assert ((ok >= grid.min() - 1e-9) & (ok <= grid.max() + 1e-9)).all()
        assert g["edge"].map(lambda e: isinstance(e, (bool, np.bool_))).all()
    for _, t in transfer.iterrows():
        assert math.isnan(t["regret"]) or t["regret"] >= -1e-12
        assert math.isnan(t["regret_rel"]) or t["regret_rel"] >= -1e-12
        sub = runs[runs["recipe"] == t["recipe"]]
        if sub["width"].nunique() == 1:
            assert math.isnan(t["regret"]) and math.isnan(t["drift"])
        if sub["diverged"].all():
            assert optima.loc[optima["recipe"] == t["recipe"], "opt_log2_lr"].isna().all()
            assert math.isnan(t["regret"])


@pytest.mark.parametrize("seeds", [1, 3])
def test_every_run_diverged_gives_nan_not_zero(seeds: int) -> None:
    rows = [{"workload": "mlp", "recipe": "mup", "wd": 0.1, "width": w, "base_width": 16, "log2_lr": x, "seed": s,
             "init_loss": 2.0, "eval_loss": math.nan, "diverged": True, "log2_top_sv": 0.0}
            for w in (16, 32) for x in (-7.0, -6.0) for s in range(seeds)]
    optima, transfer = compute_metrics(pd.DataFrame(rows), n_boot=10)
    assert optima["opt_log2_lr"].isna().all() and math.isnan(transfer["regret"].iloc[0])
