"""The package's layering, read off the source with ``ast`` (nothing is imported): no import cycles, the
training path (train, line, search) free of the analysis, and no module reading files outside the package
through ``__file__`` (docs/design.md §8).

Every ``import`` counts, at module level or inside a function: a function-level import hides a cycle from
the interpreter, not from the design. Imports under ``if TYPE_CHECKING:`` are left out (never run).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "transferbench"
ROOT = PKG.name

#: Cycles that stay for now, each for its reason; any other cycle (or one of these growing) fails.
KNOWN_CYCLES: dict[frozenset[str], str] = {}
#: What the trainer must never import: the analysis and the reports (pandas, bootstrap tables, boards).
ANALYSIS = {"metrics", "aggregate", "headline", "leaderboard", "board_render", "boards", "plots", "plots_exponents",
            "plots_transfer", "citation", "findings", "claims", "regime", "ties", "exponents", "wd_exponent",
            "crossfit", "invariance", "mcs", "validate", "cli_analysis", "board_html", "board_provenance",
            "cli_bundles"}
TRAINING = ["train", "line", "search", "line2d", "search2d", "fit2d"]
#: Third-party analysis libraries, likewise never on the training path (catches a new analysis module too).
ANALYSIS_LIBS = {"pandas", "matplotlib", "seaborn", "scipy"}
#: Modules that read a file outside the package through a path built from ``__file__``.
OUTSIDE_READS: dict[str, str] = {}


def _modules() -> dict[str, Path]:
    """Module name (relative to the package: ``metrics``, ``recipes.registry``, ``recipes``; ``""`` for the
    package itself) -> its file."""
    out = {}
    for path in sorted(PKG.rglob("*.py")):
        parts = path.relative_to(PKG).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


MODULES = _modules()


def _runtime_nodes(tree: ast.AST) -> Iterable[ast.AST]:
    """Every node but those under ``if TYPE_CHECKING:``."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return (n for n in ast.walk(tree) if id(n) not in skip)


def _resolve(name: str, path: Path, node: ast.ImportFrom) -> str | None:
    """The absolute dotted module of a ``from ... import`` (relative forms included)."""
    if not node.level:
        return node.module
    here = [ROOT, *name.split(".")] if name else [ROOT]
    package = here if path.name == "__init__.py" else here[:-1]
    base = package[:len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _local(dotted: str) -> str | None:
    """``transferbench.x.y`` -> ``x.y`` (``""`` for the package), None outside the package."""
    if dotted == ROOT:
        return ""
    return dotted[len(ROOT) + 1:] if dotted.startswith(ROOT + ".") else None


def _imports(name: str, path: Path) -> tuple[set[str], set[str]]:
    """(package modules, top-level third-party names) that module ``name`` imports anywhere in its body.
    ``from transferbench import x`` is the module ``x`` when there is one, else the package."""
    ours, theirs = set(), set()
    for node in _runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            mod = _resolve(name, path, node)
            if mod is None:
                continue
            local = _local(mod)
            if local is None:
                theirs.add(mod.split(".")[0])
                continue
            for alias in node.names:
                sub = f"{local}.{alias.name}" if local else alias.name
                ours.add(sub if sub in MODULES else local)
            continue
        else:
            continue
        for dotted in targets:
            local = _local(dotted)
            if local is None:
                theirs.add(dotted.split(".")[0])
            else:
                ours.add(local)
    return {m for m in ours if m in MODULES and m != name}, theirs


GRAPH = {name: _imports(name, path)[0] for name, path in MODULES.items()}


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components with more than one module (Tarjan), i.e. the import cycles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[frozenset[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(frozenset(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def closure(graph: dict[str, set[str]], start: Iterable[str]) -> set[str]:
    """Every module importing ``start`` imports, with the parent packages an import runs on the way."""
    seen: set[str] = set()
    todo = list(start)
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        parts = m.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        todo += graph.get(m, ())
    return seen


def test_the_graph_sees_function_level_and_relative_imports() -> None:
    """The parser itself: a function-level import and a relative one are edges."""
    assert "train" in GRAPH["line"]  # line.py imports train inside a function
    assert "recipes.checked" in GRAPH["recipes.registry"]
    assert "search" in GRAPH["line"] and "fit" in GRAPH["search"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [frozenset("abc")]


def test_no_import_cycles() -> None:
    found = cycles(GRAPH)
    new = [sorted(c) for c in found if c not in KNOWN_CYCLES]
    assert not new, f"import cycles among {new}: break them (a shared piece into its own module)"
    gone = [why for c, why in KNOWN_CYCLES.items() if c not in found]
    assert not gone, f"these known cycles are gone: remove them from KNOWN_CYCLES: {gone}"


def test_the_training_path_imports_no_analysis() -> None:
    """The trainer (train, line and the adaptive lr search) imports none of the analysis or report modules,
    so a change there cannot break or slow a training run; the fits they share live in fit.py."""
    assert set(TRAINING) <= set(MODULES) and ANALYSIS <= set(MODULES)
    path = closure(GRAPH, TRAINING)
    assert not path & ANALYSIS, f"the training path imports the analysis: {sorted(path & ANALYSIS)}"
    libs = set().union(*(_imports(m, MODULES[m])[1] for m in path))
    assert not libs & ANALYSIS_LIBS, f"the training path imports {sorted(libs & ANALYSIS_LIBS)}"


def test_fit_is_numpy_only() -> None:
    ours, theirs = _imports("fit", MODULES["fit"])
    assert not ours and theirs <= {"__future__", "numpy"}, (ours, theirs)


def _levels_up(node: ast.AST, parents: dict[int, ast.AST], start: int = 0) -> tuple[int, ast.AST]:
    """How many directories the path expression around ``node`` climbs (``.parent``, ``.parents[k]``,
    ``os.path.dirname``, ``/ ".."``), and the outermost node of that expression."""
    levels = start
    while (up := parents.get(id(node))) is not None:
        if isinstance(up, ast.Attribute) and up.attr == "parent":
            levels += 1
        elif isinstance(up, ast.Subscript) and isinstance(up.value, ast.Attribute) and up.value.attr == "parents":
            k = up.slice.value if isinstance(up.slice, ast.Constant) else 0
            levels += int(k) + 1
        elif isinstance(up, ast.Attribute) and up.attr == "parents":
            pass  # the Subscript above it counts
        elif isinstance(up, ast.Call) and node in up.args and ast.unparse(up.func).endswith("dirname"):
            levels += 1
        elif isinstance(up, ast.Call) and node in up.args and ast.unparse(up.func).endswith("join"):
            levels += sum(isinstance(a, ast.Constant) and a.value == ".." for a in up.args)
        elif isinstance(up, ast.BinOp) and isinstance(up.op, ast.Div):
            levels += ast.unparse(up.right).count("..")
        elif not isinstance(up, ast.Attribute | ast.Call):  # .resolve(), Path(...), os.path.abspath(...)
            return levels, node
        node = up
    return levels, node


def outside_reads(path: Path, allowed: int) -> list[str]:
    """The statements of the module at ``path`` whose path climbs from ``__file__`` more than ``allowed``
    directories (following a name such a path is assigned to)."""
    tree = ast.parse(path.read_text())
    parents = {id(c): p for p in ast.walk(tree) for c in ast.iter_child_nodes(p)}
    hits = []
    todo = [(n, 0) for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id == "__file__"]
    seen: set[str] = set()
    while todo:
        node, start = todo.pop()
        levels, top = _levels_up(node, parents, start)
        if levels > allowed:
            hits.append(ast.unparse(parents.get(id(top), top)))
        assign = parents.get(id(top))
        if isinstance(assign, ast.Assign | ast.AnnAssign):
            targets = assign.targets if isinstance(assign, ast.Assign) else [assign.target]
            for t in targets:
                if isinstance(t, ast.Name) and t.id not in seen:
                    seen.add(t.id)
                    todo += [(n, levels) for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id == t.id
                             and isinstance(n.ctx, ast.Load)]
    return hits


def test_outside_reads_finds_the_usual_forms(tmp_path: Path) -> None:
    src = ("import os\nfrom pathlib import Path\nA = Path(__file__).resolve().parents[1] / 'workflow'\n"
           "B = os.path.join(os.path.dirname(os.path.dirname(__file__)), 'x')\nhere = Path(__file__).parent\n"
           "C = here.parent / 'docs'\nD = here / 'data'\n")
    (tmp_path / "m.py").write_text(src)
    hits = outside_reads(tmp_path / "m.py", allowed=1)
    assert len(hits) == 3 and not any("data" in h for h in hits), hits


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_reads_outside_the_package(name: str) -> None:
    """A module reads its files from inside the package (an installed wheel has nothing else); the one
    exceptions (none today) are named in OUTSIDE_READS."""
    path = MODULES[name]
    hits = outside_reads(path, allowed=len(path.relative_to(PKG).parts))  # .parent of transferbench/x.py: the root
    if name in OUTSIDE_READS:
        assert hits, f"{name} no longer reads outside the package: drop it from OUTSIDE_READS"
    else:
        assert not hits, f"{name} reads outside the package via __file__: {hits}"
