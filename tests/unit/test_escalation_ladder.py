"""The escalation ladder of docs/architecture.md against the real 2024 Thai calendar."""

from datetime import date, timedelta

import pytest

from domain.access import Role
from domain.calendar import WorkCalendar
from domain.errors import InvalidInput
from domain.ladder import (
    DEFAULT_LADDER,
    EscalationRung,
    Ladder,
    idempotency_key,
    ladder_from_config,
    reaches,
    rungs_due,
)

CAL = WorkCalendar()
REPORT_DUE = date(2024, 8, 9)  # Friday; Mon 12 Aug is Mother's Day


def said(due_on, today, ladder=DEFAULT_LADDER, calendar=CAL):
    """The rungs reached today as (code, occurrence): the district's first, then an escalation."""
    return [(due.rung.code, due.occurrence) for due in rungs_due(due_on, today, ladder, calendar)]


def test_the_default_ladder_is_the_one_in_the_design():
    rows = [(r.code, r.offset, r.audience, r.channels, r.grouped, r.via_digest)
            for r in DEFAULT_LADDER.rungs]
    staff, head = Role.DISTRICT_STAFF, Role.DISTRICT_HEAD
    assert rows == [
        ("reminder-3", -3, (staff,), ("line", "email"), False, False),
        ("reminder-1", -1, (staff,), ("line", "email"), False, False),
        ("due-today", 0, (staff, head), ("line", "email"), False, False),
        ("coordinator", 2, (Role.COORDINATOR,), ("line", "email"), True, True),
        ("provincial-head", 5, (Role.PROVINCIAL_HEAD,), ("email",), True, False),
    ]
    assert DEFAULT_LADDER.renotify_every == 2
    late = DEFAULT_LADDER.late
    assert (late.every, late.up_to, late.audience, late.channels) == (
        2, 5, (staff, head), ("line", "email"))


def aug(day):
    return date(2024, 8, day)


@pytest.mark.parametrize(("today", "expected"), [
    (aug(1), []),
    (aug(5), []),                                            # Mon, -4 working days
    (aug(6), [("reminder-3", aug(6))]),                      # -3
    (aug(7), [("reminder-3", aug(6))]),
    (aug(8), [("reminder-1", aug(8))]),
    (aug(9), [("due-today", aug(9))]),                       # on the due date
    (aug(10), [("due-today", aug(9))]),                      # Saturday
    (aug(12), [("due-today", aug(9))]),                      # Mother's Day
    (aug(13), [("due-today", aug(9))]),                      # +1
    (aug(14), [("late", aug(14)), ("coordinator", aug(14))]),    # +2: both, on top
    (aug(15), [("late", aug(14)), ("coordinator", aug(14))]),
    (aug(16), [("late", aug(16)), ("coordinator", aug(16))]),    # +4: both repeat
    (aug(17), [("late", aug(16)), ("coordinator", aug(16))]),
    (aug(19), [("late", aug(16)), ("provincial-head", aug(19))]),  # +5
    (aug(20), [("late", aug(20)), ("provincial-head", aug(19))]),  # +6: late 3
    (aug(21), [("late", aug(20)), ("provincial-head", aug(21))]),  # +7: re-notify
    (aug(25), [("late", aug(22)), ("provincial-head", aug(23))]),  # Sunday
    (aug(27), [("late", aug(26)), ("provincial-head", aug(27))]),  # +11: late 5, the last
    (aug(28), [("provincial-head", aug(27))]),                     # +12: the district's cap
    (date(2024, 9, 2), [("provincial-head", date(2024, 9, 2))]),
])
def test_rungs_due_for_the_report_due_9_august_2024(today, expected):
    assert said(REPORT_DUE, today) == expected


def test_a_daily_sweep_over_six_weeks_produces_each_occurrence_once_in_order():
    seen = []
    for offset in range(42):
        for occurrence in said(REPORT_DUE, date(2024, 8, 1) + timedelta(days=offset)):
            if occurrence not in seen:
                seen.append(occurrence)
    assert [s for s in seen if s[0] == "late"] == [
        ("late", aug(14)), ("late", aug(16)), ("late", aug(20)), ("late", aug(22)),
        ("late", aug(26))]
    assert [s for s in seen if s[0] != "late"] == [
        ("reminder-3", date(2024, 8, 6)), ("reminder-1", date(2024, 8, 8)),
        ("due-today", date(2024, 8, 9)),
        ("coordinator", date(2024, 8, 14)), ("coordinator", date(2024, 8, 16)),
        ("provincial-head", date(2024, 8, 19)), ("provincial-head", date(2024, 8, 21)),
        ("provincial-head", date(2024, 8, 23)), ("provincial-head", date(2024, 8, 27)),
        ("provincial-head", date(2024, 8, 29)), ("provincial-head", date(2024, 9, 2)),
        ("provincial-head", date(2024, 9, 4)), ("provincial-head", date(2024, 9, 6)),
        ("provincial-head", date(2024, 9, 10)),
    ]


@pytest.mark.parametrize(("due_on", "today", "expected"), [
    (aug(10), aug(7), [("reminder-3", aug(7))]),                     # due on a Saturday
    (aug(10), aug(12), [("due-today", aug(10))]),
    (aug(10), aug(14), [("late", aug(14)), ("coordinator", aug(14))]),
    (date(2024, 7, 19), date(2024, 7, 23), [("due-today", date(2024, 7, 19))]),  # 22 Jul in lieu
    (date(2024, 7, 19), date(2024, 7, 24),
     [("late", date(2024, 7, 24)), ("coordinator", date(2024, 7, 24))]),
])
def test_rungs_due_around_holidays(due_on, today, expected):
    assert said(due_on, today) == expected


def test_a_province_closure_moves_the_rungs():
    calendar = WorkCalendar(extra_closures=[aug(14)])
    assert said(REPORT_DUE, aug(14), calendar=calendar) == [("due-today", aug(9))]
    assert said(REPORT_DUE, aug(15), calendar=calendar) == [("late", aug(15)),
                                                            ("coordinator", aug(15))]


@pytest.mark.parametrize(("every", "expected"), [
    # 12 Aug (Mother's Day) and the weekends are skipped when counting.
    (3, [aug(19), aug(22), aug(27)]),
    (2, [aug(19), aug(21), aug(23), aug(27)]),
    (5, [aug(19), aug(26)]),
])
def test_renotify_every_n_working_days_at_the_last_escalation(every, expected):
    ladder = Ladder((EscalationRung("provincial-head", 5, (Role.PROVINCIAL_HEAD,), ("email",)),),
                    every, late=None)
    seen = []
    for n in range(20):  # 9-28 Aug
        for _code, occurrence in said(REPORT_DUE, aug(9) + timedelta(days=n), ladder):
            if occurrence not in seen:
                seen.append(occurrence)
    assert seen == expected


def test_renotify_every_working_day():
    ladder = Ladder((EscalationRung("provincial-head", 1, (Role.PROVINCIAL_HEAD,), ("email",)),),
                    1, late=None)
    assert said(REPORT_DUE, aug(14), ladder) == [("provincial-head", aug(14))]
    assert said(REPORT_DUE, aug(12), ladder) == []


def test_idempotency_key():
    key = idempotency_key(rung="due-today", occurrence=date(2024, 8, 9), subject_ref="item:17",
                          recipient_ref="user:5", channel="email")
    assert key == "due-today|2024-08-09|item:17|user:5|email"


def test_idempotency_key_refuses_the_separator_inside_a_part():
    with pytest.raises(ValueError, match="separates"):
        idempotency_key(rung="due-today", occurrence=date(2024, 8, 9), subject_ref="item:1|2",
                        recipient_ref="user:5", channel="email")


DEFAULT_AS_YAML = {
    "renotify_every": 2,
    "rungs": [
        {"code": "provincial-head", "offset": 5, "audience": ["provincial_head"],
         "channels": ["email"], "grouped": True},
        {"code": "reminder-3", "offset": -3, "audience": ["district_staff"],
         "channels": ["line", "email"]},
        {"code": "reminder-1", "offset": -1, "audience": ["district_staff"],
         "channels": ["line", "email"]},
        {"code": "due-today", "offset": 0, "audience": ["district_staff", "district_head"],
         "channels": ["line", "email"]},
        {"code": "coordinator", "offset": 2, "audience": ["coordinator"],
         "channels": ["line", "email"], "grouped": True},
    ],
}


@pytest.mark.parametrize(("audience", "written", "expected"), [
    (["coordinator"], None, True),                   # the digest carries it (docs/architecture.md)
    (["coordinator"], False, False),                 # a province without the digest
    (["coordinator"], True, True),
    (["provincial_head"], None, False),
    (["district_staff", "district_head"], None, False),
    (["coordinator", "provincial_head"], None, False),
])
def test_via_digest_defaults_to_true_for_a_coordinator_only_rung(audience, written, expected):
    rung = {"code": "notice", "offset": 0, "audience": audience, "channels": ["email"]}
    if written is not None:
        rung["via_digest"] = written
    assert ladder_from_config({"rungs": [rung]}).rungs[0].via_digest is expected


def test_reaches_compares_the_escalations_only():
    coordinator = DEFAULT_LADDER.rungs[3]
    at = {day: rungs_due(REPORT_DUE, day, DEFAULT_LADDER, CAL) for day in (aug(13), aug(14), aug(19))}
    assert [reaches(due, coordinator) for due in at.values()] == [False, True, True]
    assert reaches((), coordinator) is False
    late = rungs_due(REPORT_DUE, aug(14), DEFAULT_LADDER, CAL)[:1]
    assert late[0].rung.code == "late" and reaches(late, coordinator) is False


def test_ladder_from_config_reads_the_yaml_shape_and_sorts_the_rungs():
    assert ladder_from_config(None) is DEFAULT_LADDER
    assert ladder_from_config(DEFAULT_AS_YAML) == DEFAULT_LADDER


def _with_rung(**changes) -> dict:
    rung = {"code": "notice", "offset": 0, "audience": ["district_staff"], "channels": ["email"]}
    return {"rungs": [rung | changes]}


@pytest.mark.parametrize(("raw", "words"), [
    ({"rungs": []}, "at least one rung"),
    (_with_rung(channels=["fax"]), "channels must be"),
    (_with_rung(channels=[]), "channels must be"),
    (_with_rung(audience=[]), "audience is empty"),
    (_with_rung(audience=["mayor"]), "audience"),
    (_with_rung(audience=["district_staff"], via_digest=True), "via_digest needs audience"),
    (_with_rung(offset="soon"), "offset"),
    (_with_rung(colour="red"), "colour"),
    (_with_rung() | {"renotify_every": 0}, "renotify_every"),
    ({"rungs": _with_rung()["rungs"] * 2}, "repeat code notice"),
    (_with_rung(code="late"), "late: setting"),
    (_with_rung(offset=2), "offset > 0 speaks to the coordinator or the provincial head only"),
    (_with_rung() | {"late": {"every": 0}}, "late.every must be at least 1"),
    (_with_rung() | {"late": {"up_to": 0}}, "late.up_to must be at least 1"),
    (_with_rung() | {"late": {"audience": ["coordinator"]}}, "late speaks to the district only"),
    (_with_rung() | {"late": {"channels": ["fax"]}}, "late: channels must be"),
    (_with_rung() | {"late": {"every": 2, "cap": 5}}, "cap"),
])
def test_ladder_from_config_refuses_a_bad_ladder(raw, words):
    with pytest.raises(InvalidInput, match=words):
        ladder_from_config(raw)
