"""One sweep and one digest over a province following several letters at once (issue 11).

Sa Kaeo follows the FY 2567 letter and a second letter of its own with the same (overlapping)
dates; a third was closed by the coordinator; a fourth closes itself a working day after the
Department's date. One run of each flow handles them all, and every message names its letter.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from domain.directive import DirectiveSpec
from models.directive import Directive, DirectiveStatus, DirectiveStep, TrackedItem
from models.outbox import OutboxMessage, OutboxStatus, to_people
from models.report import Report, ReportStatus
from models.user import get_by_username
from tests.conftest import NOW
from tidtam.app.digest import send_digests
from tidtam.app.directives import AUTO_CLOSE_ACTOR, close_directive
from tidtam.app.escalation import sweep
from tidtam.app.tracking import launch_directive

BKK = ZoneInfo("Asia/Bangkok")
BASE = "http://tidtam.test"


def bkk(*args: int) -> datetime:
    return datetime(*args, tzinfo=BKK)


def another_letter(first: Directive, slug: str, reference_no: str, **changes) -> DirectiveSpec:
    """A second letter of the province: the first one's YAML under another slug and number."""
    spec = DirectiveSpec.model_validate(first.definition)
    return spec.model_copy(update={"slug": slug, "reference_no": reference_no,
                                   "title_th": f"หนังสือทดสอบ {slug}", **changes}, deep=True)


def launch(session, spec: DirectiveSpec) -> Directive:
    return launch_directive(session, spec, now=NOW).directive


@pytest.fixture
def letters(session, launched):
    """The FY 2567 letter, a second active one with the same dates, and a closed third one."""
    second = launch(session, another_letter(launched, "sakaeo-second-letter", "สก ๐๐๑๙/ว ๓๐๐"))
    third = launch(session, another_letter(launched, "sakaeo-closed-letter", "สก ๐๐๑๙/ว ๙๙๙"))
    close_directive(session, get_by_username(session, "coordinator"), third.slug,
                    reason="ยกเลิกตามหนังสือจังหวัด / cancelled by the province", now=NOW)
    # A report left waiting for review in the closed letter: still no section in the digest.
    session.add(Report(directive_id=third.id, district_code="2704", status=ReportStatus.SUBMITTED,
                       content={}, created_at=NOW, updated_at=NOW, submitted_at=NOW))
    session.flush()
    return launched, second, third


def outbox(session) -> list[OutboxMessage]:
    """The messages to people (the launches' and closings' Prefect events are not)."""
    session.expire_all()  # bulk cancels bypass the rows already loaded
    return list(session.exec(select(OutboxMessage).where(to_people()).order_by(OutboxMessage.id)))


def directive_of(session, message: OutboxMessage) -> Directive:
    """The letter a message is about: through its item, or its step for a grouped one."""
    if message.item_id is not None:
        directive_id = session.get(TrackedItem, message.item_id).directive_id
    else:
        directive_id = session.get(DirectiveStep, message.step_id).directive_id
    return session.get(Directive, directive_id)


def test_one_sweep_and_one_digest_cover_both_letters_and_name_them(session, letters):
    first, second, closed = letters
    at = bkk(2024, 8, 13, 9, 0)  # G8 and R1 (9 Aug) are late in both letters
    swept = sweep(session, at, tz=BKK, base_url=BASE)
    assert set(swept.directives) >= {first.slug, second.slug}
    assert closed.slug not in swept.directives
    digest = send_digests(session, bkk(2024, 8, 13, 8, 0), tz=BKK, base_url=BASE)
    assert digest.provinces == 1

    chased = [m for m in outbox(session) if m.rung != "digest"]
    letters_chased = {directive_of(session, m).slug for m in chased}
    assert letters_chased == {first.slug, second.slug}, "a closed letter gets no message"
    for message in chased:
        reference = directive_of(session, message).reference_no
        assert f"หนังสือ {reference}" in message.subject
        assert reference in message.body
    # The same district and step in two letters are two messages, under two keys.
    due_today = [m for m in chased if m.rung == "due-today" and m.district_code == "2701"
                 and m.channel == "email" and session.get(TrackedItem, m.item_id).due_on.day == 9]
    assert len({m.idempotency_key for m in due_today}) == len(due_today) > 0
    assert {directive_of(session, m).slug for m in due_today} == {first.slug, second.slug}

    coordinator = get_by_username(session, "coordinator")
    digests = [m for m in outbox(session) if m.rung == "digest"]
    assert [(m.user_id, m.channel) for m in digests if m.channel == "email"] == [
        (coordinator.id, "email")], "one digest per coordinator and channel, not one per letter"
    body = next(m.body for m in digests if m.channel == "email")
    assert body.count("■ หนังสือ ") == 2
    assert f"■ หนังสือ {first.reference_no} เรื่อง {first.title_th}" in body
    assert f"■ หนังสือ {second.reference_no} เรื่อง {second.title_th}" in body
    assert closed.reference_no not in body
    assert f"{BASE}/directives/{first.slug}/" not in body.split(second.reference_no)[1]
    assert f"ดูสถานะทุกอำเภอ: {BASE}/directives/{second.slug}\n" in body
    assert "ใน 2 หนังสือสั่งการ" in next(m.subject for m in digests if m.channel == "email")

    # A repeat of both at the same instants adds nothing.
    count = len(outbox(session))
    assert sweep(session, at, tz=BKK, base_url=BASE).enqueued == 0
    assert send_digests(session, bkk(2024, 8, 13, 8, 0), tz=BKK, base_url=BASE).enqueued == 0
    assert len(outbox(session)) == count


def test_the_sweep_can_be_told_one_directive(session, letters):
    first, second, _ = letters
    result = sweep(session, bkk(2024, 8, 13, 9, 0), tz=BKK, base_url=BASE, directive=second)
    assert result.directives == [second.slug] and result.enqueued > 0
    assert {directive_of(session, m).slug for m in outbox(session)} == {second.slug}


def test_a_closed_directive_named_to_the_sweep_gets_nothing(session, letters):
    _, _, closed = letters
    result = sweep(session, bkk(2024, 8, 13, 9, 0), tz=BKK, base_url=BASE, directive=closed)
    assert (result.directives, result.enqueued, outbox(session)) == ([], 0, [])


def test_the_sweep_closes_a_directive_on_its_day_and_cancels_what_it_queued(session, letters):
    first, second, _ = letters
    # Closes itself 1 working day after the Department's date (Thu 15 Aug): Fri 16 Aug.
    closing = launch(session, another_letter(first, "sakaeo-closing-letter", "สก ๐๐๑๙/ว ๔๐๐",
                                             close_after_working_days=1))
    before = sweep(session, bkk(2024, 8, 14, 9, 0), tz=BKK, base_url=BASE)
    assert before.closed == [] and closing.slug in before.directives
    written = [m for m in outbox(session) if directive_of(session, m).id == closing.id]
    # queued, but for the LINE rows of people without a linked LINE account (recorded, not sent)
    queued = [m for m in written if m.status == OutboxStatus.QUEUED]
    assert queued and {m.status for m in written} <= {OutboxStatus.QUEUED,
                                                      OutboxStatus.NOT_SENT_NO_CHANNEL}

    on_the_day = sweep(session, bkk(2024, 8, 16, 9, 0), tz=BKK, base_url=BASE)
    assert on_the_day.closed == [closing.slug]
    assert closing.slug not in on_the_day.directives
    session.refresh(closing)
    assert (closing.status, closing.closed_by) == (DirectiveStatus.CLOSED, AUTO_CLOSE_ACTOR)
    assert "close_after_working_days" in closing.close_reason
    mine = [m for m in outbox(session) if directive_of(session, m).id == closing.id]
    assert {m.id for m in mine} == {m.id for m in written}, "nothing new for a closed letter"
    assert {m.status for m in mine if m.id in {q.id for q in queued}} == {OutboxStatus.CANCELLED}
    others = [m for m in outbox(session) if directive_of(session, m).id in (first.id, second.id)
              and m.status == OutboxStatus.QUEUED]
    assert others, "the other letters are still chased"

    digest = send_digests(session, bkk(2024, 8, 16, 8, 0), tz=BKK, base_url=BASE)
    assert digest.closed == []  # closed already, by the sweep
    body = next(m.body for m in outbox(session) if m.rung == "digest" and m.channel == "email")
    assert closing.reference_no not in body and first.reference_no in body


def test_the_digest_closes_a_directive_on_its_day_too(session, letters):
    first, _, _ = letters
    closing = launch(session, another_letter(first, "sakaeo-closing-letter", "สก ๐๐๑๙/ว ๔๐๐",
                                             close_after_working_days=1))
    result = send_digests(session, bkk(2024, 8, 16, 8, 0), tz=BKK, base_url=BASE)
    assert result.closed == [closing.slug]
    body = next(m.body for m in outbox(session) if m.rung == "digest" and m.channel == "email")
    assert closing.reference_no not in body
