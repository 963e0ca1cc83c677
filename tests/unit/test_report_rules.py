"""The report form's rules with the real FY 2567 directive: what is an error, what a warning,
what is stored as typed, and the figures derived from the sessions (items 1-3) and the province."""

from datetime import date
from pathlib import Path

import pytest

from domain.directive import DatePeriod, DirectiveSpec, load_directive
from domain.errors import InvalidInput
from domain.report import (
    MAX_COUNT,
    KindPlaces,
    ReportContent,
    ReportInvalid,
    SessionEntry,
    check_report,
    compile_province,
    form_of,
    new_session_key,
    normalise_raw,
    summarise,
)

SAKAEO = Path(__file__).parents[2] / "directives" / "fy2567-sakaeo-volunteer-centers.yaml"
CC, VL, COM, PART, CD = "center-committee", "volunteer-leaders", "community", "partners", "cd-officials"
CODES = [CC, VL, COM, PART, CD]
TWENTY = {CC: 4, VL: 6, COM: 5, PART: 3, CD: 2}     # exactly the guideline's minimum
OUTCOMES = ["ศูนย์ฯ มีฐานการเรียนรู้ที่พร้อมใช้งาน", "ปลูกต้นไม้ 200 ต้น"]


@pytest.fixture(scope="module")
def spec() -> DirectiveSpec:
    return load_directive(SAKAEO)


def session(key: str = "s1", **changes) -> dict:
    """A valid session as the browser sends it; ``participants`` in ``changes`` is merged."""
    changes = dict(changes)
    counts = {**TWENTY, **changes.pop("participants", {})}
    return {"key": key, "held_on": "2024-07-15", "center": "ศูนย์ฯ บ้านหนองบอน",
            "place": "บ้านหนองบอน ต.หนองบอน", "kind": "learning-base", "kind_other": "",
            "participants": counts, **changes}


def report(*sessions: dict, outcomes: list | None = None) -> dict:
    return {"sessions": list(sessions), "outcomes": OUTCOMES if outcomes is None else outcomes}


def fields(findings) -> list[str]:
    return sorted(f.field for f in findings)


def finding(checked, field: str):
    """The one finding (error or warning) on ``field``."""
    [found] = [f for f in (*checked.errors, *checked.warnings) if f.field == field]
    return found


# --- one session, one rule at a time ----------------------------------------------------------

P0 = "sessions[0].participants"
# (case, changes to a valid session, error fields, warning fields); the session has a photo
ONE_SESSION = [
    ("exactly 20 participants", {}, [], []),
    ("15 participants", {"participants": {COM: 0}}, [P0], []),
    ("19 participants", {"participants": {COM: 4}}, [P0], []),
    ("the first day of the period", {"held_on": "2024-07-01"}, [], []),
    ("the last day of the period", {"held_on": "2024-07-31"}, [], []),
    ("the day before the period", {"held_on": "2024-06-30"}, ["sessions[0].held_on"], []),
    ("the day after the period", {"held_on": "2024-08-01"}, ["sessions[0].held_on"], []),
    ("a B.E. year", {"held_on": "2567-07-15"}, ["sessions[0].held_on"], []),
    ("a date written the Thai way (day/month/B.E.) is read", {"held_on": "15/07/2567"}, [], []),
    ("a Thai-way date that does not exist", {"held_on": "31/6/2567"}, ["sessions[0].held_on"], []),
    ("a Thai-way date without its day", {"held_on": "/7/2567"}, ["sessions[0].held_on"], []),
    ("not a date", {"held_on": "last Tuesday"}, ["sessions[0].held_on"], []),
    ("an impossible date", {"held_on": "2024-07-32"}, ["sessions[0].held_on"], []),
    ("a blank date", {"held_on": ""}, ["sessions[0].held_on"], []),
    ("a date of spaces", {"held_on": "   "}, ["sessions[0].held_on"], []),
    ("no date at all", {"held_on": None}, ["sessions[0].held_on"], []),
    ("a count of letters", {"participants": {COM: "abc"}}, [f"{P0}.community"], []),
    ("a negative count", {"participants": {COM: "-1"}}, [f"{P0}.community"], []),
    ("a negative number", {"participants": {COM: -1}}, [f"{P0}.community"], []),
    ("a fraction", {"participants": {COM: "1.5"}}, [f"{P0}.community"], []),
    ("a count above the limit", {"participants": {COM: 100001}}, [f"{P0}.community"], []),
    ("a typed count above the limit", {"participants": {COM: "100001"}}, [f"{P0}.community"], []),
    ("the largest count", {"participants": {COM: 100000}}, [], []),
    ("a count with a unit", {"participants": {COM: "20 คน"}}, [f"{P0}.community"], []),
    ("two bad counts", {"participants": {CC: "x", PART: "-๓"}},
     [f"{P0}.center-committee", f"{P0}.partners"], []),
    ("Thai digits", {"participants": {COM: "๒๐"}}, [], []),
    ("blank counts read as 0", {"participants": {COM: "", PART: None}}, [P0], []),
    ("no center", {"center": ""}, ["centers", "sessions[0].center"], []),
    ("a center of spaces", {"center": "   "}, ["centers", "sessions[0].center"], []),
    ("no place", {"place": ""}, ["sessions[0].place"], []),
    ("no kind", {"kind": ""}, ["sessions[0].kind"], []),
    ("an unknown kind", {"kind": "fishing"}, ["sessions[0].kind"], []),
    ("a kind title instead of its code", {"kind": "ปลูกต้นไม้"}, ["sessions[0].kind"], []),
    ("another kind of the form", {"kind": "community-kitchen"}, [], []),
    ("other, unnamed", {"kind": "other"}, ["sessions[0].kind_other"], []),
    ("other, named with spaces only", {"kind": "other", "kind_other": "  "}, ["sessions[0].kind_other"], []),
    ("other, named", {"kind": "other", "kind_other": "ทำความสะอาดวัด"}, [], []),
    ("no CDD official", {"participants": {CD: 0, COM: 7}}, [], [f"{P0}.cd-officials"]),
    ("a blank CDD official count", {"participants": {CD: "", COM: 7}}, [], [f"{P0}.cd-officials"]),
    ("an unreadable CDD official count: an error, no warning", {"participants": {CD: "x"}},
     [f"{P0}.cd-officials"], []),
    ("no partners: not unusual for this directive", {"participants": {PART: 0, COM: 8}}, [], []),
    ("15 participants and no CDD official", {"participants": {CD: 0, COM: 0, VL: 8}},
     [P0], [f"{P0}.cd-officials"]),
]


@pytest.mark.parametrize(("changes", "errors", "warnings"), [c[1:] for c in ONE_SESSION],
                         ids=[c[0] for c in ONE_SESSION])
def test_one_session_rule_by_rule(spec, changes, errors, warnings):
    checked = check_report(report(session(**changes)), spec, {"s1": 1})
    assert fields(checked.errors) == sorted(errors)
    assert fields(checked.warnings) == sorted(warnings)
    assert checked.ok is (not errors)
    assert {f.severity for f in checked.errors} <= {"error"}
    assert {f.severity for f in checked.warnings} <= {"warning"}


CD_TH = "เจ้าหน้าที่พัฒนาชุมชนที่เกี่ยวข้อง ระดับจังหวัด/อำเภอ"
COM_TH = "ผู้นำชุมชน ประชาชน นักเรียน/นักศึกษา และผู้สนใจ"
# (case, changes, field, words in the Thai text, words in the English text)
MESSAGES = [
    ("15 participants", {"participants": {COM: 0}}, P0,
     ["ครั้งที่ 1", "จำนวนผู้เข้าร่วมรวม", "15 คน", "ไม่น้อยกว่า 20 คน"],
     ["Session 1", "Total participants", "15 participants", "at least 20"]),
    ("a date before the period", {"held_on": "2024-06-30"}, "sessions[0].held_on",
     ["วันที่จัดกิจกรรม", "1 ก.ค. 2567", "31 ก.ค. 2567", "30 มิ.ย. 2567"],
     ["Date held", "1 Jul 2024", "31 Jul 2024", "30 Jun 2024"]),
    ("a date after the period", {"held_on": "2024-08-01"}, "sessions[0].held_on",
     ["วันที่จัดกิจกรรม", "1 ส.ค. 2567"], ["Date held", "1 Aug 2024"]),
    ("not a date", {"held_on": "last Tuesday"}, "sessions[0].held_on",
     ["วันที่จัดกิจกรรม", "ต้องเป็นวันที่"], ["Date held", "must be a date"]),
    ("a day the month has not", {"held_on": "31/6/2567"}, "sessions[0].held_on",
     ["วันที่จัดกิจกรรม", "ไม่มีวันที่ 31 มิถุนายน 2567"], ["Date held", "no 31 Jun 2024"]),
    ("a date without its day", {"held_on": "/7/2567"}, "sessions[0].held_on",
     ["เลือกวัน เดือน และปี"], ["choose the day, the month and the year"]),
    ("a blank date", {"held_on": ""}, "sessions[0].held_on",
     ["วันที่จัดกิจกรรม", "ต้องระบุวันที่"], ["Date held", "required"]),
    ("a count of letters", {"participants": {COM: "abc"}}, f"{P0}.community",
     [COM_TH, "จำนวนเต็ม", "'abc'"], ["Participants: Community leaders", "whole number", "'abc'"]),
    ("a negative count", {"participants": {CD: "-1"}}, f"{P0}.cd-officials",
     [CD_TH, "จำนวนเต็ม", "'-1'"], ["Community development officials", "whole number"]),
    ("a count above the limit", {"participants": {COM: 100001}}, f"{P0}.community",
     [COM_TH, "100,000", "100001"], ["from 0 to 100,000"]),
    ("no center", {"center": ""}, "sessions[0].center",
     ["ศูนย์ผู้นำจิตอาสาพัฒนาชุมชน", "ต้องระบุ"], ["Center", "required"]),
    ("no place", {"place": ""}, "sessions[0].place", ["หมู่บ้าน/ตำบล", "ต้องระบุ"], ["Village"]),
    ("no kind", {"kind": ""}, "sessions[0].kind", ["ลักษณะกิจกรรม", "ต้องเลือก"], ["Activity kind"]),
    ("an unknown kind", {"kind": "fishing"}, "sessions[0].kind", ["ลักษณะกิจกรรม", "fishing"],
     ["fishing", "not an activity kind"]),
    ("other, unnamed", {"kind": "other"}, "sessions[0].kind_other", ["อื่น ๆ", "ต้องระบุ"],
     ["Activity kind (other)"]),
    ("no CDD official", {"participants": {CD: 0, COM: 7}}, f"{P0}.cd-officials",
     ["ครั้งที่ 1", CD_TH, "ตรวจสอบ"], ["Session 1", "Community development officials", "check"]),
]


@pytest.mark.parametrize(("changes", "field", "thai", "english"), [c[1:] for c in MESSAGES],
                         ids=[c[0] for c in MESSAGES])
def test_each_finding_names_its_field_in_thai_and_english(spec, changes, field, thai, english):
    found = finding(check_report(report(session(**changes)), spec, {"s1": 1}), field)
    assert [w for w in thai if w not in found.th()] == []
    assert [w for w in english if w not in found.en()] == []
    assert found.th() == f"{found.label_th}: {found.message_th}"
    assert found.en() == f"{found.label_en}: {found.message_en}"


def test_a_later_session_is_named_by_its_number(spec):
    checked = check_report(report(session("s1"), session("s2", place="บ้านใหม่", participants={COM: 0})),
                           spec, {"s1": 1})
    assert fields(checked.errors) == ["sessions[1].participants"]
    assert finding(checked, "sessions[1].participants").th().startswith("ครั้งที่ 2 · จำนวนผู้เข้าร่วมรวม: ")


# (typed, what is read: None = unreadable, an error on that count)
COUNTS = [
    (25, 25), ("25", 25), (" 25 ", 25), ("๒๐", 20), ("๒๕", 25), ("1,000", 1000), ("๑,๐๐๐", 1000),
    (0, 0), ("0", 0), ("", 0), (None, 0), ("   ", 0), (MAX_COUNT, 100000),
    ("abc", None), ("-1", None), (-1, None), ("-๕", None), ("1.5", None), (1.5, None), ("20.0", None),
    (100001, None), ("100001", None), ("20 คน", None), ("+5", None), ("5-", None), ("-", None),
]


@pytest.mark.parametrize(("typed", "read"), COUNTS, ids=[repr(c[0]) for c in COUNTS])
def test_how_a_count_is_read(spec, typed, read):
    checked = check_report(report(session(participants={COM: typed})), spec, {"s1": 1})
    assert checked.content.sessions[0].participants[COM] == read
    assert (f"{P0}.community" in fields(checked.errors)) is (read is None)


@pytest.mark.parametrize("typed", ["²", "①", "5²"])
def test_bug_a_count_of_a_unicode_digit_sign_is_an_error_not_a_crash(spec, typed):
    """str.isdigit() accepts '²' and '①' but int() refuses them: check_report raises ValueError."""
    checked = check_report(report(session(participants={COM: typed})), spec, {"s1": 1})
    assert f"{P0}.community" in fields(checked.errors)


# --- the whole form -----------------------------------------------------------------------------

TEMPLE = "ทำความสะอาดวัด"
# (case, sessions, photos per session key, outcomes, error fields, warning fields)
WHOLE = [
    ("a valid report: 3 sessions, 2 kinds, photos, 2 outcomes",
     [session("s1"), session("s2", place="บ้านโคกสูง", held_on="2024-07-20"),
      session("s3", kind="tree-planting", center="ศูนย์ฯ ตำบลท่าเกษม", place="บ้านท่าเกษม")],
     {"s1": 2, "s3": 1}, OUTCOMES, [], []),
    ("no sessions", [], {}, OUTCOMES, ["sessions"], []),
    ("no sessions and no outcomes", [], {}, [], ["outcomes", "sessions"], []),
    ("no outcomes", [session("s1")], {"s1": 1}, [], ["outcomes"], []),
    ("blank outcomes only", [session("s1")], {"s1": 1}, ["", "   ", None], ["outcomes"], []),
    ("no photo at all", [session("s1")], {}, OUTCOMES, ["photos.learning-base"], []),
    ("a photo of a session that is not in the form", [session("s1")], {"gone": 3}, OUTCOMES,
     ["photos.learning-base"], []),
    ("one kind with photos, another without",
     [session("s1"), session("s2", kind="tree-planting")], {"s1": 4}, OUTCOMES,
     ["photos.tree-planting"], []),
    ("photos on another session of the same kind suffice",
     [session("s1"), session("s2", place="บ้านโคกสูง", held_on="2024-07-20")], {"s2": 1}, OUTCOMES, [], []),
    ("an 'other' kind without photos",
     [session("s1"), session("s2", kind="other", kind_other=TEMPLE)], {"s1": 1}, OUTCOMES,
     [f"photos.other:{TEMPLE}"], []),
    ("an 'other' kind with photos", [session("s1", kind="other", kind_other=TEMPLE)], {"s1": 1},
     OUTCOMES, [], []),
    ("two 'other' kinds: each needs photos",
     [session("s1", kind="other", kind_other=TEMPLE), session("s2", kind="other", kind_other="ปลูกป่า")],
     {"s1": 1}, OUTCOMES, ["photos.other:ปลูกป่า"], []),
    ("'other' names differing in spaces and case are one kind",
     [session("s1", kind="other", kind_other="Temple  clean-up"),
      session("s2", kind="other", kind_other=" temple clean-up", held_on="2024-07-20")],
     {"s1": 1}, OUTCOMES, [], []),
    ("an unknown kind needs no photos of its own", [session("s1", kind="fishing")], {}, OUTCOMES,
     ["sessions[0].kind"], []),
    ("a district without a center",
     [session("s1", center=""), session("s2", center=" ", held_on="2024-07-20")], {"s1": 1}, OUTCOMES,
     ["centers", "sessions[0].center", "sessions[1].center"], []),
    ("the same session entered twice",
     [session("s1"), session("s2", center="  ศูนย์ฯ   บ้านหนองบอน ")], {"s1": 1}, OUTCOMES,
     [], ["sessions[1]"]),
    ("three copies", [session("s1"), session("s2"), session("s3")], {"s1": 1}, OUTCOMES,
     [], ["sessions[1]", "sessions[2]"]),
    ("same date and center, another kind", [session("s1"), session("s2", kind="landscape")],
     {"s1": 1, "s2": 1}, OUTCOMES, [], []),
    ("same center and kind, another date", [session("s1"), session("s2", held_on="2024-07-16")],
     {"s1": 1}, OUTCOMES, [], []),
    ("same date and kind, another center", [session("s1"), session("s2", center="ศูนย์ฯ บ้านโคกสูง")],
     {"s1": 1}, OUTCOMES, [], []),
    ("two undated sessions are not duplicates", [session("s1", held_on=""), session("s2", held_on="")],
     {"s1": 1}, OUTCOMES, ["sessions[0].held_on", "sessions[1].held_on"], []),
    ("the same 'other' kind twice",
     [session("s1", kind="other", kind_other=TEMPLE), session("s2", kind="other", kind_other=TEMPLE)],
     {"s1": 1}, OUTCOMES, [], ["sessions[1]"]),
]


@pytest.mark.parametrize(("sessions", "photos", "outcomes", "errors", "warnings"),
                         [c[1:] for c in WHOLE], ids=[c[0] for c in WHOLE])
def test_the_whole_form(spec, sessions, photos, outcomes, errors, warnings):
    checked = check_report(report(*sessions, outcomes=outcomes), spec, photos)
    assert fields(checked.errors) == sorted(errors)
    assert fields(checked.warnings) == sorted(warnings)
    assert checked.ok is (not errors)


def test_a_fully_valid_report_reads_back_whole(spec):
    raw = report(session("s1", participants={COM: 30}),
                 session("s2", held_on="2024-07-20", place="บ้านโคกสูง"),
                 session("s3", kind="tree-planting", held_on="2024-07-28", center="ศูนย์ฯ ตำบลท่าเกษม",
                         place="บ้านท่าเกษม", participants={CD: 5}))
    checked = check_report(raw, spec, {"s1": 2, "s3": 1})
    assert (checked.errors, checked.warnings, checked.ok) == ((), (), True)
    assert [(s.key, s.held_on, s.kind) for s in checked.content.sessions] == [
        ("s1", date(2024, 7, 15), "learning-base"), ("s2", date(2024, 7, 20), "learning-base"),
        ("s3", date(2024, 7, 28), "tree-planting")]
    assert checked.content.sessions[0].participants == {CC: 4, VL: 6, COM: 30, PART: 3, CD: 2}
    assert checked.content.outcomes == OUTCOMES
    assert checked.raw == normalise_raw(raw, spec)


def test_a_warning_alone_leaves_the_report_submittable(spec):
    checked = check_report(report(session(participants={CD: 0, COM: 7})), spec, {"s1": 1})
    assert checked.errors == ()
    assert [(w.field, w.severity) for w in checked.warnings] == [(f"{P0}.cd-officials", "warning")]
    assert checked.ok is True


def test_the_photo_and_outcome_messages(spec):
    checked = check_report(report(session("s1"), session("s2", kind="tree-planting"), outcomes=[]),
                           spec, {"s1": 1})
    photos = finding(checked, "photos.tree-planting")
    assert "ปลูกต้นไม้" in photos.th() and "อย่างน้อย 1 ภาพ" in photos.th() and "มี 0 ภาพ" in photos.th()
    assert "Planting trees" in photos.en()
    assert "ผลที่ได้รับ" in finding(checked, "outcomes").th()
    twin = finding(check_report(report(session("s1"), session("s2")), spec, {"s1": 1}), "sessions[1]")
    assert "ครั้งที่ 2" in twin.th() and "ซ้ำกับครั้งที่ 1" in twin.th()


# --- the rules come from the directive, not from the code ---------------------------------------

def variant(spec: DirectiveSpec, form: dict | None = None, conditions: dict | None = None) -> DirectiveSpec:
    """Next year's directive: the same form with some rules changed."""
    return spec.model_copy(update={"form": spec.form.model_copy(update=form or {}),
                                   "conditions": spec.conditions.model_copy(update=conditions or {})})


# (case, form changes, condition changes, session changes, photos, outcomes, errors, warnings)
VARIANTS = [
    ("25 participants required", {}, {"min_participants_per_session": 25}, {}, {"s1": 1}, OUTCOMES,
     [P0], []),
    ("no 'other' kind allowed", {"allow_other_kind": False}, {},
     {"kind": "other", "kind_other": TEMPLE}, {"s1": 1}, OUTCOMES, ["sessions[0].kind"], []),
    ("no photos required", {"min_photos_per_kind": 0}, {}, {}, {}, OUTCOMES, [], []),
    ("two photos per kind", {"min_photos_per_kind": 2}, {}, {}, {"s1": 1}, OUTCOMES,
     ["photos.learning-base"], []),
    ("no outcome required", {"min_outcomes": 0}, {}, {}, {"s1": 1}, [], [], []),
    ("three outcomes required", {"min_outcomes": 3}, {}, {}, {"s1": 1}, OUTCOMES, ["outcomes"], []),
    ("no zero worth a warning", {"warn_if_zero": []}, {}, {"participants": {CD: 0, COM: 7}},
     {"s1": 1}, OUTCOMES, [], []),
    ("partners worth a warning too", {"warn_if_zero": [PART, CD]}, {},
     {"participants": {CD: 0, PART: 0, COM: 10}}, {"s1": 1}, OUTCOMES, [],
     [f"{P0}.cd-officials", f"{P0}.partners"]),
    ("a narrower period", {}, {"period": DatePeriod(start=date(2024, 7, 16), end=date(2024, 7, 20))},
     {}, {"s1": 1}, OUTCOMES, ["sessions[0].held_on"], []),
]


@pytest.mark.parametrize(("form", "conditions", "changes", "photos", "outcomes", "errors", "warnings"),
                         [c[1:] for c in VARIANTS], ids=[c[0] for c in VARIANTS])
def test_the_rules_follow_the_directive(spec, form, conditions, changes, photos, outcomes, errors,
                                        warnings):
    checked = check_report(report(session(**changes), outcomes=outcomes), variant(spec, form, conditions),
                           photos)
    assert fields(checked.errors) == sorted(errors)
    assert fields(checked.warnings) == sorted(warnings)


def test_the_minimum_in_the_message_is_the_directive_s(spec):
    checked = check_report(report(session()), variant(spec, conditions={"min_participants_per_session": 25}),
                           {"s1": 1})
    assert "ไม่น้อยกว่า 25 คน" in finding(checked, P0).th()


def test_a_directive_without_a_form_has_no_report(spec):
    bare = spec.model_copy(update={"form": None})
    for call in (lambda: form_of(bare), lambda: normalise_raw(report(), bare),
                 lambda: check_report(report(), bare)):
        with pytest.raises(InvalidInput, match="has no report form") as raised:
            call()
        assert "ไม่มีแบบรายงาน" in raised.value.message_th


# --- the draft as stored: bounded in shape, kept as typed --------------------------------------

def test_only_known_fields_are_stored(spec):
    raw = {"district": "2706", "version": 3,
           "sessions": [{**session(participants={"aliens": 3}), "colour": "red", "photos": ["a.jpg"]}],
           "outcomes": ["ได้ฐานเรียนรู้"]}
    assert normalise_raw(raw, spec) == {
        "sessions": [{"key": "s1", "held_on": "2024-07-15", "center": "ศูนย์ฯ บ้านหนองบอน",
                      "place": "บ้านหนองบอน ต.หนองบอน", "kind": "learning-base", "kind_other": "",
                      "participants": TWENTY}],
        "outcomes": ["ได้ฐานเรียนรู้"]}


@pytest.mark.parametrize(("raw", "stored"), [
    ({}, {"sessions": [], "outcomes": []}),
    ({"sessions": None, "outcomes": None}, {"sessions": [], "outcomes": []}),
    ({"sessions": [{"key": "s1"}]}, {"sessions": [{
        "key": "s1", "held_on": "", "center": "", "place": "", "kind": "", "kind_other": "",
        "participants": dict.fromkeys(CODES, "")}], "outcomes": []}),
    ({"sessions": [{"key": "s1", "participants": [5, 5]}]}, {"sessions": [{
        "key": "s1", "held_on": "", "center": "", "place": "", "kind": "", "kind_other": "",
        "participants": dict.fromkeys(CODES, "")}], "outcomes": []}),
], ids=["empty", "nulls", "a blank session", "counts that are not a mapping"])
def test_what_a_sparse_draft_stores(spec, raw, stored):
    assert normalise_raw(raw, spec) == stored


# (field, typed, stored)
TRIMMED = [
    ("center", "  ศูนย์ฯ   บ้านหนองบอน \n", "ศูนย์ฯ บ้านหนองบอน"),
    ("place", "\tบ้านหนองบอน\u3000", "บ้านหนองบอน"),
    ("kind", " landscape ", "landscape"),
    ("kind_other", " ทำความ  สะอาดวัด ", "ทำความ สะอาดวัด"),
    ("held_on", " 2024-07-15 ", "2024-07-15"),
    ("held_on", date(2024, 7, 15), "2024-07-15"),
    ("center", "ก" * 1000, "ก" * 300),
    ("place", "x" * 301, "x" * 300),
    ("kind", "k" * 100, "k" * 40),
    ("held_on", "9" * 100, "9" * 32),
]


@pytest.mark.parametrize(("name", "typed", "stored"), TRIMMED,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(TRIMMED)])
def test_strings_are_trimmed_and_bounded(spec, name, typed, stored):
    assert normalise_raw(report(session(**{name: typed})), spec)["sessions"][0][name] == stored


def test_outcomes_are_trimmed_bounded_and_blanks_dropped(spec):
    raw = report(outcomes=["  ปลูกต้นไม้  200 ต้น ", "", "   ", None, "ผ" * 5000])
    assert normalise_raw(raw, spec)["outcomes"] == ["ปลูกต้นไม้ 200 ต้น", "ผ" * 2000]


@pytest.mark.parametrize(("typed", "stored"), [
    ("abc", "abc"), ("-1", "-1"), (-1, -1), ("1.5", "1.5"), (1.5, "1.5"), (100001, 100001),
    ("๒๐", "๒๐"), (" 20 ", "20"), (20, 20), ("", ""), (None, ""), (True, ""), ("x" * 50, "x" * 40),
    ("00000000000125", "00000000000125"),
])
def test_a_draft_keeps_counts_as_typed(spec, typed, stored):
    """Nothing the staff typed is lost: a wrong count is kept so they see and fix it."""
    assert normalise_raw(report(session(participants={COM: typed})), spec)["sessions"][0][
        "participants"][COM] == stored


def test_a_draft_keeps_wrong_values_as_typed(spec):
    raw = report(session(held_on="last Tuesday", kind="fishing", participants={COM: "abc"}))
    kept = normalise_raw(raw, spec)["sessions"][0]
    assert (kept["held_on"], kept["kind"], kept["participants"][COM]) == ("last Tuesday", "fishing", "abc")
    assert check_report(raw, spec).raw["sessions"][0] == kept


NEW = object()   # a key the system chose


@pytest.mark.parametrize(("typed", "kept"), [
    (["a", "b"], ["a", "b"]),
    (["a", "a"], ["a", NEW]),
    (["a", "b", "a", "b"], ["a", "b", NEW, NEW]),
    (["", None], [NEW, NEW]),
    (["../../etc/passwd"], [NEW]),
    (["a b"], [NEW]),
    (["k" * 37], [NEW]),
    (["k" * 36], ["k" * 36]),
    (["0f8fad5b-d9cb-469f-a165-70867728950e"], ["0f8fad5b-d9cb-469f-a165-70867728950e"]),
    ([5], ["5"]),
    (["ครั้งที่1"], [NEW]),
], ids=["kept", "a duplicate", "two duplicates", "blank", "a path", "a space", "too long", "longest",
        "a uuid", "a number", "Thai"])
def test_session_keys_that_are_duplicate_or_invalid_are_replaced(spec, typed, kept):
    raw = report(*[session(key) for key in typed])
    stored = [s["key"] for s in normalise_raw(raw, spec)["sessions"]]
    assert len(set(stored)) == len(stored)
    for key, expected in zip(stored, kept, strict=True):
        if expected is NEW:
            assert len(key) == 32 and int(key, 16) >= 0 and key not in typed
        else:
            assert key == expected


def test_a_new_session_key_is_one_the_draft_keeps(spec):
    keys = {new_session_key() for _ in range(50)}
    assert len(keys) == 50
    assert all(len(k) == 32 and int(k, 16) >= 0 for k in keys)
    stored = normalise_raw(report(*[session(k) for k in keys]), spec)["sessions"]
    assert [s["key"] for s in stored] == list(keys)


@pytest.mark.parametrize("raw", [
    report(session()),
    report(session("dup"), session("dup"), session("../bad")),
    report(session(center="  ศูนย์ฯ   บ้านหนองบอน ", participants={COM: " ๒๐ ", CD: None, "x": 1})),
    report(session(held_on=date(2024, 7, 1), participants={COM: True, PART: 1.5}),
           outcomes=[" a ", "", 5, None]),
    {"sessions": [{"center": "c" * 400, "participants": "many"}], "extra": 1},
    {},
], ids=["valid", "bad keys", "spaces", "odd types", "sparse", "empty"])
def test_normalising_twice_is_normalising_once(spec, raw):
    once = normalise_raw(raw, spec)
    assert normalise_raw(once, spec) == once
    assert check_report(once, spec).raw == once


@pytest.mark.parametrize(("raw", "words"), [
    (None, "must be an object"),
    ([], "must be an object"),
    ("sessions", "must be an object"),
    (5, "must be an object"),
    ({"sessions": "all of them"}, "sessions must be a list"),
    ({"sessions": {"0": {}}}, "sessions must be a list"),
    ({"outcomes": "ดีมาก"}, "outcomes must be a list"),
    ({"sessions": [5]}, "each session must be an object"),
    ({"sessions": [session(), "s2"]}, "each session must be an object"),
    ({"sessions": [[]]}, "each session must be an object"),
], ids=["null", "a list", "a string", "a number", "sessions a string", "sessions a mapping",
        "outcomes a string", "a session a number", "a session a string", "a session a list"])
def test_a_body_that_is_not_a_form_is_refused(spec, raw, words):
    with pytest.raises(InvalidInput, match=words) as raised:
        normalise_raw(raw, spec)
    assert raised.value.message_th


@pytest.mark.parametrize(("raw", "refused"), [
    (report(*[session(f"s{i}") for i in range(200)]), False),
    (report(*[session(f"s{i}") for i in range(201)]), True),
    (report(outcomes=["ผล"] * 50), False),
    (report(outcomes=["ผล"] * 51), True),
], ids=["200 sessions", "201 sessions", "50 outcomes", "51 outcomes"])
def test_a_draft_too_big_is_refused(spec, raw, refused):
    assert (form_of(spec).max_sessions, form_of(spec).max_outcomes) == (200, 50)
    if not refused:
        normalise_raw(raw, spec)
        return
    with pytest.raises(InvalidInput) as raised:
        normalise_raw(raw, spec)
    assert "at most" in raised.value.message_en and "ไม่เกิน" in raised.value.message_th


# --- what a refused submission says --------------------------------------------------------------

def test_report_invalid_carries_every_finding_in_thai_and_english(spec):
    checked = check_report(report(session(participants={COM: 0}), outcomes=[]), spec, {"s1": 1})
    error = ReportInvalid(checked.errors)
    assert isinstance(error, InvalidInput)
    assert error.findings == checked.errors and len(error.findings) == 2
    assert error.message_th.startswith("ยังส่งรายงานไม่ได้: ")
    assert error.message_en.startswith("the report cannot be submitted yet: ")
    assert [f.th() for f in error.findings if f.th() not in error.message_th] == []
    assert [f.en() for f in error.findings if f.en() not in error.message_en] == []
    assert "จำนวนผู้เข้าร่วมรวม" in error.message_th and "Total participants" in error.message_en
    assert "และอีก" not in error.message_th and "more)" not in error.message_en


def test_report_invalid_shows_five_and_counts_the_rest(spec):
    raw = report(*[session(f"s{i}", place=f"บ้าน {i}", held_on=f"2024-07-{i + 10}", participants={COM: 0})
                   for i in range(7)])
    checked = check_report(raw, spec, {"s0": 1})
    error = ReportInvalid(checked.errors)
    assert len(error.findings) == 7
    assert error.message_th.endswith(" (และอีก 2 รายการ)")
    assert error.message_en.endswith(" (and 2 more)")
    assert "ครั้งที่ 5 " in error.message_th and "ครั้งที่ 6 " not in error.message_th


# --- items 1 and 3, derived from the sessions ----------------------------------------------------

def entry(key: str, center: str, place: str = "บ้านหนองบอน", kind: str = "learning-base",
          counts: tuple = (4, 6, 5, 3, 2), kind_other: str = "") -> SessionEntry:
    """A session as read; ``counts`` in the order of the five categories."""
    return SessionEntry(key=key, held_on=date(2024, 7, 15), center=center, place=place, kind=kind,
                        kind_other=kind_other, participants=dict(zip(CODES, counts, strict=True)))


@pytest.mark.parametrize(("centers", "count"), [
    (["ศูนย์ฯ บ้านหนองบอน"], 1),
    (["ศูนย์ฯ บ้านหนองบอน", "ศูนย์ฯ  บ้านหนองบอน ", " ศูนย์ฯ บ้านหนองบอน\t"], 1),
    (["Ban Nong Bon Center", "ban nong bon center", "BAN NONG BON  CENTER"], 1),
    (["ศูนย์ฯ บ้านหนองบอน", "ศูนย์ฯ บ้านคลองหาด"], 2),
    (["ศูนย์ฯ บ้านหนองบอน", "ศูนย์ฯ บ้านคลองหาด", "ศูนย์ฯ บ้านหนองบอน", "ศูนย์ฯ ตำบลท่าเกษม"], 3),
    (["ศูนย์ฯ บ้านหนองบอน", "", "  "], 1),
    ([], 0),
], ids=["one", "whitespace variants", "case variants", "two", "three of four", "blanks", "none"])
def test_item_1_counts_distinct_centers(spec, centers, count):
    content = ReportContent(sessions=[entry(f"s{i}", c) for i, c in enumerate(centers)])
    summary = summarise(content, spec)
    assert (summary.centers, summary.sessions) == (count, len(centers))


# (case, sessions as (kind, place, center, kind_other), kinds as (code, places, sessions))
PLACES = [
    ("one place twice", [("learning-base", "บ้านหนองบอน", "c1", ""),
                         ("learning-base", " บ้านหนองบอน ", "c1", "")],
     [("learning-base", 1, 2)]),
    ("two places", [("learning-base", "บ้านหนองบอน", "c1", ""), ("learning-base", "บ้านโคกสูง", "c1", "")],
     [("learning-base", 2, 2)]),
    ("one place, two kinds", [("tree-planting", "บ้านหนองบอน", "c1", ""),
                              ("learning-base", "บ้านหนองบอน", "c1", "")],
     [("learning-base", 1, 1), ("tree-planting", 1, 1)]),
    ("the form's order of kinds", [("community-kitchen", "p1", "c1", ""), ("landscape", "p1", "c1", ""),
                                   ("learning-base", "p1", "c1", "")],
     [("learning-base", 1, 1), ("landscape", 1, 1), ("community-kitchen", 1, 1)]),
    ("a blank place counts its center", [("landscape", "", "ศูนย์ฯ บ้านหนองบอน", ""),
                                         ("landscape", "", "ศูนย์ฯ  บ้านหนองบอน", ""),
                                         ("landscape", "", "ศูนย์ฯ บ้านโคกสูง", "")],
     [("landscape", 2, 3)]),
    ("'other' kinds by name, after the form's",
     [("other", "p1", "c1", "ปลูกป่า"), ("other", "p2", "c1", " ปลูกป่า"), ("other", "p1", "c1", TEMPLE),
      ("tree-planting", "p1", "c1", "")],
     [("tree-planting", 1, 1), (f"other:{TEMPLE}", 1, 1), ("other:ปลูกป่า", 2, 2)]),
    ("an unread kind is not counted", [("", "p1", "c1", ""), ("landscape", "p1", "c1", "")],
     [("landscape", 1, 1)]),
]


@pytest.mark.parametrize(("sessions", "kinds"), [c[1:] for c in PLACES], ids=[c[0] for c in PLACES])
def test_item_3_counts_distinct_places_per_kind(spec, sessions, kinds):
    content = ReportContent(sessions=[entry(f"s{i}", center, place, kind, kind_other=other)
                                      for i, (kind, place, center, other) in enumerate(sessions)])
    assert [(k.code, k.places, k.sessions) for k in summarise(content, spec).kinds] == kinds


def test_a_summary_by_hand(spec):
    content = ReportContent(sessions=[
        entry("s1", "ศูนย์ฯ บ้านหนองบอน", "บ้านหนองบอน", "learning-base", (4, 6, 10, 3, 2)),
        entry("s2", " ศูนย์ฯ  บ้านหนองบอน ", "บ้านหนองบอน ", "learning-base", (5, 5, 12, 0, 1)),
        entry("s3", "Ban Khlong Center", "Ban Khlong", "tree-planting", (3, 7, 20, 5, 0)),
        entry("s4", "BAN KHLONG  center", "บ้านคลองน้ำใส", "learning-base", (2, 8, 9, 1, None)),
        entry("s5", "ศูนย์ฯ ตำบลท่าเกษม", "", "other", (1, 4, 15, 2, 3), kind_other=TEMPLE),
    ], outcomes=["ฐานเรียนรู้ 2 ฐาน", "ปลูกต้นไม้ 200 ต้น"])
    summary = summarise(content, spec)
    assert (summary.centers, summary.sessions) == (3, 5)
    assert summary.participants == {CC: 15, VL: 30, COM: 66, PART: 11, CD: 6}
    assert summary.total_participants == 128
    assert summary.kinds == (
        KindPlaces("learning-base", "พัฒนาฐานการเรียนรู้", "Developing a learning base", 2, 3),
        KindPlaces("tree-planting", "ปลูกต้นไม้", "Planting trees", 1, 1),
        KindPlaces(f"other:{TEMPLE}", TEMPLE, TEMPLE, 1, 1))
    assert summary.outcomes == ("ฐานเรียนรู้ 2 ฐาน", "ปลูกต้นไม้ 200 ต้น")


def test_an_empty_report_sums_to_zero_in_every_category(spec):
    summary = summarise(ReportContent(), spec)
    assert summary.participants == dict.fromkeys(CODES, 0)
    assert (summary.centers, summary.sessions, summary.total_participants, summary.kinds,
            summary.outcomes) == (0, 0, 0, (), ())


# --- the province: the sum of the accepted district reports ---------------------------------------

DISTRICTS = [  # deliberately not in code order
    ("2705", "วัฒนานคร", "Watthana Nakhon"),
    ("2701", "เมืองสระแก้ว", "Mueang Sa Kaeo"),
    ("2703", "ตาพระยา", "Ta Phraya"),
    ("2702", "คลองหาด", "Khlong Hat"),
    ("2704", "วังน้ำเย็น", "Wang Nam Yen"),
]
MUEANG = ReportContent(sessions=[   # 48 heads: 9, 11, 22, 3, 3
    entry("a", "ศูนย์ฯ บ้านหนองบอน", "บ้านหนองบอน", "learning-base", (4, 6, 10, 3, 2)),
    entry("b", "ศูนย์ฯ บ้านหนองบอน ", "บ้านท่าช้าง", "tree-planting", (5, 5, 12, 0, 1)),
], outcomes=["ฐานเรียนรู้ 1 ฐาน", "ปลูกต้นไม้ 200 ต้น"])
KHLONG_HAT = ReportContent(sessions=[   # 80 heads: 6, 19, 44, 8, 3
    entry("a", "ศูนย์ฯ ตำบลคลองหาด", "บ้านคลองหาด", "learning-base", (3, 7, 20, 5, 0)),
    entry("b", "ศูนย์ฯ ตำบลไทยอุดม", "บ้านไทยอุดม", "learning-base", (2, 8, 9, 1, 0)),
    entry("c", "ศูนย์ฯ ตำบลคลองหาด", "บ้านคลองหาด", "landscape", (1, 4, 15, 2, 3)),
], outcomes=["ภูมิทัศน์ศูนย์ฯ ดีขึ้น"])
WATTHANA = ReportContent(sessions=[   # 91 heads: 12, 13, 54, 7, 5
    entry("a", "ศูนย์ฯ บ้านแซร์ออ", "บ้านแซร์ออ", "tree-planting", (6, 6, 30, 4, 2)),
    entry("b", "ศูนย์ฯ บ้านแซร์ออ", "บ้านหนองตะเคียนบอน", "tree-planting", (4, 4, 8, 2, 2)),
    entry("c", "ศูนย์ฯ บ้านห้วยโจด", "บ้านห้วยโจด", "other", (2, 3, 16, 1, 1), kind_other=TEMPLE),
], outcomes=["ปลูกต้นไม้ 500 ต้น", "ทำความสะอาดวัด 1 แห่ง"])
TA_PHRAYA = ReportContent(sessions=[   # submitted, not accepted: must not count
    entry("a", "ศูนย์ฯ ตาพระยา", "บ้านตาพระยา", "landscape", (100, 100, 100, 100, 100))],
    outcomes=["ยังไม่ตรวจ"])
REPORTS = {"2701": ("accepted", MUEANG), "2702": ("accepted", KHLONG_HAT),
           "2705": ("accepted", WATTHANA), "2703": ("submitted", TA_PHRAYA),
           "9999": ("accepted", TA_PHRAYA)}   # not a district of this compilation


@pytest.fixture(scope="module")
def compiled(spec):
    return compile_province(spec, DISTRICTS, REPORTS)


def test_province_totals_equal_the_hand_computed_sums(compiled):
    totals = compiled.totals
    assert totals.participants == {CC: 27, VL: 43, COM: 120, PART: 18, CD: 11}
    assert totals.total_participants == 219
    assert (totals.centers, totals.sessions) == (5, 8)
    assert [(k.code, k.places, k.sessions) for k in totals.kinds] == [
        ("learning-base", 3, 3), ("landscape", 1, 1), ("tree-planting", 3, 3), (f"other:{TEMPLE}", 1, 1)]
    assert totals.kinds[0].title_th == "พัฒนาฐานการเรียนรู้"
    assert totals.outcomes == ()


def test_each_accepted_district_is_summarised_on_its_own(compiled):
    by_code = {d.code: d.summary for d in compiled.accepted}
    assert {code: s.participants for code, s in by_code.items()} == {
        "2705": {CC: 12, VL: 13, COM: 54, PART: 7, CD: 5},
        "2701": {CC: 9, VL: 11, COM: 22, PART: 3, CD: 3},
        "2702": {CC: 6, VL: 19, COM: 44, PART: 8, CD: 3}}
    assert {code: (s.centers, s.sessions, s.total_participants) for code, s in by_code.items()} == {
        "2705": (2, 3, 91), "2701": (1, 2, 48), "2702": (2, 3, 80)}


def test_districts_keep_their_order_names_and_outcomes(compiled):
    assert [(d.code, d.name_th, d.name_en, d.status) for d in compiled.districts] == [
        ("2705", "วัฒนานคร", "Watthana Nakhon", "accepted"),
        ("2701", "เมืองสระแก้ว", "Mueang Sa Kaeo", "accepted"),
        ("2703", "ตาพระยา", "Ta Phraya", "submitted"),
        ("2702", "คลองหาด", "Khlong Hat", "accepted"),
        ("2704", "วังน้ำเย็น", "Wang Nam Yen", "none")]
    assert [(d.code, d.summary.outcomes) for d in compiled.accepted] == [
        ("2705", ("ปลูกต้นไม้ 500 ต้น", "ทำความสะอาดวัด 1 แห่ง")),
        ("2701", ("ฐานเรียนรู้ 1 ฐาน", "ปลูกต้นไม้ 200 ต้น")),
        ("2702", ("ภูมิทัศน์ศูนย์ฯ ดีขึ้น",))]
    assert [d.content for d in compiled.accepted] == [WATTHANA, MUEANG, KHLONG_HAT]


def test_missing_lists_exactly_the_districts_not_accepted(compiled):
    assert [(d.code, d.status, d.summary, d.content) for d in compiled.missing] == [
        ("2703", "submitted", None, None), ("2704", "none", None, None)]


@pytest.mark.parametrize("status", ["draft", "submitted", "returned"])
def test_only_accepted_reports_count(spec, status):
    compiled = compile_province(spec, DISTRICTS[:1], {"2705": (status, WATTHANA)})
    assert [(d.code, d.status) for d in compiled.missing] == [("2705", status)]
    assert compiled.accepted == ()
    assert compiled.totals.participants == dict.fromkeys(CODES, 0)
    assert (compiled.totals.centers, compiled.totals.sessions, compiled.totals.kinds) == (0, 0, ())


def test_a_province_with_no_reports(spec):
    compiled = compile_province(spec, DISTRICTS, {})
    assert [d.status for d in compiled.missing] == ["none"] * 5
    assert compiled.totals.total_participants == 0
