"""The repository carries its own design: nothing in it points at documents outside it.

The design lives in docs/architecture.md and the source letter in docs/source-letter/; a
reference to a design file or seed folder kept elsewhere would leave a newcomer with a dead end.
"""

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
# Spelt in pieces so that this file does not match itself.
OUTSIDE = ("DESIGN" + ".md", "../" + "shared", "shared" + "/seed")
SKIPPED = {"uv.lock"}  # third-party names and hashes, not ours to word


def repository_files() -> list[str]:
    """Tracked files, and new ones not ignored yet, so a file is checked before its commit."""
    try:
        listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                                cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return sorted({name for name in listed.decode().split("\0") if name})


def text_of(name: str) -> str | None:
    """The file's text; None for binary files (a NUL byte) and files deleted but not staged."""
    path = ROOT / name
    if not path.is_file():
        return None
    data = path.read_bytes()
    return None if b"\0" in data[:8192] else data.decode("utf-8", errors="replace")


def test_the_guard_sees_what_it_guards():
    files = repository_files()
    assert "docs/architecture.md" in files and "tests/unit/test_self_contained.py" in files
    assert text_of("docs/img/board.png") is None


def test_no_file_points_outside_the_repository():
    found = []
    for name in repository_files():
        text = None if name in SKIPPED else text_of(name)
        for number, line in enumerate((text or "").splitlines(), start=1):
            found += [f"{name}:{number}: {word}" for word in OUTSIDE if word in line]
    assert found == [], "point at docs/architecture.md or docs/source-letter/ instead"


def test_the_readme_links_the_architecture():
    assert (ROOT / "docs" / "architecture.md").is_file()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert re.search(r"\]\(docs/architecture\.md[)#]", readme), "README.md must link docs/architecture.md"
