"""The `tidtam` command run in this process, as a user would type it, on a database of its own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tidtam.infra import db
from tidtam.infra.clock import process_clock
from tidtam.infra.settings import get_settings


@pytest.fixture
def cli_database(tmp_path, monkeypatch) -> Iterator[str]:
    """A SQLite URL under ``tmp_path`` that the command's settings point at; no Prefect server
    answers (flows run untracked); settings and the process clock are read afresh."""
    url = f"sqlite:///{tmp_path / 'tidtam.db'}"
    monkeypatch.setenv("TIDTAM_DATABASE_URL", url)
    monkeypatch.setenv("TIDTAM_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    get_settings.cache_clear()
    process_clock.cache_clear()
    yield url
    get_settings.cache_clear()
    process_clock.cache_clear()
    db.engine_for(url).dispose()
    db.engine_for.cache_clear()
