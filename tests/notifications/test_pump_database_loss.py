"""A pump pass whose database goes away mid-pass: no send starts once it is lost, the results
already known are written (not sent again) and the untried rows handed back as soon as the
database answers again, not after the lease.

The database "goes away" through the pass's session factory: while it is down, opening a
session raises the error a refused connection raises (an ``OperationalError`` that
``models.unreachable.database_unreachable`` recognises). tests/e2e/test_database_restart.py
does it with a real PostgreSQL stopped and started.
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session, select

from models import OutboxMessage, OutboxStatus
from models.outbox import Channel
from models.unreachable import database_unreachable
from notifications.line import retry_key
from notifications.pump import PumpResult, deliver_due

LONG_LEASE = timedelta(minutes=5)


class FlakyDatabase:
    """A session factory over ``engine`` that refuses ``refusals`` openings once told to."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.refusals = 0
        self.refused = 0
        self.opened = 0
        self.lock = threading.Lock()

    def go_away(self, refusals: int) -> None:
        with self.lock:
            self.refusals = refusals

    @contextmanager
    def __call__(self):
        with self.lock:
            self.opened += 1
            refuse = self.refusals > 0
            if refuse:
                self.refusals -= 1
                self.refused += 1
        if refuse:
            raise OperationalError("connect", {}, sqlite3.OperationalError(
                "unable to open database file"))
        with Session(self.engine) as session:
            yield session


class Recorder:
    """A synchronous transport (as e-mail is) that records what it sent, and can run a hook
    after each send."""

    def __init__(self, after_send=None) -> None:
        self.sent: list[str] = []
        self.after_send = after_send

    def send(self, message: OutboxMessage) -> None:
        self.sent.append(message.idempotency_key)
        if self.after_send is not None:
            self.after_send(message)


def rows(engine) -> list[OutboxMessage]:
    with Session(engine) as session:
        return list(session.exec(select(OutboxMessage).order_by(OutboxMessage.id)))


def test_the_classifier_tells_a_lost_database_from_a_refused_statement():
    def wrapped(orig, cls=OperationalError, **kw):
        return cls("SELECT 1", {}, orig, **kw)

    assert database_unreachable(wrapped(sqlite3.OperationalError("unable to open database file")))
    assert not database_unreachable(wrapped(sqlite3.OperationalError("database is locked")))
    assert not database_unreachable(wrapped(sqlite3.IntegrityError("UNIQUE"), IntegrityError))
    assert database_unreachable(wrapped(sqlite3.IntegrityError("x"), IntegrityError,
                                        connection_invalidated=True))
    assert not database_unreachable(ValueError("no"))


def test_mail_sent_before_the_database_went_away_is_recorded_and_the_rest_handed_back(
        engine, add_messages, make_message, now):
    ids = add_messages(*(make_message(f"k{n}", channel=Channel.EMAIL, recipient=f"p{n}@example.go.th")
                         for n in range(4)))
    database = FlakyDatabase(engine)
    mail = Recorder(after_send=lambda _m: database.go_away(3))  # gone after the first send
    result = deliver_due(database, {"email": mail}, now, lease=LONG_LEASE)

    assert result == PumpResult(sent=1, released=3)
    assert mail.sent == ["k0"]  # no send started once the database was lost
    assert database.refused == 3
    first, *rest = rows(engine)
    assert (first.status, first.attempts, first.claims) == (OutboxStatus.SENT, 1, 1)
    # handed back untried, due at once: not left 'sending' until the lease ends
    assert {(r.status, r.attempts, r.claims, r.lease_until) for r in rest} == {
        (OutboxStatus.QUEUED, 0, 1, None)}

    mail.after_send = None
    assert deliver_due(database, {"email": mail}, now, lease=LONG_LEASE) == PumpResult(sent=3)
    assert sorted(mail.sent) == ["k0", "k1", "k2", "k3"]  # each once
    assert {(r.status, r.attempts) for r in rows(engine)} == {(OutboxStatus.SENT, 1)}
    assert [r.id for r in rows(engine)] == ids


def test_line_pushes_accepted_while_the_database_is_away_are_recorded_not_sent_again(
        engine, add_messages, make_message, async_line, fake_line, now):
    add_messages(*(make_message(f"k{n}", recipient=f"U{n:032x}") for n in range(12)))
    database = FlakyDatabase(engine)
    gone = threading.Event()

    def first_push_accepted(_push: dict) -> None:
        if not gone.is_set():  # the database goes away once, as LINE accepts the first push
            gone.set()
            database.go_away(4)

    fake_line.state.on_accepted = first_push_accepted
    line = async_line()
    result = deliver_due(database, {"line": line}, now, lease=LONG_LEASE)

    pushed = {push["retry_key"] for push in fake_line.state.snapshot()}
    assert pushed and database.refused == 4
    after = rows(engine)
    assert {r.status for r in after} <= {OutboxStatus.SENT, OutboxStatus.QUEUED}  # none held
    sent = {retry_key(r.idempotency_key) for r in after if r.status == OutboxStatus.SENT}
    assert sent == pushed  # every push LINE accepted is recorded as sent
    assert result == PumpResult(sent=len(pushed), released=12 - len(pushed))
    assert {(r.attempts, r.claims) for r in after if r.status == OutboxStatus.QUEUED} <= {(0, 1)}

    fake_line.state.on_accepted = None
    assert deliver_due(database, {"line": line}, now, lease=LONG_LEASE) == PumpResult(
        sent=12 - len(pushed))
    assert fake_line.state.duplicates == 0  # nothing LINE had accepted was pushed again
    assert len(fake_line.state.snapshot()) == 12
    assert {(r.status, r.attempts) for r in rows(engine)} == {(OutboxStatus.SENT, 1)}


def test_a_database_lost_before_any_send_hands_every_claimed_row_back(
        engine, add_messages, make_message, now):
    add_messages(*(make_message(f"k{n}", channel=Channel.EMAIL, recipient=f"p{n}@example.go.th")
                   for n in range(3)))
    mail = Recorder()

    class GoneAfterClaim(FlakyDatabase):
        @contextmanager
        def __call__(self):
            with super().__call__() as session:
                yield session
            if self.opened == 1:  # the claim is committed; then the database goes away
                self.go_away(2)

    database = GoneAfterClaim(engine)
    assert deliver_due(database, {"email": mail}, now, lease=LONG_LEASE) == PumpResult(released=3)
    assert mail.sent == []
    assert {(r.status, r.attempts, r.lease_until) for r in rows(engine)} == {
        (OutboxStatus.QUEUED, 0, None)}


def test_a_pass_whose_database_stays_away_ends_with_the_lease(engine, add_messages,
                                                              make_message, now):
    """The pass does not wait for ever: once the lease is over another pump may have the rows.
    Left 'sending', they are reclaimed after the lease, the lost claim costing no attempt."""
    add_messages(make_message("k0", channel=Channel.EMAIL, recipient="p0@example.go.th"))
    database = FlakyDatabase(engine)
    mail = Recorder(after_send=lambda _m: database.go_away(10_000))
    lease = timedelta(seconds=1)
    assert deliver_due(database, {"email": mail}, now, lease=lease) == PumpResult()
    [held] = rows(engine)
    assert (held.status, held.attempts, held.claims) == (OutboxStatus.SENDING, 0, 1)

    database.go_away(0)
    mail.after_send = None
    assert deliver_due(database, {"email": mail}, now + 2 * lease) == PumpResult(sent=1)
    [done] = rows(engine)
    assert (done.status, done.attempts, done.claims) == (OutboxStatus.SENT, 1, 2)
    # SMTP has no retry key: the relay got it twice (same Message-ID), as the pump could not
    # record the first delivery before its lease ended.
    assert mail.sent == ["k0", "k0"]
