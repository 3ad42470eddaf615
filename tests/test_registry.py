"""Plugin discovery through a real entry point of a tiny distribution the test writes to disk;
broken, exiting, printing and duplicate plugins give one clear error (or none) and leave the other
recipes usable; listing recipes never imports torch. More hostile plugins: test_hostile_plugins.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from transferbench.recipes import RecipeError, describe, get_recipe, names, problems, registry

PLUGIN = '''
from transferbench.recipes import Multipliers, Recipe


class HalfLR(Recipe):
    """Every lr halved at every width (a toy)."""

    name = "half-lr"
    summary = "standard, with every lr halved"
    citation = "@misc{toy, note = {arXiv:2401.00001}}"
    base_model = "every lr x0.5"  # not the built-ins' model at m = 1: declared, or it is refused

    def multipliers(self, role, width_mult):
        return Multipliers(init_std=1.0, lr=0.5, wd=0.0 if role == "vector" else 1.0)


class Shadow(HalfLR):
    name = "mup"
'''


def make_dist(root: Path, dist: str, module: str, source: str, entry_points: dict[str, str]) -> None:
    """A distribution as pip would leave it: a module and a .dist-info with entry_points.txt."""
    (root / f"{module}.py").write_text(source)
    info = root / f"{dist.replace('-', '_')}-0.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.3\n")
    lines = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[transferbench.recipes]\n{lines}\n")


@pytest.fixture
def plugin_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    make_dist(tmp_path, "toy-recipes", "toy_recipes", PLUGIN, {
        "half-lr": "toy_recipes:HalfLR",
        "broken": "toy_recipes:DoesNotExist",
        "mup": "toy_recipes:Shadow",
    })
    make_dist(tmp_path, "crashy-recipes", "crashy_recipes", "raise RuntimeError('boom at import')\n",
              {"crashy": "crashy_recipes:Anything"})
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.clear_cache()
    yield tmp_path
    registry.clear_cache()


def test_plugin_is_discovered_and_usable(plugin_path: Path) -> None:
    assert "half-lr" in names()
    info = describe("half-lr")
    assert info["distribution"] == "toy-recipes" and info["version"] == "0.3"
    assert info["arxiv"] == "2401.00001"
    assert get_recipe("half-lr").multipliers("hidden", 4.0).lr == 0.5


def test_broken_plugins_are_reported_and_do_not_take_down_others(plugin_path: Path) -> None:
    with pytest.raises(RecipeError, match=r"'broken'.*toy-recipes.*failed to load"):
        get_recipe("broken")
    with pytest.raises(RecipeError, match=r"'crashy'.*crashy-recipes.*boom at import"):
        get_recipe("crashy")
    msgs = problems()
    assert any("'broken'" in m and "toy-recipes" in m for m in msgs)
    assert any("'crashy'" in m and "crashy-recipes" in m for m in msgs)
    # a plugin that shadows a built-in is reported and ignored: the built-in stays
    assert any("'mup'" in m and "duplicates a built-in" in m and "toy-recipes" in m for m in msgs)
    assert describe("mup")["distribution"] == "transferbench"
    for name in ("standard", "mup", "mup-independent-wd", "warmup-replacement", "sqrt-d", "half-lr"):
        get_recipe(name)


def test_a_plugin_that_exits_or_prints_at_import_harms_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture) -> None:
    """sys.exit in a plugin's import is a load failure, not the end of the program; what a plugin
    prints at import goes to stderr, so stdout (`recipes --json`) stays ours."""
    make_dist(tmp_path, "exit-recipes", "exit_recipes", "import sys\nsys.exit(3)\n", {"exits": "exit_recipes:X"})
    make_dist(tmp_path, "loud-recipes", "loud_recipes", "print('loud banner')\n" + PLUGIN.replace("half-lr", "loud"),
              {"loud": "loud_recipes:HalfLR"})
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.clear_cache()
    try:
        with pytest.raises(RecipeError, match=r"'exits'.*exit-recipes 0.3 failed to load: SystemExit: 3"):
            get_recipe("exits")
        assert get_recipe("loud").multipliers("hidden", 2.0).lr == 0.5
        out, err = capsys.readouterr()
        assert "loud banner" not in out and "loud banner" in err
    finally:
        registry.clear_cache()


def test_two_plugins_with_one_name_is_an_error_naming_both(plugin_path: Path) -> None:
    other = plugin_path / "second"
    other.mkdir()
    make_dist(other, "other-recipes", "other_recipes", PLUGIN.replace("toy", "other"),
              {"half-lr": "other_recipes:HalfLR"})
    sys.path.insert(0, str(other))
    try:
        registry.clear_cache()
        with pytest.raises(RecipeError, match=r"'half-lr'.*more than one distribution.*(toy|other)-recipes"):
            get_recipe("half-lr")
        get_recipe("standard")
    finally:
        sys.path.remove(str(other))


def test_unknown_recipe_lists_known_ones() -> None:
    with pytest.raises(RecipeError, match=r"unknown name 'nope'.*standard.*sqrt-d"):
        get_recipe("nope")


def _run(code_or_args: list[str], extra_path: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if extra_path is not None:
        env["PYTHONPATH"] = f"{extra_path}{os.pathsep}{env.get('PYTHONPATH', '')}"
    return subprocess.run([sys.executable, *code_or_args], capture_output=True, text=True, env=env, timeout=120)


def test_cli_lists_plugin_and_reports_broken_one(plugin_path: Path) -> None:
    res = _run(["-m", "transferbench", "recipes", "--json"], plugin_path)
    assert res.returncode == 0, res.stderr
    listed = {r["name"]: r for r in json.loads(res.stdout)["recipes"]}
    assert listed["half-lr"]["distribution"] == "toy-recipes"
    assert "broken" not in listed and "standard" in listed
    assert "'broken'" in res.stderr and "toy-recipes" in res.stderr


def test_listing_recipes_does_not_import_torch() -> None:
    code = textwrap.dedent("""
        import sys
        import transferbench, transferbench.config
        from transferbench.recipes import names, describe, get_recipe
        builtins = ["standard", "mup", "mup-independent-wd", "warmup-replacement", "sqrt-d"]
        for n in builtins:
            describe(n); get_recipe(n).resolve(4.0)
        assert names()[:5] == builtins, names()  # installed plugins (the README's example) may follow
        assert 'torch' not in sys.modules, 'torch was imported'
        print('ok')
    """)
    res = _run(["-c", code])
    assert res.returncode == 0 and res.stdout.startswith("ok"), res.stderr
