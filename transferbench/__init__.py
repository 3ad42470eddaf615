"""transferbench: does a learning rate tuned on a narrow model still work on a wide one?

The package is layered bottom-up: ``roles`` and ``config`` (pure Python) < ``recipes`` and the workload
registry with its specs (``workloads``, pure Python) < each workload's ``model`` and ``data``, the shared
``models`` / ``data`` and ``workloads.build`` (torch) < ``train`` (the only place recipes meet models)
< analysis (``aggregate``, ``metrics``, ``plots``, ``leaderboard``: pandas only, never torch).
Importing this package, its config or its recipe registry never imports torch.
"""

__version__ = "0.2.0"
