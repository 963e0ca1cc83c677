"""The review messages on the database (SQLite and PostgreSQL): returning, accepting and
reopening a report tell the district's staff and head, in the transaction of the change; a
resubmission tells the coordinators; a double click is one message, a second return a new one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from domain.errors import Conflict
from models.outbox import Channel, OutboxMessage, OutboxStatus
from models.user import get_by_username
from tests.db import test_reporting as reports
from tidtam.app import review
from tidtam.infra.photos import PhotoStore

SLUG = "fy2567-sakaeo-volunteer-centers"
DISTRICT = reports.DISTRICT
FORM = f"/directives/{SLUG}/districts/{DISTRICT}/report"


@pytest.fixture
def store(tmp_path) -> PhotoStore:
    return PhotoStore(tmp_path / "photos")


def rows(session, rung: str, channel: Channel | None = None) -> list[OutboxMessage]:
    session.expire_all()  # cancellations are bulk updates
    query = select(OutboxMessage).where(OutboxMessage.rung == rung)
    if channel is not None:
        query = query.where(OutboxMessage.channel == channel)
    return list(session.exec(query.order_by(OutboxMessage.id)))


def people(session, *names):
    return {get_by_username(session, n).id for n in names}


def returned(session, store, comment="เพิ่มรูปกิจกรรมครั้งที่ 3") -> int:
    version = reports.submitted(session, store)
    return reports.return_report(session, get_by_username(session, "coordinator"), DISTRICT,
                                 comment=comment, expected_version=version,
                                 now=reports.LATER).version


def test_returning_tells_the_district_staff_and_head_with_the_comment_and_the_link(
        session, launched, store):
    staff = get_by_username(session, f"staff-{DISTRICT}")
    staff.line_user_id = "U" + "a" * 32  # staff on LINE too; the head by e-mail only
    session.add(staff)
    returned(session, store)
    sent = rows(session, review.RETURNED)
    assert {(r.user_id, r.channel) for r in sent} == {
        (uid, ch) for uid in people(session, f"staff-{DISTRICT}", f"head-{DISTRICT}")
        for ch in (Channel.LINE, Channel.EMAIL)}
    by = {(r.user_id, r.channel): r for r in sent}
    head = get_by_username(session, f"head-{DISTRICT}")
    assert by[(staff.id, Channel.LINE)].status == OutboxStatus.QUEUED
    assert by[(staff.id, Channel.LINE)].recipient == staff.line_user_id
    assert by[(head.id, Channel.EMAIL)].recipient == head.email
    assert by[(head.id, Channel.LINE)].status == OutboxStatus.NOT_SENT_NO_CHANNEL
    for row in sent:
        assert (row.district_code, row.directive_id, row.item_id) == (DISTRICT, launched.id, None)
        assert row.report_id is not None
        assert "ส่งรายงานกลับให้แก้ไข" in row.subject and "อรัญประเทศ" in row.subject
        assert "เพิ่มรูปกิจกรรมครั้งที่ 3" in row.body
        assert FORM in row.body
        assert "returned the report" in row.body
        # LATER is Tuesday 16 July 2567 11:00 in Bangkok, inside office hours: sent at once.
        assert row.next_try_at == reports.LATER
    assert not rows(session, review.RESUBMITTED)  # a first submission tells no one of that


def test_accepting_tells_the_district_and_cancels_a_return_still_queued(session, launched,
                                                                       store):
    coordinator = get_by_username(session, "coordinator")
    version = returned(session, store)
    version = reports.submit_report(session, get_by_username(session, f"staff-{DISTRICT}"),
                                    DISTRICT, expected_version=version,
                                    now=reports.LATER + timedelta(minutes=5)).version
    reports.accept_report(session, coordinator, DISTRICT, expected_version=version,
                          now=reports.LATER + timedelta(minutes=10))
    accepted = rows(session, review.ACCEPTED, Channel.EMAIL)
    assert {r.user_id for r in accepted} == people(session, f"staff-{DISTRICT}",
                                                   f"head-{DISTRICT}")
    assert all("จังหวัดรับรายงานแล้ว" in r.subject and FORM in r.body for r in accepted)
    assert {r.status for r in accepted} == {OutboxStatus.QUEUED}
    # The return still queued is superseded: the district need not correct anything now.
    assert {r.status for r in rows(session, review.RETURNED, Channel.EMAIL)} == {
        OutboxStatus.CANCELLED}
    # And the coordinators' notice of the resubmission is answered by the review itself.
    assert {r.status for r in rows(session, review.RESUBMITTED, Channel.EMAIL)} == {
        OutboxStatus.CANCELLED}


def test_reopening_tells_the_district_with_the_reason(session, launched, store):
    version = reports.accepted(session, store)
    reports.reopen_report(session, get_by_username(session, "coordinator"), DISTRICT,
                          reason="ตัวเลขผู้เข้าร่วมไม่ตรงกับหลักฐาน", expected_version=version,
                          now=reports.LATER + timedelta(hours=1))
    reopened = rows(session, review.REOPENED, Channel.EMAIL)
    assert {r.user_id for r in reopened} == people(session, f"staff-{DISTRICT}",
                                                   f"head-{DISTRICT}")
    assert all("ตัวเลขผู้เข้าร่วมไม่ตรงกับหลักฐาน" in r.body and "เปิดรายงานให้แก้ไข" in r.subject
               for r in reopened)
    assert {r.status for r in rows(session, review.ACCEPTED, Channel.EMAIL)} == {
        OutboxStatus.CANCELLED}


def test_a_resubmission_tells_the_coordinators(session, launched, store):
    version = returned(session, store)
    reports.submit_report(session, get_by_username(session, f"staff-{DISTRICT}"), DISTRICT,
                          expected_version=version, now=reports.LATER + timedelta(days=1))
    sent = rows(session, review.RESUBMITTED)
    coordinator = get_by_username(session, "coordinator")
    assert {(r.user_id, r.channel) for r in sent} == {(coordinator.id, Channel.LINE),
                                                      (coordinator.id, Channel.EMAIL)}
    email = next(r for r in sent if r.channel == Channel.EMAIL)
    assert (email.status, email.recipient) == (OutboxStatus.QUEUED, coordinator.email)
    assert "ส่งรายงานที่แก้ไขแล้วอีกครั้ง" in email.subject and FORM in email.body
    assert "เพิ่มรูปกิจกรรมครั้งที่ 3" in email.body  # the comment it answers


def test_a_double_click_is_one_message_and_a_second_return_a_new_one(session, launched, store):
    coordinator = get_by_username(session, "coordinator")
    version = returned(session, store)
    # The second click of the same return: refused by the version check, nothing enqueued …
    with pytest.raises(Conflict):
        reports.return_report(session, coordinator, DISTRICT, comment="อีกครั้ง",
                              expected_version=version - 1, now=reports.LATER)
    # … and the same notice enqueued again (a retried request) is the same key: no new row.
    report = session.get(OutboxMessage, rows(session, review.RETURNED)[0].id).report_id
    from models.report import Report
    again = review.notify_district(session, session.get(Report, report), launched,
                                   review.RETURNED, reports.LATER, reviewer=coordinator,
                                   comment="เพิ่มรูปกิจกรรมครั้งที่ 3")
    assert (again.enqueued, again.already_queued) == (0, 4)
    assert len(rows(session, review.RETURNED, Channel.EMAIL)) == 2  # staff and head, once each
    # Resubmitted and returned again, the same day: a new message to each.
    version = reports.submit_report(session, get_by_username(session, f"staff-{DISTRICT}"),
                                    DISTRICT, expected_version=version,
                                    now=reports.LATER + timedelta(minutes=5)).version
    reports.return_report(session, coordinator, DISTRICT, comment="ยังขาดรูปครั้งที่ 3",
                          expected_version=version, now=reports.LATER + timedelta(minutes=10))
    emails = rows(session, review.RETURNED, Channel.EMAIL)
    assert len(emails) == 4 and len({r.idempotency_key for r in emails}) == 4
    assert [r.status for r in emails].count(OutboxStatus.QUEUED) == 2
    assert sum("ยังขาดรูปครั้งที่ 3" in r.body for r in emails) == 2


def test_a_review_after_office_hours_waits_for_the_next_opening(session, launched, store):
    version = reports.submitted(session, store)
    evening = datetime(2024, 7, 16, 13, 0, tzinfo=UTC)  # Tuesday 20:00 in Bangkok
    reports.accept_report(session, get_by_username(session, "coordinator"), DISTRICT,
                          expected_version=version, now=evening)
    assert {r.next_try_at for r in rows(session, review.ACCEPTED)} == {
        datetime(2024, 7, 17, 1, 30, tzinfo=UTC)}  # Wednesday 08:30


def test_the_messages_go_with_the_change_when_it_rolls_back(session, launched, store):
    version = reports.submitted(session, store)
    nested = session.begin_nested()
    reports.accept_report(session, get_by_username(session, "coordinator"), DISTRICT,
                          expected_version=version, now=reports.LATER)
    assert rows(session, review.ACCEPTED)
    nested.rollback()
    assert not rows(session, review.ACCEPTED)
