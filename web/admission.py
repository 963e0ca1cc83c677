"""Admission to the database: never more requests at once than the pool has connections.

A synchronous route goes through anyio's thread pool several times — the session dependency,
the signed-in user, the endpoint, then the validation of its response — and holds its database
connection from the first query to the commit, which FastAPI runs after the response is
validated. Once it has written, it also holds SQLite's write lock or PostgreSQL's row lock
across those hops. With more requests at once than connections (issue 16: 50 writers, 15 or
30 connections, 40 threads), every thread ended up waiting for a connection or a lock while
the requests that held them waited for a thread: nothing moved until the pool's 30-second
timeout turned the waiters into 500s.

So a request waits for a database slot here, in the event loop, holding neither a thread nor
a connection; there are as many slots as the pool has connections, so an admitted request
never waits for one; and the thread pool is kept larger than the slots, so a request holding a
connection or a lock always finds a thread for its next hop. A request that gets no slot within
the pool timeout is answered 503 with ``Retry-After`` (``web.errors.on_pool_exhausted``).
"""

from __future__ import annotations

import asyncio
import math
import weakref
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import anyio
import anyio.to_thread
from sqlalchemy.engine import Engine

from tidtam.infra.db import pool_limits

# Threads beyond the database slots: for requests that use no database (static files, health
# checks) and so that every request holding a connection finds a thread for its next step.
THREAD_HEADROOM = 10


class DatabaseBusy(Exception):
    """No database connection became free in time: the server is busy (503, ``Retry-After``)."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"no database connection free; retry after {retry_after} s")
        self.retry_after = retry_after


class Admission:
    """``capacity`` database slots per process (None: the pool sets no limit, nor do we), and
    on SQLite one writer lane.

    SQLite has one write lock, and a request that writes takes it with its first statement
    (``tidtam.infra.db.writing``) and keeps it to its commit. Left to SQLite, the other writers
    of this process would each hold a thread and a connection while its busy handler polls
    (sleeping up to 100 ms a time, first come not first served); here they wait in line in the
    event loop instead and are let in one at a time, in order of arrival. Writers of other
    processes (the pump, flows) still meet this process's at the lock, through its busy timeout.
    """

    def __init__(self, capacity: int | None, timeout: float, *, one_writer: bool = False) -> None:
        self.capacity = capacity
        self.timeout = timeout
        self.retry_after = max(1, math.ceil(timeout))
        self._slots = anyio.Semaphore(capacity) if capacity else None
        self._writer = anyio.Lock() if one_writer else None
        self._threads_for: weakref.ref | None = None  # the event loop whose thread pool is sized

    @classmethod
    def for_engine(cls, engine: Engine, timeout: float) -> Admission:
        limits = pool_limits(engine)
        return cls(limits.capacity if limits else None, timeout,
                   one_writer=engine.dialect.name == "sqlite")

    def busy(self) -> DatabaseBusy:
        return DatabaseBusy(self.retry_after)

    @asynccontextmanager
    async def slot(self, *, write: bool = False) -> AsyncIterator[None]:
        """Hold one slot (and, for a writer on SQLite, the writer lane) for the block;
        DatabaseBusy when they are not free within the timeout."""
        lane = self._writer if write else None
        if self._slots is not None:
            loop = asyncio.get_running_loop()
            if self._threads_for is None or self._threads_for() is not loop:  # once per loop
                _ensure_threads(self.capacity + THREAD_HEADROOM)
                self._threads_for = weakref.ref(loop)
            if lane is None:
                # A slot free and no one waiting for one: taken at once, without the timer, the
                # exit stack and the checkpoint of the wait below (bench P2: ~5 % of the event
                # loop's time). Nothing else changes: a released slot still goes to the longest
                # waiter first.
                try:
                    self._slots.acquire_nowait()
                except anyio.WouldBlock:
                    pass
                else:
                    try:
                        yield
                    finally:
                        self._slots.release()
                    return
        async with AsyncExitStack() as held:
            try:
                with anyio.fail_after(self.timeout):
                    if lane is not None:
                        await held.enter_async_context(lane)
                    if self._slots is not None:
                        await held.enter_async_context(self._slots)
            except TimeoutError:
                raise self.busy() from None
            yield


def _ensure_threads(tokens: int) -> None:
    """anyio's default thread limiter (40; one per event loop) at least this large."""
    limiter = anyio.to_thread.current_default_thread_limiter()
    if limiter.total_tokens < tokens:
        limiter.total_tokens = tokens
