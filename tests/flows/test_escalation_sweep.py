"""The escalation sweep on a demo database: what it enqueues, and that it is idempotent."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from models.directive import find_item
from models.outbox import OutboxMessage, OutboxStatus
from models.user import get_by_username
from tests.conftest import NOW
from tidtam.escalation import sweep
from tidtam.tracking import mark_done

BKK = ZoneInfo("Asia/Bangkok")
AUG_12_0900 = datetime(2024, 8, 12, 9, 0, tzinfo=BKK)


@pytest.fixture
def directive(launched):
    return launched


def run(session, when=AUG_12_0900):
    return sweep(session, when, tz=BKK, base_url="http://tidtam.test")


def messages(session, **where):
    query = select(OutboxMessage)
    for name, value in where.items():
        query = query.where(getattr(OutboxMessage, name) == value)
    return session.exec(query).all()


def report_item(session, directive, district):
    return find_item(session, directive.id, district, "R1")


def test_overdue_report_messages_for_every_district(session, directive):
    result = run(session)
    assert result.enqueued > 0
    for district in [f"270{n}" for n in range(1, 10)]:
        item = report_item(session, directive, district)
        rows = messages(session, item_id=item.id, rung="overdue")
        recipients = {(r.user_id, r.channel) for r in rows}
        staff = get_by_username(session, f"staff-{district}")
        head = get_by_username(session, f"head-{district}")
        assert recipients == {(staff.id, "email"), (staff.id, "line"),
                              (head.id, "email"), (head.id, "line")}
        email = next(r for r in rows if r.channel == "email" and r.user_id == staff.id)
        assert email.recipient == f"staff-{district}@demo.tidtam.local"
        assert email.status == OutboxStatus.QUEUED
        assert "9 สิงหาคม 2567" in email.body


def test_line_without_a_linked_id_is_recorded_not_dropped(session, directive):
    run(session)
    line_rows = messages(session, channel="line", rung="overdue")
    assert line_rows and all(r.status == OutboxStatus.NOT_SENT_NO_CHANNEL for r in line_rows)


def test_monday_12_august_is_a_holiday_so_sending_waits_for_tuesday(session, directive):
    run(session)
    queued = messages(session, status=OutboxStatus.QUEUED)
    assert {r.next_try_at.astimezone(BKK) for r in queued} == \
        {datetime(2024, 8, 13, 8, 30, tzinfo=BKK)}


def test_second_sweep_at_the_same_instant_enqueues_nothing(session, directive):
    first = run(session)
    count = len(messages(session))
    second = run(session)
    assert second.enqueued == 0 and second.already_queued == first.enqueued
    assert len(messages(session)) == count


def test_item_done_before_the_sweep_gets_no_message(session, directive):
    item = find_item(session, directive.id, "2703", "G8")  # due 9 Aug, like the report
    mark_done(session, get_by_username(session, "staff-2703"), item.id, now=NOW)
    run(session)
    assert messages(session, item_id=item.id) == []
    assert messages(session, item_id=find_item(session, directive.id, "2704", "G8").id) != []


def test_coordinator_gets_one_message_per_step_listing_late_districts(session, directive):
    run(session, datetime(2024, 8, 14, 9, 0, tzinfo=BKK))  # 2 working days after 9 Aug
    coordinator = get_by_username(session, "coordinator")
    rows = messages(session, user_id=coordinator.id, rung="coordinator", channel="email")
    report_step_id = report_item(session, directive, "2701").step_id
    report_rows = [r for r in rows if r.step_id == report_step_id]
    assert len(report_rows) == 1
    body = report_rows[0].body
    assert all(name in body for name in ("เมืองสระแก้ว", "ตาพระยา", "วังสมบูรณ์"))


def test_nothing_before_the_first_reminder(session, directive):
    result = run(session, datetime(2024, 7, 5, 9, 0, tzinfo=BKK))
    assert result.enqueued == 0
