"""A report proves steps: the directive's `form.proves` rule, checked and decided with no database."""

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pytest
import yaml

from domain.directive import DatePeriod, DirectiveError, ProofRule, load_directive, parse_directive
from domain.evidence import Proof, proofs, prove, qualifies, step_change
from domain.next_year import next_year

DIRECTIVES = Path(__file__).parents[2] / "directives"
SAKAEO = DIRECTIVES / "fy2567-sakaeo-volunteer-centers.yaml"
NATIONAL = DIRECTIVES / "fy2567-national-volunteer-centers.yaml"
JULY = DatePeriod(start=date(2024, 7, 1), end=date(2024, 7, 31))
A3 = ProofRule(step="A3", min_participants=20, period=JULY)


@dataclass
class Held:
    """A session as the report reads it (``domain.report.SessionEntry``'s three fields)."""

    key: str
    held_on: date | None
    participants: dict[str, int | None] = field(default_factory=dict)


def held(key="s1", day=date(2024, 7, 20), *counts: int | None) -> Held:
    counts = counts or (5, 5, 8, 6, 2)  # 26 people in five categories
    return Held(key, day, {f"c{i}": n for i, n in enumerate(counts)})


@pytest.mark.parametrize(("session", "expected"), [
    (held(), True),                                             # 26 on 20 July: the case
    (held("s", date(2024, 7, 1), 20), True),                    # first day, exactly 20
    (held("s", date(2024, 7, 31), 20), True),                   # last day
    (held("s", date(2024, 6, 30), 26), False),                  # the day before the period
    (held("s", date(2024, 8, 1), 26), False),                   # the day after
    (held("s", date(2024, 7, 20), 19), False),                  # one person short
    (held("s", date(2024, 7, 20), 15, 4), False),               # 19 over two categories
    (held("s", date(2024, 7, 20), 15, 5), True),                # 20 over two categories
    (held("s", date(2024, 7, 20), 30, None), False),            # a count that could not be read
    (Held("s", None, {"c0": 30}), False),                       # no date
])
def test_a_session_qualifies_within_the_period_with_enough_people(session, expected):
    assert qualifies(A3, session) is expected


@pytest.mark.parametrize(("sessions", "min_sessions", "expected"), [
    ([], 1, None),
    ([held("a", date(2024, 7, 20), 10)], 1, None),
    ([held("a", date(2024, 7, 20), 10), held("b", date(2024, 7, 22), 26)], 1,
     Proof("A3", "b", 2, date(2024, 7, 22), 26, 1)),
    ([held("a"), held("b", date(2024, 7, 22), 30)], 1, Proof("A3", "a", 1, date(2024, 7, 20), 26, 2)),
    ([held("a"), held("b", date(2024, 8, 2), 30)], 2, None),
    ([held("a"), held("b", date(2024, 7, 22), 30)], 2, Proof("A3", "a", 1, date(2024, 7, 20), 26, 2)),
])
def test_a_rule_is_proved_by_its_first_qualifying_session_once_enough_qualify(
        sessions, min_sessions, expected):
    assert prove(A3.model_copy(update={"min_sessions": min_sessions}), sessions) == expected


def test_proofs_name_every_rule_proved_or_not():
    g3 = ProofRule(step="G3", min_sessions=2, min_participants=20, period=JULY)
    assert proofs([A3, g3], [held()]) == {
        "A3": Proof("A3", "s1", 1, date(2024, 7, 20), 26, 1), "G3": None}


def test_the_evidence_is_stored_and_read_back_with_its_date():
    proof = Proof("A3", "s1", 1, date(2024, 7, 20), 26, 1)
    stored = proof.as_evidence(report_id=7)
    assert stored == {"report_id": 7, "step": "A3", "session_key": "s1", "session_number": 1,
                      "held_on": "2024-07-20", "participants": 26, "qualifying_sessions": 1}
    assert Proof.from_evidence(stored, "A3") == proof


# What a submitted report does to a step it may prove: (status, done from a report, proved).
@pytest.mark.parametrize(("status", "from_report", "proved", "change"), [
    ("open", False, True, "complete"),     # the case: A3 overdue, the report proves it
    ("open", False, False, "keep"),
    ("done", False, True, "keep"),         # done by hand: the district's word stands
    ("done", False, False, "keep"),        # ... even when the report does not prove it
    ("done", True, True, "refresh"),       # done from an earlier report, still proved
    ("done", True, False, "reopen"),       # the new report no longer proves it
    ("waived", False, True, "keep"),       # not applicable: a report does not change that
    ("waived", False, False, "keep"),
])
def test_what_a_submit_does_to_a_step(status, from_report, proved, change):
    assert step_change(status, from_report, proved) == change


# --- the rule in the directive YAML ------------------------------------------------------------

@pytest.mark.parametrize("path", [SAKAEO, NATIONAL])
def test_both_letters_say_the_report_proves_a3_with_the_conditions_defaults(path):
    spec = load_directive(path)
    assert [(r.step, r.min_sessions, r.min_participants, r.period) for r in spec.form.proves] == [
        ("A3", 1, None, None)]  # unwritten: the conditions' 20 people and 1-31 July
    (rule,) = spec.proof_rules()
    assert (rule.step, rule.min_sessions, rule.min_participants, rule.period) == ("A3", 1, 20, JULY)


def with_proves(proves) -> str:
    data = yaml.safe_load(SAKAEO.read_text(encoding="utf-8"))
    data["form"]["proves"] = proves
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


@pytest.mark.parametrize(("proves", "field", "english", "thai"), [
    ([{"step": "A9"}], "form.proves[0].step", "A9 is not a step of this directive",
     "ไม่ใช่ขั้นตอนของหนังสือสั่งการนี้"),
    ([{"step": "R1"}], "form.proves[0].step", "R1 is a report step", "เป็นขั้นตอนรายงาน"),
    ([{"step": "A3"}, {"step": "A3"}], "form.proves[1].step", "step A3 repeats form.proves[0]",
     "ซ้ำกับ form.proves[0]"),
    ([{"step": "A3", "period": {"start": "2024-06-01", "end": "2024-07-31"}}],
     "form.proves[0].period", "must lie within the activity dates", "ต้องอยู่ภายในช่วงวันที่จัดกิจกรรม"),
    ([{"step": "A3", "period": {"start": "2024-07-20", "end": "2024-07-10"}}],
     "form.proves[0].period.end", "ends before it starts", "สิ้นสุดก่อนเริ่ม"),
    ([{"step": "A3", "min_sessions": 0}], "form.proves[0].min_sessions", "greater than or equal to 1",
     "ข้อมูลไม่ถูกต้อง"),
    ([{"step": "A3", "min_people": 20}], "form.proves[0].min_people", "unknown field",
     "ไม่รู้จักช่องนี้"),
])
def test_a_wrong_rule_names_its_field_and_line_in_both_languages(proves, field, english, thai):
    with pytest.raises(DirectiveError) as caught:
        parse_directive(with_proves(proves), "directives/test.yaml")
    (problem,) = caught.value.problems
    assert (problem.field, problem.line > 1) == (field, True)
    assert english in problem.message_en and thai in problem.message_th


def test_an_explicit_rule_loads_and_next_year_moves_its_period():
    text = with_proves([{"step": "A3", "min_sessions": 2, "min_participants": 25,
                         "period": {"start": "2024-07-10", "end": "2024-07-31"}}])
    spec = parse_directive(text, "directives/test.yaml")
    (rule,) = spec.proof_rules()
    assert (rule.min_sessions, rule.min_participants, rule.period.start) == (2, 25, date(2024, 7, 10))
    moved = next_year(yaml.safe_load(text), 2568).spec["form"]["proves"][0]["period"]
    assert (moved["start"], moved["end"]) == (date(2025, 7, 10), date(2025, 7, 31))
