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
    rung_due,
)

CAL = WorkCalendar()
REPORT_DUE = date(2024, 8, 9)  # Friday; Mon 12 Aug is Mother's Day


def test_the_default_ladder_is_the_one_in_the_design():
    rows = [(r.code, r.offset, r.audience, r.channels, r.grouped, r.via_digest)
            for r in DEFAULT_LADDER.rungs]
    staff, head = Role.DISTRICT_STAFF, Role.DISTRICT_HEAD
    assert rows == [
        ("reminder-3", -3, (staff,), ("line", "email"), False, False),
        ("reminder-1", -1, (staff,), ("line", "email"), False, False),
        ("overdue", 0, (staff, head), ("line", "email"), False, False),
        ("coordinator", 2, (Role.COORDINATOR,), ("line", "email"), True, True),
        ("provincial-head", 5, (Role.PROVINCIAL_HEAD,), ("email",), True, False),
    ]
    assert DEFAULT_LADDER.renotify_every == 2


@pytest.mark.parametrize(("today", "expected"), [
    (date(2024, 8, 1), None),
    (date(2024, 8, 5), None),                                # Mon, -4 working days
    (date(2024, 8, 6), ("reminder-3", date(2024, 8, 6))),    # -3
    (date(2024, 8, 7), ("reminder-3", date(2024, 8, 6))),
    (date(2024, 8, 8), ("reminder-1", date(2024, 8, 8))),
    (date(2024, 8, 9), ("overdue", date(2024, 8, 9))),       # on the due date
    (date(2024, 8, 10), ("overdue", date(2024, 8, 9))),      # Saturday
    (date(2024, 8, 12), ("overdue", date(2024, 8, 9))),      # Mother's Day
    (date(2024, 8, 13), ("overdue", date(2024, 8, 9))),      # +1; a repeat would be +2 = rung 4
    (date(2024, 8, 14), ("coordinator", date(2024, 8, 14))),
    (date(2024, 8, 15), ("coordinator", date(2024, 8, 14))),
    (date(2024, 8, 16), ("coordinator", date(2024, 8, 16))),  # +4: re-notify
    (date(2024, 8, 17), ("coordinator", date(2024, 8, 16))),
    (date(2024, 8, 19), ("provincial-head", date(2024, 8, 19))),  # +5
    (date(2024, 8, 20), ("provincial-head", date(2024, 8, 19))),
    (date(2024, 8, 21), ("provincial-head", date(2024, 8, 21))),  # +7: re-notify
    (date(2024, 8, 25), ("provincial-head", date(2024, 8, 23))),  # Sunday
    (date(2024, 9, 2), ("provincial-head", date(2024, 9, 2))),
])
def test_rung_due_for_the_report_due_9_august_2024(today, expected):
    due = rung_due(REPORT_DUE, today, DEFAULT_LADDER, CAL)
    assert (due and (due.rung.code, due.occurrence)) == expected


def test_a_daily_sweep_over_six_weeks_produces_each_occurrence_once_in_order():
    seen = []
    for offset in range(42):
        due = rung_due(REPORT_DUE, date(2024, 8, 1) + timedelta(days=offset), DEFAULT_LADDER, CAL)
        if due and (due.rung.code, due.occurrence) not in seen:
            seen.append((due.rung.code, due.occurrence))
    assert seen == [
        ("reminder-3", date(2024, 8, 6)), ("reminder-1", date(2024, 8, 8)),
        ("overdue", date(2024, 8, 9)),
        ("coordinator", date(2024, 8, 14)), ("coordinator", date(2024, 8, 16)),
        ("provincial-head", date(2024, 8, 19)), ("provincial-head", date(2024, 8, 21)),
        ("provincial-head", date(2024, 8, 23)), ("provincial-head", date(2024, 8, 27)),
        ("provincial-head", date(2024, 8, 29)), ("provincial-head", date(2024, 9, 2)),
        ("provincial-head", date(2024, 9, 4)), ("provincial-head", date(2024, 9, 6)),
        ("provincial-head", date(2024, 9, 10)),
    ]


@pytest.mark.parametrize(("due_on", "today", "expected"), [
    (date(2024, 8, 10), date(2024, 8, 7), ("reminder-3", date(2024, 8, 7))),   # due on a Saturday
    (date(2024, 8, 10), date(2024, 8, 12), ("overdue", date(2024, 8, 10))),
    (date(2024, 8, 10), date(2024, 8, 14), ("coordinator", date(2024, 8, 14))),
    (date(2024, 7, 19), date(2024, 7, 23), ("overdue", date(2024, 7, 19))),     # 22 Jul in lieu
    (date(2024, 7, 19), date(2024, 7, 24), ("coordinator", date(2024, 7, 24))),
])
def test_rung_due_around_holidays(due_on, today, expected):
    due = rung_due(due_on, today, DEFAULT_LADDER, CAL)
    assert (due.rung.code, due.occurrence) == expected


def test_a_province_closure_moves_the_rungs():
    calendar = WorkCalendar(extra_closures=[date(2024, 8, 14)])
    due = rung_due(REPORT_DUE, date(2024, 8, 14), DEFAULT_LADDER, calendar)
    assert (due.rung.code, due.occurrence) == ("overdue", date(2024, 8, 9))
    due = rung_due(REPORT_DUE, date(2024, 8, 15), DEFAULT_LADDER, calendar)
    assert (due.rung.code, due.occurrence) == ("coordinator", date(2024, 8, 15))


@pytest.mark.parametrize(("every", "expected"), [
    # 12 Aug (Mother's Day) and the weekends are skipped when counting.
    (3, [date(2024, 8, 9), date(2024, 8, 15), date(2024, 8, 20)]),
    (2, [date(2024, 8, 9), date(2024, 8, 14), date(2024, 8, 16), date(2024, 8, 20)]),
    (5, [date(2024, 8, 9), date(2024, 8, 19)]),
])
def test_renotify_every_n_working_days_at_the_last_rung(every, expected):
    ladder = Ladder((EscalationRung("overdue", 0, (Role.DISTRICT_STAFF,), ("email",)),), every)
    seen = []
    for n in range(12):  # 9-20 Aug
        due = rung_due(REPORT_DUE, date(2024, 8, 9) + timedelta(days=n), ladder, CAL)
        if due.occurrence not in seen:
            seen.append(due.occurrence)
    assert seen == expected


def test_renotify_every_working_day():
    ladder = Ladder((EscalationRung("late", 0, (Role.DISTRICT_STAFF,), ("email",)),), 1)
    assert rung_due(REPORT_DUE, date(2024, 8, 13), ladder, CAL).occurrence == date(2024, 8, 13)
    assert rung_due(REPORT_DUE, date(2024, 8, 12), ladder, CAL).occurrence == date(2024, 8, 9)


def test_idempotency_key():
    key = idempotency_key(rung="overdue", occurrence=date(2024, 8, 9), subject_ref="item:17",
                          recipient_ref="user:5", channel="email")
    assert key == "overdue|2024-08-09|item:17|user:5|email"


def test_idempotency_key_refuses_the_separator_inside_a_part():
    with pytest.raises(ValueError, match="separates"):
        idempotency_key(rung="overdue", occurrence=date(2024, 8, 9), subject_ref="item:1|2",
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
        {"code": "overdue", "offset": 0, "audience": ["district_staff", "district_head"],
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
    rung = {"code": "late", "offset": 2, "audience": audience, "channels": ["email"]}
    if written is not None:
        rung["via_digest"] = written
    assert ladder_from_config({"rungs": [rung]}).rungs[0].via_digest is expected


def test_reaches_compares_positions_on_the_ladder():
    coordinator = DEFAULT_LADDER.rungs[3]
    at = {day: rung_due(REPORT_DUE, day, DEFAULT_LADDER, CAL)
          for day in (date(2024, 8, 13), date(2024, 8, 14), date(2024, 8, 19))}
    assert [reaches(due, coordinator, DEFAULT_LADDER) for due in at.values()] == [False, True, True]
    assert reaches(None, coordinator, DEFAULT_LADDER) is False


def test_ladder_from_config_reads_the_yaml_shape_and_sorts_the_rungs():
    assert ladder_from_config(None) is DEFAULT_LADDER
    assert ladder_from_config(DEFAULT_AS_YAML) == DEFAULT_LADDER


def _with_rung(**changes) -> dict:
    rung = {"code": "late", "offset": 0, "audience": ["district_staff"], "channels": ["email"]}
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
    ({"rungs": _with_rung()["rungs"] * 2}, "repeat code late"),
])
def test_ladder_from_config_refuses_a_bad_ladder(raw, words):
    with pytest.raises(InvalidInput, match=words):
        ladder_from_config(raw)
