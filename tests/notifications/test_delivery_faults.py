"""Delivery under faults, against the LINE stand-in and a real local SMTP server.

The pump takes ``now``: each test drives a clock through an outage, pass by pass, the way the
APScheduler job would, and checks what the stand-ins received and what the outbox says.
"""

from __future__ import annotations

import email
import email.policy
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

import models
from domain.calendar import OfficeHours, WorkCalendar
from domain.directive import load_directive
from models.outbox import PENDING, Channel, OutboxMessage, OutboxStatus
from notifications.base import TransportError
from notifications.mail import SmtpTransport
from notifications.pump import PumpResult, deliver_due, next_try
from tests.conftest import make_database
from tests.notifications.conftest import SmtpSink, free_port, migrate_and_seed
from tidtam.ops.bootstrap import DEFAULT_DIRECTIVE

BKK = ZoneInfo("Asia/Bangkok")
OFFICE = WorkCalendar()


def bkk(day: int, hour: int, minute: int = 0, second: int = 0, month: int = 8) -> datetime:
    return datetime(2024, month, day, hour, minute, second, tzinfo=BKK).astimezone(UTC)


WED_0900 = bkk(7, 9)  # Wednesday 7 August 2567


def in_office_hours(moment: datetime) -> bool:
    local = moment.astimezone(BKK)
    return OFFICE.is_working_day(local.date()) and time(8, 30) <= local.time() < time(16, 30)


def rows(engine: Engine) -> list[OutboxMessage]:
    """Every row, oldest first."""
    with Session(engine) as session:
        return list(session.exec(select(OutboxMessage).order_by(OutboxMessage.created_at)))


def next_due(engine: Engine) -> datetime | None:
    with Session(engine) as session:
        return session.exec(select(OutboxMessage.next_try_at)
                            .where(col(OutboxMessage.status).in_(PENDING))
                            .order_by(OutboxMessage.next_try_at)).first()


def queue(add_messages, make_message, n: int, *, channel: Channel = Channel.LINE,
          recipient: str | None = None, start: datetime = WED_0900) -> list[int]:
    """n rows written a minute apart before ``start``, all due at ``start``."""
    made = []
    for i in range(n):
        extra = {} if recipient is None else {"recipient": recipient}
        made.append(make_message(f"msg-{i:03d}", channel=channel, subject=f"ข้อความที่ {i:03d}",
                                 created_at=start - timedelta(minutes=n - i), next_try_at=start,
                                 **extra))
    return add_messages(*made)


def pump_until_idle(engine: Engine, transports: dict, now: datetime,
                    until: datetime | None = None, limit: int = 50) -> tuple[datetime, int]:
    """Pass after pass, jumping the clock to the next due row, until nothing is pending (or
    the clock reaches ``until``); returns the clock and how many passes ran."""
    passes = 0
    while now is not None and (until is None or now < until):
        deliver_due(lambda: Session(engine), transports, now, limit=limit)
        passes += 1
        assert passes < 200, "the pump is spinning"
        now = next_due(engine)
    return now, passes


@pytest.fixture
def make_line(async_line) -> Callable[[], dict]:
    """The transports dict a new pump process builds for LINE: the production transport,
    ``AsyncLineTransport``, over new clients of its own (nothing heard from LINE yet)."""
    return lambda: {"line": async_line()}


@pytest.fixture
def line(make_line) -> dict:
    return make_line()


# --- 429 and Retry-After --------------------------------------------------------------------

# now, Retry-After as LINE sends it, when the row must be tried next (Bangkok)
RETRY_AFTER = [
    ("seconds, inside office hours", WED_0900, "600", bkk(7, 9, 10)),
    ("past 16:30: the next working morning", bkk(7, 16, 25), "600", bkk(8, 8, 30)),
    ("over a weekend and Mother's Day (Mon 12 Aug)", bkk(9, 16, 0), "3600", bkk(13, 8, 30)),
    ("an HTTP date", WED_0900, "Wed, 07 Aug 2024 03:00:00 GMT", bkk(7, 10, 0)),
]


@pytest.mark.parametrize(("now", "retry_after", "expected"), [r[1:] for r in RETRY_AFTER],
                         ids=[r[0] for r in RETRY_AFTER])
def test_429_retry_after_is_honoured_in_office_hours(engine, line, fake_line, add_messages,
                                                     make_message, now, retry_after, expected):
    [message_id] = queue(add_messages, make_message, 1, start=now)
    fake_line.state.set_mode(status=429, retry_after=retry_after)
    assert deliver_due(lambda: Session(engine), line, now) == PumpResult(retried=1)
    [waiting] = rows(engine)
    assert waiting.next_try_at == expected
    assert "LINE 429: The API rate limit has been exceeded" in waiting.last_error


def test_429_holds_the_whole_line_queue_and_a_restart_resumes_it(engine, fake_line, make_line,
                                                                 add_messages, make_message):
    """One 429 and nothing else is pushed until Retry-After has passed; a new pump over the
    same database (a restart) picks the schedule up from the rows and sends each once."""
    queue(add_messages, make_message, 5)
    fake_line.state.set_mode(status=429, retry_after=600)
    first = make_line()
    assert deliver_due(lambda: Session(engine), first, WED_0900) == PumpResult(
        retried=1, released=4)
    waiting = rows(engine)
    assert {r.status for r in waiting} == {OutboxStatus.QUEUED}
    assert all(r.next_try_at >= WED_0900 + timedelta(seconds=600) for r in waiting)
    assert all(in_office_hours(r.next_try_at) for r in waiting)
    assert [r.attempts for r in waiting] == [1, 0, 0, 0, 0]
    assert all(r.last_error.startswith("waiting: line is not answering (LINE 429")
               for r in waiting[1:])
    assert len(fake_line.state.requests) == 1

    restarted = create_engine(engine.url)  # a new process: nothing shared but the database
    try:
        again = make_line()
        early = WED_0900 + timedelta(seconds=599)
        assert deliver_due(lambda: Session(restarted), again, early).total == 0
        due = next_due(restarted)
        assert deliver_due(lambda: Session(restarted), again, due) == PumpResult(sent=5)
    finally:
        restarted.dispose()
    assert [p["messages"][0]["text"].split("\n")[0] for p in fake_line.state.snapshot()] == [
        f"ข้อความที่ {i:03d}" for i in range(5)]
    keys = Counter(r["headers"]["x-line-retry-key"] for r in fake_line.state.requests)
    assert sorted(keys.values()) == [1, 1, 1, 1, 2]  # the 429'd row: same key on its retry


# --- LINE answering 500 for an hour ---------------------------------------------------------

def test_line_down_for_an_hour_then_everything_goes_once_oldest_first(engine, line, fake_line,
                                                                      add_messages,
                                                                      make_message):
    ids = queue(add_messages, make_message, 30)
    fake_line.state.set_mode(status=500, count=None)  # until further notice
    clock, failing = pump_until_idle(engine, line, WED_0900, until=WED_0900 + timedelta(hours=1))
    probes = len(fake_line.state.requests)
    assert probes == failing <= 8  # one probe per pass: the queue is held, not hammered
    assert fake_line.state.snapshot() == []
    assert {r.status for r in rows(engine)} == {OutboxStatus.QUEUED}

    fake_line.state.set_mode()  # LINE is back
    pump_until_idle(engine, line, clock, limit=7)
    sent = rows(engine)
    assert [r.id for r in sent] == ids
    assert {r.status for r in sent} == {OutboxStatus.SENT}
    assert all(in_office_hours(r.sent_at) for r in sent)
    pushes = fake_line.state.snapshot()
    assert [p["messages"][0]["text"].split("\n")[0] for p in pushes] == [
        f"ข้อความที่ {i:03d}" for i in range(30)]
    assert len({p["retry_key"] for p in pushes}) == 30
    assert fake_line.state.duplicates == 0


def test_a_400_for_one_recipient_does_not_hold_the_others(engine, line, fake_line, add_user,
                                                          add_messages, make_message, line_user):
    bad = add_user("bad", line_user_id="Unot-a-line-id")
    add_messages(make_message("a", recipient="Unot-a-line-id", user_id=bad,
                              created_at=WED_0900 - timedelta(minutes=3)),
                 make_message("b", created_at=WED_0900 - timedelta(minutes=2)),
                 make_message("c", created_at=WED_0900 - timedelta(minutes=1)))
    assert deliver_due(lambda: Session(engine), line, WED_0900) == PumpResult(sent=2, failed=1)
    with Session(engine) as session:
        assert session.get(models.User, bad).line_route_error.startswith("LINE 400")


# --- SMTP down, then a server starts --------------------------------------------------------

def test_smtp_down_then_up_sends_every_queued_mail_once_oldest_first(engine, add_messages,
                                                                     make_message):
    port = free_port()  # nobody listens here yet
    mail = {"email": SmtpTransport("127.0.0.1", port, tls="none", timeout=5,
                                   sender="tidtam <tidtam@sakaeo.example.go.th>")}
    ids = queue(add_messages, make_message, 12, channel=Channel.EMAIL,
                recipient="somchai@example.go.th")
    assert deliver_due(lambda: Session(engine), mail, WED_0900) == PumpResult(retried=1,
                                                                              released=11)
    held = rows(engine)
    assert "SMTP connection: ConnectionRefusedError" in held[0].last_error
    assert all(r.last_error.startswith("waiting: email is not answering") for r in held[1:])

    sink = SmtpSink()
    controller = Controller(sink, hostname="127.0.0.1", port=port,
                            server_hostname="localhost")
    controller.start()
    try:
        pump_until_idle(engine, mail, next_due(engine), limit=5)
    finally:
        controller.stop()
    assert [r.id for r in rows(engine)] == ids
    assert {r.status for r in rows(engine)} == {OutboxStatus.SENT}
    subjects = [email.message_from_bytes(raw, policy=email.policy.default)["Subject"]
                for raw in sink.messages]
    assert subjects == [f"ข้อความที่ {i:03d}" for i in range(12)]


# --- the directive's own calendar -----------------------------------------------------------

def add_directive_item(engine: Engine) -> tuple[int, int]:
    """A directive whose YAML closes Thursday 8 Aug and keeps office hours 09:00–12:00;
    returns (item id, step id)."""
    spec = load_directive(DEFAULT_DIRECTIVE).model_dump(mode="json")
    spec |= {"closures": ["2024-08-08"], "office_hours": {"start": "09:00", "end": "12:00"}}
    with Session(engine) as session:
        directive = models.Directive(
            slug="closed-thursday", province_code="27", reference_no="สก 1/2567", title_th="ท",
            title_en="t", issuer_th="ท", issuer_en="t", issued_on=date(2024, 7, 1),
            fiscal_year=2567, province_due=date(2024, 8, 9), definition=spec)
        session.add(directive)
        session.flush()
        step = models.DirectiveStep(directive_id=directive.id, order=1, code="R1",
                                    kind=models.StepKind.REPORT, title_th="ท", title_en="t",
                                    due_on=date(2024, 8, 9))
        session.add(step)
        session.flush()
        item = models.TrackedItem(directive_id=directive.id, step_id=step.id,
                                  district_code="2701", due_on=date(2024, 8, 9))
        session.add(item)
        session.commit()
        return item.id, step.id


def test_retries_follow_the_directives_own_closures_and_hours(engine, line, fake_line,
                                                              add_messages, make_message):
    """At 11:59:50 LINE fails: a message about the directive (by item or by step) waits for
    its next office hour (Thu 8 Aug is closed, so Fri 09:00); one about no directive keeps
    the default hours and goes at ~12:00."""
    item_id, step_id = add_directive_item(engine)
    now = bkk(7, 11, 59, 50)
    plain, by_item, by_step, plain_too = add_messages(*(
        make_message(key, created_at=now - timedelta(minutes=5 - n), next_try_at=now, **about)
        for n, (key, about) in enumerate([("plain", {}), ("item", {"item_id": item_id}),
                                          ("step", {"step_id": step_id}), ("plain-2", {})])))
    fake_line.state.set_mode(status=500)
    assert deliver_due(lambda: Session(engine), line, now) == PumpResult(retried=1, released=3)
    with Session(engine) as session:
        when = {i: session.get(OutboxMessage, i).next_try_at for i in
                (plain, by_item, by_step, plain_too)}
    assert bkk(7, 12, 0, 14) <= when[plain] <= bkk(7, 12, 0, 20)
    assert when[plain_too] == when[plain]
    assert when[by_item] == when[by_step] == bkk(9, 9, 0)


# when (Bangkok), attempts, Retry-After, the calendar, the next try (Bangkok)
NEXT_TRY = [
    ("30 s after a first failure", WED_0900, 1, None, OFFICE, bkk(7, 9, 0, 30)),
    ("16:29:50 spills into the next morning", bkk(7, 16, 29, 50), 1, None, OFFICE, bkk(8, 8, 30)),
    ("the 1 h cap over Mother's Day", bkk(9, 16, 0), 9, None, OFFICE, bkk(13, 8, 30)),
    ("Retry-After beyond the cap", WED_0900, 1, 7200.0, OFFICE, bkk(7, 11, 0)),
    ("a directive's closure and hours", bkk(7, 11, 59, 50), 1, None,
     WorkCalendar([date(2024, 8, 8)], OfficeHours(time(9), time(12))), bkk(9, 9, 0)),
]


@pytest.mark.parametrize(("now", "attempts", "retry_after", "calendar", "expected"),
                         [r[1:] for r in NEXT_TRY], ids=[r[0] for r in NEXT_TRY])
def test_next_try(now, attempts, retry_after, calendar, expected):
    error = TransportError("LINE 500", retry_after=retry_after)
    assert next_try(now, attempts, error, calendar, BKK) == expected


def test_next_try_takes_an_http_date_as_a_floor():
    error = TransportError("LINE 429", retry_at=bkk(7, 14, 0))
    assert next_try(WED_0900, 1, error, OFFICE, BKK) == bkk(7, 14, 0)
    past = TransportError("LINE 429", retry_at=bkk(6, 14, 0))
    assert next_try(WED_0900, 1, past, OFFICE, BKK) == bkk(7, 9, 0, 30)


# --- two pumps, separate engines, one PostgreSQL database -----------------------------------

@pytest.fixture
def postgres_url(tmp_path_factory) -> Iterator[str]:
    url, drop = make_database("postgresql", tmp_path_factory)
    seeded = create_engine(url)
    migrate_and_seed(seeded)
    seeded.dispose()
    yield url
    drop()


def test_two_pumps_on_postgresql_never_send_a_row_twice(postgres_url, fake_line, make_line,
                                                        make_message):
    main = create_engine(postgres_url)
    with Session(main) as session:
        session.add_all(queue_rows(make_message, 200))
        session.commit()
    fake_line.state.set_mode(latency_ms=2)
    done: dict[str, int] = {}

    def pump(name: str) -> None:
        """A separate engine and LINE transport (its own clients), as in another web process."""
        engine = create_engine(postgres_url)
        transports = make_line()
        while pending(engine):
            done[name] = done.get(name, 0) + deliver_due(
                lambda: Session(engine), transports, WED_0900, limit=10).sent
        engine.dispose()

    threads = [threading.Thread(target=pump, args=(name,)) for name in ("web-1", "web-2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    try:
        assert sum(done.values()) == 200 and len(done) == 2 and all(done.values()), done
        per_key = Counter(r["headers"]["x-line-retry-key"] for r in fake_line.state.requests)
        assert len(per_key) == 200 and set(per_key.values()) == {1}
        assert fake_line.state.duplicates == 0
        assert {r.status for r in rows(main)} == {OutboxStatus.SENT}
    finally:
        main.dispose()


def queue_rows(make_message: Callable[..., OutboxMessage], n: int) -> list[OutboxMessage]:
    return [make_message(f"pg-{i:03d}", created_at=WED_0900 - timedelta(seconds=n - i),
                         next_try_at=WED_0900) for i in range(n)]


def pending(engine: Engine) -> bool:
    with Session(engine) as session:
        return session.exec(select(OutboxMessage.id)
                            .where(col(OutboxMessage.status).in_(PENDING))).first() is not None
