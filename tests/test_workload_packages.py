"""A workload is a package (issue 21): the registry finds built-ins and plugins through the entry-point group
``transferbench.workloads`` (a broken, duplicate or shadowing plugin is one clear message, the others keep
working; a checkout that was never pip-installed scans transferbench/workloads/), importing it and every spec
never imports torch, and no module outside a workload's folder names a workload (read with ``ast`` and
``tokenize``, nothing imported: string constants and imports count, docstrings and comments do not)."""

from __future__ import annotations

import ast
import io
import re
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest
import yaml

from transferbench import entrypoints, workloads
from transferbench.config import ConfigError, resolve_run_config

REPO = Path(__file__).resolve().parents[1]
PKG = REPO / "transferbench"
HOME = PKG / "workloads"
#: The built-in workloads: the folders of transferbench/workloads/ (what the pkgutil fallback finds too).
BUILTINS = sorted(p.parent.name for p in HOME.glob("*/__init__.py"))


def named_in_python(source: str, names: list[str]) -> list[str]:
    """The string constants (docstrings excluded) and imports of ``source`` that name one of ``names``."""
    tree = ast.parse(source)
    word = re.compile(r"\b(" + "|".join(map(re.escape, names)) + r")\b")
    docs = {id(node.body[0].value) for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            if word.search(node.value):
                hits.append(f"line {node.lineno}: {node.value[:80]!r}")
        elif isinstance(node, ast.Import | ast.ImportFrom):
            modules = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
            if any(word.search(m.replace(".", " ")) for m in modules):
                hits.append(f"line {node.lineno}: import {', '.join(filter(None, modules))}")
    return hits


def named_in_rules(source: str, names: list[str]) -> list[str]:
    """The string tokens of a Snakefile or .smk file (comments are tokens of their own) naming a workload."""
    word = re.compile(r"\b(" + "|".join(map(re.escape, names)) + r")\b")
    return [f"line {t.start[0]}: {t.string[:80]}" for t in tokenize.generate_tokens(io.StringIO(source).readline)
            if t.type == tokenize.STRING and word.search(t.string)]


def test_the_builtins_are_their_folders_and_entry_points() -> None:
    assert BUILTINS == ["llama", "mlp", "resnet"]
    assert workloads.names()[:3] == ["llama", "resnet", "mlp"]  # by priority: the longest first
    listed = yaml.safe_load("\n".join(
        line.replace(" = ", ": ", 1) for line in
        (REPO / "pyproject.toml").read_text().split('[project.entry-points."transferbench.workloads"]')[1]
        .split("\n\n")[0].strip().splitlines() if not line.startswith("#")))
    assert listed == {n: f"transferbench.workloads.{n}:SPEC" for n in BUILTINS}
    for name in BUILTINS:
        spec = workloads.get(name)
        assert spec.name == name and spec.flops_per_item is not None and spec.flops_formula
        assert {"slurm_partition", "runtime", "mem_mb"} <= set(spec.resources)
        for target in [spec.model, spec.loss, *spec.sources.values()]:
            module = target.partition(":")[0]
            assert module.startswith(f"transferbench.workloads.{name}.") or module == "transferbench.workloads.build"


def test_the_check_catches_a_workload_named_outside_its_folder() -> None:
    """What the next test looks for, on the forms it must catch and those it must let pass."""
    bad = 'def per_item(cfg):\n    if cfg.workload == "llama":\n        return 1\n'
    assert named_in_python(bad, BUILTINS) == ["line 2: 'llama'"]
    assert named_in_python("from transferbench.workloads.mlp import mlp_flops\n", BUILTINS)
    assert named_in_python("import transferbench.workloads.resnet.model\n", BUILTINS)
    assert named_in_python('x = f"{w} is not resnet"\n', BUILTINS)
    fine = '"""The llama docstring."""\n# resnet in a comment\nx = "mlpx"\ny = "llamas"\n'
    assert named_in_python(fine, BUILTINS) == []
    assert named_in_rules('rule:\n    # llama\n    priority: get("llama")\n', BUILTINS) == ['line 3: "llama"']


def test_no_module_outside_a_workload_folder_names_a_workload() -> None:
    """cost, mfu, the data kinds, the CLI, the help texts and the rules read the specs; only
    transferbench/workloads/<name>/ says its own name (pyproject.toml lists the built-ins' entry points)."""
    hits = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(HOME).parts if path.is_relative_to(HOME) else ()
        if len(rel) > 1 and rel[0] in BUILTINS:
            continue
        hits += [f"{path.relative_to(REPO)} {h}" for h in named_in_python(path.read_text(), BUILTINS)]
    for path in [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]:
        hits += [f"{path.relative_to(REPO)} {h}" for h in named_in_rules(path.read_text(), BUILTINS)]
    profile = yaml.safe_load((REPO / "workflow" / "profiles" / "slurm" / "config.yaml").read_text())
    hits += [f"slurm profile: set-resources {r}" for r in profile.get("set-resources", {})
             if r.removeprefix("train_") in BUILTINS]
    assert not hits, "a workload named outside its folder (take it from the spec):\n" + "\n".join(hits)


def test_the_registry_and_every_spec_import_no_torch() -> None:
    code = ("import sys\nimport transferbench.config, transferbench.workloads as w, transferbench.config.data_grid\n"
            "[w.get(n) for n in w.names()]\nw.data_kinds()\nprint('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "False"


GOOD = '''
from dataclasses import dataclass

from transferbench.workloads import WorkloadSpec
from transferbench.workloads.mlp import MLPSettings

SPEC = WorkloadSpec(name="twin", summary="mlp under another name", settings=MLPSettings,
                    model="transferbench.workloads.mlp.model:build",
                    sources={"generated": "transferbench.workloads.mlp.data:teacher_source"},
                    loss="transferbench.workloads.build:regression_loss", loss_unit="MSE",
                    throughput_unit="samples/s", items_per_batch=lambda c: c["batch_size"])
NAMED_WRONG = SPEC
SHADOW = WorkloadSpec(**{**SPEC.__dict__, "name": "mlp"})
NOT_A_SPEC = 42
'''


def make_dist(root: Path, dist: str, module: str, source: str, entry_points: dict[str, str]) -> None:
    """A distribution as pip would leave it: a module and a .dist-info with entry_points.txt."""
    (root / f"{module}.py").write_text(source)
    info = root / f"{dist.replace('-', '_')}-0.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.3\n")
    lines = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[transferbench.workloads]\n{lines}\n")


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    make_dist(tmp_path, "toy-workloads", "toy_workloads", GOOD, {
        "twin": "toy_workloads:SPEC", "mlp": "toy_workloads:SHADOW", "misnamed": "toy_workloads:NAMED_WRONG",
        "number": "toy_workloads:NOT_A_SPEC", "gone": "toy_workloads:DoesNotExist", "both": "toy_workloads:SPEC"})
    make_dist(tmp_path, "crashy-workloads", "crashy_workloads", "raise RuntimeError('boom at import')\n",
              {"crashy": "crashy_workloads:SPEC", "both": "crashy_workloads:SPEC"})
    monkeypatch.syspath_prepend(str(tmp_path))
    workloads.clear_cache()
    yield tmp_path
    workloads.clear_cache()


def test_plugins_are_found_and_broken_ones_named(plugins: Path) -> None:
    assert workloads.names()[:3] == ["llama", "resnet", "mlp"]
    assert {"twin", "misnamed", "number", "gone", "crashy", "both"} <= set(workloads.names())
    assert workloads.get("twin").summary == "mlp under another name"
    assert workloads.entry("twin").distribution == "toy-workloads"
    assert workloads.get("mlp").summary.startswith("[Fan25]")  # a plugin may not shadow a built-in
    cfg = resolve_run_config({"workload": "twin", "recipe": "mup", "width": 32, "base_width": 16, "log2_lr": -6})
    assert cfg.settings.in_dim == 16
    problems = "\n".join(workloads.problems())
    for expected in ["workload 'mlp' from distribution toy-workloads 0.3 (toy_workloads:SHADOW) duplicates a built-in",
                     "workload 'crashy' (crashy_workloads:SPEC) from distribution crashy-workloads 0.3 failed to "
                     "load: RuntimeError: boom at import",
                     "'misnamed'", "'number'", "'gone'", "workload 'both' is registered by more than one "
                     "distribution"]:
        assert expected in problems, (expected, problems)
    with pytest.raises(ConfigError, match="crashy.*crashy-workloads 0.3 failed to load"):
        resolve_run_config({"workload": "crashy", "recipe": "mup", "width": 8, "base_width": 8, "log2_lr": -6})
    with pytest.raises(workloads.UnknownWorkload, match="not a transferbench.workloads.WorkloadSpec"):
        workloads.get("number")
    assert [s.name for s in workloads.specs()][:4] == ["llama", "resnet", "mlp", "twin"]


def test_a_checkout_never_installed_scans_its_folders(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(entrypoints.metadata, "entry_points", lambda group: [])
    workloads.clear_cache()
    try:
        assert workloads.names() == ["llama", "resnet", "mlp"]
        assert workloads.entry("llama").target == "transferbench.workloads.llama:SPEC"
        assert workloads.problems() == []
    finally:
        workloads.clear_cache()


def test_the_data_kinds_come_from_the_specs() -> None:
    kinds = workloads.data_kinds()
    assert set(kinds) == {"text", "cifar10"}
    readers = {s.name: {src: k.name for src, k in s.reads.items()} for s in workloads.specs()}
    assert readers["llama"] == {"tokens": "text"} and readers["resnet"] == {"cifar10": "cifar10"}
    from transferbench.config.data_grid import check_data

    with pytest.raises(ConfigError, match=r"data.x.kind: unknown value 'parquet'; known kinds are text, cifar10"):
        check_data({"data": {"x": {"kind": "parquet"}}, "workloads": {}})
    with pytest.raises(ConfigError, match=r"data.x.tokenizer: 'pretrained' needs pretrained and eos_token"):
        check_data({"data": {"x": {"kind": "text", "files": ["a"], "tokenizer": "pretrained"}}, "workloads": {}})
