"""The directive YAML: the Sa Kaeo letter loads; a broken file says where and what."""

from datetime import date, time
from pathlib import Path

import pytest

from domain.calendar import WorkCalendar
from domain.directive import DirectiveError, DirectiveSpec, load_directive, parse_directive
from domain.errors import InvalidInput, NotFound
from domain.ladder import DEFAULT_LADDER, ladder_from_config

SAKAEO = Path(__file__).parents[2] / "directives" / "fy2567-sakaeo-volunteer-centers.yaml"
SOURCE = "directives/test.yaml"


@pytest.fixture(scope="module")
def sakaeo() -> DirectiveSpec:
    return load_directive(SAKAEO)


def test_the_sakaeo_letter_loads(sakaeo):
    assert (sakaeo.slug, sakaeo.province_code, sakaeo.reference_no) == (
        "fy2567-sakaeo-volunteer-centers", "27", "สก ๐๐๑๙/ว ๒๕๒")
    assert (sakaeo.issued_on, sakaeo.fiscal_year) == (date(2024, 7, 12), 2567)
    assert sakaeo.issuer_th == "สำนักงานพัฒนาชุมชนจังหวัดสระแก้ว"
    assert sakaeo.title_th == (
        "การขับเคลื่อนการดำเนินงานศูนย์ผู้นำจิตอาสาพัฒนาชุมชน ประจำปีงบประมาณ พ.ศ. ๒๕๖๗")
    assert "สก ๐๐๑๙/ว ๔๕๑๔" in sakaeo.refers_to
    assert (sakaeo.activity_start, sakaeo.activity_end) == (date(2024, 7, 1), date(2024, 7, 31))
    assert (sakaeo.province_due, sakaeo.department_due) == (date(2024, 8, 9), date(2024, 8, 15))
    assert "province's choice" in sakaeo.due_dates_note_en
    assert "จังหวัดเป็นผู้กำหนด" in sakaeo.due_dates_note_th


def test_the_sakaeo_steps(sakaeo):
    rows = [(s.order, s.code, s.kind, s.due_on) for s in sakaeo.steps]
    assert rows == [
        (1, "G1", "guideline", date(2024, 7, 17)), (2, "G2", "guideline", date(2024, 7, 19)),
        (3, "G3", "guideline", date(2024, 7, 31)), (4, "G4", "guideline", date(2024, 7, 31)),
        (5, "G5", "guideline", date(2024, 8, 2)), (6, "G6", "guideline", date(2024, 8, 7)),
        (7, "G7", "guideline", date(2024, 8, 7)), (8, "G8", "guideline", date(2024, 8, 9)),
        (9, "A1", "activity", date(2024, 7, 17)), (10, "A2", "activity", date(2024, 7, 19)),
        (11, "A3", "activity", date(2024, 7, 31)), (12, "R1", "report", date(2024, 8, 9)),
    ]
    assert all(step.title_th and step.title_en for step in sakaeo.steps)


def test_every_sakaeo_due_date_is_a_working_day(sakaeo):
    calendar = sakaeo.work_calendar()
    assert [s.code for s in sakaeo.steps if not calendar.is_working_day(s.due_on)] == []


def test_the_sakaeo_conditions_categories_hours_and_ladder(sakaeo):
    conditions = sakaeo.conditions
    assert (conditions.min_activities_per_center, conditions.min_participants_per_session,
            conditions.min_centers_per_district) == (1, 20, 1)
    assert (conditions.period.start, conditions.period.end) == (date(2024, 7, 1), date(2024, 7, 31))
    assert [c.title_th for c in sakaeo.participant_categories] == [
        "คณะกรรมการบริหารศูนย์ผู้นำจิตอาสาพัฒนาชุมชน",
        "ผู้นำจิตอาสาพัฒนาชุมชน",
        "ผู้นำชุมชน ประชาชน นักเรียน/นักศึกษา และผู้สนใจ",
        "ภาคีการพัฒนา ๗ ภาคส่วน",
        "เจ้าหน้าที่พัฒนาชุมชนที่เกี่ยวข้อง ระดับจังหวัด/อำเภอ",
    ]
    assert (sakaeo.office_hours.start, sakaeo.office_hours.end) == (time(8, 30), time(16, 30))
    assert sakaeo.ladder == DEFAULT_LADDER
    assert isinstance(sakaeo.work_calendar(), WorkCalendar)


def test_a_stored_definition_reads_back_the_same(sakaeo):
    definition = sakaeo.model_dump(mode="json")
    assert DirectiveSpec.model_validate(definition) == sakaeo
    assert ladder_from_config(definition["ladder"]) == DEFAULT_LADDER
    assert definition["office_hours"] == {"start": "08:30:00", "end": "16:30:00"}


MINIMAL = """\
slug: test-directive
province_code: "27"
reference_no: สก 0019/ว 1
title_th: หนังสือทดสอบ
title_en: A test directive
issuer_th: สำนักงานพัฒนาชุมชนจังหวัดสระแก้ว
issuer_en: Sa Kaeo Provincial Community Development Office
issued_on: 2024-07-12
fiscal_year: 2567
activity_start: 2024-07-01
activity_end: 2024-07-31
province_due: 2024-08-09
steps:
  - code: S1
    kind: guideline
    title_th: ศึกษาแนวทาง
    title_en: Study the guideline
    due_on: 2024-07-17
  - code: S2
    kind: activity
    title_th: จัดกิจกรรม
    title_en: Hold the activity
    due_on: 2024-07-31
"""

LADDER = """\
ladder:
  rungs:
    - code: late
      offset: 0
      audience: [district_staff]
      channels: [email]
"""


def test_a_minimal_directive_takes_the_defaults():
    spec = parse_directive(MINIMAL, SOURCE)
    assert [s.order for s in spec.steps] == [1, 2]
    assert spec.ladder == DEFAULT_LADDER
    assert spec.conditions.min_participants_per_session == 20
    assert (spec.office_hours.start, spec.closures, spec.participant_categories) == (
        time(8, 30), [], [])


def _line(text: str, snippet: str, occurrence: int = 1) -> int:
    """The 1-based number of the line holding the n-th ``snippet``."""
    lines = [n for n, line in enumerate(text.splitlines(), start=1) if snippet in line]
    return lines[occurrence - 1]


# (case, YAML text, line marker (snippet, occurrence), field, words in the English message)
BAD = [
    ("malformed YAML: a colon inside a value",
     MINIMAL.replace("title_en: A test", "title_en: Centers: A test"),
     ("title_en: Centers", 1), "title_en", "YAML syntax: mapping values are not allowed"),
    ("malformed YAML: an unclosed list",
     MINIMAL.replace("kind: activity", "kind: [activity"),
     ("title_th: จัดกิจกรรม", 1), "kind: [activity", "begun on line 20"),
    ("malformed YAML: a tab for indentation", MINIMAL.replace("  - code: S2", "\t- code: S2"),
     ("code: S2", 1), "code: S2", "YAML syntax"),
    ("an impossible date", MINIMAL.replace("due_on: 2024-07-31", "due_on: 2024-02-30"),
     ("2024-02-30", 1), "due_on", "2024-02-30 is not a date"),
    ("a missing field", MINIMAL.replace("    due_on: 2024-07-31\n", ""),
     ("code: S2", 1), "steps[1].due_on", "field required"),
    ("a missing top-level field", MINIMAL.replace("province_due: 2024-08-09\n", ""),
     ("slug:", 1), "province_due", "field required"),
    ("a wrong type: text for a date",
     MINIMAL.replace("due_on: 2024-07-31", "due_on: end of July"),
     ("end of July", 1), "steps[1].due_on", "valid date"),
    ("a wrong type: text for a number", MINIMAL.replace("fiscal_year: 2567", "fiscal_year: two"),
     ("fiscal_year", 1), "fiscal_year", "valid integer"),
    ("an A.D. fiscal year", MINIMAL.replace("fiscal_year: 2567", "fiscal_year: 2024"),
     ("fiscal_year", 1), "fiscal_year", "Buddhist Era"),
    ("a B.E. year in a date", MINIMAL.replace("province_due: 2024", "province_due: 2567"),
     ("province_due", 1), "province_due", "looks like B.E."),
    ("an unknown step kind", MINIMAL.replace("kind: activity", "kind: meeting"),
     ("kind: meeting", 1), "steps[1].kind", "'guideline', 'activity' or 'report'"),
    ("a duplicate step code", MINIMAL.replace("code: S2", "code: S1"),
     ("code: S1", 2), "steps[1].code", "code S1 repeats steps[0]"),
    ("an unknown key", MINIMAL.replace("    title_en: Hold", "    title_en: Hold\n    titel: x"),
     ("titel", 1), "steps[1].titel", "unknown field"),
    ("an unknown top-level key", MINIMAL + "deadline: 2024-08-09\n",
     ("deadline", 1), "deadline", "unknown field"),
    ("a key written twice",
     MINIMAL.replace("    due_on: 2024-07-31\n",
                     "    due_on: 2024-07-31\n    due_on: 2024-07-30\n"),
     ("due_on: 2024-07-30", 1), "steps[1].due_on", "appears twice"),
    ("a step due after the report to the province",
     MINIMAL.replace("due_on: 2024-07-31", "due_on: 2024-08-30"),
     ("2024-08-30", 1), "steps[1].due_on", "due after province_due"),
    ("a step due before the letter", MINIMAL.replace("due_on: 2024-07-17", "due_on: 2024-07-01"),
     ("due_on: 2024-07-01", 1), "steps[0].due_on", "due before the letter"),
    ("an activity step after the activity period",
     MINIMAL.replace("due_on: 2024-07-31", "due_on: 2024-08-02"),
     ("2024-08-02", 1), "steps[1].due_on", "after activity_end"),
    ("activity dates the wrong way round",
     MINIMAL.replace("activity_start: 2024-07-01", "activity_start: 2024-08-01"),
     ("activity_end", 1), "activity_end", "before activity_start"),
    ("the Department's date before the province's", MINIMAL + "department_due: 2024-08-01\n",
     ("department_due", 1), "department_due", "before province_due"),
    ("no steps", MINIMAL[:MINIMAL.index("steps:")] + "steps: []\n",
     ("steps:", 1), "steps", "at least 1 item"),
    ("an unquoted time", MINIMAL + 'office_hours:\n  start: "08:30"\n  end: 16:30\n',
     ("end: 16:30", 1), "office_hours.end", "in quotes"),
    ("office hours the wrong way round",
     MINIMAL + 'office_hours:\n  start: "16:30"\n  end: "08:30"\n',
     ("office_hours", 1), "office_hours", "start before they end"),
    ("an unknown channel in the ladder", MINIMAL + LADDER.replace("[email]", "[fax]"),
     ("- code: late", 1), "ladder.rungs[0]", "channels must be"),
    ("an unknown key in the ladder", MINIMAL + LADDER + "    - code: later\n      colour: red\n",
     ("colour", 1), "ladder.rungs[1].colour", "unknown field"),
    ("a wrong type in the ladder", MINIMAL + LADDER.replace("offset: 0", "offset: soon"),
     ("offset: soon", 1), "ladder.rungs[0].offset", "valid integer"),
    ("a condition below 1",
     MINIMAL + "conditions:\n  min_participants_per_session: 0\n",
     ("min_participants", 1), "conditions.min_participants_per_session", "greater than"),
]


@pytest.mark.parametrize(("text", "marker", "field", "words"),
                         [case[1:] for case in BAD], ids=[case[0] for case in BAD])
def test_a_broken_directive_names_file_line_and_field(text, marker, field, words):
    with pytest.raises(DirectiveError) as raised:
        parse_directive(text, SOURCE)
    line = _line(text, *marker)
    assert f"{SOURCE}:{line}: " in raised.value.message_en
    assert field in raised.value.message_en
    assert words in raised.value.message_en
    assert f"{SOURCE} บรรทัดที่ {line}: " in raised.value.message_th
    assert field in raised.value.message_th


def test_the_thai_message_explains_in_thai():
    with pytest.raises(DirectiveError) as raised:
        parse_directive(MINIMAL.replace("    due_on: 2024-07-31\n", ""), SOURCE)
    assert raised.value.message_th == f"{SOURCE} บรรทัดที่ 19: steps[1].due_on: ต้องระบุช่องนี้"
    assert str(raised.value) == f"{raised.value.message_th} / {raised.value.message_en}"


def test_every_problem_is_reported_at_once_one_per_line():
    text = (MINIMAL.replace("fiscal_year: 2567", "fiscal_year: 2024")
            .replace("    title_en: Hold the activity\n", ""))
    with pytest.raises(DirectiveError) as raised:
        parse_directive(text, SOURCE)
    assert [(p.line, p.field) for p in raised.value.problems] == [
        (9, "fiscal_year"), (19, "steps[1].title_en")]
    assert raised.value.message_en.splitlines() == [p.en() for p in raised.value.problems]


@pytest.mark.parametrize(("text", "line", "words"), [
    ("", 1, "the file is empty"),
    ("# only a comment\n", 1, "the file is empty"),
    ("- slug: x\n- steps: []\n", 1, "top level must be a mapping"),
    ("\n\njust text\n", 3, "top level must be a mapping"),
    ("a: 1\n---\nb: 2\n", 2, "YAML syntax"),
])
def test_a_file_that_is_not_a_directive_at_all(text, line, words):
    with pytest.raises(DirectiveError, match=words) as raised:
        parse_directive(text, SOURCE)
    assert raised.value.message_en.startswith(f"{SOURCE}:{line}: ")


def test_a_directive_error_is_invalid_input():
    with pytest.raises(InvalidInput):
        parse_directive("", SOURCE)


def test_load_directive_names_the_path(tmp_path):
    path = tmp_path / "next-year.yaml"
    path.write_text(MINIMAL.replace("kind: activity", "kind: meeting"), encoding="utf-8")
    with pytest.raises(DirectiveError, match=f"{path}:20: steps"):
        load_directive(path)


def test_load_directive_refuses_a_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "thai-windows.yaml"
    path.write_bytes(MINIMAL.encode("utf-8")[:40] + "\n# ไทย\n".encode("cp874"))
    with pytest.raises(DirectiveError, match="not UTF-8") as raised:
        load_directive(path)
    assert raised.value.problems[0].line == 3


def test_load_directive_of_a_missing_file_is_not_found(tmp_path):
    with pytest.raises(NotFound):
        load_directive(tmp_path / "missing.yaml")


def test_the_stored_header_is_the_yamls_own_fields():
    """One source: every column of the directive's header is a field of its YAML by the same
    name, so launching copies them by name (models.directive.Directive.header_of)."""
    from models.directive import Directive, DirectiveBase, DirectivePublic
    from tidtam.ops.bootstrap import DEFAULT_DIRECTIVE

    assert set(DirectiveBase.model_fields) <= set(DirectiveSpec.model_fields)
    assert set(DirectiveBase.model_fields) <= set(DirectivePublic.model_fields)
    spec = load_directive(DEFAULT_DIRECTIVE)
    header = Directive.header_of(spec)
    assert header["reference_no"] == "สก ๐๐๑๙/ว ๒๕๒" and header["province_due"] == date(2024, 8, 9)
    assert set(header) == set(DirectiveBase.model_fields)
