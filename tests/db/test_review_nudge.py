"""The review nudge on the database (SQLite and PostgreSQL): submitting a report enqueues the
reminder to the coordinators for the day its review is late; reviewing it, or closing the
directive, cancels it; a resubmission enqueues a fresh one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from models.outbox import Channel, OutboxMessage, OutboxStatus
from models.user import get_by_username
from tests.db import test_reporting as reports
from tidtam.app.directives import close_directive
from tidtam.app.review import RUNG
from tidtam.infra.photos import PhotoStore

SLUG = "fy2567-sakaeo-volunteer-centers"
DISTRICT = reports.DISTRICT
# tests.conftest.NOW, Tuesday 16 July 2567 10:00 in Bangkok: 3 working days later is Friday 19.
FRIDAY_0830 = datetime(2024, 7, 19, 1, 30, tzinfo=UTC)


@pytest.fixture
def store(tmp_path) -> PhotoStore:
    return PhotoStore(tmp_path / "photos")


def nudges(session, channel: Channel | None = Channel.EMAIL) -> list[OutboxMessage]:
    """The reminders (by e-mail unless told: the demo coordinator has no LINE, so that row is
    'not sent: no channel' from the start and has nothing to cancel)."""
    session.expire_all()  # the cancellations are bulk updates
    query = select(OutboxMessage).where(OutboxMessage.rung == RUNG)
    if channel is not None:
        query = query.where(OutboxMessage.channel == channel)
    return list(session.exec(query.order_by(OutboxMessage.id)))


def test_submitting_enqueues_the_reminder_to_every_coordinator_on_line_and_email(session,
                                                                                launched, store):
    reports.submitted(session, store)
    rows = nudges(session, None)
    coordinator = get_by_username(session, "coordinator")
    assert {(r.user_id, r.channel) for r in rows} == {(coordinator.id, Channel.LINE),
                                                      (coordinator.id, Channel.EMAIL)}
    for row in rows:
        assert row.next_try_at == FRIDAY_0830
        assert (row.district_code, row.directive_id, row.item_id, row.step_id) == (
            DISTRICT, launched.id, None, None)
        assert row.report_id is not None
        assert "อรัญประเทศ" in row.subject and "เกิน 3 วันทำการ" in row.subject
        assert f"/directives/{SLUG}/districts/{DISTRICT}/report" in row.body
        assert "waited more than 3 working days" in row.body
    email = next(r for r in rows if r.channel == Channel.EMAIL)
    assert (email.status, email.recipient) == (OutboxStatus.QUEUED, coordinator.email)
    line = next(r for r in rows if r.channel == Channel.LINE)
    assert line.status == OutboxStatus.NOT_SENT_NO_CHANNEL  # visible: the coordinator has no LINE


def test_returning_cancels_it_and_the_resubmission_enqueues_a_fresh_one(session, launched,
                                                                        store):
    coordinator = get_by_username(session, "coordinator")
    version = reports.submitted(session, store)
    version = reports.return_report(session, coordinator, DISTRICT, comment="เพิ่มรูป",
                                    expected_version=version, now=reports.LATER).version
    assert {r.status for r in nudges(session)} == {OutboxStatus.CANCELLED}
    reports.submit_report(session, get_by_username(session, f"staff-{DISTRICT}"), DISTRICT,
                          expected_version=version, now=reports.LATER + timedelta(days=1))
    rows = nudges(session)
    assert [r.status for r in rows] == [OutboxStatus.CANCELLED, OutboxStatus.QUEUED]
    assert len({r.idempotency_key for r in rows}) == 2  # a new key: the report's new version
    # Counted from the resubmission (Wednesday 17): Thursday, Friday, then Tuesday 23 July
    # (Monday 22 is Asarnha Bucha's day in lieu).
    assert rows[1].next_try_at == datetime(2024, 7, 23, 1, 30, tzinfo=UTC)


def test_accepting_cancels_it(session, launched, store):
    reports.accepted(session, store)
    rows = nudges(session)
    assert len(rows) == 1 and {r.status for r in rows} == {OutboxStatus.CANCELLED}
    assert {r.last_error for r in rows} == {"report reviewed before the reminder"}


def test_closing_the_directive_cancels_it_and_the_reminders_of_other_reports_stay(
        session, launched, store):
    reports.submitted(session, store)
    close_directive(session, get_by_username(session, "coordinator"), SLUG, reason="สิ้นปีงบ",
                    now=reports.LATER)
    assert {r.status for r in nudges(session)} == {OutboxStatus.CANCELLED}


def test_a_report_of_another_district_keeps_its_own_reminder(session, launched, store):
    coordinator = get_by_username(session, "coordinator")
    version = reports.submitted(session, store)
    reports.submitted(session, store, "2701")
    reports.accept_report(session, coordinator, DISTRICT, expected_version=version,
                          now=reports.LATER)
    by_district = {(r.district_code, r.status) for r in nudges(session)}
    assert by_district == {(DISTRICT, OutboxStatus.CANCELLED), ("2701", OutboxStatus.QUEUED)}
