"""At send time: the text as the item stands that day, one message a person a day per channel,
the LINE quota. The real pump, the LINE stand-in and an SMTP sink, on SQLite and PostgreSQL."""

from __future__ import annotations

import email
from datetime import date, datetime
from email import policy as email_policy
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, col, select

from models.directive import ItemStatus, TrackedItem
from models.outbox import (
    Channel,
    OutboxMessage,
    OutboxStatus,
    line_pushes_between,
    to_people,
)
from models.user import get_by_username
from notifications.mail import SmtpTransport
from notifications.pump import (
    DeliveryPolicy,
    deliver_due,
    line_pushes_this_month,
    month_start,
    next_month_start,
)
from tests.notifications.conftest import BKK, STAFF_LINE, add_reminder, at

BASE = "https://tidtam.example"
POLICY = DeliveryPolicy(base_url=BASE)


@pytest.fixture
def transports(async_line, smtp_sink):
    sink, port = smtp_sink
    return {"line": async_line(), "email": SmtpTransport("127.0.0.1", port, tls="none")}, sink


def rows(world) -> list[OutboxMessage]:
    with Session(world["engine"]) as session:
        return list(session.exec(select(OutboxMessage).where(to_people())
                                 .order_by(OutboxMessage.id)))


def pump(world, transports, now: datetime, policy: DeliveryPolicy = POLICY):
    return deliver_due(lambda: Session(world["engine"]), transports, now, tz=BKK,
                       policy=policy)


def mails(sink) -> list[email.message.EmailMessage]:
    return [email.message_from_bytes(raw, policy=email_policy.default) for raw in sink.messages]


def bubbles(push: dict) -> list[dict]:
    return [b for m in push["messages"] for b in m["contents"]["contents"]]


def texts(bubble: dict) -> list[str]:
    return [c["text"] for c in bubble["body"]["contents"]]


def test_queued_saturday_sent_tuesday_says_late_one_working_day(world, transports, fake_line):
    """G8 is due Fri 9 Aug 2567; a due-day row queued on Saturday waits for Tuesday 13 Aug
    (12 Aug is Mother's Day): then it says 1 working day late, on LINE and by e-mail."""
    sends, sink = transports
    saturday = at(date(2024, 8, 10), 9)
    add_reminder(world, "G8", "overdue", "line", saturday)
    add_reminder(world, "G8", "overdue", "email", saturday)
    assert pump(world, sends, saturday).sent == 0  # weekend: held for office hours
    result = pump(world, sends, at(date(2024, 8, 13), 8, 30))
    assert result.sent == 2
    [push] = fake_line.state.snapshot()
    [card] = bubbles(push)
    assert "เลยกำหนด 1 วันทำการ" in texts(card) and "ครบกำหนดวันนี้" not in texts(card)
    assert push["messages"][0]["altText"].startswith("งานที่ต้องติดตาม 1 รายการ · เลยกำหนด 1")
    [mail] = mails(sink)
    assert mail["Subject"].startswith("เลยกำหนด 1 วันทำการ:")
    assert "ขณะนี้เลยกำหนดมาแล้ว 1 วันทำการ" in mail.get_body(("plain",)).get_content()
    # What was sent is what the row says now (the outbox shows it), not what was queued.
    for row in rows(world):
        assert row.status == OutboxStatus.SENT
        assert row.subject.startswith("เลยกำหนด 1 วันทำการ") and "(as queued)" not in row.body


def test_done_before_sending_is_cancelled(world, transports, fake_line):
    sends, sink = transports
    friday = at(date(2024, 8, 9), 8, 30)
    add_reminder(world, "G8", "overdue", "line", friday)
    # Done by a path that left the row queued (or while it was being claimed): the pump checks.
    with Session(world["engine"]) as session:
        item = session.get(TrackedItem, world["items"]["G8"])
        item.status = ItemStatus.DONE
        session.add(item)
        session.commit()
    result = pump(world, sends, friday)
    assert result.cancelled == 1 and result.sent == 0
    assert fake_line.state.snapshot() == [] and sink.messages == []
    [row] = rows(world)
    assert row.status == OutboxStatus.CANCELLED and row.last_error == "item completed before sending"


def test_two_items_one_line_message_one_email_and_a_later_one_waits(world, transports,
                                                                      fake_line):
    """G8 and R1 are both due Fri 9 Aug: Thursday's reminder-1 rows go as one Flex push and
    one e-mail; a row that falls due later that day waits for Friday's office hours."""
    sends, sink = transports
    thursday = at(date(2024, 8, 8), 8, 30)
    for step in ("G8", "R1"):
        for channel in ("line", "email"):
            add_reminder(world, step, "reminder-1", channel, thursday)
    assert pump(world, sends, thursday).sent == 4

    [push] = fake_line.state.snapshot()
    assert push["to"] == STAFF_LINE
    by_link = {b["footer"]["contents"][-1]["action"]["uri"]: b for b in bubbles(push)}
    assert len(by_link) == 2
    g8, r1 = (by_link[f"{BASE}/items/{world['items'][step]}"] for step in ("G8", "R1"))
    assert all("ครบกำหนดในอีก 1 วันทำการ" in texts(b) for b in (g8, r1))
    assert [b["action"]["type"] for b in g8["footer"]["contents"]] == ["postback", "uri"]
    assert g8["footer"]["contents"][0]["action"]["data"] == f"action=done&item={world['items']['G8']}"
    # The report step is done through its form: only the link.
    assert [b["action"]["type"] for b in r1["footer"]["contents"]] == ["uri"]
    assert r1["footer"]["contents"][0]["action"]["uri"] == f"{BASE}/items/{world['items']['R1']}"

    [mail] = mails(sink)
    assert mail["Subject"].startswith("งานที่ต้องติดตาม 2 รายการ")
    plain, html = mail.get_body(("plain",)).get_content(), mail.get_body(("html",)).get_content()
    for item in (world["items"]["G8"], world["items"]["R1"]):
        assert f"{BASE}/items/{item}" in plain and f'href="{BASE}/items/{item}"' in html
    assert plain.count("ครบกำหนดในอีก 1 วันทำการ") == 2

    sent = [r for r in rows(world) if r.status == OutboxStatus.SENT]
    assert len({r.delivery_key for r in sent if r.channel == Channel.LINE}) == 1
    assert len({r.delivery_key for r in sent if r.channel == Channel.EMAIL}) == 1
    assert line_pushes_between(Session(world["engine"]), at(date(2024, 8, 1), 0),
                               at(date(2024, 9, 1), 0)) == 1

    # G1 (late since July) falls due at 14:00: today's message has gone, so it waits.
    afternoon = at(date(2024, 8, 8), 14)
    add_reminder(world, "G1", "overdue", "line", afternoon)
    result = pump(world, sends, afternoon)
    assert result.sent == 0 and result.released == 1
    [waiting] = [r for r in rows(world) if r.status == OutboxStatus.QUEUED]
    assert waiting.next_try_at == at(date(2024, 8, 9), 8, 30)
    assert len(fake_line.state.snapshot()) == 1
    assert pump(world, sends, at(date(2024, 8, 9), 8, 30)).sent == 1
    assert len(fake_line.state.snapshot()) == 2


def test_digest_of_a_day_gone_by_is_not_sent(world, transports, fake_line):
    """Friday 17:00's digest, delivered on Monday, would sit beside Monday's own: cancelled."""
    sends, sink = transports
    with Session(world["engine"]) as session:
        coordinator = get_by_username(session, "coordinator")
        for day in (date(2024, 8, 2), date(2024, 8, 5)):
            queued = at(day, 17 if day.day == 2 else 8)
            session.add(OutboxMessage(
                idempotency_key=f"digest|{day}|user:{coordinator.id}|email",
                channel=Channel.EMAIL, recipient=coordinator.email, user_id=coordinator.id,
                rung="digest", subject=f"สรุป {day}", body="...", next_try_at=queued,
                created_at=queued))
        session.commit()
    result = pump(world, sends, at(date(2024, 8, 5), 8, 30))
    assert result.sent == 1 and result.cancelled == 1
    [mail] = mails(sink)
    assert mail["Subject"] == "สรุป 2024-08-05"
    old = [r for r in rows(world) if r.status == OutboxStatus.CANCELLED]
    assert [r.idempotency_key.split("|")[1] for r in old] == ["2024-08-02"]


def test_past_the_quota_threshold_a_reminder_goes_by_email_and_coordinators_told_once(
        world, transports, fake_line):
    sends, sink = transports
    policy = DeliveryPolicy(base_url=BASE, line_monthly_quota=10, quota_threshold=0.8)
    tuesday = at(date(2024, 8, 6), 8, 30)
    with Session(world["engine"]) as session:  # 8 pushes went out this month already
        for i in range(8):
            session.add(OutboxMessage(
                idempotency_key=f"earlier-{i}", channel=Channel.LINE, recipient=STAFF_LINE,
                subject="s", body="b", status=OutboxStatus.SENT, next_try_at=tuesday,
                created_at=tuesday, sent_at=at(date(2024, 8, 1), 9)))
        session.commit()
    assert line_pushes_this_month(Session(world["engine"]), tuesday, BKK) == 8
    add_reminder(world, "G8", "reminder-3", "line", tuesday)
    pump(world, sends, tuesday, policy)
    assert fake_line.state.snapshot() == []  # nothing more on LINE
    line_row = next(r for r in rows(world) if r.rung == "reminder-3" and r.channel == "line")
    assert line_row.status == OutboxStatus.CANCELLED and "e-mail" in line_row.last_error
    # The e-mail row goes out on the next pass; the coordinator's notice too.
    pump(world, sends, tuesday, policy)
    subjects = sorted(m["Subject"] for m in mails(sink))
    assert len(subjects) == 2
    assert subjects[0].startswith("LINE ใช้โควตาข้อความเดือน สิงหาคม 2567 ไปแล้ว 8 จาก 10")
    assert subjects[1].startswith("แจ้งเตือน:")
    assert [m["To"] for m in mails(sink)].count(world["email"]) == 1

    # The urgent rung still goes on LINE; the coordinators are not told again this month.
    add_reminder(world, "R1", "reminder-1", "line", at(date(2024, 8, 8), 8, 30))
    add_reminder(world, "G1", "overdue", "line", at(date(2024, 8, 8), 8, 30))
    pump(world, sends, at(date(2024, 8, 8), 8, 30), policy)
    pump(world, sends, at(date(2024, 8, 8), 8, 30), policy)
    [push] = fake_line.state.snapshot()
    assert len(bubbles(push)) == 1  # G1 only; R1's reminder-1 went by e-mail
    with Session(world["engine"]) as session:
        notices = session.exec(select(OutboxMessage).where(
            OutboxMessage.rung == "line-quota")).all()
        assert len(notices) == 1 and notices[0].channel == Channel.EMAIL
        assert session.exec(select(OutboxMessage).where(
            col(OutboxMessage.rung) == "reminder-1", OutboxMessage.channel == "email")).one()


def test_month_bounds_are_bangkok_calendar_months():
    late_on_the_31st = datetime(2024, 8, 31, 18, tzinfo=ZoneInfo("UTC"))  # 1 Sep in Bangkok
    assert month_start(late_on_the_31st, BKK) == at(date(2024, 9, 1), 0)
    assert next_month_start(at(date(2024, 12, 5), 9), BKK) == at(date(2025, 1, 1), 0)
