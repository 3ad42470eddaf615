"""One training run: recipe + workload -> AdamW groups -> scheduled loop -> record.json.

The schedule multiplies each group's own peak lr (and the recipe's per-step factor, e.g. f_t, on top).
A non-finite loss stops the run and is recorded as ``diverged`` with its step: a result, not an error.
Same config and seed on CPU give identical numbers (1 thread by default, no nondeterministic ops).
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import torch

from transferbench import diagnostics as diag
from transferbench.config import config_hash
from transferbench.groups import build_groups, group_records, optimizer_groups
from transferbench.recipes import describe, get_recipe
from transferbench.record import RECORD_NAME, SCHEMA_VERSION, provenance, write_json_atomic
from transferbench.roles import HIDDEN
from transferbench.schedule import lr_multipliers

log = logging.getLogger("transferbench.train")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device: 'cuda' requested but torch.cuda.is_available() is False")
    return torch.device(name)


@torch.no_grad()
def evaluate(model: torch.nn.Module, batches: list, loss_fn: Any, autocast: Any) -> float:
    was_training = model.training
    model.eval()
    total = 0.0
    for x, y in batches:
        with autocast():
            total += float(loss_fn(model(x).float(), y))
    model.train(was_training)
    return total / max(len(batches), 1)


def train(cfg: dict[str, Any], out_dir: Path | None = None, progress: bool = False) -> dict[str, Any]:
    """Train one run described by a resolved config (config.resolve_run_config); return the record
    and, if ``out_dir`` is given, write ``out_dir/record.json`` atomically."""
    from transferbench.workloads import build_workload  # torch-heavy; imported on use

    torch.set_num_threads(int(cfg["threads"]))
    torch.set_flush_denormal(True)  # denormals slowed high-lr CPU runs by up to 1.6x (DESIGN §7)
    device = resolve_device(cfg["device"])
    recipe = get_recipe(cfg["recipe"], **cfg["recipe_options"])
    meta = {**describe(cfg["recipe"]), "options": recipe.opts}
    m = float(cfg["width_mult"])
    steps = int(cfg["steps"])

    torch.manual_seed(int(cfg["seed"]))
    output_mult = recipe.output_mult(m)
    wl = build_workload(cfg, output_mult, device)
    model = wl.model.to(device)
    groups = build_groups(model, recipe, cfg)
    opt = torch.optim.AdamW(
        optimizer_groups(groups),
        betas=(cfg["adam_beta1"], cfg["adam_beta2"]),
        eps=cfg["adam_eps"],
        foreach=device.type == "cuda",
    )
    sched = lr_multipliers(steps, cfg["schedule"], cfg["warmup_frac"], cfg["min_lr_frac"])
    base_lrs = [cfg["lr"] * s for s in sched]
    factors = [recipe.lr_factors(g["role"], m, base_lrs, cfg["wd"]) for g in groups]
    use_bf16 = device.type == "cuda"

    def autocast() -> Any:
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_bf16)

    hidden = {n: p for g in groups if g["role"] == HIDDEN for n, p in zip(g["names"], g["params"])}
    sublayers = list(model.sublayers())
    snap_steps = set(diag.diag_steps(steps, int(cfg["diag_points"])))
    log_every = int(cfg["log_every"]) or max(1, steps // 100)

    init_loss = evaluate(model, wl.eval_batches, wl.loss_fn, autocast)
    losses: list[float] = []
    curve: dict[str, list] = {"step": [], "loss": [], "lr_mult": []}
    coord: dict[str, list] = {"step": [], "logits_rms": [], "hidden_rms": []}
    snapshots: list[dict[str, Any]] = []
    diverged_step: int | None = None
    bar = _progress(steps, progress, f"{cfg['workload']}/{cfg['recipe']} d={cfg['width']}")
    t0 = time.perf_counter()
    model.train()
    for t in range(steps):
        for g, f in zip(opt.param_groups, factors):
            g["lr"] = g["peak_lr"] * sched[t] * (f[t] if f is not None else 1.0)
        x, y = wl.train_batch(t)
        coord_io: dict[str, tuple[float, float]] = {}
        watching = t < int(cfg["coord_steps"])
        with diag.record_io(sublayers if watching else [], coord_io), autocast():
            out = model(x)
            loss = wl.loss_fn(out.float(), y)
        value = loss.item()
        if not math.isfinite(value):
            diverged_step = t
            log.warning("non-finite loss at step %d: recording the run as diverged", t)
            break
        losses.append(value)
        if watching:
            coord["step"].append(t)
            coord["logits_rms"].append(diag.rms(out))
            coord["hidden_rms"].append(sum(o for _, o in coord_io.values()) / max(len(coord_io), 1))
        if t % log_every == 0 or t == steps - 1:
            curve["step"].append(t)
            curve["loss"].append(value)
            curve["lr_mult"].append(sched[t])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg["grad_clip"] > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["grad_clip"])
        before = {n: p.detach().float().clone() for n, p in hidden.items()} if t in snap_steps else None
        opt.step()
        if before is not None:
            snapshots.append(_snapshot(t + 1, model, hidden, before, sublayers, wl.eval_batches, autocast))
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{value:.3f}", refresh=False)
    train_time = time.perf_counter() - t0
    if bar is not None:
        bar.close()

    completed = len(losses)
    tail = losses[-max(1, completed // 10):] if completed else []
    final_loss = sum(tail) / len(tail) if tail and diverged_step is None else float("nan")
    eval_loss = evaluate(model, wl.eval_batches, wl.loss_fn, autocast) if diverged_step is None else float("nan")
    if not math.isfinite(eval_loss):
        diverged_step = diverged_step if diverged_step is not None else completed
    diverged = diverged_step is not None or not (eval_loss <= init_loss)
    record = {
        "schema_version": SCHEMA_VERSION,
        "config": cfg,
        "config_hash": config_hash(cfg),
        "recipe": meta,
        "provenance": provenance(str(device), int(cfg["threads"]), meta),
        "data": wl.data_info,
        "output_mult": output_mult,
        "param_groups": group_records(groups),
        "summary": {
            "init_loss": init_loss,
            "final_loss": final_loss,
            "eval_loss": eval_loss,
            "diverged": diverged,
            "diverged_step": diverged_step,
            "steps_completed": completed,
            "wall_time": train_time,
            "throughput": wl.items_per_batch * completed / train_time if train_time > 0 else None,
            "throughput_unit": wl.throughput_unit,
        },
        "curve": curve,
        "diagnostics": snapshots,
        "coord_check": coord,
    }
    if out_dir is not None:
        write_json_atomic(Path(out_dir) / RECORD_NAME, record)
    return record


@torch.no_grad()
def _snapshot(step, model, hidden, before, sublayers, eval_batches, autocast) -> dict[str, Any]:
    gains: dict[str, tuple[float, float]] = {}
    was_training = model.training
    model.eval()
    with diag.record_io(sublayers, gains), autocast():
        model(eval_batches[0][0])
    model.train(was_training)
    return diag.snapshot(step, hidden, before, gains)


def _progress(total: int, enabled: bool, desc: str) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="step", leave=False)
