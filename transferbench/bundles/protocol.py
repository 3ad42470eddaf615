"""A workload's **protocol**: everything its runs' results depend on except the recipe, the seed and the point
of the search (lr, wd). Two result bundles can be merged on a workload only when their protocols are equal.

The protocol is computed from the resolved profile (``profile.yaml`` in a results directory), per workload:

- ``settings``: one run's resolved settings (config/run.py) at the tuning value of the axis, less the keys
  that vary within a sweep (:data:`FREE`), the execution keys (:data:`EXECUTION`: the device and how it
  runs, which a bundle records as provenance) and ``data_path`` (a path on the machine that ran it);
- ``axis``, ``scales``, ``base``, ``widths`` and ``width_settings``: where the sweep runs;
- ``lattice``: the lr (and wd) lattice and the search that walks it, whose points a recipe's curve is read at;
- ``data``: for a prepared data set, the profile's entry and the sha256 of the arrays it produced (the files
  of a text corpus change with the commit; the manifest's paths change with the machine, its arrays do not).

This is not the board's ``sweep_hash`` (citation.py), which pins one set of runs: two bundles of one protocol
have different sweep hashes as soon as they ran different recipes or seeds. Pure Python, no torch.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from transferbench.config import axes
from transferbench.config.grid import lr_refine, run_settings
from transferbench.config.search_keys import wd_refine, wd_search

#: Bumped when what a protocol holds changes: a bundle states the version its protocols were made with, and verify
#: recomputes them only at the same version (an older bundle's protocols stand as stated; merge compares hashes).
VERSION = 1
#: Config keys that vary within one sweep: a bundle may hold any recipe, seed and search point.
FREE = ("recipe", "recipe_options", "seed", "log2_lr", "lr", "wd", "width", "width_mult", "depth_mult",
        "steps_mult")
#: Config keys that say how a run was executed, not what it computed (up to floating-point rounding): the bundle
#: records them per run; bundles that differ in them merge, and the board names each row's device.
EXECUTION = ("device", "threads", "compile", "fused_adamw", "sdpa_backend", "autocast", "tf32", "log_every",
             "checkpoint_every", "checkpoint_minutes", "keep_checkpoints")
#: Machine-specific paths: the data set is identified by its content instead (``data`` above).
PATHS = ("data_path",)
#: Data-set files whose sha256 identify the data a workload trained on (the prepared manifest's ``files``).
DATA_FILES = ("train.bin", "eval.bin", "tokenizer.json")


def digest(obj: Any, n: int = 12) -> str:
    """First ``n`` hex digits of sha256 over the canonical JSON of ``obj``."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def kept(cfg: dict[str, Any], axis: str) -> dict[str, Any]:
    """The settings of a run config that are part of the protocol (the axis' own run setting varies too), as the
    config hash sees them: a key of a newer schema at its old value is the same as the key absent (config/run.py)."""
    from transferbench.config.run import hashed

    own = axes.KEYS[axis][2]
    return {k: v for k, v in hashed(cfg).items()
            if k not in FREE and k not in EXECUTION and k not in PATHS and k != own}


def data_content(manifest: dict[str, Any] | None) -> dict[str, str]:
    """The sha256 of a prepared data set's arrays and tokenizer, from its manifest.json (empty: none)."""
    files = (manifest or {}).get("files") or {}
    return {f: str(files[f].get("sha256")) for f in DATA_FILES if isinstance(files.get(f), dict)}


def protocol(profile: dict[str, Any], workload: str, data_manifests: dict[str, dict[str, Any]] | None = None
             ) -> dict[str, Any]:
    """The protocol of ``workload`` in a resolved ``profile``; ``data_manifests`` maps a data entry's name to its
    prepared manifest.json (read from the results directory). Raises ConfigError naming a bad key."""
    from transferbench.config import resolve_run_config

    spec = profile["workloads"][workload]
    axis, scales, base = axes.axis_of(spec), axes.values_of(spec), axes.base_of(spec)
    tune = axes.tuning(spec)
    width = tune if axis == "width" else int(spec["widths"][0])
    settings = {**run_settings(profile, workload, spec), **axes.settings_at(axis, tune, base)}
    cfg = resolve_run_config({**settings, "workload": workload, "recipe": "standard", "width": width,
                              "base_width": int(spec["base_width"]), "log2_lr": 0.0, "wd": 0.0, "seed": 0}).as_dict()
    adaptive = profile.get("lr_search", "grid") == "adaptive"
    two_d = wd_search(profile, workload) == "adaptive"
    lattice: dict[str, Any] = {"log2_lrs": [float(x) for x in spec["log2_lrs"]],
                               "lr_search": "adaptive" if adaptive else "grid",
                               "lr_refine": lr_refine(profile, workload) if adaptive else 0.0,
                               "log2_lr_start": spec.get("log2_lr_start")}
    if two_d:
        lattice.update(log2_wds=[float(y) for y in spec["log2_wds"]], wd_refine=wd_refine(profile, workload),
                       log2_wd_start=spec.get("log2_wd_start"))
    else:
        lattice["wds"] = [float(w) for w in spec["wds"]]
    out: dict[str, Any] = {
        "workload": workload, "axis": axis, "scales": scales, "base": base, "base_width": int(spec["base_width"]),
        "widths": [int(w) for w in spec["widths"]],
        "width_settings": {str(k): v for k, v in sorted((spec.get("width_settings") or {}).items())},
        "settings": kept(cfg, axis), "lattice": lattice,
    }
    name = spec.get("data")
    if name is not None:
        entry = dict((profile.get("data") or {}).get(name) or {})
        out["data"] = {"entry": entry, "content": data_content((data_manifests or {}).get(name))}
    return out


def protocol_hash(proto: dict[str, Any]) -> str:
    return digest(proto)


def differences(a: Any, b: Any, where: str = "") -> list[str]:
    """The keys where two protocols differ, as ``key: A vs B`` (nested keys dotted), in key order."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for k in sorted(set(a) | set(b), key=str):
            key = f"{where}.{k}" if where else str(k)
            if k not in a or k not in b:
                out.append(f"{key}: {a.get(k, '(absent)')!r} vs {b.get(k, '(absent)')!r}")
            else:
                out += differences(a[k], b[k], key)
        return out
    return [] if a == b else [f"{where}: {a!r} vs {b!r}"]


def run_problems(cfg: dict[str, Any], proto: dict[str, Any]) -> list[str]:
    """What in one record's config departs from its workload's protocol (an empty list: it belongs to the sweep)."""
    axis = proto["axis"]
    own = axes.KEYS[axis][2]
    out = []
    scale = cfg.get(own)
    if scale not in proto["scales"]:
        out.append(f"config.{own}: {scale!r} is not one of the sweep's {axes.WORDS[axis].values} {proto['scales']}")
    # a job at width W runs with the profile's width_settings[W] (config/grid.py run_settings), on every axis
    expected = kept({**proto["settings"], **(proto["width_settings"].get(str(cfg.get("width"))) or {})}, axis)
    mine = kept(cfg, axis)
    from transferbench.config.run import absent_means

    for key in sorted(set(expected) | set(mine)):
        if mine.get(key) != expected.get(key):
            a, b = (d[key] if key in d else absent_means(key) for d in (mine, expected))
            out.append(f"config.{key}: {a!r}, the sweep's is {b!r}")
    if "wds" in proto["lattice"] and float(cfg.get("wd", -1)) not in proto["lattice"]["wds"]:
        out.append(f"config.wd: {cfg.get('wd')!r} is not one of the sweep's wds {proto['lattice']['wds']}")
    return out


def run_key(cfg: dict[str, Any]) -> str:
    """One run's identity across machines: its config less the execution keys and machine paths (two bundles of
    one protocol that both hold this key trained the same run)."""
    return digest({k: v for k, v in cfg.items() if k not in EXECUTION and k not in PATHS}, 16)


#: Relative difference of a run's held-out loss above which two results of one run disagree (two bundles' copies,
#: or a record and its rerun): reruns on one device agree exactly; fp32 on other hardware drifts by about 1e-3.
TOLERANCE = 0.01


def held_out_loss(summary: dict[str, Any]) -> float:
    x = summary.get("eval_loss")
    return float(x) if isinstance(x, (int, float)) else math.nan


def agree(a: dict[str, Any], b: dict[str, Any], tolerance: float = TOLERANCE) -> tuple[bool, float]:
    """Whether two summaries of one run agree, and the relative difference of their held-out loss (NaN when one
    diverged and the other did not: they disagree whatever the losses)."""
    if bool(a["diverged"]) != bool(b["diverged"]):
        return False, math.nan
    la, lb = held_out_loss(a), held_out_loss(b)
    if math.isnan(la) and math.isnan(lb):
        return True, 0.0
    rel = abs(la - lb) / max(abs(la), abs(lb), 1e-12)
    return rel <= tolerance, rel
