"""Engines, sessions and migrations: the one place that knows how to reach the database."""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, InvalidatePoolError, OperationalError
from sqlalchemy.pool import NullPool, QueuePool
from sqlmodel import Session, create_engine

import models  # noqa: F401  (registers every table on SQLModel.metadata)
from tidtam.infra.paths import ALEMBIC_INI, MIGRATIONS

# The settings' defaults (TIDTAM_DB_POOL_SIZE, _MAX_OVERFLOW, _POOL_TIMEOUT), for engines made
# without settings (tests, benchmarks, migrations).
POOL_SIZE, MAX_OVERFLOW, POOL_TIMEOUT = 10, 10, 10.0
SQLITE_BUSY_TIMEOUT_MS = 30_000
PG_CONNECT_TIMEOUT = 5  # seconds


def engine_for(url: str, *, pool_size: int = POOL_SIZE, max_overflow: int = MAX_OVERFLOW,
               pool_timeout: float = POOL_TIMEOUT) -> Engine:
    """One engine per URL and pool (``engine_for(url)`` and the same with the default pool
    given by name are the same engine); see ``_engine``."""
    return _engine(url, pool_size, max_overflow, float(pool_timeout))


@lru_cache
def _engine(url: str, pool_size: int, max_overflow: int, pool_timeout: float) -> Engine:
    """One engine per URL and pool; SQLite gets WAL, foreign keys and a busy timeout.

    The pool holds ``pool_size`` connections and opens up to ``max_overflow`` more under load; a
    checkout that finds them all taken waits ``pool_timeout`` seconds, then raises
    ``sqlalchemy.exc.TimeoutError`` (the web app answers 503; it also admits no more requests
    at once than the pool has connections: ``web.admission``).

    SQLite's writers queue on its one write lock, each waiting up to the busy timeout: a unit
    of work on ``writing(engine)`` takes the lock with its first statement (``BEGIN
    IMMEDIATE``); on the plain engine pysqlite begins the transaction right before the first
    INSERT/UPDATE/DELETE (the reads before it hold no snapshot, so that write waits too).
    """
    pool = {"poolclass": QueuePool, "pool_size": pool_size, "max_overflow": max_overflow,
            "pool_timeout": pool_timeout}
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        else:
            pool = {}  # one in-memory database per connection: SQLAlchemy's own pool for it
        engine = create_engine(url, connect_args={"check_same_thread": False,
                                                  "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
                               **pool)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    # A server that drops packets instead of refusing them must not hold a request for the
    # system's TCP timeout (minutes): connecting gives up after this, and the app answers 503.
    if not url.startswith("postgresql"):
        return create_engine(url, pool_pre_ping=True, **pool)
    engine = create_engine(url, connect_args={"connect_timeout": PG_CONNECT_TIMEOUT}, **pool)
    event.listen(engine.pool, "checkout", _pre_ping(engine.dialect))
    return engine


# A connection is pinged when it leaves the pool (SQLAlchemy's ``pool_pre_ping``, as a checkout
# listener), but within ``unpinged()``: the hot path of a click skips that round trip and
# handles a dead connection itself (``StaleConnection``).
_UNPINGED: ContextVar[bool] = ContextVar("tidtam_unpinged", default=False)


def _pre_ping(dialect):
    """``pool_pre_ping``'s check: a connection the server dropped while it sat in the pool is
    replaced (and every older one with it) before anyone uses it; the pool tries again."""
    def ping(dbapi_connection, _record, _proxy) -> None:
        if _UNPINGED.get():
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            if dialect.is_disconnect(error, dbapi_connection, None):
                raise InvalidatePoolError() from error
            raise
    return ping


@contextmanager
def unpinged() -> Iterator[None]:
    """Connections checked out in the block are not pinged first (one round trip less). The
    block's first statement must be one that may run again: if it meets a connection that died
    in the pool, it raises ``StaleConnection`` (``stale_connection``), and the caller runs it again."""
    token = _UNPINGED.set(True)
    try:
        yield
    finally:
        _UNPINGED.reset(token)


class StaleConnection(Exception):
    """A statement that may run again met a connection the server had dropped (it was not
    pinged: ``unpinged``); the pool has let go of it and of every connection older."""


def stale_connection(error: BaseException) -> bool:
    """The database error was a dropped connection (SQLAlchemy has invalidated it)."""
    return isinstance(error, DBAPIError) and error.connection_invalidated


engine_for.cache_clear = _engine.cache_clear  # forget every engine (tests drop their databases)


def autocommitting(engine: Engine) -> Engine:
    """The engine on an autocommit connection, for a unit of work whose only write is one
    statement after its reads (marking a step done on PostgreSQL, bench P2): each statement
    commits by itself, so there is no BEGIN and no COMMIT round trip; the same pool. Other
    databases (SQLite: its write lanes and batches): the engine itself."""
    if engine.dialect.name != "postgresql":
        return engine
    found = _AUTOCOMMITTING.get(engine)
    if found is None:
        found = _AUTOCOMMITTING[engine] = engine.execution_options(isolation_level="AUTOCOMMIT")
    return found


_AUTOCOMMITTING: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def writing(engine: Engine) -> Engine:
    """The engine for a unit of work that will write: on SQLite its transaction starts with
    ``BEGIN IMMEDIATE`` (it takes the write lock first, waiting up to the busy timeout), so it
    can never fail on upgrading a read snapshot to a write; elsewhere the same engine."""
    if engine.dialect.name != "sqlite":
        return engine
    return engine.execution_options(sqlite_begin="immediate")


def _sqlite_begin(connection) -> None:
    """SQLAlchemy's pysqlite recipe (emit BEGIN from the ``begin`` event), for write units only.

    Left to itself pysqlite begins a transaction only before an INSERT/UPDATE/DELETE, and a
    SAVEPOINT issued before that (a photo upload's) opens a deferred transaction that can fail
    at once with "database is locked" when it comes to write, and that its RELEASE commits.
    Every other unit (reads, migrations, which turn foreign keys off outside a transaction)
    keeps pysqlite's own behaviour: the recipe's ``isolation_level=None`` is not set.
    """
    if connection.get_execution_options().get("sqlite_begin") == "immediate":
        connection.exec_driver_sql("BEGIN IMMEDIATE")


@dataclass(frozen=True)
class PoolLimits:
    """How many connections an engine's pool may hand out at once, and how long a checkout waits."""

    size: int
    max_overflow: int
    timeout: float

    @property
    def capacity(self) -> int:
        return self.size + self.max_overflow


def pool_limits(engine: Engine) -> PoolLimits | None:
    """The limits of the engine's pool; None when it has none (no pool, or an unbounded one)."""
    pool = engine.pool
    if not isinstance(pool, QueuePool) or pool._max_overflow < 0:  # -1: no limit
        return None
    return PoolLimits(pool.size(), pool._max_overflow, pool.timeout())


def is_sqlite_busy(exc: BaseException) -> bool:
    """SQLite's write lock stayed taken past the busy timeout ("database is locked")."""
    import sqlite3

    return (isinstance(exc, OperationalError) and isinstance(exc.orig, sqlite3.OperationalError)
            and str(exc.orig).startswith(("database is locked", "database table is locked")))


def get_engine() -> Engine:
    from tidtam.infra.settings import get_settings

    return engine_of(get_settings())


def engine_of(settings) -> Engine:
    """The engine of the settings' database, its pool sized by them (TIDTAM_DB_POOL_*)."""
    return engine_for(settings.db_url, pool_size=settings.db_pool_size,
                      max_overflow=settings.db_max_overflow, pool_timeout=settings.db_pool_timeout)


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
