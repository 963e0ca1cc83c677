"""Shared fixtures: a migrated database on SQLite and on PostgreSQL, each test rolled back.

With CI=true a missing PostgreSQL or Chromium is a failure, never a skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from tidtam.infra import db

PG_ADMIN_URL = os.environ.get("TEST_PG_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
NOW = datetime(2024, 7, 16, 3, 0, tzinfo=UTC)
# Opt-in: the browser tests also write the README's screenshots into docs/ (tests/e2e/conftest.py).
# Taken out of the environment at once: the app's Settings refuse unknown TIDTAM_* variables.
# Read it through the fixture ``update_screenshots``: a second import of this file (as
# tests.conftest) no longer finds the variable.
_UPDATE_SCREENSHOTS = os.environ.pop("TIDTAM_UPDATE_SCREENSHOTS", "") == "1"


@pytest.fixture(scope="session")
def update_screenshots() -> bool:
    """TIDTAM_UPDATE_SCREENSHOTS=1 was set: write the README's screenshots into docs/ too."""
    return _UPDATE_SCREENSHOTS


def unavailable(reason: str) -> None:
    """Skip locally, fail in CI: CI must exercise every backend."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: a missing service is a failure)")
    pytest.skip(reason)


def _pg_reachable() -> bool:
    try:
        with create_engine(PG_ADMIN_URL).connect() as conn:
            conn.execute(text("select 1"))
        return True
    except Exception:
        return False


def make_database(kind: str, tmp_path_factory) -> tuple[str, callable]:
    """A new empty database of this kind; returns its URL and a function that drops it."""
    if kind == "sqlite":
        path = tmp_path_factory.mktemp("db") / "tidtam.db"
        return f"sqlite:///{path}", lambda: None
    if not _pg_reachable():
        unavailable(f"PostgreSQL not reachable at {PG_ADMIN_URL}")
    name = f"tidtam_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        db.engine_for.cache_clear()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}", drop


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def migrated_engine(request, tmp_path_factory) -> Iterator[Engine]:
    """One migrated database per backend for the whole session."""
    url, drop = make_database(request.param, tmp_path_factory)
    db.migrate(url)
    engine = db.engine_for(url)
    yield engine
    engine.dispose()
    drop()


@pytest.fixture
def session(migrated_engine: Engine) -> Iterator[Session]:
    """A session inside a transaction that is rolled back after the test."""
    connection = migrated_engine.connect()
    outer = connection.begin()
    with Session(bind=connection, join_transaction_mode="create_savepoint",
                 expire_on_commit=False) as s:
        yield s
    outer.rollback()
    connection.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_engine(request, tmp_path_factory) -> Iterator[Engine]:
    """A new, empty (unmigrated) database per test, for code that commits on its own."""
    url, drop = make_database(request.param, tmp_path_factory)
    engine = db.engine_for(url)
    yield engine
    engine.dispose()
    db.engine_for.cache_clear()
    drop()


@pytest.fixture
def launched(session):
    """Sa Kaeo's districts, the FY 2567 directive launched, and the demo accounts."""
    from tidtam.app.orgtree import load_provinces
    from tidtam.app.tracking import launch_directive
    from tidtam.demo.province import create_demo_accounts
    from tidtam.ops.bootstrap import DEFAULT_DIRECTIVE, load_directive

    load_provinces(session, ["27"])
    result = launch_directive(session, load_directive(DEFAULT_DIRECTIVE), now=NOW)
    create_demo_accounts(session, NOW)
    return result.directive


def pytest_sessionfinish(session, exitstatus) -> None:
    """Stop Prefect's log and event workers of this process before it exits.

    Flows run in this process send their logs and events to whatever API the test pointed
    Prefect at: none at all (``http://127.0.0.1:9/api``: flows run untracked) or a module's
    server that has been stopped since. Prefect drains those workers at interpreter exit, item by
    item, each with its client's retries (about a minute an item): the suite's summary came in
    18 minutes and the process ended some 35 minutes later. Nothing a test checks is in them, so
    what is still queued is dropped and the workers are stopped, waiting at most 10 s.
    """
    import queue

    try:
        from prefect._internal.concurrency.services import _QueueServiceBase
    except ImportError:  # Prefect's internals moved: exit as before
        return
    services = list(getattr(_QueueServiceBase, "_instances", {}).values())
    for service in services:
        while True:
            try:
                service._queue.get_nowait()
            except queue.Empty:
                break
            service._queue.task_done()
    for kind in {type(service) for service in services}:
        kind.drain_all(timeout=10, at_exit=False)
