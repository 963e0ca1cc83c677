"""The sweep's insert when its key check missed something (issue 17, P1).

``write_provinces`` asks the database which keys are there before it builds a message, then
inserts the new rows. On SQLite the insert is the driver's ``executemany`` without RETURNING,
trusting its row count: when fewer rows went in than were sent (a key written meanwhile by
another sweep, or one the check could not see), it is undone to a savepoint and done again with
RETURNING. These tests take that path on purpose (the check told to see nothing) and pin that
the rows and the counts are what they would have been.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import delete, func, select

import models.outbox as outbox_module
import tidtam.app.escalation as escalation
from models.outbox import OutboxMessage, insert_new_rows
from tidtam.app.escalation import sweep

BKK = ZoneInfo("Asia/Bangkok")
AT = datetime(2024, 8, 14, 8, 30, tzinfo=BKK)  # late items, the escalations, grouped messages
COLUMNS = ("idempotency_key", "channel", "recipient", "status", "last_error", "user_id",
           "district_code", "item_id", "step_id", "rung", "subject", "body", "next_try_at",
           "created_at")


def _rows(session) -> dict[str, tuple]:
    session.expire_all()
    return {m.idempotency_key: tuple(getattr(m, name) for name in COLUMNS)
            for m in session.exec(select(OutboxMessage))}


def _spy(monkeypatch) -> list[object]:
    """What each fast insert answered (None: it fell back to RETURNING)."""
    answers: list[object] = []
    fast = outbox_module._sqlite_insert_all

    def spied(*args, **kwargs):
        answers.append(fast(*args, **kwargs))
        return answers[-1]

    monkeypatch.setattr(outbox_module, "_sqlite_insert_all", spied)
    return answers


def test_rows_the_check_missed_are_skipped_and_counted(session, launched, monkeypatch):
    launch_rows = set(_rows(session))  # the launch's own rows (events), not the sweep's
    first = sweep(session, AT, tz=BKK, base_url="http://tidtam.test")
    assert first.enqueued > 20
    before = _rows(session)
    # some of the sweep's rows lost since: these, and only these, are new again
    gone = sorted(before.keys() - launch_rows)[::7]
    session.exec(delete(OutboxMessage).where(OutboxMessage.idempotency_key.in_(gone)))
    session.flush()
    monkeypatch.setattr(escalation, "keys_present", lambda *args: set())  # the check sees nothing
    answers = _spy(monkeypatch)

    again = sweep(session, AT, tz=BKK, base_url="http://tidtam.test")

    assert (again.enqueued, again.already_queued) == (len(gone), first.enqueued - len(gone))
    assert _rows(session) == before  # every column as the first sweep wrote it
    if session.get_bind().dialect.name == "sqlite":
        assert answers == [None]  # executemany counted fewer rows: undone, then RETURNING
    else:
        assert answers == []  # PostgreSQL inserts with RETURNING in the first place


def test_nothing_new_when_the_check_missed_everything(session, launched, monkeypatch):
    first = sweep(session, AT, tz=BKK, base_url="http://tidtam.test")
    monkeypatch.setattr(escalation, "keys_present", lambda *args: set())
    again = sweep(session, AT, tz=BKK, base_url="http://tidtam.test")
    assert (again.enqueued, again.already_queued) == (0, first.enqueued)
    assert session.exec(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.created_at == AT)).one() == first.enqueued


def test_insert_new_rows_fast_and_fallback(session, monkeypatch):
    answers = _spy(monkeypatch)
    at = datetime(2024, 8, 14, 1, 30, tzinfo=ZoneInfo("UTC"))
    columns = ("idempotency_key", "channel", "recipient", "rung", "next_try_at", "created_at",
               "subject", "body")

    def row(key: str) -> tuple:
        return (key, "email", "a@example.org", "late", at, at, "s", "b")

    assert insert_new_rows(session, columns, [row("t|1"), row("t|2")]) == {"t|1", "t|2"}
    # t|2 is there, t|3 repeats within the rows: the count says fewer, RETURNING says which
    assert insert_new_rows(session, columns, [row("t|2"), row("t|3"), row("t|3")]) == {"t|3"}
    if session.get_bind().dialect.name == "sqlite":
        assert answers == [{"t|1", "t|2"}, None]
    keys = session.exec(select(OutboxMessage.idempotency_key).where(
        OutboxMessage.idempotency_key.like("t|%"))).all()
    assert sorted(keys) == ["t|1", "t|2", "t|3"]
