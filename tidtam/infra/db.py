"""Engines, sessions and migrations: the one place that knows how to reach the database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool
from sqlmodel import Session, create_engine

import models  # noqa: F401  (registers every table on SQLModel.metadata)
from tidtam.infra.paths import ALEMBIC_INI, MIGRATIONS


@lru_cache
def engine_for(url: str) -> Engine:
    """One engine per URL; SQLite gets WAL, foreign keys and a busy timeout."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def get_engine() -> Engine:
    from tidtam.infra.settings import get_settings

    return engine_for(get_settings().db_url)


@contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(engine or get_engine(), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except Exception:
            session.rollback()
            raise


def migration_engine(url: str) -> Engine:
    """The engine migrations run on (migrations/env.py): its own, never the app's pooled one.

    SQLite's connections are made for Alembic's batch mode, which rebuilds a table (copy, DROP the
    old one, rename the copy) as SQLite's ALTER TABLE procedure describes:

    - foreign keys off: with them on, dropping a table other rows point at fails (``FOREIGN KEY
      constraint failed [SQL: DROP TABLE user]``). The pragma is a no-op inside a transaction, so
      it is set when the connection opens, before any BEGIN, and read back. env.py checks every
      row (``PRAGMA foreign_key_check``) before committing instead.
    - transactional DDL: the sqlite3 module in its legacy transaction control opens a
      transaction only before INSERT/UPDATE/DELETE, so each CREATE/DROP/ALTER before the first
      of them was committed at once, and a migration that failed half-way left its new tables and
      ``_alembic_tmp_*`` copies behind. As SQLAlchemy documents ("Serializable isolation /
      Savepoints / Transactional DDL"), the module's own BEGIN is switched off and SQLAlchemy
      emits it (``BEGIN IMMEDIATE``: the write lock from the start, so a running app's writers
      wait for the migration instead of failing it half-way). A failed migration is rolled back
      whole, its DDL with it.

    No pool: the connection is closed after the migration, so none with foreign keys off is ever
    handed to the application, whatever happened.
    """
    if not url.startswith("sqlite"):
        return create_engine(url, poolclass=NullPool)
    path = url.split("///", 1)[-1]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, poolclass=NullPool, connect_args={"timeout": 30})
    event.listen(engine, "connect", _sqlite_migration_connection)
    event.listen(engine, "begin", lambda connection: connection.exec_driver_sql("BEGIN IMMEDIATE"))
    return engine


def _sqlite_migration_connection(dbapi_connection, _record) -> None:
    dbapi_connection.isolation_level = None  # the sqlite3 module emits no BEGIN of its own
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=OFF")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    enforced = cursor.execute("PRAGMA foreign_keys").fetchone()[0]
    cursor.close()
    if enforced:
        raise RuntimeError("SQLite kept foreign keys on for the migration (PRAGMA foreign_keys "
                           "was set inside a transaction?): batch migrations would fail")


def alembic_config(url: str):
    from alembic.config import Config  # imported here: alembic costs ~1 s at start-up

    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(url: str) -> None:
    """Bring the schema to the newest migration (idempotent)."""
    from alembic import command

    command.upgrade(alembic_config(url), "head")
