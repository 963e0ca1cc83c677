"""Telling "the database cannot be reached" apart from "the database refused this statement".

The first passes by itself (PostgreSQL restarting, a connection cut, the server not yet up):
the web app answers 503 and the pump waits for it; the second is a bug or a conflict and is
not retried blindly. Shared by ``web.errors`` and ``notifications.pump``.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

# PostgreSQL's SQLSTATEs for a server that is going away or not there yet: class 08 (connection
# exception), 57P01 admin_shutdown ("terminating connection due to administrator command"),
# 57P02 crash_shutdown, 57P03 cannot_connect_now ("the database system is starting up" / "is
# shutting down"), 53300 too_many_connections.
_UNREACHABLE_STATES = frozenset({"57P01", "57P02", "57P03", "53300"})
# SQLite's file cannot be opened (its folder is gone or not mounted).
_SQLITE_UNREACHABLE = ("unable to open database file",)


def database_unreachable(exc: BaseException) -> bool:
    """True when ``exc`` says the database could not be reached or the connection was lost."""
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated or isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, OperationalError):
        return False
    orig = exc.orig
    if type(orig).__module__.startswith("sqlite3"):
        return any(text in str(orig) for text in _SQLITE_UNREACHABLE)
    sqlstate = getattr(orig, "sqlstate", None)
    # psycopg: a failed connect (refused, reset, timed out) carries no SQLSTATE at all.
    return sqlstate is None or sqlstate.startswith("08") or sqlstate in _UNREACHABLE_STATES
