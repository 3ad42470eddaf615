"""``transferbench show-recipe``: a recipe resolved at one width (and depth and horizon), printed from the code
``train`` runs.

It builds the model and the parameter groups exactly as a training run does (same checks, same
groups, the shared base model's ``readout_init`` and ``decay_roles`` applied), so what it prints is what a
run would apply: per-group init std, peak lr and wd, their multipliers as applied, and the per-step
factors and per-step decay at a few steps of the schedule.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transferbench.settings import RunConfig


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows]


def show_recipe(cfg: RunConfig) -> str:
    """The text that ``show-recipe`` prints for a resolved run config."""
    import torch

    from transferbench.groups import build_groups, step_values
    from transferbench.recipes import base_model_of, get_recipe
    from transferbench.recipes.checked import resolve
    from transferbench.schedule import lr_multipliers
    from transferbench.workloads.build import build_workload

    recipe = get_recipe(cfg.recipe, **cfg.recipe_options)
    m, steps = cfg.width_mult, int(cfg.steps)
    sched = lr_multipliers(steps, cfg.schedule, cfg.warmup_frac, cfg.min_lr_frac)
    resolved = resolve(recipe, m, [cfg.lr * s for s in sched], float(cfg.wd), float(cfg.depth_mult),
                       float(cfg.steps_mult))
    torch.manual_seed(0)
    model = build_workload(cfg, resolved.output_mult, torch.device("cpu"), resolved.branch_mult).model
    groups = build_groups(model, resolved, cfg, initialise=False)
    out = [f"recipe {cfg.recipe} on {cfg.workload}: width {cfg.width}, base_width {cfg.base_width}, "
           f"width_mult m = {m:g}; depth {cfg.depth}, depth_mult m_L = {cfg.depth_mult:g}; steps {steps}, "
           f"steps_mult {cfg.steps_mult:g}; base lr = 2^{cfg.log2_lr:g} = {cfg.lr:.4g}, base wd = {cfg.wd:g}, "
           f"base eps = {cfg.adam_eps:g}",
           f"readout forward multiplier: {resolved.output_mult:.4g}; residual branch multiplier: "
           f"{resolved.branch_mult:.4g}",
           f"depth rule: {getattr(recipe, 'depth_rule', '') or 'none (every depth trains as the base depth)'}"]
    # the shared base model (docs/design.md §3): run settings, the same for every recipe
    out.append(f"base model: readout_init {cfg.readout_init}, decay_roles {cfg.decay_roles}"
               + (f"; this recipe's own at m = 1: {base_model_of(recipe)}" if base_model_of(recipe) else ""))
    if getattr(recipe, "equivalent", ""):
        out.append(f"equivalent: {recipe.equivalent}")
    rows = [("role", "fan_in", "params", "init_std", "lr_mult", "lr", "wd_mult", "wd", "lr*wd", "eps", "factors")]
    for g in groups:
        factors = ", ".join(f"{k.split('_')[0]}*{g[k]}" for k in ("lr_factor", "wd_factor") if g[k]) or "-"
        rows.append((
            g["role"], str(g["fan_in"] or "-"), str(g["numel"]),
            "-" if g["init_std"] is None else f"{g['init_std']:.4g}",
            f"{g['lr_mult']:.4g}", f"{g['lr']:.4g}", f"{g['wd_mult']:.4g}", f"{g['weight_decay']:.4g}",
            f"{g['per_step_decay']:.4g}", f"{g['eps']:.4g}", factors,
        ))
    out += _table(rows)
    # What the optimizer would hold at a few steps: the schedule and the factors applied.
    lrs, wds = step_values(groups, sched)
    at = sorted({0, steps // 10, steps // 4, steps // 2, steps - 1})
    shown = {g["role"]: i for i, g in enumerate(groups)}  # one group per role is enough to print
    rows = [("step", "schedule", *(f"{r} lr" for r in shown), *(f"{r} lr*wd" for r in shown))]
    for t in at:
        rows.append((str(t), f"{sched[t]:.4f}", *(f"{lrs[i][t]:.4g}" for i in shown.values()),
                     *(f"{lrs[i][t] * wds[i][t]:.4g}" for i in shown.values())))
    out += ["applied per step (lr = peak lr x schedule x lr factor; per-step decay = lr x wd):", *_table(rows)]
    for g in groups:
        if g["lr_factors"] is not None:
            f = g["lr_factors"]
            out.append(f"{g['role']} per-step factor {g['lr_factor'] or ''}: "
                       + ", ".join(f"t={t}: {f[t]:.4f}" for t in at))
            break
    return "\n".join(out)
