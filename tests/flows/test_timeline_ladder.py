"""The completed ladder over FY 2567 in Sa Kaeo, 1 July – 31 August 2567, day by day (issue 13).

The replay of tests/flows/test_timeline.py (digest at 08:00, sweep at 08:30, the stand-in pump,
the districts' doings), carried on to the end of August, with one more doing: 2709 finishes G8
on Wed 21 Aug, in the middle of its late reminders. The ladder is the YAML's: late every 2
working days, at most 5 times; the coordinator's rung (+2, in the digest) and the provincial
head's (+5, then every 2 working days) on top. Written by hand from the 2567 calendar:

    G1 (due Wed 17 Jul), 2709 open until 15 Aug: late 19, 24, 26, 31 Jul, 2 Aug (22 and 29 Jul are
        holidays in lieu), then nothing more to the district: the cap, though still open
    G8 (due Fri 9 Aug), 2703 never: late 14, 16, 20, 22, 26 Aug (12 Aug is Mother's Day), then
        the cap; 2709 until 21 Aug 14:00: late 14, 16, 20 Aug, then nothing
    R1 (due Fri 9 Aug), 2709 never: late 14, 16, 20, 22, 26 Aug
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date

from sqlmodel import select

from domain.calendar import WorkCalendar
from models.directive import DirectiveStep
from models.outbox import OutboxMessage, OutboxStatus
from tests.flows.test_timeline import (
    BKK,
    EVENTS,
    ON_TIME,
    aug,
    jul,
    received,
    run_timeline,
    setup_people,
)
from tidtam.app.escalation import rules_for

EXTRA_EVENTS = {(aug(21), 14): [("2709", "G8", "done")]}
ALL_EVENTS = EVENTS | EXTRA_EVENTS

LATE_DAYS = {
    ("2709", "G1"): [jul(19), jul(24), jul(26), jul(31), aug(2)],
    ("2703", "G8"): [aug(14), aug(16), aug(20), aug(22), aug(26)],
    ("2709", "G8"): [aug(14), aug(16), aug(20)],
    ("2709", "R1"): [aug(14), aug(16), aug(20), aug(22), aug(26)],
}
# Who hears a district's late reminders: its staff and head by e-mail (and LINE where linked),
# and 2709's bound LINE group.
HEARERS = {"2703": ["staff-2703", "head-2703"],
           "2709": ["staff-2709", "head-2709", "group:2709"]}


def finished(district: str, step: str) -> date | None:
    """The day the district finished the step in the replay (None: never)."""
    days = [day for (day, _hour), events in ALL_EVENTS.items()
            for d, s, _how in events if (d, s) == (district, step)]
    return min(days) if days else None


def test_two_months_of_the_completed_ladder(session, launched):
    late = rules_for(launched).ladder.late
    assert (late.every, late.up_to) == (2, 5), "the tables below are written for the YAML's ladder"
    setup_people(session)
    run_timeline(session, launched, last=aug(31), events=ALL_EVENTS)
    got = received(session)
    heard: dict[tuple[str, str, str], list[date]] = defaultdict(list)
    for day, who, rung, step, _channel in got:
        if day not in heard[(who, rung, step)]:
            heard[(who, rung, step)].append(day)

    # Late districts are re-told every 2 working days until done, at most five times.
    for (district, step), days in LATE_DAYS.items():
        for who in HEARERS[district]:
            assert sorted(heard[(who, "late", step)]) == days, (who, step)
    calendar = WorkCalendar()
    for (who, rung, step), days in heard.items():
        if rung == "late":
            days = sorted(days)
            gaps = [calendar.working_days_between(a, b) for a, b in zip(days, days[1:], strict=False)]
            assert set(gaps) <= {2}, (who, step, gaps)
            assert len(days) <= 5, (who, step)
    assert {(who, step) for (who, rung, step) in heard if rung == "late"} == {
        (who, step) for (district, step) in LATE_DAYS for who in HEARERS[district]}

    # The coordinator's and the provincial head's rungs come on top, never instead: on a late
    # day the coordinator's digest marks the district to chase, and the head's e-mails about G8
    # and R1 run on from +5 while the districts keep hearing.
    digests = {r.sent_at.astimezone(BKK).date(): r.body for r in session.exec(
        select(OutboxMessage).where(OutboxMessage.rung == "digest", OutboxMessage.channel == "email",
                                    OutboxMessage.status == OutboxStatus.SENT))}
    assert aug(14) in heard[("staff-2703", "late", "G8")]
    assert "อ.ตาพระยา (2)*" in digests[aug(14)] and "อ.วังสมบูรณ์ (2)*" in digests[aug(14)]
    head_days = [aug(19), aug(21), aug(23), aug(27), aug(29)]
    assert sorted(heard[("province-head", "provincial-head", "G8")]) == head_days
    assert sorted(heard[("province-head", "provincial-head", "R1")]) == head_days

    # Nobody is told about a step after finishing it (the day after, or later that same day).
    for (day, _hour), events in ALL_EVENTS.items():
        for district, step, _how in events:
            told = [row for row in got if row[0] > day and row[3] == step
                    and row[1] in (f"staff-{district}", f"head-{district}", f"group:{district}")]
            assert told == [], (district, step, day)
    assert finished("2709", "G8") == aug(21)

    # A district that finished on time was never sent (nor queued, nor recorded) a late row.
    late_rows = session.exec(select(OutboxMessage).where(OutboxMessage.rung == "late")).all()
    assert late_rows and not [r for r in late_rows if r.district_code in ON_TIME]
    assert {r.district_code for r in late_rows} == {"2703", "2709"}
    assert not [r for r in late_rows if r.status == OutboxStatus.QUEUED]

    # What the provincial head read: each district warned as often as it actually was.
    head_emails = {r.sent_at.astimezone(BKK).date(): r.body for r in session.exec(
        select(OutboxMessage).where(OutboxMessage.rung == "provincial-head",
                                    OutboxMessage.status == OutboxStatus.SENT))
        if r.step_id == _step_id(session, launched, "G8")}
    assert "อำเภอตาพระยา เลยกำหนด 5 วันทำการ · แจ้งเตือนอำเภอแล้ว 3 ครั้ง" in head_emails[aug(19)]
    assert "อำเภอวังสมบูรณ์ เลยกำหนด 5 วันทำการ · แจ้งเตือนอำเภอแล้ว 3 ครั้ง" in head_emails[aug(19)]
    assert "อำเภอตาพระยา เลยกำหนด 13 วันทำการ · แจ้งเตือนอำเภอแล้ว 6 ครั้ง" in head_emails[aug(29)]
    assert "วังสมบูรณ์" not in head_emails[aug(23)]  # done on the 21st


def _step_id(session, directive, code: str) -> int:
    return session.exec(select(DirectiveStep.id).where(DirectiveStep.directive_id == directive.id,
                                                       DirectiveStep.code == code)).one()
