"""The three models (llama, resnet, mlp) and the helper that turns a model's role assignment into
``param_specs`` (``models.specs``).

Models know no recipe (docs/design.md §3): each one only says which of its modules are the ``input`` and
``output`` layers; every other matrix is ``hidden`` and every 1-D parameter is ``vector``. The true
fan_in of each matrix is read off its module, so it can never disagree with the forward pass.
"""

from __future__ import annotations

from transferbench.models.llama import Llama
from transferbench.models.mlp import NormalizedMLP
from transferbench.models.resnet import ResNet
from transferbench.models.specs import fan_in_of, specs_from_roles

__all__ = ["Llama", "NormalizedMLP", "ResNet", "fan_in_of", "specs_from_roles"]
