"""The README tells the truth: its results numbers come from generated files, its links resolve.

The README's results text is the part between the ``<!-- results -->`` and ``<!-- /results -->`` markers. Every
decimal number in it must occur in a committed ``results/**/*.md`` file (the generated findings.md and
leaderboard.md of each profile, findings.py), so a number is copied from a generated file, never typed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
#: Decimal numbers as the findings write them: 2.0324, -0.50, +18.88%, ±0.72 (signs are part of the text).
NUMBER = re.compile(r"(?<![\w.])[+\-−]?\d+\.\d+%?")


def results_text(text: str) -> str:
    parts = re.findall(r"<!-- results -->(.*?)<!-- /results -->", text, flags=re.S)
    return "\n".join(parts)


def generated_numbers() -> set[str]:
    found: set[str] = set()
    for md in (ROOT / "results").rglob("*.md"):
        found.update(NUMBER.findall(md.read_text()))
    return found


def test_readme_has_a_results_section() -> None:
    assert results_text(README.read_text()).strip(), "README: no <!-- results --> ... <!-- /results --> section"


def test_every_number_in_the_readme_results_comes_from_a_generated_file() -> None:
    numbers = NUMBER.findall(results_text(README.read_text()))
    assert numbers, "the results section quotes no number: nothing is checked"
    known = generated_numbers()
    missing = sorted({n for n in numbers if n not in known})
    assert not missing, f"README results numbers found in no results/**/*.md file: {missing}"


def test_a_typed_number_is_caught(tmp_path: Path) -> None:
    """The check itself: a number that no generated file holds is reported."""
    text = "<!-- results -->the best loss is 9.87654 nats<!-- /results -->"
    numbers = NUMBER.findall(results_text(text))
    assert numbers == ["9.87654"] and "9.87654" not in generated_numbers()


DOCS = ["README.md", *(str(p.relative_to(ROOT)) for p in sorted((ROOT / "docs").glob("*.md")))]


@pytest.mark.parametrize("doc", DOCS)
def test_relative_links_resolve(doc: str) -> None:
    path = ROOT / doc
    broken = []
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text()):
        if re.match(r"[a-z]+:", target):
            continue  # a URL
        if not (path.parent / target).exists():
            broken.append(target)
    assert not broken, f"{doc}: links to missing files {broken}"
