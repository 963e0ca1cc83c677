"""The escalation sweep on a demo database: what it enqueues, when it may go out, and what it cancels."""

from __future__ import annotations

import copy
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from models.directive import ItemStatus, find_item
from models.line import LineGroup
from models.outbox import OutboxMessage, OutboxStatus, to_people
from models.user import get_by_username
from tests.conftest import NOW
from tidtam.app.escalation import cancel_grouped_for_closed_steps, sweep
from tidtam.app.tracking import mark_done

BKK = ZoneInfo("Asia/Bangkok")
AUG_12_0900 = datetime(2024, 8, 12, 9, 0, tzinfo=BKK)
DISTRICTS = [f"270{n}" for n in range(1, 10)]


@pytest.fixture
def directive(launched):
    return launched


def bkk(*args: int) -> datetime:
    return datetime(*args, tzinfo=BKK)


def run(session, when=AUG_12_0900):
    return sweep(session, when, tz=BKK, base_url="http://tidtam.test")


def messages(session, **where):
    """The messages to people (the launch's Prefect event is none)."""
    query = select(OutboxMessage).where(to_people())
    for name, value in where.items():
        query = query.where(getattr(OutboxMessage, name) == value)
    return session.exec(query).all()


def report_item(session, directive, district):
    return find_item(session, directive.id, district, "R1")


def close(session, directive, step_code, districts):
    """Mark items done directly, as a report submission (or any other use case) leaves them."""
    for code in districts:
        item = find_item(session, directive.id, code, step_code)
        item.status = ItemStatus.DONE
        session.add(item)
    session.flush()


def without_digest(session, directive):
    """The directive as a province that does not deploy the digest writes it: via_digest false."""
    definition = dict(directive.definition)
    ladder = dict(definition["ladder"])
    ladder["rungs"] = [dict(r, via_digest=False) if r["code"] == "coordinator" else r
                       for r in ladder["rungs"]]
    directive.definition = definition | {"ladder": ladder}
    session.add(directive)
    session.flush()


def test_due_today_report_messages_for_every_district(session, directive):
    result = run(session)
    assert result.enqueued > 0
    for district in DISTRICTS:
        item = report_item(session, directive, district)
        rows = messages(session, item_id=item.id, rung="due-today")
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
    line_rows = messages(session, channel="line", rung="due-today")
    assert line_rows and all(r.status == OutboxStatus.NOT_SENT_NO_CHANNEL for r in line_rows)


@pytest.mark.parametrize(("when", "slot", "why"), [
    (bkk(2024, 8, 12, 9, 0), bkk(2024, 8, 13, 8, 30), "Mon 12 Aug, Mother's Day: Tuesday"),
    (bkk(2024, 8, 10, 8, 30), bkk(2024, 8, 13, 8, 30), "Saturday before the holiday: Tuesday"),
    (bkk(2024, 8, 3, 8, 30), bkk(2024, 8, 5, 8, 30), "Saturday: Monday 08:30"),
    (bkk(2024, 8, 4, 20, 0), bkk(2024, 8, 5, 8, 30), "Sunday evening: Monday 08:30"),
    (bkk(2024, 8, 5, 7, 0), bkk(2024, 8, 5, 8, 30), "before the office opens: 08:30"),
    (bkk(2024, 8, 5, 8, 30), bkk(2024, 8, 5, 8, 30), "the scheduled run: at once"),
    (bkk(2024, 8, 5, 16, 29), bkk(2024, 8, 5, 16, 29), "a minute before closing: at once"),
    (bkk(2024, 8, 5, 16, 30), bkk(2024, 8, 6, 8, 30), "at closing time: the next morning"),
    (bkk(2024, 8, 9, 18, 0), bkk(2024, 8, 13, 8, 30), "Friday evening: over the long weekend"),
])
def test_every_row_waits_for_the_next_office_hour_slot(session, directive, when, slot, why):
    result = run(session, when)
    rows = messages(session, status=OutboxStatus.QUEUED)
    assert result.enqueued and rows, why
    assert {r.next_try_at.astimezone(BKK) for r in rows} == {slot}, why


def test_a_weekend_sweep_sends_nothing_that_day_and_what_came_due_goes_out_monday(session, directive):
    """No sweep ran on Friday 2 Aug (G5 due; reminder-3 for G6/G7): Saturday's catches up, for Monday."""
    run(session, bkk(2024, 8, 3, 8, 30))
    rows = messages(session, status=OutboxStatus.QUEUED)
    g5 = find_item(session, directive.id, "2701", "G5")
    g6 = find_item(session, directive.id, "2701", "G6")
    assert {(r.rung, r.item_id) for r in rows if r.item_id in (g5.id, g6.id)} == {
        ("due-today", g5.id), ("reminder-3", g6.id)}
    assert all(r.next_try_at.astimezone(BKK) == bkk(2024, 8, 5, 8, 30) for r in rows)
    count = len(messages(session))
    sunday = run(session, bkk(2024, 8, 4, 8, 30))
    assert sunday.enqueued == 0 and len(messages(session)) == count  # the same occurrences
    run(session, bkk(2024, 8, 5, 8, 30))
    # Monday is -2 for G6 (still reminder-3's occurrence of 2 Aug) and +1 for G5 (due-today's)
    assert (len(messages(session, item_id=g5.id)), len(messages(session, item_id=g6.id))) == (4, 2)


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


def test_the_coordinator_rung_goes_to_the_digest_not_to_a_message_of_its_own(session, directive):
    result = run(session, bkk(2024, 8, 14, 9, 0))  # 2 working days after 9 Aug
    assert messages(session, rung="coordinator") == []
    assert "coordinator" not in result.by_rung
    # ...on top of the district's own: its staff and head hear "late" the same day (issue 13).
    r1 = report_item(session, directive, "2701")
    told = {(r.user_id, r.channel) for r in messages(session, rung="late", item_id=r1.id)}
    staff, head = (get_by_username(session, f"{who}-2701") for who in ("staff", "head"))
    assert told == {(staff.id, "email"), (staff.id, "line"), (head.id, "email"), (head.id, "line")}
    assert result.by_rung["late"] > 0


def test_without_the_digest_the_coordinator_gets_one_message_per_step(session, directive):
    without_digest(session, directive)
    run(session, bkk(2024, 8, 14, 9, 0))
    coordinator = get_by_username(session, "coordinator")
    rows = messages(session, user_id=coordinator.id, rung="coordinator", channel="email")
    report_rows = [r for r in rows if r.step_id == report_item(session, directive, "2701").step_id]
    assert len(report_rows) == 1
    assert all(name in report_rows[0].body for name in ("เมืองสระแก้ว", "ตาพระยา", "วังสมบูรณ์"))


def test_the_provincial_head_gets_one_email_per_step_listing_late_districts(session, directive):
    close(session, directive, "R1", ["2701", "2702"])
    run(session, bkk(2024, 8, 19, 9, 0))  # 5 working days after 9 Aug
    head = get_by_username(session, "province-head")
    rows = [r for r in messages(session, user_id=head.id, rung="provincial-head")
            if r.step_id == report_item(session, directive, "2703").step_id]
    assert [(r.channel, r.item_id, r.district_code) for r in rows] == [("email", None, None)]
    assert "7 อำเภอ" in rows[0].subject
    assert "ตาพระยา" in rows[0].body and "เมืองสระแก้ว" not in rows[0].body


def test_nothing_before_the_first_reminder(session, directive):
    result = run(session, bkk(2024, 7, 5, 9, 0))
    assert result.enqueued == 0


# --- Cancelling --------------------------------------------------------------------------------

def test_a_grouped_message_is_cancelled_once_every_district_it_lists_is_done(session, directive):
    run(session, bkk(2024, 8, 19, 9, 0))
    step_r1 = report_item(session, directive, "2701").step_id
    step_g8 = find_item(session, directive.id, "2701", "G8").step_id
    grouped = {r.step_id: r for r in messages(session, rung="provincial-head")}
    assert {step_r1, step_g8} <= set(grouped)
    close(session, directive, "R1", DISTRICTS)        # every district has now reported
    close(session, directive, "G8", DISTRICTS[:-1])   # one district is still open on G8
    assert cancel_grouped_for_closed_steps(session) == 1
    session.expire_all()
    assert session.get(OutboxMessage, grouped[step_r1].id).status == OutboxStatus.CANCELLED
    assert session.get(OutboxMessage, grouped[step_g8].id).status == OutboxStatus.QUEUED


def test_the_last_district_marking_a_step_done_cancels_the_grouped_message_at_once(
        session, directive):
    """No wait for the next sweep: a grouped list queued over a weekend is not sent stale."""
    run(session, bkk(2024, 8, 19, 9, 0))
    step_g8 = find_item(session, directive.id, "2701", "G8").step_id
    grouped = next(r for r in messages(session, rung="provincial-head") if r.step_id == step_g8)
    close(session, directive, "G8", DISTRICTS[:-1])
    last = find_item(session, directive.id, DISTRICTS[-1], "G8")
    mark_done(session, get_by_username(session, f"staff-{DISTRICTS[-1]}"), last.id,
              now=bkk(2024, 8, 19, 10, 0))
    session.expire_all()
    assert session.get(OutboxMessage, grouped.id).status == OutboxStatus.CANCELLED


def test_the_sweep_cancels_what_is_queued_for_items_done_since(session, directive):
    run(session, bkk(2024, 8, 19, 9, 0))
    r1_2701 = report_item(session, directive, "2701")
    step_r1 = r1_2701.step_id
    close(session, directive, "R1", DISTRICTS)
    result = run(session, bkk(2024, 8, 19, 10, 0))
    assert result.cancelled >= 1
    pending = [r for r in messages(session, status=OutboxStatus.QUEUED)
               if r.step_id == step_r1 or r.item_id == r1_2701.id]
    assert pending == []


def test_a_done_item_is_never_chased_again(session, directive):
    run(session, bkk(2024, 8, 9, 8, 30))
    item = find_item(session, directive.id, "2705", "G8")
    assert messages(session, item_id=item.id, status=OutboxStatus.QUEUED)
    mark_done(session, get_by_username(session, "staff-2705"), item.id, now=bkk(2024, 8, 9, 8, 0))
    assert messages(session, item_id=item.id, status=OutboxStatus.QUEUED) == []
    for day in (13, 14, 15, 16, 19, 20):
        run(session, bkk(2024, 8, day, 8, 30))
    assert messages(session, item_id=item.id, status=OutboxStatus.QUEUED) == []


# --- The district's LINE group -----------------------------------------------------------------

def bind_group(session, district_code: str, group_id: str) -> None:
    session.add(LineGroup(group_id=group_id, district_code=district_code, joined_at=NOW,
                          bound_at=NOW))
    session.flush()


def test_district_rungs_also_push_once_to_the_districts_line_group(session, directive):
    bind_group(session, "2701", "C2701aaaaaaaaaaaaaaaaaaaaaaaaaaaa")
    run(session, bkk(2024, 8, 9, 8, 30))
    run(session, bkk(2024, 8, 9, 10, 0))
    to_group = messages(session, recipient="C2701aaaaaaaaaaaaaaaaaaaaaaaaaaaa")
    r1 = report_item(session, directive, "2701")
    g8 = find_item(session, directive.id, "2701", "G8")
    assert sorted((r.item_id, r.rung, r.channel, r.user_id) for r in to_group
                  if r.rung != "late") == sorted([
        (r1.id, "due-today", "line", None), (g8.id, "due-today", "line", None)])
    # the steps due earlier and still open: 2701's late reminders, once each, to its group too
    late = [r for r in to_group if r.rung == "late"]
    assert late and len({r.item_id for r in late}) == len(late)
    assert all(r.status == OutboxStatus.QUEUED and r.district_code == "2701" for r in to_group)
    others = [r for r in messages(session, channel="line", rung="due-today") if r.user_id is None]
    assert {r.district_code for r in others} == {"2701"}


def test_the_provincial_rungs_do_not_go_to_the_districts_group(session, directive):
    """The demo's provincial-head rung is grouped and e-mail only, so it could never reach a
    group; made per item and on LINE too (a province may), it reaches the provincial head about
    2702's items, and still nothing goes to 2702's group."""
    definition = copy.deepcopy(directive.definition)
    [rung] = [r for r in definition["ladder"]["rungs"] if r["code"] == "provincial-head"]
    rung.update(channels=["line", "email"], grouped=False)
    directive.definition = definition
    session.add(directive)
    bind_group(session, "2702", "C2702bbbbbbbbbbbbbbbbbbbbbbbbbbbb")
    run(session, bkk(2024, 8, 19, 9, 0))
    head = get_by_username(session, "province-head")
    assert messages(session, rung="provincial-head", channel="line", user_id=head.id,
                    district_code="2702")
    to_group = {r.rung for r in messages(session, recipient="C2702bbbbbbbbbbbbbbbbbbbbbbbbbbbb")}
    assert to_group == {"late"}  # the district's own rung reaches its group; the head's does not


def test_reminders_go_to_the_group_too_and_only_its_own_districts_items(session, directive):
    bind_group(session, "2703", "C2703cccccccccccccccccccccccccccc")
    run(session, bkk(2024, 8, 6, 8, 30))  # reminder-3 for R1/G8 (due 9 Aug), reminder-1 for G6/G7
    rows = messages(session, recipient="C2703cccccccccccccccccccccccccccc")
    codes = {find_item(session, directive.id, "2703", step).id: step
             for step in ("R1", "G8", "G6", "G7")}
    assert {r.district_code for r in rows} == {"2703"}
    assert sorted((codes[r.item_id], r.rung) for r in rows if r.rung != "late") == [
        ("G6", "reminder-1"), ("G7", "reminder-1"), ("G8", "reminder-3"), ("R1", "reminder-3")]


# --- Late districts keep hearing (issue 13) -----------------------------------------------------

WORKING_DAYS_9_TO_30_AUG = [9, 13, 14, 15, 16, 19, 20, 21, 22, 23, 26, 27, 28, 29, 30]


def occurrences(session, item, rung):
    """The days a rung spoke of an item: the occurrence in each row's key, once per day."""
    return sorted({m.idempotency_key.split("|")[1] for m in messages(session, item_id=item.id,
                                                                      rung=rung)})


def test_a_late_district_hears_every_two_working_days_up_to_five_times_then_stops(
        session, directive):
    """Swept every working morning from the due date: 2705's open G8 (due 9 Aug) gets due-today on
    the 9th, then late on +2, +4, +6, +8, +10 working days (Mother's Day, 12 Aug, not counted),
    and nothing after the fifth; 2706, done on the 15th, heard late once and nothing after."""
    staff, head = (get_by_username(session, f"{who}-2705") for who in ("staff", "head"))
    r1_2705, r1_2706 = (find_item(session, directive.id, d, "G8") for d in ("2705", "2706"))
    for day in WORKING_DAYS_9_TO_30_AUG:
        run(session, bkk(2024, 8, day, 8, 30))
        if day == 15:
            mark_done(session, get_by_username(session, "staff-2706"), r1_2706.id,
                      now=bkk(2024, 8, 15, 10, 0))
    assert occurrences(session, r1_2705, "due-today") == ["2024-08-09"]
    assert occurrences(session, r1_2705, "late") == [
        "2024-08-14", "2024-08-16", "2024-08-20", "2024-08-22", "2024-08-26"]
    for occurrence in occurrences(session, r1_2705, "late"):
        rows = [m for m in messages(session, item_id=r1_2705.id, rung="late")
                if f"|{occurrence}|" in m.idempotency_key]
        assert {(m.user_id, m.channel) for m in rows} == {
            (staff.id, "email"), (staff.id, "line"), (head.id, "email"), (head.id, "line")}
    assert occurrences(session, r1_2706, "late") == ["2024-08-14"]
    assert messages(session, item_id=r1_2706.id, status=OutboxStatus.QUEUED) == []
    # The provincial head's rung ran on top all along (every 2 working days from the 19th).
    step = [m for m in messages(session, rung="provincial-head") if m.step_id == r1_2705.step_id]
    assert sorted({m.idempotency_key.split("|")[1] for m in step}) == [
        "2024-08-19", "2024-08-21", "2024-08-23", "2024-08-27", "2024-08-29"]


def test_the_provincial_head_reads_warned_only_for_districts_that_were(session, directive):
    """The head's e-mail counts what was SENT to each district about the item since its due date:
    2705's due-today and two late messages went out; 2707's stayed in the outbox."""
    from models.org import District

    r1_2705 = report_item(session, directive, "2705")
    for day in (9, 13, 14, 15, 16):
        run(session, bkk(2024, 8, day, 8, 30))
        for m in messages(session, item_id=r1_2705.id, status=OutboxStatus.QUEUED):
            m.status, m.sent_at = OutboxStatus.SENT, bkk(2024, 8, day, 8, 31)
            session.add(m)
        session.flush()
    run(session, bkk(2024, 8, 19, 8, 30))
    head = get_by_username(session, "province-head")
    [email] = [m for m in messages(session, user_id=head.id, rung="provincial-head")
               if m.step_id == r1_2705.step_id]
    name = {code: session.get(District, code).name_th for code in ("2705", "2707")}
    assert f"อำเภอ{name['2705']} เลยกำหนด 5 วันทำการ · แจ้งเตือนอำเภอแล้ว 3 ครั้ง" in email.body
    assert f"อำเภอ{name['2707']} เลยกำหนด 5 วันทำการ · ยังไม่ได้แจ้งเตือนอำเภอ" in email.body
    assert "ได้แจ้งเตือนแล้ว 1 จาก 9 อำเภอ" in email.body
    assert "ได้แจ้งเตือนอำเภอดังกล่าวแล้ว" not in email.body
