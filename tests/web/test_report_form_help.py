"""The form that helps (issue 15, item 3) through the real app: an untouched form shows no error,
a blank card does not block a submit (page and API agree), the date comes in Thai parts, the
words fit who reads, one save status, and digits follow the person's choice."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from models.report import ReportStatus
from tests.web.conftest import make_app
from tests.web.helpers import api_token, csrf, form_token, login, signed_in
from tests.web.test_report_pages import (
    CODE,
    D,
    draft,
    post_form,
    ready_to_submit,
    report,
    stored,
)

PAGE = f"{D}/districts/{CODE}/report"
BLANK = {"key": "f" * 32, "held_on": "", "center": "", "place": "", "kind": "", "kind_other": "",
         "participants": {}}
SCOLDING = ("ต้องแก้ไขก่อนส่ง", 'class="findings errors"', "field-msg error", "ยังส่งรายงานไม่ได้",
            "ต้องระบุ")


@pytest.fixture
def app(engine, tmp_path) -> FastAPI:
    return make_app(engine, data_dir=tmp_path)


@pytest.fixture
def any_app(any_engine, tmp_path) -> FastAPI:
    return make_app(any_engine, data_dir=tmp_path)


@pytest.fixture
def staff(app) -> Iterator[TestClient]:
    with signed_in(TestClient(app), f"staff-{CODE}") as c:
        yield c


def with_blank_card(body: dict) -> dict:
    return {**body, "sessions": [*body["sessions"], BLANK]}


def form_fields(body: dict, version: int, **changes) -> dict:
    """The page's own form as a browser without the script posts it."""
    fields = {"version": str(version), "sessions-form": "1", "outcomes": body["outcomes"]}
    for i, entry in enumerate(body["sessions"]):
        fields.update({f"sessions-{i}-{k}": v for k, v in entry.items() if k != "participants"})
        fields.update({f"sessions-{i}-p-{c}": str(v) for c, v in entry["participants"].items()})
    return {**fields, **changes}


# --- Done-when 3: no error shows on an untouched form ----------------------------------------------

def test_an_untouched_form_shows_no_error_in_thai_or_english(staff):
    html = staff.get(PAGE).text
    assert 'id="report-form"' in html and 'name="sessions-0-center"' in html
    assert [w for w in SCOLDING if w in html] == []
    staff.post("/lang", data={"lang": "en", "next": "/", "csrftoken": csrf(staff)})
    english = staff.get(PAGE).text
    assert [w for w in ("to fix before", "field-msg error", "required") if w in english] == []


def test_a_saved_draft_of_blank_cards_shows_no_error_and_one_save_status(staff):
    answer = draft(staff, {"sessions": [BLANK, {**BLANK, "key": "e" * 32}], "outcomes": []}, 0)
    body = answer.json()
    assert answer.status_code == 200 and body["status_text"] == "ร่าง"
    assert body["saved_text"] == "บันทึกแล้ว เวลา 10:00 น."  # the clock: 10:00 in Bangkok
    assert [e for e in body["errors"] if e["shown"]] == [] and "ต้องแก้ไข" not in body["html"]["findings"]
    html = staff.get(PAGE).text
    assert [w for w in SCOLDING if w in html] == []
    assert html.count('id="save-status"') == 1 and "บันทึกล่าสุด 18 ก.ค. 2567 10:00 น." in html
    assert "ยังไม่ได้บันทึก" not in html  # the badge says the report's state, not the save's


def test_a_typed_field_is_marked_and_an_attempt_to_submit_lists_every_error(staff):
    card = {**BLANK, "held_on": "31/6/2567"}
    version = draft(staff, {"sessions": [card], "outcomes": []}, 0).json()["version"]
    html = staff.get(PAGE).text
    assert "ไม่มีวันที่ 31 มิถุนายน 2567 ในปฏิทิน" in html  # typed: marked beside the date
    assert "ต้องระบุ" not in html and "ต้องแก้ไขก่อนส่ง" not in html
    refused = post_form(staff, f"{PAGE}/submit", version=str(version))
    assert refused.status_code == 422
    assert "ต้องแก้ไขก่อนส่ง" in refused.text and "ต้องระบุ" in refused.text  # now all of them
    assert 'data-attempted="1"' in refused.text


# --- a blank card does not block a submit ----------------------------------------------------------

def test_a_blank_card_does_not_block_submitting_from_the_page_or_the_api(any_app, any_engine):
    with signed_in(TestClient(any_app), f"staff-{CODE}") as staff:
        version = ready_to_submit(staff)
        body = with_blank_card(report(second_heads=22))
        answer = post_form(staff, f"{PAGE}/submit", **form_fields(body, version))
        assert answer.status_code == 303, answer.text
    saved = stored(any_engine)
    assert saved.status == ReportStatus.SUBMITTED and len(saved.content["sessions"]) == 4
    with TestClient(any_app) as api:
        headers = api_token(api, "coordinator")
        read = api.get(f"/api/v1/districts/{CODE}/report", headers=headers).json()
        assert read["errors"] == [] and read["status"] == "submitted"


def test_the_api_submits_with_a_blank_card_too(app, engine):
    with signed_in(TestClient(app), f"staff-{CODE}") as staff:
        version = ready_to_submit(staff)
    with TestClient(app) as api:
        headers = api_token(api, f"staff-{CODE}")
        put = api.put(f"/api/v1/districts/{CODE}/report", headers=headers,
                      json={"version": version, "report": with_blank_card(report(second_heads=22))})
        assert put.status_code == 200 and put.json()["errors"] == []
        sent = api.post(f"/api/v1/districts/{CODE}/report/submit", headers=headers,
                        json={"version": put.json()["version"]})
        assert sent.status_code == 200, sent.text
    assert stored(engine).status == ReportStatus.SUBMITTED


# --- the date in Thai parts, without the script -----------------------------------------------------

def test_date_parts_posted_without_the_script_are_joined_and_a_bad_one_named(staff, engine):
    body = report()
    parts = {"sessions-0-held_on": "", "sessions-0-held_on-d": "20", "sessions-0-held_on-m": "7",
             "sessions-0-held_on-y": "2567", "sessions-1-held_on-d": "31",
             "sessions-1-held_on-m": "6", "sessions-1-held_on-y": "2567"}
    token = form_token(staff.get(PAGE).text)
    answer = staff.post(PAGE, data={"csrftoken": token, **form_fields(body, 0, **parts)},
                        follow_redirects=False)
    assert answer.status_code == 303
    assert [s["held_on"] for s in stored(engine).content["sessions"]] == \
        ["2024-07-20", "31/6/2567", "2024-07-24"]
    html = staff.get(PAGE).text
    assert "ไม่มีวันที่ 31 มิถุนายน 2567 ในปฏิทิน" in html
    assert '<option value="20" selected>' in html and '<option value="2567" selected>' in html
    refused = post_form(staff, f"{PAGE}/submit", version=str(stored(engine).version))
    assert refused.status_code == 422 and "ครั้งที่ 2 · วันที่จัดกิจกรรม: ไม่มีวันที่ 31 มิถุนายน" in refused.text
    staff.post("/lang", data={"lang": "en", "next": "/", "csrftoken": csrf(staff)})
    english = draft(staff, body | {"sessions": [{**body["sessions"][0], "held_on": "31/6/2567"}]},
                    stored(engine).version, attempted=True).json()
    assert english["errors"][0]["text"] == \
        "Session 1 · Date held: there is no 31 Jun 2024 (B.E. 2567)"
    assert "June" in staff.get(PAGE).text and "mm/dd/yyyy" not in staff.get(PAGE).text


# --- words for who reads it --------------------------------------------------------------------------

def test_after_submitting_the_district_reads_its_own_words_and_the_coordinator_a_reviewers(app, engine):
    with signed_in(TestClient(app), f"staff-{CODE}") as staff:
        version = ready_to_submit(staff)
        assert post_form(staff, f"{PAGE}/submit", version=str(version)).status_code == 303
        html = staff.get(PAGE).text
        assert "ส่งรายงานเมื่อ" in html and "ทำโดยเจ้าหน้าที่ของอำเภอ" not in html
        assert "คุณดูรายงานนี้ได้อย่างเดียว" not in html
    with signed_in(TestClient(app), "coordinator") as coordinator:
        html = coordinator.get(PAGE).text
        assert "รอคุณตรวจ" in html and "แก้ไขไม่ได้จนกว่าจังหวัดจะส่งกลับ" not in html
        draft_page = coordinator.get(f"{D}/districts/2701/report").text
        assert "ตรวจได้เมื่ออำเภอส่งแล้ว" in draft_page and "ต้องแก้ไขก่อนส่ง" not in draft_page


# --- digits by the person's choice ------------------------------------------------------------------

def test_digits_follow_the_choice_beside_the_language_and_survive_signing_in(app):
    with TestClient(app) as client:
        token = form_token(client.get("/login").text)
        client.post("/digits", data={"digits": "thai", "next": "/", "csrftoken": token})
        assert login(client, f"staff-{CODE}").status_code == 303
        saved = draft(client, report(), 0).json()  # the autosave's answer follows the choice too
        assert 'data-sum="total">๘๒<' in saved["html"]["summary"]
        assert saved["errors"][0]["text"].startswith("ครั้งที่ ๒ ·") and "๑๕ คน" in saved["errors"][0]["text"]
        assert saved["saved_text"] == "บันทึกแล้ว เวลา ๑๐:๐๐ น."
        thai = client.get(PAGE).text
        assert "ภาคีการพัฒนา ๗ ภาคส่วน" in thai and "๑๘ ก.ค. ๒๕๖๗" in thai
        assert '<span class="js-number">๒</span>' in thai and 'data-digits="thai"' in thai
        assert 'value="2567"' in thai  # values posted stay Arabic; only what is read changes
        client.post("/digits", data={"digits": "arabic", "next": "/", "csrftoken": csrf(client)})
        arabic = client.get(PAGE).text
        assert "ภาคีการพัฒนา 7 ภาคส่วน" in arabic and "1. จำนวนศูนย์" in arabic
        assert "18 ก.ค. 2567" in arabic and "๒๕๖๗" not in arabic
