"""The directive's `form:` section: the Sa Kaeo form loads; a broken one says file, line and field."""

from pathlib import Path

import pytest

from domain.directive import DirectiveError, DirectiveSpec, FormSpec, load_directive, parse_directive
from domain.errors import InvalidInput
from domain.report import form_of

SAKAEO = Path(__file__).parents[2] / "directives" / "fy2567-sakaeo-volunteer-centers.yaml"
TEXT = SAKAEO.read_text(encoding="utf-8")
SOURCE = "directives/test.yaml"


@pytest.fixture(scope="module")
def sakaeo() -> DirectiveSpec:
    return load_directive(SAKAEO)


def test_the_sakaeo_form(sakaeo):
    form = sakaeo.form
    assert isinstance(form, FormSpec) and form_of(sakaeo) is form
    assert form.report_step == "R1"
    assert [(s.code, s.kind) for s in sakaeo.steps if s.code == form.report_step] == [("R1", "report")]
    assert [(k.code, k.title_th) for k in form.activity_kinds] == [
        ("learning-base", "พัฒนาฐานการเรียนรู้"), ("landscape", "ปรับปรุงภูมิทัศน์ภายในศูนย์ฯ"),
        ("tree-planting", "ปลูกต้นไม้"), ("community-kitchen", "ปลูกผักสร้างครัวชุมชน")]
    assert all(k.title_en for k in form.activity_kinds)
    assert form.warn_if_zero == ["cd-officials"]
    assert (form.allow_other_kind, form.min_outcomes, form.min_photos_per_kind) == (True, 1, 1)
    assert (form.photo_max_bytes, form.photo_max_pixels) == (10_000_000, 40_000_000)
    assert (form.max_sessions, form.max_outcomes) == (200, 50)
    assert "จิตอาสาพัฒนาชุมชน เอามื้อสามัคคี ทำความดีถวายในหลวง" in form.title_th
    assert len(form.heading_th) == 3 and "๒๘ กรกฎาคม ๒๕๖๗" in form.heading_th[1]
    assert "๙ สิงหาคม ๒๕๖๗" in form.footnote_th


def test_the_form_is_checked_against_the_directive_s_conditions_and_categories(sakaeo):
    assert sakaeo.conditions.min_participants_per_session == 20
    assert [c.code for c in sakaeo.participant_categories] == [
        "center-committee", "volunteer-leaders", "community", "partners", "cd-officials"]
    assert set(sakaeo.form.warn_if_zero) <= {c.code for c in sakaeo.participant_categories}


def test_a_stored_form_reads_back_the_same(sakaeo):
    definition = sakaeo.model_dump(mode="json")
    assert definition["form"]["report_step"] == "R1"
    assert DirectiveSpec.model_validate(definition).form == sakaeo.form


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
participant_categories:
  - {code: everyone, title_th: ผู้เข้าร่วม, title_en: Participants}
steps:
  - {code: S1, kind: activity, title_th: จัดกิจกรรม, title_en: Hold the activity, due_on: 2024-07-31}
  - {code: S2, kind: report, title_th: ส่งรายงาน, title_en: Send the report, due_on: 2024-08-09}
"""
MINIMAL_FORM = """\
form:
  report_step: S2
  title_th: แบบรายงาน
  title_en: Report form
  activity_kinds:
    - {code: cleaning, title_th: ทำความสะอาด, title_en: Cleaning}
"""


def test_a_form_with_only_what_is_required_takes_the_defaults():
    form = parse_directive(MINIMAL + MINIMAL_FORM, SOURCE).form
    assert (form.report_step, [k.code for k in form.activity_kinds]) == ("S2", ["cleaning"])
    assert (form.allow_other_kind, form.min_outcomes, form.min_photos_per_kind, form.warn_if_zero) == (
        True, 1, 1, [])
    assert (form.heading_th, form.activity_name_th, form.footnote_th) == ([], None, None)
    assert (form.max_sessions, form.max_outcomes, form.photo_max_bytes, form.photo_max_pixels) == (
        200, 50, 10_000_000, 40_000_000)


def test_a_directive_without_a_form_has_none():
    spec = parse_directive(MINIMAL, SOURCE)
    assert spec.form is None
    with pytest.raises(InvalidInput, match="test-directive has no report form"):
        form_of(spec)


def _edit(*pairs: tuple[str, str], text: str = TEXT) -> str:
    """The Sa Kaeo file with each ``old`` (which must occur exactly once) replaced by ``new``."""
    for old, new in pairs:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


def _block(start: str, end: str, new: str) -> str:
    """The Sa Kaeo file with the lines from ``start`` up to (not including) ``end`` replaced."""
    assert TEXT.count(start) == 1 and TEXT.count(end) == 1
    head, rest = TEXT.split(start)
    return head + new + end + rest.split(end)[1]


def _line(text: str, snippet: str, occurrence: int = 1) -> int:
    """The 1-based number of the line holding the n-th ``snippet``."""
    lines = [n for n, line in enumerate(text.splitlines(), start=1) if snippet in line]
    return lines[occurrence - 1]


KINDS = "  activity_kinds:\n"
ALLOW = "  allow_other_kind: true"
# (case, YAML text, line marker (snippet, occurrence), field, words in the English message)
BAD = [
    ("report_step names a guideline step", _edit(("report_step: R1", "report_step: G1")),
     ("report_step: G1", 1), "form.report_step", "G1 is not a step of kind report"),
    ("report_step names an activity step", _edit(("report_step: R1", "report_step: A3")),
     ("report_step: A3", 1), "form.report_step", "A3 is not a step of kind report"),
    ("report_step names no step", _edit(("report_step: R1", "report_step: R9")),
     ("report_step: R9", 1), "form.report_step", "R9 is not a step of kind report"),
    ("report_step is missing", _edit(("  report_step: R1\n", "")),
     ("form:", 1), "form.report_step", "field required"),
    ("warn_if_zero names an unknown category",
     _edit(("warn_if_zero: [cd-officials]", "warn_if_zero: [cd-officials, monks]")),
     ("warn_if_zero", 1), "form.warn_if_zero[1]", "monks is not a participant category"),
    ("warn_if_zero names a category title, not its code",
     _edit(("warn_if_zero: [cd-officials]", "warn_if_zero: [เจ้าหน้าที่]")),
     ("warn_if_zero", 1), "form.warn_if_zero[0]", "should match pattern"),
    ("warn_if_zero is not a list", _edit(("warn_if_zero: [cd-officials]", "warn_if_zero: cd-officials")),
     ("warn_if_zero", 1), "form.warn_if_zero", "valid list"),
    ("a kind code repeated", _edit(("code: landscape", "code: learning-base")),
     ("code: learning-base", 2), "form.activity_kinds[1].code",
     "code learning-base repeats form.activity_kinds[0]"),
    ("a kind coded other", _edit(("code: tree-planting", "code: other")),
     ("code: other", 1), "form.activity_kinds[2].code", 'the code "other" is reserved'),
    ("a kind code with a space", _edit(("code: tree-planting", "code: tree planting")),
     ("code: tree planting", 1), "form.activity_kinds[2].code", "should match pattern"),
    ("a kind without its Thai title", _edit(("      title_th: ปลูกต้นไม้\n", "")),
     ("code: tree-planting", 1), "form.activity_kinds[2].title_th", "field required"),
    ("an unknown key in a kind",
     _edit(("      title_en: Planting trees\n", "      title_en: Planting trees\n      colour: green\n")),
     ("colour: green", 1), "form.activity_kinds[2].colour", "unknown field"),
    ("an unknown key under form", _edit((ALLOW, f"{ALLOW}\n  allow_photos: true")),
     ("allow_photos", 1), "form.allow_photos", "unknown field"),
    ("a misspelt key under form", _edit(("  min_outcomes: 1", "  min_outcome: 1")),
     ("min_outcome:", 1), "form.min_outcome", "unknown field"),
    ("a key under form written twice", _edit((ALLOW, f"{ALLOW}\n  allow_other_kind: false")),
     ("allow_other_kind: false", 1), "form.allow_other_kind", "appears twice"),
    ("no activity kinds", _block(KINDS, ALLOW, "  activity_kinds: []\n"),
     ("activity_kinds: []", 1), "form.activity_kinds", "at least 1 item"),
    ("activity kinds left blank", _block(KINDS, ALLOW, "  activity_kinds:\n"),
     ("activity_kinds:", 1), "form.activity_kinds", "valid list"),
    ("allow_other_kind not a boolean", _edit((ALLOW, "  allow_other_kind: sometimes")),
     ("allow_other_kind: sometimes", 1), "form.allow_other_kind", "valid boolean"),
    ("a negative min_outcomes", _edit(("min_outcomes: 1 ", "min_outcomes: -1 ")),
     ("min_outcomes: -1", 1), "form.min_outcomes", "greater than or equal to 0"),
    ("a negative min_photos_per_kind", _edit(("min_photos_per_kind: 1 ", "min_photos_per_kind: -1 ")),
     ("min_photos_per_kind: -1", 1), "form.min_photos_per_kind", "greater than or equal to 0"),
    ("a photo limit too small to hold a photo", _edit(("photo_max_bytes: 10000000", "photo_max_bytes: 100")),
     ("photo_max_bytes: 100", 1), "form.photo_max_bytes", "greater than or equal to 10000"),
    ("a form that is not a mapping", TEXT[:TEXT.index("\nform:\n") + 1] + "form: R1\n",
     ("form: R1", 1), "form", "valid dictionary"),
    ("a form with no participant categories",
     _block("participant_categories:\n", "# Days the province", "participant_categories: []\n\n"),
     ("participant_categories: []", 1), "participant_categories", "needs participant_categories"),
]


@pytest.mark.parametrize(("text", "marker", "field", "words"),
                         [case[1:] for case in BAD], ids=[case[0] for case in BAD])
def test_a_broken_form_names_file_line_and_field(text, marker, field, words):
    with pytest.raises(DirectiveError) as raised:
        parse_directive(text, SOURCE)
    line = _line(text, *marker)
    [problem] = [p for p in raised.value.problems if p.field == field]
    assert (problem.source, problem.line) == (SOURCE, line)
    assert words in problem.message_en
    assert problem.message_th
    assert f"{SOURCE}:{line}: {field}: " in raised.value.message_en
    assert f"{SOURCE} บรรทัดที่ {line}: {field}: " in raised.value.message_th


@pytest.mark.parametrize(("text", "thai"), [
    (_edit(("report_step: R1", "report_step: G1")), "G1 ไม่ใช่ขั้นตอนประเภท report"),
    (_edit(("warn_if_zero: [cd-officials]", "warn_if_zero: [monks]")), "monks ไม่ใช่รหัสกลุ่มผู้เข้าร่วม"),
    (_edit(("code: landscape", "code: learning-base")),
     "รหัสลักษณะกิจกรรม learning-base ซ้ำกับ form.activity_kinds[0]"),
    (_edit(("code: tree-planting", "code: other")), 'รหัส "other" สงวนไว้สำหรับ allow_other_kind'),
    (_edit((ALLOW, f"{ALLOW}\n  allow_photos: true")), "ไม่รู้จักช่องนี้"),
], ids=["report_step", "warn_if_zero", "duplicate kind", "other", "unknown key"])
def test_the_thai_message_explains_in_thai(text, thai):
    with pytest.raises(DirectiveError) as raised:
        parse_directive(text, SOURCE)
    assert thai in raised.value.message_th


def test_every_form_problem_is_reported_at_once():
    text = _edit(("report_step: R1", "report_step: G1"),
                 ("warn_if_zero: [cd-officials]", "warn_if_zero: [monks]"),
                 ("code: landscape", "code: learning-base"))
    with pytest.raises(DirectiveError) as raised:
        parse_directive(text, SOURCE)
    assert sorted(p.field for p in raised.value.problems) == [
        "form.activity_kinds[1].code", "form.report_step", "form.warn_if_zero[0]"]


def test_an_edited_sakaeo_file_that_is_still_valid_loads():
    text = _edit(("warn_if_zero: [cd-officials]", "warn_if_zero: [cd-officials, partners]"),
                 (ALLOW, "  allow_other_kind: false"))
    form = parse_directive(text, SOURCE).form
    assert (form.warn_if_zero, form.allow_other_kind) == (["cd-officials", "partners"], False)
