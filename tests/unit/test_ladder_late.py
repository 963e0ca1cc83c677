"""The district's ``late`` reminders (issue 13): every N working days after the due date, at most
``up_to`` times, on the real 2567 calendar; the escalations run beside them, never instead."""

from datetime import date, timedelta

import pytest

from domain.calendar import WorkCalendar
from domain.errors import InvalidInput
from domain.ladder import DEFAULT_LADDER, LATE, Ladder, LateRule, ladder_from_config, rungs_due

CAL = WorkCalendar()


def jul(day: int) -> date:
    return date(2024, 7, day)


def aug(day: int) -> date:
    return date(2024, 8, day)


def sep(day: int) -> date:
    return date(2024, 9, day)


def with_late(every: int, up_to: int | None) -> Ladder:
    return Ladder(DEFAULT_LADDER.rungs, DEFAULT_LADDER.renotify_every, LateRule(every, up_to))


def late_days(due_on: date, ladder: Ladder, calendar: WorkCalendar = CAL, days: int = 45) -> list[date]:
    """The ``late`` occurrences a daily sweep (weekends and holidays included) would name."""
    seen: list[date] = []
    for n in range(days):
        for due in rungs_due(due_on, due_on + timedelta(days=n), ladder, calendar):
            if due.rung.code == LATE and due.occurrence not in seen:
                seen.append(due.occurrence)
    return seen


@pytest.mark.parametrize(("due_on", "every", "up_to", "expected"), [
    # Fri 9 Aug; Mon 12 Aug is Mother's Day: +2 is Wed 14, then every 2 working days, five times.
    (aug(9), 2, 5, [aug(14), aug(16), aug(20), aug(22), aug(26)]),
    # Fri 19 Jul; 22 Jul (Asalha Bucha and Khao Phansa in lieu) and 29 Jul (the King's birthday
    # in lieu) are not working days.
    (jul(19), 2, 5, [jul(24), jul(26), jul(31), aug(2), aug(6)]),
    (aug(9), 3, None, [aug(15), aug(20), aug(23), aug(28), sep(2), sep(5), sep(10), sep(13),
                        sep(18)]),
    (aug(9), 1, 3, [aug(13), aug(14), aug(15)]),
    (aug(9), 2, 1, [aug(14)]),
    # Due on a Saturday: the working days are counted from it.
    (aug(10), 2, 2, [aug(14), aug(16)]),
])
def test_late_repeats_every_n_working_days_up_to_the_cap(due_on, every, up_to, expected):
    assert late_days(due_on, with_late(every, up_to)) == expected


def test_a_province_closure_is_not_counted():
    # Closed Wed 14 and Thu 15: the working days after the 9th are 13, 16, 19, 20, 21, 22 Aug.
    calendar = WorkCalendar(extra_closures=[aug(14), aug(15)])
    assert late_days(aug(9), with_late(2, 3), calendar) == [aug(16), aug(20), aug(22)]


@pytest.mark.parametrize(("today", "expected"), [
    (aug(9), ("due-today", aug(9))),
    (aug(13), ("due-today", aug(9))),   # +1: the due day's notice still holds (a late sweep)
    (aug(14), ("late", aug(14))),
    (aug(15), ("late", aug(14))),       # a sweep that missed Wednesday still names it
    (aug(17), ("late", aug(16))),       # Saturday
    (aug(26), ("late", aug(26))),       # the fifth and last
    (aug(27), ("late", aug(26))),
    (aug(28), None),                    # the fifth's window is over: nothing more to the district
    (sep(30), None),
])
def test_the_district_rung_of_each_day(today, expected):
    district = [d for d in rungs_due(aug(9), today, DEFAULT_LADDER, CAL) if d.rung.offset <= 2
                and d.rung.code in ("due-today", LATE)]
    assert (district and (district[0].rung.code, district[0].occurrence) or None) == expected


@pytest.mark.parametrize(("today", "escalation"), [
    (aug(14), ("coordinator", aug(14))),
    (aug(16), ("coordinator", aug(16))),
    (aug(19), ("provincial-head", aug(19))),
    (aug(26), ("provincial-head", aug(23))),
    (aug(28), ("provincial-head", aug(27))),
])
def test_the_escalations_come_on_top_of_late_never_instead(today, escalation):
    due = rungs_due(aug(9), today, DEFAULT_LADDER, CAL)
    assert (due[-1].rung.code, due[-1].occurrence) == escalation
    assert (due[0].rung.code == LATE) == (today <= aug(27))


def test_late_speaks_to_the_district_on_its_channels():
    rung = DEFAULT_LADDER.late.rung
    assert (rung.code, [str(a) for a in rung.audience], rung.channels) == (
        "late", ["district_staff", "district_head"], ("line", "email"))
    assert not rung.grouped and not rung.via_digest


@pytest.mark.parametrize(("late", "expected"), [
    ({"every": 3, "up_to": 2}, LateRule(3, 2)),
    ({"every": 1, "up_to": None}, LateRule(1, None)),
    ({"every": 2, "up_to": 4, "audience": ["district_staff"], "channels": ["email"]},
     LateRule(2, 4, ("district_staff",), ("email",))),
])
def test_the_yaml_late_setting(late, expected):
    raw = {"rungs": [{"code": "due-today", "offset": 0, "audience": ["district_staff"],
                      "channels": ["email"]}], "late": late}
    assert ladder_from_config(raw).late == expected


def test_late_null_switches_the_repeats_off():
    raw = {"rungs": [{"code": "due-today", "offset": 0, "audience": ["district_staff"],
                      "channels": ["email"]}], "late": None}
    ladder = ladder_from_config(raw)
    assert ladder.late is None and late_days(aug(9), ladder) == []
    assert rungs_due(aug(9), aug(14), ladder, CAL) == ()  # the due day's notice held two days


def test_a_ladder_without_late_gets_the_default():
    raw = {"rungs": [{"code": "due-today", "offset": 0, "audience": ["district_staff"],
                      "channels": ["email"]}]}
    assert ladder_from_config(raw).late == LateRule(2, 5)


def test_the_errors_are_bilingual():
    raw = {"rungs": [{"code": "due-today", "offset": 0, "audience": ["district_staff"],
                      "channels": ["email"]}], "late": {"every": 0}}
    with pytest.raises(InvalidInput) as caught:
        ladder_from_config(raw)
    assert "late.every must be at least 1 working day" in caught.value.message_en
    assert "late.every ต้องอย่างน้อย 1 วันทำการ" in caught.value.message_th
