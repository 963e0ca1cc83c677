"""The form that helps (issue 15, item 3): a blank card is left out, a finding shows on a field
only once it was typed in (all of them at a submit), dates come in Thai parts, digits by choice."""

from datetime import date
from pathlib import Path

import pytest

from domain.directive import load_directive
from domain.report import check_report, is_blank_session, normalise_raw, shown_before_submit, typed_fields
from domain.thaidate import date_parts, in_digits, join_date_parts, thai_parts_to_date

SAKAEO = Path(__file__).parents[2] / "directives" / "fy2567-sakaeo-volunteer-centers.yaml"
TWENTY = {"center-committee": 4, "volunteer-leaders": 6, "community": 5, "partners": 3,
          "cd-officials": 2}
OUTCOMES = ["ศูนย์ฯ มีฐานการเรียนรู้ที่พร้อมใช้งาน"]
BLANK = {"key": "b1", "held_on": "", "center": "", "place": "", "kind": "", "kind_other": "",
         "participants": {}}


@pytest.fixture(scope="module")
def spec():
    return load_directive(SAKAEO)


def good(key: str = "s1", **changes) -> dict:
    return {"key": key, "held_on": "2024-07-15", "center": "ศูนย์ฯ บ้านหนองบอน",
            "place": "บ้านหนองบอน", "kind": "learning-base", "kind_other": "",
            "participants": dict(TWENTY), **changes}


# (case, the card, photos on it, blank?)
CARDS = [
    ("nothing typed", BLANK, 0, True),
    ("counts left blank", {**BLANK, "participants": {"community": "", "partners": None}}, 0, True),
    ("spaces only", {**BLANK, "center": "   "}, 0, True),
    ("a count of 0 typed", {**BLANK, "participants": {"community": 0}}, 0, False),
    ("a count of '0' typed", {**BLANK, "participants": {"community": "0"}}, 0, False),
    ("a date chosen", {**BLANK, "held_on": "2024-07-15"}, 0, False),
    ("a kind chosen", {**BLANK, "kind": "learning-base"}, 0, False),
    ("a photo attached", BLANK, 1, False),
]


@pytest.mark.parametrize(("card", "photos", "blank"), [c[1:] for c in CARDS], ids=[c[0] for c in CARDS])
def test_a_card_is_blank_only_when_nothing_was_typed_or_attached(card, photos, blank):
    assert is_blank_session(card, photos) is blank


def test_a_second_blank_card_does_not_block_submission_and_is_not_counted(spec):
    checked = check_report({"sessions": [good(), BLANK], "outcomes": OUTCOMES}, spec, {"s1": 1})
    assert checked.errors == () and checked.ok
    assert [s.key for s in checked.content.sessions] == ["s1"]
    assert checked.raw["sessions"][1]["key"] == "b1"  # kept as typed: the card stays on the page


def test_a_blank_card_between_two_keeps_each_sessions_number_and_field(spec):
    second = good("s3", place="")
    checked = check_report({"sessions": [good(), BLANK, second], "outcomes": OUTCOMES}, spec,
                           {"s1": 1, "s3": 1})
    assert [f.field for f in checked.errors] == ["sessions[2].place"]
    assert checked.errors[0].label_th.startswith("ครั้งที่ 3 ")


def test_only_blank_cards_still_need_one_session(spec):
    checked = check_report({"sessions": [BLANK], "outcomes": OUTCOMES}, spec)
    assert [f.field for f in checked.errors] == ["sessions"]


def test_the_untouched_form_shows_no_finding_before_a_submit(spec):
    for raw in ({}, {"sessions": [BLANK], "outcomes": []}):
        checked = check_report(raw, spec)
        assert checked.errors  # there is much to do…
        typed = typed_fields(checked.raw)
        assert [f for f in (*checked.errors, *checked.warnings) if shown_before_submit(f, typed)] == []


def test_a_typed_field_shows_its_error_and_untyped_ones_wait(spec):
    card = {**BLANK, "held_on": "2024-08-20", "participants": {"community": "abc"}}
    checked = check_report({"sessions": [card], "outcomes": []}, spec)
    typed = typed_fields(checked.raw)
    shown = sorted(f.field for f in checked.errors if shown_before_submit(f, typed))
    assert shown == ["sessions[0].held_on", "sessions[0].participants.community"]
    waiting = {f.field for f in checked.errors} - set(shown)
    assert {"sessions[0].center", "sessions[0].kind", "outcomes"} <= waiting


def test_a_warning_shows_in_a_session_that_was_typed_in(spec):
    card = good(participants={**TWENTY, "cd-officials": "", "community": 7})
    checked = check_report({"sessions": [card], "outcomes": OUTCOMES}, spec, {"s1": 1})
    [warning] = checked.warnings
    assert warning.field == "sessions[0].participants.cd-officials"
    assert shown_before_submit(warning, typed_fields(checked.raw))
    dated = check_report({"sessions": [{**BLANK, "held_on": "2024-07-15"}], "outcomes": []}, spec)
    assert dated.warnings and not any(shown_before_submit(w, typed_fields(dated.raw))
                                      for w in dated.warnings)  # no count typed yet: no nudge


# --- dates in three parts: day, Thai month, B.E. year --------------------------------------------

# (case, day, month, B.E. year, what the draft keeps)
PARTS = [
    ("a real day", "20", "7", "2567", "2024-07-20"),
    ("Thai digits", "๒๐", "๗", "๒๕๖๗", "2024-07-20"),
    ("29 February of a leap year", "29", "2", "2567", "2024-02-29"),
    ("29 February of another year", "29", "2", "2568", "29/2/2568"),
    ("31 June", "31", "6", "2567", "31/6/2567"),
    ("no day", "", "7", "2567", "/7/2567"),
    ("nothing chosen", "", "", "", ""),
]


@pytest.mark.parametrize(("day", "month", "year", "kept"), [p[1:] for p in PARTS], ids=[p[0] for p in PARTS])
def test_date_parts_are_joined_into_an_iso_date_or_kept_to_be_named(day, month, year, kept):
    assert join_date_parts(day, month, year) == kept


@pytest.mark.parametrize(("text", "parts"), [
    ("2024-07-20", ("20", "7", "2567")), ("31/6/2567", ("31", "6", "2567")),
    ("/7/2567", ("", "7", "2567")), ("", ("", "", "")), ("last Tuesday", ("", "", "")),
])
def test_a_kept_date_gives_back_its_parts_for_the_selects(text, parts):
    assert date_parts(text) == parts


def test_a_real_day_from_thai_parts_and_a_missing_one_refused():
    assert thai_parts_to_date("20", "7", "2567") == date(2024, 7, 20)
    for parts in (("31", "6", "2567"), ("", "7", "2567"), ("1", "13", "2567")):
        with pytest.raises(ValueError):
            thai_parts_to_date(*parts)


def test_the_draft_keeps_a_real_thai_way_date_as_iso(spec):
    raw = {"sessions": [good(held_on="20/7/2567"), good("s2", held_on="31/6/2567")], "outcomes": []}
    assert [s["held_on"] for s in normalise_raw(raw, spec)["sessions"]] == ["2024-07-20", "31/6/2567"]


# --- digits by the reader's choice ---------------------------------------------------------------

@pytest.mark.parametrize(("text", "digits", "expected"), [
    ("ครั้งที่ 1 · 20 ก.ค. 2567", "thai", "ครั้งที่ ๑ · ๒๐ ก.ค. ๒๕๖๗"),
    ("๑. จำนวนศูนย์ 3 แห่ง", "arabic", "1. จำนวนศูนย์ 3 แห่ง"),
    ("๑. จำนวนศูนย์ 3 แห่ง", "thai", "๑. จำนวนศูนย์ ๓ แห่ง"),
    ("no digits", "thai", "no digits"),
])
def test_every_digit_on_a_line_is_written_one_way(text, digits, expected):
    assert in_digits(text, digits) == expected
