"""The architecture as checked facts: domain/ is pure, one clock, one project root.

The layer map itself is import-linter's (pyproject.toml, run by `make test`'s lint step); these
are the rules it cannot see: which calls read the clock, and who finds the project's files.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
DOMAIN = ROOT / "domain"
FRAMEWORKS = {"prefect", "sqlmodel", "sqlalchemy", "fastapi", "httpx", "starlette"}
UPPER_LAYERS = {"models", "flows", "web", "notifications", "tidtam"}
PRODUCTION = ("tidtam", "web", "flows", "notifications", "models", "domain")
THE_CLOCK = ROOT / "tidtam" / "infra" / "clock.py"
THE_PATHS = ROOT / "tidtam" / "infra" / "paths.py"
SOURCES = sorted(DOMAIN.rglob("*.py"))
ALL_SOURCES = sorted(p for folder in PRODUCTION for p in (ROOT / folder).rglob("*.py"))


def imported_roots(tree: ast.AST) -> set[str]:
    """Top-level package of every import statement, however deeply nested."""
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def clock_calls(tree: ast.AST) -> list[str]:
    """Calls that read the real clock: datetime.now(), date.today(), datetime.utcnow(),
    datetime.today(), time.time() — however datetime was imported."""
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        owner = ast.unparse(node.func.value).split(".")[-1]
        if (node.func.attr in {"now", "today", "utcnow"} and owner in {"datetime", "date"}) or \
                (node.func.attr == "time" and owner == "time"):
            found.append(f"{ast.unparse(node.func)}() on line {node.lineno}")
    return found


def root_finders(tree: ast.AST) -> list[str]:
    """``Path(__file__)…parent.parent`` or ``.parents[n]``: finding the project root by hand."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "parent" and \
                isinstance(node.value, ast.Attribute) and node.value.attr == "parent":
            found.append(f"{ast.unparse(node)} on line {node.lineno}")
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) and \
                node.value.attr == "parents":
            found.append(f"{ast.unparse(node)} on line {node.lineno}")
    return found


def parsed(path: Path) -> ast.AST:
    return ast.parse(path.read_text(encoding="utf-8"))


def test_the_guards_see_what_they_guard():
    tree = ast.parse("import httpx.x\nfrom sqlmodel import Session\nimport datetime as dt\n"
                     "def f():\n    from models.org import District\n    return date.today()\n"
                     "g = datetime.now(UTC) or dt.datetime.now() or time.time()\n"
                     "h = Path(__file__).resolve().parent.parent / 'x'\nk = P.parents[2]\n"
                     "ok = clock.now() or item.today or self.now()\n")
    assert imported_roots(tree) == {"httpx", "sqlmodel", "models", "datetime"}
    assert sorted(clock_calls(tree)) == ["date.today() on line 6", "datetime.now() on line 7",
                                         "dt.datetime.now() on line 7", "time.time() on line 7"]
    assert sorted(root_finders(tree)) == ["P.parents[2] on line 9",
                                          "Path(__file__).resolve().parent.parent on line 8"]
    assert len(SOURCES) >= 7 and len(ALL_SOURCES) >= 80


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_domain_imports_no_framework_and_no_upper_layer(path):
    assert imported_roots(parsed(path)) & (FRAMEWORKS | UPPER_LAYERS) == set()


@pytest.mark.parametrize("path", [p for p in ALL_SOURCES if p != THE_CLOCK],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_only_the_clock_reads_the_real_time(path):
    """One clock (tidtam/infra/clock.py), built once per process and passed down."""
    assert clock_calls(parsed(path)) == []


def test_the_clock_does_read_it():
    assert clock_calls(parsed(THE_CLOCK)) == ["datetime.now() on line 34"]


@pytest.mark.parametrize("path", [p for p in ALL_SOURCES if p != THE_PATHS],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_only_infra_paths_finds_the_project_root(path):
    """A package may find its own files beside it (``Path(__file__).parent``), never the root."""
    assert root_finders(parsed(path)) == []


def test_importing_domain_loads_no_framework_even_indirectly():
    code = ("import sys, domain; print(' '.join(sorted({m.split('.')[0] for m in sys.modules}"
            f" & set({sorted(FRAMEWORKS | UPPER_LAYERS)!r}))))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, check=True)
    assert result.stdout.strip() == ""
