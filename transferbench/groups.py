"""Where a recipe meets a model: initialise every parameter and build the AdamW parameter groups.

Groups are keyed by (role, fan_in), so every group has one init std, one lr and one wd, and the
record can list them exactly (docs/record.md). ``show-recipe`` calls the same code as ``train``.

The recipe gives width rules; the base model's two choices are run settings shared by every recipe
(docs/design.md §3), applied here: ``readout_init: zero`` zeroes the readout at every width (the papers'
μP runs, mup's ``readout_zero_init=True``), and a matrix role missing from ``decay_roles`` gets no weight
decay whatever the recipe's multiplier ([Fan25]'s embedding and readout: ``decay_roles: hidden``).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from transferbench.recipes.checked import Resolved
from transferbench.roles import HIDDEN, MATRIX_ROLES, OUTPUT, ROLES, VECTOR, ParamSpec
from transferbench.settings import RunConfig, decayed_roles


def check_specs(model: nn.Module, specs: dict[str, ParamSpec]) -> None:
    """Every parameter has exactly one role: a model bug otherwise, so fail loudly."""
    names = {n for n, _ in model.named_parameters()}
    missing, extra = sorted(names - set(specs)), sorted(set(specs) - names)
    if missing or extra:
        raise ValueError(f"param_specs of {type(model).__name__}: missing {missing}, unknown {extra}")


def build_groups(
    model: nn.Module, resolved: Resolved, cfg: RunConfig, initialise: bool = True
) -> list[dict[str, Any]]:
    """Re-initialise matrices per the (checked) recipe and return AdamW groups with their settings.

    Each group dict holds ``params`` (tensors) plus record fields: role, fan_in, names, numel,
    lr and weight_decay (peak values, before the schedule and the per-step factors), Adam eps, init_std,
    multipliers as applied, the width rule's times the depth and horizon rules' (``init_mult`` 0 for a zero
    readout, ``wd_mult`` 0 for an undecayed role),
    per_step_decay (lr x weight_decay at the peak) and the names of the per-step factors;
    ``lr_factors``/``wd_factors`` hold the factor lists themselves (not recorded). Init: normal(0,
    sigma/sqrt(fan_in) x init multiplier) for matrix roles (zero when the multiplier is 0, and for the
    readout under ``readout_init: zero``); vectors keep the model's constant init.
    """
    specs = model.param_specs()
    check_specs(model, specs)
    base_lr, base_wd, sigma = float(cfg.lr), float(cfg.wd), float(cfg.sigma)
    decayed = decayed_roles(cfg.decay_roles)
    buckets: dict[tuple[str, int], list[tuple[str, nn.Parameter]]] = {}
    for name, p in model.named_parameters():
        spec = specs[name]
        buckets.setdefault((spec.role, spec.fan_in or 0), []).append((name, p))
    groups = []
    for (role, fan_in), members in sorted(buckets.items(), key=lambda kv: (ROLES.index(kv[0][0]), kv[0][1])):
        rs = resolved.roles[role]
        mult, depth = rs.multipliers, rs.depth
        # the base model's settings over the recipe's width rule: a zero readout, an undecayed role; the
        # depth and horizon rules' factors multiply the width rule's (1 without them)
        init_mult = 0.0 if role == OUTPUT and cfg.readout_init == "zero" else mult.init_std * depth.init_std
        wd_mult = 0.0 if role in MATRIX_ROLES and role not in decayed else mult.wd * depth.wd * rs.horizon_wd
        lr_mult, eps = mult.lr * depth.lr, float(cfg.adam_eps) * depth.eps
        init_std = sigma / math.sqrt(fan_in) * init_mult if role in MATRIX_ROLES else None
        if initialise and init_std is not None:
            with torch.no_grad():
                for _, p in members:
                    if init_std == 0.0:
                        p.zero_()
                    else:
                        p.normal_(0.0, init_std)
        lr, wd = base_lr * lr_mult, base_wd * wd_mult
        groups.append({
            "params": [p for _, p in members], "role": role, "fan_in": fan_in if role != VECTOR else None,
            "names": [n for n, _ in members], "numel": sum(p.numel() for _, p in members),
            "lr": lr, "weight_decay": wd, "eps": eps, "init_std": init_std, "lr_mult": lr_mult, "wd_mult": wd_mult,
            "init_mult": init_mult if role in MATRIX_ROLES else None, "per_step_decay": lr * wd,
            "lr_factor": resolved.lr_factor_name if rs.lr_factors is not None else None,
            "wd_factor": resolved.wd_factor_name if rs.wd_factors is not None else None,
            "lr_factors": rs.lr_factors, "wd_factors": rs.wd_factors,
        })
    return groups


def group_records(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The record's ``param_groups``: everything but the tensors and factor lists, ``names`` as ``params``."""
    out = []
    for g in groups:
        rec = {k: v for k, v in g.items() if k not in ("params", "names", "lr_factors", "wd_factors")}
        rec["params"] = list(g["names"])
        out.append(rec)
    return out


def optimizer_groups(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What torch.optim.AdamW accepts: params and each group's own peak lr and weight_decay (the
    trainer multiplies them by the schedule and the per-step factors before every step)."""
    return [{"params": g["params"], "lr": g["lr"], "weight_decay": g["weight_decay"], "eps": g["eps"],
             "role": g["role"]} for g in groups]


def step_values(groups: list[dict[str, Any]], sched: list[float]) -> tuple[list[list[float]], list[list[float]]]:
    """Per group and step, the lr and weight_decay to apply: lr = peak lr x schedule(t) x lr factor(t),
    weight_decay = peak weight_decay x wd factor(t) (the schedule multiplies the lr only, so AdamW's
    per-step decay lr x weight_decay follows the schedule as in PyTorch)."""
    lrs, wds = [], []
    for g in groups:
        lf, wf = g["lr_factors"], g["wd_factors"]
        lrs.append([g["lr"] * s * (lf[t] if lf is not None else 1.0) for t, s in enumerate(sched)])
        wds.append([g["weight_decay"] * (wf[t] if wf is not None else 1.0) for t in range(len(sched))])
    return lrs, wds


def lr_factor_end(groups: list[dict[str, Any]], completed: int) -> float | None:
    """The hidden groups' per-step lr factor at the last trained step (the smallest over hidden groups), e.g.
    where warmup-replacement's f_t ended; None without such a factor or a trained step."""
    ends = [g["lr_factors"][completed - 1] for g in groups if g["role"] == HIDDEN and g["lr_factors"] is not None]
    return min(ends) if ends and completed > 0 else None
