"""The coordinators' digest on the demo database: what it lists, when, to whom, and only once a day."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from domain.calendar import WorkCalendar
from domain.ladder import DEFAULT_LADDER
from models.directive import DirectiveStep, ItemStatus, TrackedItem, find_item
from models.org import District
from models.outbox import OutboxMessage, OutboxStatus
from models.report import Report, ReportStatus
from models.user import get_by_username
from notifications.line import MAX_TEXT
from notifications.render import render_email_html
from tests.conftest import NOW
from tidtam.app.digest import late_and_upcoming, send_digests
from tidtam.app.escalation import DirectiveRules

BKK = ZoneInfo("Asia/Bangkok")
DISTRICTS = [f"270{n}" for n in range(1, 10)]
BOARD = "http://tidtam.test/directives/fy2567-sakaeo-volunteer-centers"


def bkk(*args: int) -> datetime:
    return datetime(*args, tzinfo=BKK)


def digest(session, when):
    return send_digests(session, when, tz=BKK, base_url="http://tidtam.test")


def rows(session, **where):
    query = select(OutboxMessage).where(OutboxMessage.rung == "digest")
    for name, value in where.items():
        query = query.where(getattr(OutboxMessage, name) == value)
    return session.exec(query.order_by(OutboxMessage.id)).all()


def close(session, directive, step_code, districts):
    for code in districts:
        item = find_item(session, directive.id, code, step_code)
        item.status = ItemStatus.DONE
        session.add(item)
    session.flush()


@pytest.fixture
def coordinator(session, launched):
    user = get_by_username(session, "coordinator")
    user.line_user_id = "U" + "c" * 32
    session.add(user)
    session.flush()
    return user


@pytest.fixture
def province(session, launched, coordinator):
    """13 Aug 2567: most steps done; some late; a report waiting; one person's LINE refused."""
    for step in ("G1", "G2", "A1", "A2", "G3", "G4", "A3", "G5", "G6", "G7"):
        close(session, launched, step, DISTRICTS)
    close(session, launched, "G8", DISTRICTS[:6])          # 2707-2709 late on G8
    close(session, launched, "R1", ["2701", "2702"])       # 2704 has submitted, awaiting review
    session.add(Report(directive_id=launched.id, district_code="2704", status=ReportStatus.SUBMITTED,
                       content={}, created_at=NOW, updated_at=NOW,
                       submitted_at=bkk(2024, 8, 9, 15, 45)))
    close(session, launched, "R1", ["2704"])
    staff = get_by_username(session, "staff-2705")
    staff.line_user_id, staff.line_route_error = "U" + "5" * 32, "LINE 400: The property, 'to', is invalid"
    session.add(staff)
    session.flush()
    return launched


def test_one_message_per_channel_to_each_coordinator_at_0830(session, province, coordinator):
    result = digest(session, bkk(2024, 8, 13, 8, 0))
    sent = rows(session)
    assert result.enqueued == 2
    assert [(r.user_id, r.channel, r.status) for r in sent] == [
        (coordinator.id, "line", OutboxStatus.QUEUED), (coordinator.id, "email", OutboxStatus.QUEUED)]
    assert [r.recipient for r in sent] == ["U" + "c" * 32, "coordinator@demo.tidtam.local"]
    assert {r.next_try_at.astimezone(BKK) for r in sent} == {bkk(2024, 8, 13, 8, 30)}
    assert sent[0].idempotency_key == f"digest|2024-08-13|province:27|user:{coordinator.id}|line"
    assert (sent[0].item_id, sent[0].step_id, sent[0].district_code) == (None, None, None)


def test_it_lists_late_districts_by_step_reports_to_review_and_broken_routes(session, province):
    digest(session, bkk(2024, 8, 13, 8, 0))
    email = rows(session, channel="email")[0]
    assert email.subject == ("สรุปงานประจำวัน 13 ส.ค. 2567: เลยกำหนด 9 รายการ · รายงานรอตรวจ 1 ฉบับ"
                             " · ส่ง LINE ไม่ถึง 1 คน")
    body = email.body
    # G8 and R1 were due Fri 9 Aug; Tue 13 Aug is 1 working day later (Mon 12 Aug, Mother's Day).
    assert "- G8 สรุปผลการดำเนินงานและรายงานผู้บังคับบัญชาตามลำดับ (ครบกำหนด 9 ส.ค. 2567)\n" \
        "อ.เขาฉกรรจ์ (1), อ.โคกสูง (1), อ.วังสมบูรณ์ (1)\n" in body
    r1 = body.split("- R1 ")[1].split("\n")[1]
    assert r1 == ("อ.ตาพระยา (1), อ.วัฒนานคร (1), อ.อรัญประเทศ (1), อ.เขาฉกรรจ์ (1), อ.โคกสูง (1), "
                  "อ.วังสมบูรณ์ (1)")
    assert "*" not in body  # nobody has reached the coordinator's rung (2 working days) yet
    assert "รายงานที่รอจังหวัดตรวจ 1 ฉบับ (" + BOARD + "/reports)\n" \
        "- อ.วังน้ำเย็น ส่งเมื่อ 9 ส.ค. 2567 15:45 น." in body
    assert "ส่งข้อความ LINE ไม่ถึง 1 คน" in body and "http://tidtam.test/outbox" in body
    assert "(staff-2705): LINE 400: The property, 'to', is invalid" in body
    assert "หนังสือสั่งการทั้งหมดของจังหวัด: http://tidtam.test/provinces/27/directives\n" in body
    assert ("■ หนังสือ สก ๐๐๑๙/ว ๒๕๒ เรื่อง การขับเคลื่อน" in body
            and f"ดูสถานะทุกอำเภอ: {BOARD}\n" in body)


def test_districts_at_the_coordinators_rung_are_marked_to_chase(session, province):
    digest(session, bkk(2024, 8, 14, 8, 0))  # 2 working days after 9 Aug: the coordinator's rung
    body = rows(session, channel="email")[0].body
    r1 = body.split("- R1 ")[1].split("\n")[1]
    assert r1.count("(2)*") == 6
    assert "* คือถึงขั้นที่จังหวัดต้องเร่งรัด" in body


def test_a_step_every_district_is_late_on_takes_one_line(session, launched, coordinator):
    digest(session, bkk(2024, 7, 18, 8, 0))  # G1 and A1 were due 17 Jul; nobody has done them
    body = rows(session, channel="email")[0].body
    assert "(ครบกำหนด 17 ก.ค. 2567)\nทุกอำเภอ (1)\n" in body


def test_steps_due_in_the_next_three_working_days(session, launched, coordinator):
    close(session, launched, "G6", ["2701", "2702"])
    digest(session, bkk(2024, 8, 6, 8, 0))  # Tue: horizon Fri 9 Aug
    body = rows(session, channel="email")[0].body
    upcoming = body.split("ครบกำหนดภายใน 3 วันทำการ")[1]
    assert [line.split()[1] for line in upcoming.splitlines() if line.startswith("- ")] == \
        ["G6", "G7", "G8", "R1"]
    assert "ครบกำหนด 7 ส.ค. 2567 ยังไม่เสร็จ 7 อำเภอ" in upcoming
    late = body.split("อำเภอที่เลยกำหนด")[1].split("ครบกำหนดภายใน")[0]
    assert [line.split()[1] for line in late.splitlines() if line.startswith("- ")] == \
        ["G1", "A1", "G2", "A2", "G3", "G4", "A3", "G5"]


@pytest.mark.parametrize(("when", "why"), [
    (bkk(2024, 8, 12, 8, 0), "Mother's Day"),
    (bkk(2024, 8, 10, 8, 0), "Saturday"),
    (bkk(2024, 8, 11, 8, 0), "Sunday"),
    (bkk(2024, 7, 22, 8, 0), "Asarnha Bucha in lieu"),
])
def test_nothing_on_a_day_the_offices_are_closed(session, province, when, why):
    result = digest(session, when)
    assert (result.enqueued, rows(session)) == (0, []), why


def test_nothing_when_there_is_nothing_to_say(session, launched, coordinator):
    assert digest(session, bkk(2024, 7, 2, 8, 0)).enqueued == 0  # first due date is 17 Jul
    assert rows(session) == []


def test_once_a_day_however_often_it_runs(session, province):
    first = digest(session, bkk(2024, 8, 13, 8, 0))
    again = digest(session, bkk(2024, 8, 13, 11, 0))
    assert (first.enqueued, again.enqueued, again.already_queued) == (2, 0, 2)
    assert digest(session, bkk(2024, 8, 14, 8, 0)).enqueued == 2
    assert len(rows(session)) == 4


def test_a_coordinator_without_a_line_id_is_recorded_not_dropped(session, province, coordinator):
    coordinator.line_user_id = None
    session.add(coordinator)
    session.flush()
    digest(session, bkk(2024, 8, 13, 8, 0))
    line = rows(session, channel="line")[0]
    assert (line.status, line.recipient) == (OutboxStatus.NOT_SENT_NO_CHANNEL, "")


def test_the_line_text_fits_in_one_bubble_even_with_everything_late(session, launched, coordinator):
    """Every step late in 8 of 9 districts (so each is listed by name), 18 routes broken."""
    for step in ("G1", "G2", "G3", "G4", "G5", "G6", "G7", "G8", "A1", "A2", "A3", "R1"):
        close(session, launched, step, ["2705"])
    for code in DISTRICTS:
        for role in ("staff", "head"):
            user = get_by_username(session, f"{role}-{code}")
            user.line_user_id, user.line_route_error = "U" + code * 8, "LINE 400: " + "x" * 300
            session.add(user)
    session.flush()
    digest(session, bkk(2024, 8, 20, 8, 0))
    line, email = rows(session, channel="line")[0], rows(session, channel="email")[0]
    assert len(f"{line.subject}\n\n{line.body}") < MAX_TEXT
    assert "…" in line.body and "และอีก 8 คน" in line.body
    assert "x" * 300 in email.body and "และอีก" not in email.body


def test_the_email_is_also_html(session, province):
    digest(session, bkk(2024, 8, 13, 8, 0))
    email = rows(session, channel="email")[0]
    html = render_email_html(email.subject, email.body)
    assert '<html lang="th">' in html and f'<a href="{BOARD}/reports"' in html


def test_a_digest_for_one_province_tells_only_that_provinces_coordinators(session, province):
    """`tidtam digest --province 27` (the flow's ``province_code``): another province's run
    enqueues nothing here; Sa Kaeo's is the same as the whole country's."""
    elsewhere = send_digests(session, bkk(2024, 8, 13, 8, 0), tz=BKK, base_url="http://tidtam.test",
                             province_code="10")
    assert (elsewhere.provinces, elsewhere.enqueued, rows(session)) == (0, 0, [])
    sakaeo = send_digests(session, bkk(2024, 8, 13, 8, 0), tz=BKK, base_url="http://tidtam.test",
                          province_code="27")
    assert (sakaeo.provinces, sakaeo.enqueued) == (1, 2)
    [(told, to)] = sakaeo.told
    assert told.province.code == "27" and [u.username for u in to] == ["coordinator"]
    assert digest(session, bkk(2024, 8, 13, 8, 0)).already_queued == 2


def test_the_flow_runs_the_same_code(session, province, monkeypatch):
    import flows.coordinator_digest as module

    @contextmanager
    def this_session(_engine=None):
        yield session

    monkeypatch.setattr(module, "session_scope", this_session)
    monkeypatch.setattr(module, "get_engine", lambda: None)
    result = module.coordinator_digest.fn(now=bkk(2024, 8, 13, 8, 0))
    assert (result.provinces, result.enqueued, result.artifacts) == (1, 2, []), \
        "untracked (no flow run), it publishes no artifact"


# --- The plain computation, on rows that never touch a database -----------------------------------

def test_late_and_upcoming_on_plain_objects():
    rules = DirectiveRules(DEFAULT_LADDER, WorkCalendar())
    districts = {c: District(code=c, province_code="27", name_th=f"อำเภอ{c}", name_en=c)
                 for c in ("2701", "2702")}
    early = DirectiveStep(id=1, directive_id=1, order=1, code="S1", kind="guideline", title_th="ก",
                          title_en="a", due_on=date(2024, 8, 7))
    later = DirectiveStep(id=2, directive_id=1, order=2, code="S2", kind="report", title_th="ข",
                          title_en="b", due_on=date(2024, 8, 16))
    items = [(TrackedItem(id=n, directive_id=1, step_id=step.id, district_code=code,
                          due_on=step.due_on), step)
             for n, (step, code) in enumerate([(early, "2701"), (early, "2702"), (later, "2702")])]
    late, upcoming = late_and_upcoming(items, rules, districts, date(2024, 8, 13),
                                       province_districts=2)
    assert [(line.step.code, line.everyone, [(d.code, d.days_late, d.to_chase) for d in line.districts])
            for line in late] == [("S1", True, [("2701", 3, True), ("2702", 3, True)])]
    assert [(line.step.code, line.everyone, [d.code for d in line.districts]) for line in upcoming] == \
        [("S2", False, ["2702"])]
    late, _ = late_and_upcoming(items, rules, districts, date(2024, 8, 8), province_districts=2)
    assert [(d.code, d.days_late, d.to_chase) for d in late[0].districts] == [
        ("2701", 1, False), ("2702", 1, False)]
