"""The web app over a real demo database: built once per backend, cloned for every test.

SQLite: the demo file is copied. PostgreSQL: ``CREATE DATABASE … TEMPLATE`` the demo database
(skipped locally without a server, a failure with CI=true, like the lead's fixtures).
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from tests.conftest import NOW, PG_ADMIN_URL, make_database
from tests.web.helpers import CLOCK
from tidtam.infra import db
from tidtam.infra.clock import FixedClock
from tidtam.infra.settings import Settings
from tidtam.ops.bootstrap import initialise
from web.app import create_app


@pytest.fixture(scope="session")
def sqlite_demo(tmp_path_factory) -> Path:
    """A demo database file (Sa Kaeo, FY 2567, demo users and progress), built once."""
    path = tmp_path_factory.mktemp("web-demo") / "demo.db"
    engine = db.engine_for(f"sqlite:///{path}")
    initialise(engine, demo=True, now=NOW)
    with engine.connect() as conn:  # fold the WAL into the file before it is copied
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_demo(tmp_path_factory) -> Iterator[str]:
    """The name of a demo database on PostgreSQL, used as the template of each test's copy."""
    url, drop = make_database("postgresql", tmp_path_factory)
    engine = db.engine_for(url)
    initialise(engine, demo=True, now=NOW)
    engine.dispose()
    yield url.rsplit("/", 1)[1]
    drop()


def _sqlite_copy(template: Path, folder: Path) -> Engine:
    path = folder / f"web-{uuid.uuid4().hex[:8]}.db"
    shutil.copyfile(template, path)
    return db.engine_for(f"sqlite:///{path}")


@pytest.fixture
def engine(sqlite_demo, tmp_path) -> Iterator[Engine]:
    """A fresh copy of the SQLite demo database for one test."""
    copy = _sqlite_copy(sqlite_demo, tmp_path)
    yield copy
    copy.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_engine(request, tmp_path) -> Iterator[Engine]:
    """A fresh demo database on each backend: for the permission tests."""
    if request.param == "sqlite":
        copy = _sqlite_copy(request.getfixturevalue("sqlite_demo"), tmp_path)
        yield copy
        copy.dispose()
        return
    template = request.getfixturevalue("postgres_demo")
    name = f"tidtam_web_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    copy = create_engine(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}")
    yield copy
    copy.dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def make_app(engine: Engine, **settings) -> FastAPI:
    """The real app over this database, its clock fixed at CLOCK."""
    app = create_app(Settings(demo=True, _env_file=None, **settings), engine, clock=FixedClock(CLOCK))
    return app


@pytest.fixture
def app(engine) -> FastAPI:
    return make_app(engine)


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://testserver") as c:
        yield c


@pytest.fixture
def any_client(any_engine) -> Iterator[TestClient]:
    with TestClient(make_app(any_engine)) as c:
        yield c
