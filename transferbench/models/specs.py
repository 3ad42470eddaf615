"""The helper that turns a model's role assignment into ``param_specs`` (models/__init__.py re-exports it).

Every workload's model (``workloads/<name>/model.py``, a plugin's too) imports it from here.
"""

from __future__ import annotations

from collections.abc import Iterable

from torch import nn

from transferbench.roles import HIDDEN, INPUT, OUTPUT, VECTOR, ParamSpec


def fan_in_of(module: nn.Module) -> int:
    """Inputs feeding one output unit: in_features (Linear), in_channels/groups*kh*kw (Conv2d), and 1
    for an embedding (a lookup of a one-hot input), so an embedding's fan_in is fixed across widths."""
    if isinstance(module, nn.Linear):
        return module.in_features
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return module.in_channels // module.groups * kh * kw
    if isinstance(module, nn.Embedding):
        return 1
    raise TypeError(f"no fan_in rule for a matrix held by {type(module).__name__}")


def specs_from_roles(
    model: nn.Module, inputs: Iterable[nn.Module], outputs: Iterable[nn.Module]
) -> dict[str, ParamSpec]:
    """One ParamSpec per entry of ``model.named_parameters()``.

    Rules: a parameter with one dimension is ``vector`` (norm gains, BN weights, every bias); a
    matrix (or conv kernel) is ``input`` if its module is in ``inputs``, ``output`` if in ``outputs``,
    else ``hidden``; its fan_in comes from :func:`fan_in_of`. A matrix held by a module with no fan_in
    rule is an error, never a silent guess.
    """
    role_of = {id(m): INPUT for m in inputs}
    role_of.update({id(m): OUTPUT for m in outputs})
    specs: dict[str, ParamSpec] = {}
    for mod_name, module in model.named_modules():
        for p_name, p in module.named_parameters(recurse=False):
            name = f"{mod_name}.{p_name}" if mod_name else p_name
            if p.dim() == 1:
                specs[name] = ParamSpec(VECTOR)
            else:
                specs[name] = ParamSpec(role_of.get(id(module), HIDDEN), fan_in_of(module))
    return specs
