"""What every tidtam flow shares: retries on transient database errors only.

A task retries (with backoff) when the database was briefly away or busy: a dropped connection,
a PostgreSQL restart, SQLite's write lock held past the busy timeout. A rule violation
(`domain.errors.TidtamError`), a bad parameter or a bug fails at once: retrying would only repeat it.
Prefect's ``retry_condition_fn`` is the hook (tasks only: flows have no such hook, so the work that
may meet the database sits in tasks).
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from domain.errors import TidtamError
from tidtam.infra.db import is_sqlite_busy

RETRY_DELAYS = [2, 10, 30]  # seconds: three tries more, the last one about 40 s after the first


def is_transient_db_error(exc: BaseException | None) -> bool:
    """True for a database error worth trying again; False for everything else."""
    if exc is None or isinstance(exc, TidtamError):
        return False
    if isinstance(exc, (DisconnectionError, PoolTimeout)):
        return True
    if isinstance(exc, DBAPIError):
        return bool(exc.connection_invalidated) or is_sqlite_busy(exc) or _connection_lost(exc)
    return False


def _connection_lost(exc: DBAPIError) -> bool:
    """psycopg's OperationalError for a server gone away (restart, network) or not accepting."""
    from sqlalchemy.exc import OperationalError

    if not isinstance(exc, OperationalError):
        return False
    text = str(exc.orig).lower()
    return any(s in text for s in ("connection", "server closed", "terminating", "could not connect",
                                   "the database system is", "timeout"))


def retry_on_transient_db_error(task, task_run, state) -> bool:
    """``retry_condition_fn`` for tidtam's tasks: retry only transient database errors."""
    try:
        state.result()
    except BaseException as exc:  # noqa: BLE001 - the state's exception is re-raised here
        return is_transient_db_error(exc)
    return False


TASK_RETRIES = dict(retries=len(RETRY_DELAYS), retry_delay_seconds=RETRY_DELAYS,
                    retry_condition_fn=retry_on_transient_db_error)
