"""House style is enforced, not hoped for: `ruff check` is clean on the whole repository; the packages
the README's commands need are declared."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_ruff_is_clean() -> None:
    res = subprocess.run([sys.executable, "-m", "ruff", "check", str(REPO)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_what_the_readme_commands_need_is_declared() -> None:
    """`pip install -e .` alone must let `snakemake --report` run: it needs pygments, which snakemake does
    not declare and which CI got only through the test extra's pytest."""
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    names = {re.split(r"[<>=!~ ;\[]", d, maxsplit=1)[0].lower() for d in project["dependencies"]}
    assert {"pygments", "snakemake", "torch", "pandas", "seaborn", "jsonschema", "pyyaml"} <= names


def test_every_cli_flag_has_help_text() -> None:
    import argparse

    from transferbench.__main__ import build_parser

    parser = build_parser()
    missing = [a.option_strings or a.dest for a in parser._actions
               if a.help is None and not isinstance(a, argparse._HelpAction | argparse._SubParsersAction)]
    for group in parser._subparsers._group_actions:
        for name, sub in group.choices.items():
            missing += [f"{name} {a.option_strings or a.dest}" for a in sub._actions
                        if a.help is None and not isinstance(a, argparse._HelpAction)]
    assert not missing, missing
