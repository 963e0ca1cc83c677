"""domain/ is the bottom layer: pure rules, no frameworks, no I/O layers, no clock."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

DOMAIN = Path(__file__).parents[2] / "domain"
FRAMEWORKS = {"prefect", "sqlmodel", "sqlalchemy", "fastapi", "httpx", "starlette"}
UPPER_LAYERS = {"models", "flows", "web", "notifications", "tidtam"}
CLOCK_CALLS = {"now", "today", "utcnow"}
SOURCES = sorted(DOMAIN.rglob("*.py"))


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
    """Calls such as datetime.now() or date.today(): time must come in as a parameter."""
    return [f"{ast.unparse(node.func)}() on line {node.lineno}" for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in CLOCK_CALLS]


def test_the_guard_sees_what_it_guards():
    tree = ast.parse("import httpx.x\nfrom sqlmodel import Session\n"
                     "def f():\n    from models.org import District\n    return date.today()\n")
    assert imported_roots(tree) == {"httpx", "sqlmodel", "models"}
    assert clock_calls(tree) == ["date.today() on line 5"]
    assert len(SOURCES) >= 7


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_domain_imports_no_framework_and_no_upper_layer(path):
    roots = imported_roots(ast.parse(path.read_text(encoding="utf-8")))
    assert roots & (FRAMEWORKS | UPPER_LAYERS) == set()


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_domain_never_reads_the_clock(path):
    assert clock_calls(ast.parse(path.read_text(encoding="utf-8"))) == []


def test_importing_domain_loads_no_framework_even_indirectly():
    code = ("import sys, domain; print(' '.join(sorted({m.split('.')[0] for m in sys.modules}"
            f" & set({sorted(FRAMEWORKS | UPPER_LAYERS)!r}))))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=DOMAIN.parent, check=True)
    assert result.stdout.strip() == ""
