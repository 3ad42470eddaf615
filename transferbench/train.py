"""One training run: recipe + workload -> AdamW groups -> scheduled loop -> record.json.

Three parts, each short: :func:`setup` (the only place where a recipe meets a model), :func:`step`
(one optimizer step; diagnostics only at the few snapshot steps) and :func:`summarize` (the record).

Before every step each AdamW group gets lr = its peak lr x schedule(t) x the recipe's lr factor(t)
and weight_decay = its peak coefficient x the recipe's wd factor(t); at a few steps the values the
optimizer actually holds are read back into the record (``applied``), so the record shows what was
applied, not only what was intended. A non-finite loss stops the run and is recorded as
``diverged`` with its step; an exception inside the loop (e.g. an overflow at an absurd lr) is
recorded as ``failure``: results, not errors. Same config and seed on CPU give identical numbers
(1 thread by default, no nondeterministic ops).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from transferbench import checkpoint, fastpath, mfu
from transferbench import diagnostics as diag
from transferbench.config import config_hash
from transferbench.devices import provenance as devices_provenance
from transferbench.groups import build_groups, group_records, lr_factor_end, optimizer_groups, step_values
from transferbench.recipes import describe, get_recipe
from transferbench.recipes.checked import resolve
from transferbench.record import RECORD_NAME, SCHEMA_VERSION, provenance, write_json_atomic
from transferbench.roles import HIDDEN
from transferbench.schedule import lr_multipliers
from transferbench.settings import RunConfig

log = logging.getLogger("transferbench.train")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: 'cuda' requested but torch.cuda.is_available() is False")
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


@dataclass
class Run:
    """Everything :func:`step` needs, built once by :func:`setup`."""

    cfg: RunConfig
    device: torch.device
    meta: dict[str, Any]
    output_mult: float
    branch_mult: float
    wl: Any  # workloads.Workload
    groups: list[dict[str, Any]]
    opt: torch.optim.Optimizer
    sched: list[float]
    lrs: list[list[float]]  # per group, per step: the lr to apply
    wds: list[list[float]]  # per group, per step: the weight_decay to apply
    autocast: Callable[[], Any]
    hidden: dict[str, torch.nn.Parameter]
    sublayers: list
    snap_steps: set[int]
    applied_steps: set[int]
    log_every: int
    compiled: Any = None  # torch.compile(model) when cfg.compile, else None
    fast: Any = None  # fastpath.FastPath: autocast, TF32, fused AdamW, attention kernel


@dataclass
class State:
    """What the loop accumulates."""

    losses: list[float] = field(default_factory=list)
    curve: dict[str, list] = field(default_factory=lambda: {"step": [], "loss": [], "lr_mult": []})
    coord: dict[str, list] = field(default_factory=lambda: {"step": [], "logits_rms": [], "hidden_rms": []})
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    applied: list[dict[str, Any]] = field(default_factory=list)
    diverged_step: int | None = None
    failure: str | None = None


def applied_steps(steps: int, warmup_frac: float) -> set[int]:
    """Steps at which the optimizer's settings are read back: first, end of warmup, middle, last."""
    warmup = int(round(warmup_frac * steps))
    return {0, max(warmup - 1, 0), steps // 2, steps - 1}


def setup(cfg: RunConfig) -> Run:
    """Seed, build the workload, resolve and check the recipe, initialise, and build the optimizer."""
    from transferbench.workloads.build import build_workload  # torch-heavy; imported on use

    torch.set_num_threads(int(cfg.threads))
    torch.set_flush_denormal(True)  # denormals slowed high-lr CPU runs by up to 1.6x (docs/design.md)
    device = resolve_device(cfg.device)
    if device.type == "cuda":  # the GPU this process claimed (devices.py), named in the record
        device = torch.device("cuda", torch.cuda.current_device())
    fast = fastpath.plan(cfg, device)  # autocast, TF32, fused AdamW, attention kernel (fastpath.py)
    fast.apply_globals()
    recipe = get_recipe(cfg.recipe, **cfg.recipe_options)
    steps, m = int(cfg.steps), float(cfg.width_mult)
    sched = lr_multipliers(steps, cfg.schedule, cfg.warmup_frac, cfg.min_lr_frac)
    # Every number the recipe returns is checked before any compute (recipes/checked.py).
    resolved = resolve(recipe, m, [cfg.lr * s for s in sched], float(cfg.wd), float(cfg.depth_mult),
                       float(cfg.steps_mult))
    torch.manual_seed(int(cfg.seed))
    wl = build_workload(cfg, resolved.output_mult, device, resolved.branch_mult)
    model = wl.model.to(device)
    groups = build_groups(model, resolved, cfg)
    opt = torch.optim.AdamW(optimizer_groups(groups), betas=(cfg.adam_beta1, cfg.adam_beta2), **fast.optimizer)
    lrs, wds = step_values(groups, sched)
    return Run(
        cfg=cfg, device=device, meta={**describe(cfg.recipe), "options": recipe.opts},
        output_mult=resolved.output_mult, branch_mult=resolved.branch_mult, wl=wl, groups=groups, opt=opt,
        sched=sched, lrs=lrs, wds=wds,
        autocast=fast.context, fast=fast,
        hidden={n: p for g in groups if g["role"] == HIDDEN for n, p in zip(g["names"], g["params"])},
        sublayers=list(model.sublayers()),
        snap_steps=set(diag.diag_steps(steps, int(cfg.diag_points))),
        applied_steps=applied_steps(steps, float(cfg.warmup_frac)),
        log_every=int(cfg.log_every) or max(1, steps // 100),
        compiled=torch.compile(model) if cfg.compile else None,
    )


def step(run: Run, st: State, t: int) -> bool:
    """One optimizer step at step index t; False when the loss is not finite (the run diverged)."""
    model, opt = run.wl.model, run.opt
    for i, g in enumerate(opt.param_groups):
        g["lr"], g["weight_decay"] = run.lrs[i][t], run.wds[i][t]
    x, y = run.wl.train_batch(t)
    watching = t < int(run.cfg.coord_steps)
    coord_io: dict[str, tuple[float, float]] = {}
    # The coordinate check's hooks need the eager module; every other step may use the compiled one.
    forward = model if watching or run.compiled is None else run.compiled
    with diag.record_io(run.sublayers if watching else [], coord_io), run.autocast():
        out = forward(x)
        loss = run.wl.loss_fn(out.float(), y)
    value = loss.item()
    if not math.isfinite(value):
        st.diverged_step = t
        log.warning("non-finite loss at step %d: recording the run as diverged", t)
        return False
    st.losses.append(value)
    if watching:  # the microsoft/mup coordinate check: activation scales over the first steps
        st.coord["step"].append(t)
        st.coord["logits_rms"].append(diag.rms(out))
        st.coord["hidden_rms"].append(sum(o for _, o in coord_io.values()) / max(len(coord_io), 1))
    if t % run.log_every == 0 or t == len(run.sched) - 1:
        st.curve["step"].append(t)
        st.curve["loss"].append(value)
        st.curve["lr_mult"].append(run.sched[t])
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if run.cfg.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), run.cfg.grad_clip)
    if t in run.applied_steps:  # read back what the optimizer holds, not what we meant to set
        st.applied.append(_applied(run, t))
    snap = t in run.snap_steps
    before = {n: p.detach().float().clone() for n, p in run.hidden.items()} if snap else None
    opt.step()
    if before is not None:
        st.snapshots.append(_snapshot(t + 1, run, before))
    return True


def _applied(run: Run, t: int) -> dict[str, Any]:
    rows = []
    for g, pg in zip(run.groups, run.opt.param_groups, strict=True):
        lr, wd = float(pg["lr"]), float(pg["weight_decay"])
        rows.append({
            "role": g["role"], "fan_in": g["fan_in"], "lr": lr, "weight_decay": wd, "per_step_decay": lr * wd,
            "eps": float(pg["eps"]),
            "lr_factor": None if g["lr_factors"] is None else g["lr_factors"][t],
            "wd_factor": None if g["wd_factors"] is None else g["wd_factors"][t],
        })
    return {"step": t, "lr_mult": run.sched[t], "groups": rows}


def summarize(run: Run, st: State, init_loss: float, train_time: float) -> dict[str, Any]:
    """The record of a finished (or diverged, or failed) run (docs/record.md)."""
    cfg, wl = run.cfg, run.wl
    completed = len(st.losses)
    ended = st.diverged_step is None and st.failure is None
    tail = st.losses[-max(1, completed // 10):] if completed else []
    final_loss = sum(tail) / len(tail) if tail and ended else float("nan")
    eval_loss = evaluate(wl.model, wl.eval_batches, wl.loss_fn, run.autocast) if ended else float("nan")
    if ended and not math.isfinite(eval_loss):
        st.diverged_step = completed
    diverged = not ended or st.diverged_step is not None or not (eval_loss <= init_loss)
    return {
        "schema_version": SCHEMA_VERSION,
        "config": cfg.as_dict(),
        "config_hash": config_hash(cfg),
        "recipe": run.meta,
        "provenance": {**provenance(str(run.device), int(cfg.threads), run.meta),
                       "optimizer": {"name": "AdamW", **_kernel(run.opt)}, "compile": bool(cfg.compile),
                       "fast_path": run.fast.record(), **devices_provenance(run.device)},
        "data": wl.data_info,
        "output_mult": run.output_mult,
        "branch_mult": run.branch_mult,
        "param_groups": group_records(run.groups),
        "summary": {
            "init_loss": init_loss, "final_loss": final_loss, "eval_loss": eval_loss, "diverged": diverged,
            "diverged_step": st.diverged_step, "failure": st.failure, "steps_completed": completed,
            "wall_time": train_time,
            "throughput": wl.items_per_batch * completed / train_time if train_time > 0 else None,
            "throughput_unit": wl.throughput_unit,
            **mfu.performance(cfg, run.device, wl.items_per_batch * completed, train_time),
            "tau": _tau(run, completed),
            "lr_factor_end": lr_factor_end(run.groups, completed),  # e.g. where f_t ended (regime check)
        },
        "curve": st.curve,
        "applied": sorted(st.applied, key=lambda a: a["step"]),
        "diagnostics": st.snapshots,
        "coord_check": st.coord,
    }


def _kernel(opt: torch.optim.Optimizer) -> dict[str, bool]:
    """The AdamW kernel as the optimizer holds it (fused, else foreach or the loop)."""
    return {"fused": True} if opt.defaults.get("fused") else {"foreach": bool(opt.defaults.get("foreach"))}


def _tau(run: Run, completed: int) -> float | None:
    """Weight-decay timescales the hidden matrices lived through: tau = sum over the trained steps of the
    applied lr_t x weight_decay_t (mean over hidden groups). AdamW shrinks W by (1 - lr_t wd_t) per step,
    so after tau >> 1 the initial weights are forgotten: the steady state of [Kos25] and [Fan25]."""
    taus = [sum(a * b for a, b in zip(run.lrs[i][:completed], run.wds[i][:completed]))
            for i, g in enumerate(run.groups) if g["role"] == HIDDEN]
    return sum(taus) / len(taus) if taus else None


@checkpoint.deferred()  # a SIGTERM during training waits for a step boundary, where the state is saved
def train(cfg: RunConfig, out_dir: Path | None = None, progress: bool = False, run: Run | None = None,
          extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train one run described by a resolved config (config.resolve_run_config); return the record
    and, if ``out_dir`` is given, write ``out_dir/record.json`` atomically. ``run``: its :func:`setup`,
    if already built (shared.py fingerprints it first); ``extra``: top-level keys added to the record.
    With ``out_dir``, a ``checkpoint.pt`` there of the same config is resumed from (checkpoint.py)."""
    run = run if run is not None else setup(cfg)
    st = State()
    ck = checkpoint.Checkpointer(run, out_dir)
    start, init_loss, before = ck.resume(st)
    if init_loss is None:
        init_loss = evaluate(run.wl.model, run.wl.eval_batches, run.wl.loss_fn, run.autocast)
    bar = _progress(len(run.sched), progress, f"{cfg.workload}/{cfg.recipe} d={cfg.width}")
    if bar is not None and start:
        bar.update(start)
    t0 = time.perf_counter()
    run.wl.model.train()
    try:
        for t in range(start, len(run.sched)):
            if not step(run, st, t):
                break
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{st.losses[-1]:.3f}", refresh=False)
            ck.after_step(st, t + 1, init_loss, before + time.perf_counter() - t0)
    except Exception as exc:  # a run that breaks mid-way is a result with its reason, not a lost line
        st.failure = f"{type(exc).__name__}: {exc}"
        log.error("run failed at step %d: %s (recorded as a failed run)", len(st.losses), st.failure)
    train_time = before + time.perf_counter() - t0
    if bar is not None:
        bar.close()
    record = {**summarize(run, st, init_loss, train_time), "resumed_from": ck.resumed_from, **(extra or {})}
    if out_dir is not None:
        write_json_atomic(Path(out_dir) / RECORD_NAME, record)
    ck.done(st, init_loss, train_time)
    return record


@torch.no_grad()
def _snapshot(step_no: int, run: Run, before: dict[str, torch.Tensor]) -> dict[str, Any]:
    gains: dict[str, tuple[float, float]] = {}
    model = run.wl.model
    was_training = model.training
    model.eval()
    with diag.record_io(run.sublayers, gains), run.autocast():
        model(run.wl.eval_batches[0][0])
    model.train(was_training)
    return diag.snapshot(step_no, run.hidden, before, gains)


def _progress(total: int, enabled: bool, desc: str) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="step", leave=False)
