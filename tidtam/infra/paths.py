"""Where the project's own files are: one place, instead of every module finding the root itself."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DIRECTIVES = ROOT / "directives"
ADDITIONS = DIRECTIVES / "additions"
PREFECT_YAML = ROOT / "prefect.yaml"
ALEMBIC_INI = ROOT / "alembic.ini"
MIGRATIONS = ROOT / "migrations"
