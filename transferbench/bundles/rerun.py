"""``verify --rerun K``: retrain K of a bundle's records here, from their configs, and compare the results.

A bundle is not signed: a record rewritten together with its hash and the derived tables verifies. What no one can
forge is a rerun, so this samples K records (seeded, so a reviewer's sample is reproducible) and trains each
from its own config on this machine (``train.train``, as the DAG's jobs do). A held-out loss that differs by more
than the tolerance, relative, or a divergence that does not repeat, is a problem naming the record. Reruns on
the device and versions that made the record agree exactly; another device's drift in fp32 is about 1e-3.

Records that cannot be rerun here are skipped and counted, never failed: a recipe or workload that is not
installed, or a prepared data set (the bundle holds its manifest, not its arrays). Imports torch, only when asked.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from transferbench.bundles.protocol import TOLERANCE, agree, held_out_loss
from transferbench.bundles.verify import DERIVED_KEYS, Verified


@dataclass
class Rerun:
    """What the reruns found: (record, stated loss, rerun loss, relative difference) per rerun, the problems, and
    the records skipped with why."""

    compared: list[tuple[str, float, float, float]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def rerun(v: Verified, k: int, seed: int = 0, device: str = "cpu", tolerance: float = TOLERANCE) -> Rerun:
    """Retrain ``k`` records of ``v`` sampled with ``seed`` (all of them if ``k`` is at least their number)."""
    from transferbench.config import ConfigError, resolve_run_config
    from transferbench.recipes import RecipeError

    out = Rerun()
    names = sorted(v.records)
    for name in names:
        if v.records[name]["config"].get("data_path"):
            out.skipped[name] = "trains on a prepared data set, whose arrays a bundle does not hold"
    candidates = [n for n in names if n not in out.skipped]
    picked = sorted(random.Random(seed).sample(candidates, min(k, len(candidates))))
    if not picked:
        return out
    from transferbench.train import train  # torch: only when there is something to rerun

    for name in picked:
        rec = v.records[name]
        where = name.removesuffix("/record.json")
        cfg = {key: x for key, x in rec["config"].items() if key not in DERIVED_KEYS}
        try:
            resolved = resolve_run_config({**cfg, "device": device, "threads": 1, "compile": False})
        except (ConfigError, RecipeError, ValueError) as exc:
            out.skipped[name] = f"cannot be resolved here ({exc})"
            continue
        again = train(resolved)["summary"]
        stated = rec["summary"]
        ok, rel = agree(stated, again, tolerance)
        if bool(stated["diverged"]) != bool(again["diverged"]):
            out.problems.append(f"{where}: rerun here {'diverged' if again['diverged'] else 'did not diverge'}, "
                                f"the record says it {'did' if stated['diverged'] else 'did not'}")
            continue
        a, b = held_out_loss(stated), held_out_loss(again)
        out.compared.append((where, a, b, rel))
        if not ok:
            out.problems.append(f"{where}: rerun here gives eval_loss {b:.6g}, the record says {a:.6g} (relative "
                                f"difference {rel:.2g} > tolerance {tolerance:g})")
    return out
