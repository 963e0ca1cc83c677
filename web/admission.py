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

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

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
    """``capacity`` database slots per process (None: the pool sets no limit, nor do we)."""

    def __init__(self, capacity: int | None, timeout: float) -> None:
        self.capacity = capacity
        self.timeout = timeout
        self.retry_after = max(1, math.ceil(timeout))
        self._slots = anyio.Semaphore(capacity) if capacity else None

    @classmethod
    def for_engine(cls, engine: Engine, timeout: float) -> Admission:
        limits = pool_limits(engine)
        return cls(limits.capacity if limits else None, timeout)

    def busy(self) -> DatabaseBusy:
        return DatabaseBusy(self.retry_after)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one slot for the block; DatabaseBusy when none is free within the timeout."""
        if self._slots is None:
            yield
            return
        _ensure_threads(self.capacity + THREAD_HEADROOM)
        try:
            with anyio.fail_after(self.timeout):
                await self._slots.acquire()
        except TimeoutError:
            raise self.busy() from None
        try:
            yield
        finally:
            self._slots.release()


def _ensure_threads(tokens: int) -> None:
    """anyio's default thread limiter (40; one per event loop) at least this large."""
    limiter = anyio.to_thread.current_default_thread_limiter()
    if limiter.total_tokens < tokens:
        limiter.total_tokens = tokens
