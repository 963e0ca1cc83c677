"""SQLite's writers queue: a unit of work that will write takes the write lock first.

``tidtam.infra.db.writing`` begins its transactions with ``BEGIN IMMEDIATE`` (the web app uses
it for every request that writes). Without it a unit whose transaction a SAVEPOINT opened (a
photo upload) reads a snapshot, and when it comes to write after another connection committed,
SQLite refuses at once with "database is locked", whatever the busy timeout.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from tidtam.infra.db import engine_for, pool_limits, writing


@pytest.fixture
def path(tmp_path) -> Path:
    path = tmp_path / "writers.db"
    engine = engine_for(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (n INTEGER)")
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
    engine.dispose()
    return path


def test_a_write_unit_holds_the_lock_from_its_first_statement(path):
    engine = engine_for(f"sqlite:///{path}")
    other = sqlite3.connect(path, timeout=0.2, isolation_level=None)
    try:
        with writing(engine).connect() as unit:
            unit.begin_nested()  # as a photo upload does, before anything is written
            assert unit.execute(text("SELECT n FROM t")).scalar() == 1
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("UPDATE t SET n = n + 100")  # the other writer waits (here: 0.2 s)
            unit.exec_driver_sql("UPDATE t SET n = n + 10")  # never refused: the lock is ours
            unit.commit()
        other.execute("UPDATE t SET n = n + 100")  # its turn now
        assert other.execute("SELECT n FROM t").fetchone() == (111,)
    finally:
        other.close()
        engine.dispose()


def test_a_read_unit_takes_no_lock(path):
    engine = engine_for(f"sqlite:///{path}")
    other = sqlite3.connect(path, timeout=0.2, isolation_level=None)
    try:
        with engine.connect() as unit:
            assert unit.execute(text("SELECT n FROM t")).scalar() == 1
            other.execute("UPDATE t SET n = n + 1")  # not blocked by a reader
    finally:
        other.close()
        engine.dispose()


def test_the_pool_is_sized_as_asked(path):
    engine = engine_for(f"sqlite:///{path}", pool_size=3, max_overflow=2, pool_timeout=1.5)
    limits = pool_limits(engine)
    assert (limits.size, limits.max_overflow, limits.timeout, limits.capacity) == (3, 2, 1.5, 5)
    engine.dispose()
