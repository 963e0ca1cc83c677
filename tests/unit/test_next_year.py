"""Next year's letter from last year's (domain/next_year.py): dates, texts, header, the YAML."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import yaml

from domain.directive import load_directive, parse_directive
from domain.errors import InvalidInput
from domain.next_year import (
    REVIEW,
    fiscal_year_span,
    move_date,
    move_years,
    next_slug,
    next_year,
    to_yaml,
)

SAKAEO = Path(__file__).parents[2] / "directives" / "fy2567-sakaeo-volunteer-centers.yaml"


@pytest.fixture
def last_year() -> dict:
    """The FY 2567 letter as the database keeps it (the validated YAML, dates as ISO text)."""
    return load_directive(SAKAEO).model_dump(mode="json")


def test_fiscal_year_runs_october_to_september():
    assert fiscal_year_span(2568) == (date(2024, 10, 1), date(2025, 9, 30))
    assert fiscal_year_span(2567) == (date(2023, 10, 1), date(2024, 9, 30))


def test_a_date_moves_a_year_and_29_february_becomes_28():
    assert move_date(date(2024, 8, 9), 1) == date(2025, 8, 9)
    assert move_date(date(2024, 2, 29), 1) == date(2025, 2, 28)
    assert move_date(date(2024, 2, 29), 4) == date(2028, 2, 29)
    assert move_date(date(2023, 2, 28), 1) == date(2024, 2, 28)


def test_years_in_texts_move_in_both_eras_and_both_digit_sets():
    assert move_years("ประจำปีงบประมาณ พ.ศ. ๒๕๖๗", 2567, 1) == "ประจำปีงบประมาณ พ.ศ. ๒๕๖๘"
    assert move_years("ลงวันที่ ๒๓ พฤศจิกายน ๒๕๖๖", 2567, 1) == "ลงวันที่ ๒๓ พฤศจิกายน ๒๕๖๗"
    assert move_years("1-31 July 2024, FY 2567", 2567, 1) == "1-31 July 2025, FY 2568"
    # Other numbers stay: a letter number, a phone number, another year.
    assert move_years("สก ๐๐๑๙/ว ๒๕๒ โทร 0-3742-5057 ปี 2560", 2567, 1) == \
        "สก ๐๐๑๙/ว ๒๕๒ โทร 0-3742-5057 ปี 2560"


def test_next_slug():
    assert next_slug("fy2567-sakaeo-volunteer-centers", 2567, 2568) == "fy2568-sakaeo-volunteer-centers"
    assert next_slug("sakaeo-clean-up", 2567, 2568) == "sakaeo-clean-up-fy2568"


def test_every_date_moves_a_year_and_is_marked_for_review(last_year):
    draft = next_year(last_year, 2568)
    new = draft.spec
    assert (new["issued_on"], new["province_due"], new["department_due"]) == (
        date(2025, 7, 12), date(2025, 8, 9), date(2025, 8, 15))
    assert (new["activity_start"], new["activity_end"]) == (date(2025, 7, 1), date(2025, 7, 31))
    assert new["conditions"]["period"] == {"start": date(2025, 7, 1), "end": date(2025, 7, 31)}
    assert [s["due_on"] for s in new["steps"]] == [
        move_date(date.fromisoformat(s["due_on"]), 1) for s in last_year["steps"]]
    for index in range(len(new["steps"])):
        assert ("steps", index, "due_on") in draft.review
    for field in ("issued_on", "province_due", "department_due", "activity_start", "activity_end"):
        assert draft.review[(field,)].startswith(f"{last_year[field]} + 1 ปี/year")
    # Sat 9 Aug 2025 / Sat 12 Jul 2025: said so.
    assert "not a working day" in draft.review[("province_due",)]
    assert "not a working day" not in draft.review[("department_due",)]  # Fri 15 Aug 2025
    assert last_year["province_due"] == "2024-08-09", "the input is left as it was"


def test_header_slug_fiscal_year_reference_and_revision(last_year):
    last_year["revision"] = 3
    new = next_year(last_year, 2568).spec
    assert new["slug"] == "fy2568-sakaeo-volunteer-centers"
    assert new["fiscal_year"] == 2568 and new["revision"] == 1
    assert new["reference_no"] != last_year["reference_no"]
    assert "2568" in new["reference_no"] and last_year["reference_no"] in new["reference_no"]
    assert new["title_th"].endswith("พ.ศ. ๒๕๖๘")
    assert new["steps"][-2]["title_th"].endswith("ภายใน ๑ - ๓๑ กรกฎาคม ๒๕๖๘")


def test_two_years_ahead_and_dates_outside_the_fiscal_year(last_year):
    draft = next_year(last_year, 2569)
    assert draft.spec["province_due"] == date(2026, 8, 9) and draft.spec["slug"].startswith("fy2569-")
    last_year["department_due"] = "2024-10-15"  # after 30 Sep: in the next fiscal year
    late = next_year(last_year, 2568)
    assert "outside the fiscal year" in late.review[("department_due",)]
    assert "outside the fiscal year" not in late.review[("province_due",)]


@pytest.mark.parametrize("year", [2567, 2566])
def test_the_new_year_must_come_after(last_year, year):
    with pytest.raises(InvalidInput) as refused:
        next_year(last_year, year)
    assert "must come after 2567" in str(refused.value) and "ต้องเป็นปีหลังจาก 2567" in str(refused.value)


def test_29_february_is_noted(last_year):
    last_year["closures"] = ["2024-02-29"]
    last_year["issued_on"] = "2024-02-29"
    draft = next_year(last_year, 2568)
    assert draft.spec["closures"] == [date(2025, 2, 28)]
    assert "29 Feb → 28 Feb" in draft.review[("issued_on",)]


def test_the_yaml_loads_with_the_directive_checks_and_marks_every_moved_date(last_year):
    draft = next_year(last_year, 2568)
    text = to_yaml(draft, source=last_year["slug"])
    spec = parse_directive(text, "fy2568.yaml")
    assert (spec.slug, spec.fiscal_year, spec.revision) == ("fy2568-sakaeo-volunteer-centers", 2568, 1)
    assert spec.province_due == date(2025, 8, 9)
    assert [s.due_on for s in spec.steps] == [s["due_on"] for s in draft.spec["steps"]]
    assert spec.form is not None and spec.form.report_step == "R1"
    assert spec.office_hours.start.strftime("%H:%M") == "08:30"
    assert spec.ladder.rungs == load_directive(SAKAEO).ladder.rungs
    lines = text.splitlines()
    due_lines = [line for line in lines if line.strip().startswith("due_on:")]
    assert len(due_lines) == len(spec.steps)
    assert all(f"# {REVIEW}: 2024-" in line for line in due_lines)
    for field in ("issued_on", "activity_start", "activity_end", "province_due", "department_due"):
        line = next(line for line in lines if line.startswith(f"{field}:"))
        assert f"# {REVIEW}:" in line, line
    # The comments are comments: the data read back is the draft's.
    assert yaml.safe_load(text)["steps"][0]["due_on"] == draft.spec["steps"][0]["due_on"]


def test_a_multiline_text_survives_the_round_trip(last_year):
    last_year["contact_th"] = "บรรทัดหนึ่ง\nบรรทัดสอง: # ไม่ใช่ความเห็น"
    text = to_yaml(next_year(last_year, 2568), source="x")
    assert parse_directive(text, "x.yaml").contact_th == "บรรทัดหนึ่ง\nบรรทัดสอง: # ไม่ใช่ความเห็น"


@pytest.mark.parametrize("path", sorted((SAKAEO.parent).glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_letter_gives_a_next_year_that_loads(path):
    last = load_directive(path)
    draft = next_year(last.model_dump(mode="json"), last.fiscal_year + 1)
    spec = parse_directive(to_yaml(draft, source=last.slug), f"{path.stem}-next.yaml")
    assert spec.fiscal_year == last.fiscal_year + 1 and spec.slug != last.slug
    assert [s.code for s in spec.steps] == [s.code for s in last.steps]
    assert [s.due_on for s in spec.steps] == [move_date(s.due_on, 1) for s in last.steps]
    assert spec.close_after_working_days == last.close_after_working_days
