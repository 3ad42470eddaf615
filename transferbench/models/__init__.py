"""What every workload's model shares: the helper that turns a model's role assignment into ``param_specs``
(``models.specs``). The models themselves live in their workloads' folders (``workloads/<name>/model.py``).

Models know no recipe (docs/design.md §3): each one only says which of its modules are the ``input`` and
``output`` layers; every other matrix is ``hidden`` and every 1-D parameter is ``vector``. The true
fan_in of each matrix is read off its module, so it can never disagree with the forward pass.
"""

from __future__ import annotations

from transferbench.models.specs import fan_in_of, specs_from_roles

__all__ = ["fan_in_of", "specs_from_roles"]
