"""House style is enforced, not hoped for: `ruff check` is clean on the whole repository, and the modules
the DAG and the analysis import never import torch."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_ruff_is_clean() -> None:
    res = subprocess.run([sys.executable, "-m", "ruff", "check", str(REPO)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_analysis_and_dag_modules_never_import_torch() -> None:
    """DESIGN §8 layering: the Snakefile (grid, config, registry) and the analysis stages read records
    and tables only, so they run without paying for (or having) torch."""
    mods = ["config", "grid", "recipes", "aggregate", "metrics", "bootstrap", "plots", "leaderboard",
            "cli_analysis"]
    code = "import sys\n" + "".join(f"import transferbench.{m}\n" for m in mods) + (
        "bad = [m for m in sys.modules if m == 'torch' or m.startswith('torch.')]\n"
        "assert not bad, bad[:3]\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 0, res.stderr
