"""Seven weeks of FY 2567 in Sa Kaeo, day by day: who receives which message, and when.

From 1 Jul to 20 Aug 2567 the digest runs at 08:00 and the sweep at 08:30 every day (weekends
and holidays too, which must change nothing), a stand-in pump sends what is due, and the
districts finish their steps on the days below. The tables of what each person receives are
written by hand from the ladder (docs/architecture.md, "The escalation ladder") and the 2567 calendar:

    Jul  12 Fri  reminder-3 for G1 (due Wed 17 Jul)      20-22 Jul  Asarnha Bucha, Lent, in lieu
         16 Tue  reminder-1 for G1                        28-29 Jul  the King's birthday, in lieu
         17 Wed  due-today G1; 19 Jul: the coordinator's rung (+2, in the digest) and, on top,
                 the district's late G1 (+2), then every 2 working days five times: 24, 26, 31
                 Jul, 2 Aug
         25 Thu  the provincial head's rung for G1 (+5), then every 2 working days:
                 30 Jul, 1, 5, 7, 9, 14 Aug (12 Aug is Mother's Day), 16 Aug ...
    Aug   6 Tue  reminder-3 for G8 and R1 (due Fri 9 Aug)
          8 Thu  reminder-1;  9 Fri due-today;  14 Wed the coordinator's rung and late;
                 16 Fri late;  19 Mon the provincial head's;  20 Tue late
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlmodel import col, select

from domain.calendar import WorkCalendar
from models.directive import DirectiveStep, ItemStatus, find_item
from models.line import LineGroup
from models.outbox import OutboxMessage, OutboxStatus, cancel_pending_for_item, to_people
from models.report import Report, ReportStatus
from models.user import User, get_by_username
from tests.conftest import NOW
from tidtam.app.digest import send_digests
from tidtam.app.escalation import sweep
from tidtam.app.tracking import mark_done

BKK = ZoneInfo("Asia/Bangkok")
BASE = "http://tidtam.test"
FIRST, LAST = date(2024, 7, 1), date(2024, 8, 20)
ON_TIME = ["2701", "2702", "2704", "2705", "2706", "2708"]
LATE = ["2703", "2707", "2709"]
OTHER_STEPS = ["G2", "G3", "G4", "G5", "G6", "G7", "A1", "A2", "A3"]
GROUP_2709 = "C" + "9" * 32
WITH_LINE = {"staff-2703", "head-2703", "coordinator"}

# (day, hour) -> what the districts do that day: (district, step, how)
EVENTS: dict[tuple[date, int], list[tuple[str, str, str]]] = {
    # Everyone finishes the steps that are not watched here; six districts finish everything.
    (date(2024, 7, 10), 14): [(d, s, "done") for d in ON_TIME + LATE for s in OTHER_STEPS]
    + [(d, s, "done") for d in ON_TIME for s in ("G1", "G8")]
    + [(d, "R1", "accepted") for d in ON_TIME],
    (date(2024, 7, 15), 14): [("2703", "G1", "done")],       # after reminder-3, before reminder-1
    (date(2024, 7, 18), 14): [("2707", "G1", "done")],       # one working day late
    (date(2024, 8, 8), 14): [("2707", "R1", "submitted")],   # after the 08:30 reminder-1
    (date(2024, 8, 9), 10): [("2707", "G8", "done")],        # on the due date, after due-today
    (date(2024, 8, 13), 14): [("2703", "R1", "submitted"), ("2707", "R1", "accepted")],
    (date(2024, 8, 15), 14): [("2709", "G1", "done")],       # the day before a re-notify
}


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=BKK)


def deliver(session, now: datetime) -> None:
    """The pump, reduced to what matters here: a queued message to people is sent at its
    next_try_at (the Prefect events of the marks and the launch are not this test's: they are
    not messages to anyone, and stay queued)."""
    session.execute(update(OutboxMessage)
                    .where(OutboxMessage.status == OutboxStatus.QUEUED, OutboxMessage.next_try_at <= now,
                           to_people())
                    .values(status=OutboxStatus.SENT, sent_at=OutboxMessage.next_try_at)
                    .execution_options(synchronize_session=False))


def act(session, directive, district: str, step: str, how: str, now: datetime) -> None:
    item = find_item(session, directive.id, district, step)
    staff = get_by_username(session, f"staff-{district}")
    if step != "R1":
        mark_done(session, staff, item.id, now=now)
        return
    # The report step: as tidtam.app.reporting's submit leaves it (item done, pending cancelled).
    report = session.exec(select(Report).where(Report.directive_id == directive.id,
                                               Report.district_code == district)).first()
    if report is None:
        report = Report(directive_id=directive.id, district_code=district, content={},
                        created_at=now, updated_at=now, submitted_at=now)
    report.status = ReportStatus(how)
    session.add(report)
    if item.status == ItemStatus.OPEN:
        item.status, item.completed_by_id, item.completed_at = ItemStatus.DONE, staff.id, now
        item.version += 1
        session.add(item)
        cancel_pending_for_item(session, item.id)
    session.flush()


def run_timeline(session, directive, *, last: date = LAST,
                 events: dict[tuple[date, int], list[tuple[str, str, str]]] = EVENTS) -> None:
    """Every day from FIRST to ``last``: the digest, the sweep, the deliveries, and ``events``."""
    day = FIRST
    while day <= last:
        send_digests(session, at(day, 8), tz=BKK, base_url=BASE)
        sweep(session, at(day, 8, 30), tz=BKK, base_url=BASE)
        deliver(session, at(day, 8, 30))
        for hour in (10, 14):
            for district, step, how in events.get((day, hour), []):
                act(session, directive, district, step, how, at(day, hour))
        deliver(session, at(day, 23, 59))
        day += timedelta(days=1)


def setup_people(session) -> None:
    for username in WITH_LINE:
        user = get_by_username(session, username)
        user.line_user_id = "U" + username.encode().hex()[:32].ljust(32, "0")
        session.add(user)
    session.add(LineGroup(group_id=GROUP_2709, district_code="2709", joined_at=NOW, bound_at=NOW))
    session.flush()


def received(session) -> list[tuple[date, str, str, str | None, str]]:
    """(day, who, rung, step code, channel) of every message sent, in order."""
    users = {u.id: u.username for u in session.exec(select(User))}
    steps = {s.id: s.code for s in session.exec(select(DirectiveStep))}
    rows = session.exec(select(OutboxMessage).where(OutboxMessage.status == OutboxStatus.SENT)
                        .order_by(OutboxMessage.sent_at, OutboxMessage.id)).all()
    return [(r.sent_at.astimezone(BKK).date(),
             users[r.user_id] if r.user_id else f"group:{r.district_code}",
             r.rung, steps.get(r.step_id), r.channel.value) for r in rows]


def both(*rows: tuple[date, str, str | None]) -> list[tuple[date, str, str | None, str]]:
    """Each (day, rung, step) on LINE and by email."""
    return [(day, rung, step, channel) for day, rung, step in rows for channel in ("line", "email")]


def email(*rows: tuple[date, str, str | None]) -> list[tuple[date, str, str | None, str]]:
    return [(day, rung, step, "email") for day, rung, step in rows]


def line(*rows: tuple[date, str, str | None]) -> list[tuple[date, str, str | None, str]]:
    return [(day, rung, step, "line") for day, rung, step in rows]


def jul(n: int) -> date:
    return date(2024, 7, n)


def aug(n: int) -> date:
    return date(2024, 8, n)


REMINDERS_G8_R1 = [(aug(6), "reminder-3", "G8"), (aug(6), "reminder-3", "R1"),
                   (aug(8), "reminder-1", "G8"), (aug(8), "reminder-1", "R1")]
G1_ALL_THREE = [(jul(12), "reminder-3", "G1"), (jul(16), "reminder-1", "G1"),
                (jul(17), "due-today", "G1")]
# The district's late reminders: G1 (due 17 Jul) five times, the fifth on 2 Aug; G8 and R1 (due
# 9 Aug) on +2, +4, +6 up to the 20th.
LATE_G1 = [(d, "late", "G1") for d in (jul(19), jul(24), jul(26), jul(31), aug(2))]
LATE_G8 = [(d, "late", "G8") for d in (aug(14), aug(16), aug(20))]
LATE_R1 = [(d, "late", "R1") for d in (aug(14), aug(16), aug(20))]

EXPECTED = {
    # Done on 15 Jul: reminded on the 12th, not chased on the 16th. Never does G8; reports on the
    # 13th, before R1's first late day.
    "staff-2703": both((jul(12), "reminder-3", "G1"), *REMINDERS_G8_R1,
                       (aug(9), "due-today", "G8"), (aug(9), "due-today", "R1"), *LATE_G8),
    "head-2703": both((aug(9), "due-today", "G8"), (aug(9), "due-today", "R1"), *LATE_G8),
    # G1 a day late, before its first late day; R1 done on the 8th after its reminder-1; G8 done
    # on the 9th after 08:30.
    "staff-2707": email(*G1_ALL_THREE, *REMINDERS_G8_R1, (aug(9), "due-today", "G8")),
    "head-2707": email((jul(17), "due-today", "G1"), (aug(9), "due-today", "G8")),
    # G1 done only on 15 Aug (its five late reminders were all said by then); G8 and R1 never.
    # Its LINE group hears what staff and head hear.
    "staff-2709": email(*G1_ALL_THREE, *LATE_G1, *REMINDERS_G8_R1,
                        (aug(9), "due-today", "G8"), (aug(9), "due-today", "R1"), *LATE_G8, *LATE_R1),
    "head-2709": email((jul(17), "due-today", "G1"), *LATE_G1, (aug(9), "due-today", "G8"),
                       (aug(9), "due-today", "R1"), *LATE_G8, *LATE_R1),
    "group:2709": line(*G1_ALL_THREE, *LATE_G1, *REMINDERS_G8_R1,
                       (aug(9), "due-today", "G8"), (aug(9), "due-today", "R1"), *LATE_G8, *LATE_R1),
    # G1 from +5 (25 Jul) every 2 working days until 2709 finishes on 15 Aug; G8 and R1 at +5.
    "province-head": email(*[(d, "provincial-head", "G1")
                             for d in (jul(25), jul(30), aug(1), aug(5), aug(7), aug(9), aug(14))],
                           (aug(19), "provincial-head", "G8"), (aug(19), "provincial-head", "R1")),
}
DIGEST_DAYS = [jul(n) for n in (12, 15, 16, 17, 18, 19, 23, 24, 25, 26, 30, 31)] + \
              [aug(n) for n in (1, 2, 5, 6, 7, 8, 9, 13, 14, 15, 16, 19, 20)]
EXPECTED["coordinator"] = both(*[(d, "digest", None) for d in DIGEST_DAYS])


def test_seven_weeks_day_by_day(session, launched):
    setup_people(session)
    run_timeline(session, launched)
    got = received(session)
    by_person: dict[str, list] = {}
    for day, who, rung, step, channel in got:
        by_person.setdefault(who, []).append((day, rung, step, channel))

    # Exactly these people, exactly these messages, on exactly these days.
    for who, expected in EXPECTED.items():
        assert sorted(by_person.get(who, [])) == sorted(expected), who
    assert set(by_person) == set(EXPECTED)  # the six on-time districts receive nothing
    assert Counter(who for _, who, *_ in got) == {
        "coordinator": 50, "staff-2703": 20, "staff-2709": 20, "group:2709": 20, "province-head": 9,
        "staff-2707": 8, "head-2703": 10, "head-2709": 14, "head-2707": 2}

    # No coordinator-rung message of its own: the digest carries it.
    assert not [row for row in got if row[2] == "coordinator"]

    # Only on working days, and only at 08:30 (everything is written at 08:00 or 08:30).
    calendar = WorkCalendar()
    sent_at = session.exec(select(OutboxMessage.sent_at)
                           .where(OutboxMessage.status == OutboxStatus.SENT)).all()
    assert {s.astimezone(BKK).time() for s in sent_at} == {time(8, 30)}
    assert all(calendar.is_working_day(s.astimezone(BKK).date()) for s in sent_at)
    quiet = {jul(20), jul(21), jul(22), jul(27), jul(28), jul(29), aug(10), aug(11), aug(12)}
    assert not [row for row in got if row[0] in quiet]

    # Nobody is chased for an item done the day before (or earlier that day).
    for (day, _hour), events in EVENTS.items():
        for district, step, _how in events:
            chased = [row for row in got if row[0] > day and row[3] == step
                      and row[1] in (f"staff-{district}", f"head-{district}", f"group:{district}")]
            assert chased == [], (district, step, day)

    # People without a LINE id: each LINE message is kept, visibly not sent, never dropped.
    unsent = session.exec(select(OutboxMessage).where(
        OutboxMessage.status == OutboxStatus.NOT_SENT_NO_CHANNEL)).all()
    users = {u.id: u.username for u in session.exec(select(User))}
    assert {r.channel for r in unsent} == {"line"}
    assert Counter(users[r.user_id] for r in unsent) == {
        "staff-2707": 8, "head-2707": 2, "staff-2709": 20, "head-2709": 14}
    # Everything written was due by 08:30 of a working day and went out then; nothing waits.
    assert not session.exec(select(OutboxMessage).where(
        col(OutboxMessage.status).in_([OutboxStatus.QUEUED, OutboxStatus.CANCELLED]),
        to_people())).all()

    # What the coordinator read on a few mornings.
    digests = {r.sent_at.astimezone(BKK).date(): r.body for r in session.exec(
        select(OutboxMessage).where(OutboxMessage.rung == "digest", OutboxMessage.channel == "email"))}
    assert "ครบกำหนดภายใน 3 วันทำการ\n- G1 " in digests[jul(12)] and "ยังไม่เสร็จ 3 อำเภอ" in digests[jul(12)]
    assert "- G1 " in digests[jul(18)] and "อ.เขาฉกรรจ์ (1), อ.วังสมบูรณ์ (1)\n" in digests[jul(18)]
    assert "อ.วังสมบูรณ์ (2)*\n" in digests[jul(19)] and "เขาฉกรรจ์" not in digests[jul(19)]
    assert "อ.วังสมบูรณ์ (18)*" in digests[aug(15)] and "- G1 " not in digests[aug(16)]
    assert "รายงานที่รอจังหวัดตรวจ 1 ฉบับ" in digests[aug(9)]
    assert "- อ.เขาฉกรรจ์ ส่งเมื่อ 8 ส.ค. 2567 14:00 น." in digests[aug(9)]
    assert "- อ.ตาพระยา ส่งเมื่อ 13 ส.ค. 2567 14:00 น." in digests[aug(14)]
    assert "เขาฉกรรจ์ ส่งเมื่อ" not in digests[aug(14)]  # accepted on the 13th
