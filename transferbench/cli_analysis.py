"""CLI verbs of the analysis half (records -> tables -> metrics -> plots and leaderboard).

They read JSON and CSV only and never import torch.
"""

from __future__ import annotations

import argparse


def add_analysis_commands(sub: argparse._SubParsersAction) -> None:
    """Register aggregate, metrics, plots, leaderboard and grid on the CLI."""
