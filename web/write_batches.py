"""Group commit on SQLite: the units of work of concurrent requests in one transaction.

SQLite has one writer, and each commit waits for the disk (WAL, ``synchronous=FULL``: an fsync,
2–5 ms on the benchmark's machine, bench/README.md P2); a request's own statements take a
fraction of that. One request at a time in the writer lane (``web.admission``), the commits
were the ceiling (about 100 marks a second). Here the requests waiting for the lane are taken
together: one hop to the thread pool, one ``BEGIN IMMEDIATE``, each request's unit inside its
own SAVEPOINT, one COMMIT, then every request gets its own outcome.

Nothing is weaker than one transaction per request:

- each unit is atomic: its error (a 409, a refused check) rolls back its SAVEPOINT only, and its
  request gets that error; the others go on;
- the units run one after another on one connection in order of arrival, so a later one sees
  what an earlier one wrote (of fifty marks of one item with one version, one wins, as ever);
- no request is answered before the COMMIT that holds its writes: if the COMMIT (or the BEGIN:
  SQLite "busy" past its timeout, 503) fails, every request of the batch gets that error.

PostgreSQL has row locks and commits concurrent transactions together by itself: its units
run one per request (``web.deps.write_unit``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import OperationalError
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from tidtam.infra.db import SQLITE_BUSY_TIMEOUT_MS, is_sqlite_busy

MAX_BATCH = 64  # units in one transaction at most


class WriteBatches:
    """The units waiting for SQLite's writer lane, run together by one task at a time."""

    def __init__(self, engine, admission) -> None:
        self.engine, self.admission = engine, admission
        self.waiting: list[tuple[Callable[[Session], Any], asyncio.Future]] = []
        self.running: asyncio.Task | None = None

    async def run(self, work: Callable[[Session], Any]) -> Any:
        """``work(session)`` committed with the batch it joins; its result or its error."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if self.running is not None and self.running.get_loop() is not loop:
            # Left over from an event loop that stopped mid-batch (a test client closed): its
            # requests are gone with it.
            self.running, self.waiting = None, [w for w in self.waiting if w[1].get_loop() is loop]
        self.waiting.append((work, future))
        if self.running is None:
            self.running = asyncio.ensure_future(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self.waiting:
                batch, self.waiting = self.waiting[:MAX_BATCH], self.waiting[MAX_BATCH:]
                works = [work for work, _ in batch]
                try:
                    async with self.admission.slot(write=True):
                        outcomes = await _run_batch_here(self.engine, works)
                        if outcomes is None:  # another process holds the write lock: wait apart
                            outcomes = await run_in_threadpool(_run_batch, self.engine, works)
                except Exception as error:  # no slot in time (503)
                    outcomes = [(False, error)] * len(batch)
                except BaseException as error:  # cancelled (the server stops): none is left waiting
                    _settle(batch + self.waiting, [(False, error)] * (len(batch) + len(self.waiting)))
                    self.waiting = []
                    raise
                _settle(batch, outcomes)
        finally:
            self.running = None


def _settle(batch: list[tuple[Callable, asyncio.Future]], outcomes: list[tuple[bool, Any]]) -> None:
    for (_, future), (ok, value) in zip(batch, outcomes, strict=True):
        if future.done():  # its request went away
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


async def _run_batch_here(engine, works: list[Callable[[Session], Any]]
                          ) -> list[tuple[bool, Any]] | None:
    """The batch's statements in the event loop itself, its COMMIT (the fsync) in a worker
    thread, when the write lock is free at once: None when another process holds it (the batch
    then waits for it in a worker thread, ``_run_batch``).

    A worker thread holds the GIL only when the busy event loop lets go of it, a few statements
    at a time, while the writer lane waits (6–8 ms a unit instead of 1.5 ms, bench P2); the
    statements of a unit are fast and do no waiting, so they run here. The fsync, a few ms of
    waiting for the disk, does not: the loop reads the next requests meanwhile. The loop never
    waits for another process's lock: BEGIN IMMEDIATE is tried with no busy timeout.
    """
    # The checkout in a worker thread: the slot held guarantees a connection only to the app's
    # own requests, and a pool emptied from outside waits its timeout (503) there, not here.
    connection = await run_in_threadpool(engine.connect)
    try:
        raw = connection.connection.dbapi_connection
        raw.execute("PRAGMA busy_timeout=0")
        try:
            connection.begin()
        except OperationalError as error:
            if is_sqlite_busy(error):
                return None
            return _failed(error, len(works))
        finally:
            raw.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        try:
            # The session joins the connection's transaction: its commit leaves it to the
            # connection's, which is the batch's one COMMIT.
            outcomes = _in_transaction(Session(bind=connection, expire_on_commit=False), works)
            await run_in_threadpool(connection.commit)
        except Exception as error:  # COMMIT failed: nothing of the batch was written
            return _failed(error, len(works))
        return outcomes
    finally:
        connection.close()  # back to the pool (rolled back if it was not committed)


def _run_batch(engine, works: list[Callable[[Session], Any]]) -> list[tuple[bool, Any]]:
    """In a worker thread: one transaction, a SAVEPOINT per unit, one COMMIT."""
    try:
        return _in_transaction(Session(engine, expire_on_commit=False), works)
    except Exception as error:  # BEGIN or COMMIT failed: nothing of the batch was written
        return _failed(error, len(works))


def _in_transaction(session: Session,
                    works: list[Callable[[Session], Any]]) -> list[tuple[bool, Any]]:
    outcomes: list[tuple[bool, Any]] = []
    try:
        for work in works:
            try:
                with session.begin_nested():
                    outcomes.append((True, work(session)))
            except Exception as error:  # this unit's writes are rolled back, not the others'
                outcomes.append((False, error))
        session.commit()
    except Exception:
        session.rollback()
        raise
    finally:
        session.close()
    return outcomes


def _failed(error: Exception, count: int) -> list[tuple[bool, Any]]:
    if isinstance(error, OperationalError) and is_sqlite_busy(error):
        error = BatchBusy(error)
    return [(False, error)] * count


class BatchBusy(Exception):
    """SQLite's write lock stayed taken past the busy timeout for the whole batch."""

    def __init__(self, error: OperationalError) -> None:
        super().__init__(str(error))
        self.error = error
