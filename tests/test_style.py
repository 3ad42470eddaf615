"""House style is enforced, not hoped for: `ruff check` is clean on the whole repository."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_ruff_is_clean() -> None:
    res = subprocess.run([sys.executable, "-m", "ruff", "check", str(REPO)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
