"""A province's additions to the Department's directive, and DHIS2-style reporting rates."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from domain.directive import DirectiveError, load_directive, parse_directive
from domain.national import is_addition, load_addition, merge_addition, parse_addition
from domain.rates import Completion, Rate, rates_by_key, total

ROOT = Path(__file__).resolve().parents[2]
NATIONAL = ROOT / "directives" / "fy2567-national-volunteer-centers.yaml"
CHIANG_MAI = ROOT / "directives" / "additions" / "fy2567-national-volunteer-centers-50.yaml"
BANGKOK = ZoneInfo("Asia/Bangkok")


@pytest.fixture(scope="module")
def national():
    return load_directive(NATIONAL)


def addition(body: str):
    return parse_addition("extends: fy2567-national-volunteer-centers\n" + body, "add.yaml")


def test_the_national_file_is_national_and_names_no_province(national):
    assert national.scope == "national" and national.province_code is None
    assert national.issuer_th == "กรมการพัฒนาชุมชน"
    copy = national.for_province("27")
    assert (copy.scope, copy.province_code, copy.slug) == \
        ("province", "27", "fy2567-national-volunteer-centers-p27")
    assert [s.code for s in copy.steps] == [s.code for s in national.steps]


def test_scope_and_province_code_must_agree():
    text = NATIONAL.read_text(encoding="utf-8")
    with pytest.raises(DirectiveError) as error:
        parse_directive(text.replace("scope: national\n", "scope: national\nprovince_code: \"27\"\n"),
                        "n.yaml")
    assert "leave province_code out" in error.value.message_en
    assert "ไม่ต้องระบุ province_code" in error.value.message_th
    with pytest.raises(DirectiveError) as error:
        parse_directive(text.replace("scope: national\n", ""), "p.yaml")
    assert "needs province_code" in error.value.message_en


def test_chiang_mai_adds_a_step_and_brings_dates_forward(national):
    merged = merge_addition(national, load_addition(CHIANG_MAI))
    due = {s.code: s.due_on for s in merged.steps}
    assert merged.slug == "fy2567-national-volunteer-centers-p50"
    assert merged.province_code == "50" and merged.province_due == date(2024, 8, 8)
    assert due["G1"] == date(2024, 7, 16) and due["R1"] == date(2024, 8, 8)
    assert due["G2"] == date(2024, 7, 19)  # untouched: the Department's date
    assert merged.steps[-1].code == "P1" and merged.steps[-1].order == 13
    assert merged.issuer_th == "สำนักงานพัฒนาชุมชนจังหวัดเชียงใหม่"
    assert merged.department_due == national.department_due  # only the Department moves it


def test_a_province_may_not_push_a_date_back_or_reuse_a_code(national):
    bad = addition('province_code: "50"\ndue_dates:\n  G1: 2024-07-30\n  ZZ: 2024-07-10\n'
                   "steps:\n  - {code: G2, kind: guideline, title_th: ก, title_en: a,"
                   " due_on: 2024-07-25}\n")
    with pytest.raises(DirectiveError) as error:
        merge_addition(national, bad, "add.yaml")
    problems = {p.field: (p.message_en, p.message_th) for p in error.value.problems}
    assert set(problems) == {"due_dates.G1", "due_dates.ZZ", "steps[0].code"}
    assert "later than the Department's 2024-07-17" in problems["due_dates.G1"][0]
    assert "ช้ากว่ากำหนดของกรมฯ" in problems["due_dates.G1"][1]
    assert "no step ZZ" in problems["due_dates.ZZ"][0]
    assert "is the Department's" in problems["steps[0].code"][0]
    assert error.value.message_en.startswith("add.yaml: due_dates.G1:")


def test_the_merged_directive_must_still_hold_together(national):
    """An earlier report day with steps still due after it: named by step code."""
    early = addition('province_code: "50"\nprovince_due: 2024-08-05\n')
    with pytest.raises(DirectiveError) as error:
        merge_addition(national, early)
    fields = {p.field for p in error.value.problems}
    assert fields == {"steps[G6].due_on", "steps[G7].due_on", "steps[G8].due_on", "steps[R1].due_on"}
    later = addition('province_code: "50"\nprovince_due: 2024-08-20\n')
    with pytest.raises(DirectiveError, match="only bring dates forward"):
        merge_addition(national, later)


def test_an_addition_must_extend_a_national_directive(national):
    provincial = national.for_province("27")
    with pytest.raises(DirectiveError, match="not a national directive"):
        merge_addition(provincial, addition('province_code: "27"\n'))


def test_addition_files_are_checked_like_directives():
    with pytest.raises(DirectiveError) as error:
        parse_addition("extends: x\nprovince_code: 50\nsteps_typo: []\n", "a.yaml")
    assert "a.yaml:2: province_code" in error.value.message_en
    assert "a.yaml:3: steps_typo: unknown field" in error.value.message_en
    with pytest.raises(DirectiveError, match="repeats steps"):
        addition('province_code: "50"\nsteps:\n'
                 "  - {code: P1, kind: guideline, title_th: ก, title_en: a, due_on: 2024-07-25}\n"
                 "  - {code: P1, kind: guideline, title_th: ข, title_en: b, due_on: 2024-07-26}\n")
    assert is_addition(CHIANG_MAI.read_text(encoding="utf-8"))
    assert not is_addition(NATIONAL.read_text(encoding="utf-8"))


# --- reporting rates ------------------------------------------------------------------------------

def at(day: int, hour: int) -> datetime:
    """An instant in August 2024, Bangkok time, stored as UTC like the database does."""
    return datetime(2024, 8, day, hour, tzinfo=BANGKOK).astimezone(UTC)


def test_rates_count_expected_actual_on_time_and_overdue():
    due, today = date(2024, 8, 9), date(2024, 8, 13)
    rows = [Completion("27", due, True, at(8, 10)),    # early
            Completion("27", due, True, at(9, 23)),    # 23:00 Bangkok on the due day: on time
            Completion("27", due, True, at(10, 0)),    # 00:00 the day after (17:00 UTC the 9th): late
            Completion("27", due, False, None),        # open, past due: overdue
            Completion("50", date(2024, 8, 20), False, None)]  # open, not yet due
    rates = rates_by_key(rows, today, BANGKOK)
    assert rates["27"] == Rate(expected=4, actual=3, on_time=2, overdue=1)
    assert rates["50"] == Rate(expected=1, actual=0, on_time=0, overdue=0)
    assert (rates["27"].percent, rates["27"].on_time_percent) == (75, 50)
    assert total(rates.values()) == Rate(5, 3, 2, 1)
    assert Rate().percent is None and Rate().on_time_percent is None
