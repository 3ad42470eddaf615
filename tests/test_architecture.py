"""docs/architecture.md stays true: its "## Modules" section names every module of the package and no module
that is gone.

A module is named by its path under ``transferbench/`` (``config/grid.py``, ``train.py``); a subpackage's
``__init__.py`` counts as the subpackage (``recipes/``), and a built-in workload's folder
(``workloads/llama/``) stands for the files in it.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PKG = REPO / "transferbench"
DOC = REPO / "docs" / "architecture.md"


def _section(text: str) -> str:
    """The page's "## Modules" section (paths there are relative to transferbench/)."""
    return text.split("## Modules", 1)[1].split("\n## ", 1)[0]


def _named(text: str) -> set[str]:
    """Every ``path.py`` or ``folder/`` the text names in backticks."""
    out = set()
    for span in re.findall(r"`([^`]+)`", text):
        out.update(t.strip(",;") for t in span.split() if re.fullmatch(r"[\w/]+(\.py|/)", t.strip(",;")))
    return out


def _modules() -> set[str]:
    """What the page must name: each module file, with a workload's folder and a subpackage's __init__ as
    the folder."""
    out = set()
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG).as_posix()
        parts = rel.split("/")
        if parts[0] == "workloads" and len(parts) > 2:
            out.add("/".join(parts[:2]) + "/")
        elif parts[-1] == "__init__.py":
            out.add("/".join(parts[:-1]) + "/" if len(parts) > 1 else "__init__.py")
        else:
            out.add(rel)
    return out


def _exists(name: str) -> bool:
    return (PKG / name).is_dir() if name.endswith("/") else (PKG / name).is_file()


def test_architecture_names_every_module() -> None:
    named = _named(_section(DOC.read_text()))
    missing = sorted(m for m in _modules() if m not in named and m != "__init__.py")
    assert not missing, f"docs/architecture.md does not name these modules: {missing}"


def test_architecture_names_no_missing_module() -> None:
    gone = sorted(n for n in _named(_section(DOC.read_text())) if not _exists(n))
    assert not gone, f"docs/architecture.md names modules that do not exist: {gone}"


def test_the_check_itself() -> None:
    named = _named("`config/grid.py`, `recipes/` and `train.py`; not `a b`")
    assert named == {"config/grid.py", "recipes/", "train.py"}
    assert "config/grid.py" in _modules() and "recipes/" in _modules()
