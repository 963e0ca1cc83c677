"""The report form's pages: who sees what, autosave and its version check, photos, submitting,
the coordinator's review, the provincial page and its downloads — through the real app.

Tests marked with ``any_client``-style fixtures run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from PIL import Image
from sqlalchemy.engine import Engine
from sqlmodel import Session

from models.audit import entries_for
from models.directive import ItemStatus, get_directive_by_slug
from models.report import Report, ReportStatus, get_report, photos_of
from tests.web.conftest import make_app
from tests.web.helpers import SLUG, api_token, csrf, form_token, item_of, signed_in

CODE = "2706"
D = f"/directives/{SLUG}"  # the Sa Kaeo FY 2567 directive's pages
TOO_FEW = "ครั้งที่ 2 · จำนวนผู้เข้าร่วมรวม: มีผู้เข้าร่วม 15 คน ต้องไม่น้อยกว่า 20 คนต่อครั้ง"
KEYS = ["a1" * 16, "b2" * 16, "c3" * 16]


# --- fixtures and factories -----------------------------------------------------------------------

@pytest.fixture
def app(engine, tmp_path) -> FastAPI:
    """The app over a fresh SQLite demo database, photos under this test's own folder."""
    return make_app(engine, data_dir=tmp_path)


@pytest.fixture
def any_app(any_engine, tmp_path) -> FastAPI:
    """The same on SQLite and PostgreSQL."""
    return make_app(any_engine, data_dir=tmp_path)


def client_for(app: FastAPI, username: str) -> TestClient:
    return signed_in(TestClient(app), username)


@pytest.fixture
def staff(app) -> Iterator[TestClient]:
    with client_for(app, f"staff-{CODE}") as c:
        yield c


def session_entry(key: str, day: int, center: str, place: str, kind: str, heads: int) -> dict:
    """A session whose five counts add up to ``heads`` (cd-officials ≥ 1: no warning)."""
    counts = {"center-committee": 3, "volunteer-leaders": 5, "partners": 1, "cd-officials": 1}
    return {"key": key, "held_on": f"2024-07-{day:02d}", "center": center, "place": place,
            "kind": kind, "kind_other": "",
            "participants": {**counts, "community": str(heads - sum(counts.values()))}}


def report(second_heads: int = 15) -> dict:
    """Three sessions at two centers, three kinds; the second has ``second_heads`` people."""
    return {"sessions": [
        session_entry(KEYS[0], 10, "ศูนย์ฯ ตำบลโคกสูง", "บ้านโคกสูง", "tree-planting", 32),
        session_entry(KEYS[1], 17, "ศูนย์ฯ ตำบลหนองม่วง", "บ้านหนองม่วง", "landscape", second_heads),
        session_entry(KEYS[2], 24, "ศูนย์ฯ ตำบลโคกสูง", "บ้านหนองแวง", "community-kitchen", 35),
    ], "outcomes": ["ศูนย์ฯ มีแปลงผักเพิ่มขึ้น ชุมชนใช้เป็นแหล่งอาหาร"]}


def jpeg(colour=(30, 120, 60), size=(640, 480)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG", quality=85)
    return out.getvalue()


def draft(client: TestClient, body: dict, version: int, code: str = CODE, attempted: bool = False):
    """The page script's autosave: JSON with the token in a header (``attempted``: after a
    refused submit, when the answer lists every error)."""
    return client.post(f"{D}/districts/{code}/report/draft",
                       json={"version": version, "report": body, "attempted": attempted},
                       headers={"x-csrftoken": csrf(client), "accept": "application/json"})


def upload(client: TestClient, key: str, *files: tuple[str, bytes], json: bool = True,
           code: str = CODE):
    """The page script's upload (multipart, token in a header)."""
    headers = {"x-csrftoken": csrf(client), **({"accept": "application/json"} if json else {})}
    return client.post(f"{D}/districts/{code}/report/photos", data={"session_key": key},
                       files=[("files", (name, data, "image/jpeg")) for name, data in files],
                       headers=headers, follow_redirects=False)


def stored(engine: Engine, code: str = CODE) -> Report | None:
    with Session(engine) as session:
        return get_report(session, get_directive_by_slug(session, SLUG).id, code)


def ready_to_submit(client: TestClient) -> int:
    """A complete report with a photo per kind; returns its version."""
    version = draft(client, report(second_heads=22), 0).json()["version"]
    for key in KEYS:
        answer = upload(client, key, (f"{key[:2]}.jpg", jpeg()))
        assert answer.status_code == 200 and answer.json()["refused"] == [], answer.text
        version = answer.json()["version"]
    return version


def post_form(client: TestClient, path: str, **fields) -> object:
    return client.post(path, data={"csrftoken": csrf(client), **fields}, follow_redirects=False)


# --- who sees the form ----------------------------------------------------------------------------

def test_the_form_renders_for_its_staff_and_the_coordinator_and_is_refused_to_other_districts(any_app):
    with client_for(any_app, f"staff-{CODE}") as staff:
        page = staff.get(f"{D}/districts/{CODE}/report")
        assert page.status_code == 200
        html = page.text
        assert "แบบรายงาน อำเภออรัญประเทศ" in html and "ยังไม่ได้เริ่ม" in html
        assert 'name="sessions-0-held_on"' in html and 'type="date"' not in html  # no mm/dd/yyyy
        assert 'name="sessions-0-held_on-d"' in html and '<option value="2567"' in html
        assert html.count('inputmode="numeric"') >= 10  # five counts: a session + the template
        for title in ("คณะกรรมการบริหารศูนย์ผู้นำจิตอาสาพัฒนาชุมชน", "ภาคีการพัฒนา 7 ภาคส่วน",
                      "ปลูกต้นไม้", "อื่น ๆ (ระบุ)"):
            assert title in html
        assert 'accept="image/*" capture="environment" multiple' in html
        assert 'src="/static/report.js"' in html
        assert f'formaction="{D}/districts/2706/report/submit"' in html  # submitting saves the form too
    with client_for(any_app, "coordinator") as coordinator:
        page = coordinator.get(f"{D}/districts/{CODE}/report")
        assert page.status_code == 200
        assert '<fieldset class="plain" disabled>' in page.text
        assert "capture=" not in page.text and "report.js" not in page.text
    with client_for(any_app, "staff-2701") as other:
        refused = other.get(f"{D}/districts/{CODE}/report")
        assert refused.status_code == 403
        assert "ทำรายการไม่ได้" in refused.text


def test_the_district_page_links_its_report_instead_of_a_done_button_for_r1(staff, engine):
    page = staff.get(f"/districts/{CODE}").text
    assert 'href="/directives/fy2567-sakaeo-volunteer-centers/districts/2706/report"' in page
    r1 = item_of(engine, CODE, "R1")
    assert f'action="/items/{r1.id}/done"' not in page
    assert "แบบรายงาน" in page  # the nav link too


# --- autosave -------------------------------------------------------------------------------------

def test_autosave_round_trip_with_the_version_and_a_stale_save_is_a_409(any_app, any_engine):
    with client_for(any_app, f"staff-{CODE}") as staff:
        first = draft(staff, report(), 0)
        assert first.status_code == 200, first.text
        body = first.json()
        assert body["version"] == 1 and body["status"] == "draft" and body["editable"]
        assert [e["field"] for e in body["errors"]][:1] == ["sessions[1].participants"]
        assert body["errors"][0]["text"] == TOO_FEW
        assert body["summary"]["centers"] == 2 and body["summary"]["total_participants"] == 82
        assert {k["code"]: k["places"] for k in body["summary"]["kinds"]} == {
            "landscape": 1, "tree-planting": 1, "community-kitchen": 1}
        assert body["errors"][0]["shown"]  # typed in: marked beside its field at once
        assert TOO_FEW not in body["html"]["findings"]  # the list waits for an attempt to submit
        assert set(body["html"]["photos"]) == set(KEYS)
        listed = draft(staff, report(), 1, attempted=True).json()
        assert listed["version"] == 1 and TOO_FEW in listed["html"]["findings"]

        second = draft(staff, report(second_heads=25), 1)
        assert second.json()["version"] == 2
        assert "sessions[1].participants" not in {e["field"] for e in second.json()["errors"]}
        same = draft(staff, report(second_heads=25), 2)  # a blur with nothing changed
        assert same.json()["version"] == 2

        stale = draft(staff, report(second_heads=40), 1)
        assert stale.status_code == 409
        assert stale.json()["detail"]["th"] == \
            "มีผู้อื่นบันทึกรายงานนี้ไปแล้ว กรุณาโหลดหน้าใหม่แล้วลองอีกครั้ง"
        assert "someone else saved" in stale.json()["detail"]["en"]
    saved = stored(any_engine)
    assert saved.version == 2
    assert saved.content["sessions"][1]["participants"]["community"] == "15"  # 25 - 10, as typed


def test_autosave_answers_in_english_for_the_english_ui(staff):
    staff.post("/lang", data={"lang": "en", "next": "/", "csrftoken": csrf(staff)})
    body = draft(staff, report(), 0).json()
    assert body["errors"][0]["text"] == \
        "Session 2 · Total participants: 15 participants; at least 20 are required each time"
    page = staff.get(f"{D}/districts/{CODE}/report").text
    assert '<html lang="en">' in page and "Report form, Aranyaprathet district" in page
    assert "15 participants; at least 20 are required each time" in page  # the field's mark


def test_the_form_works_without_javascript_post_redirect_get(staff, engine):
    token = form_token(staff.get(f"{D}/districts/{CODE}/report").text)
    fields = {"csrftoken": token, "version": "0", "sessions-form": "1", "op": "add-session",
              "sessions-0-key": KEYS[0], "sessions-0-held_on": "2024-07-10",
              "sessions-0-center": "ศูนย์ฯ ตำบลโคกสูง", "sessions-0-place": "บ้านโคกสูง",
              "sessions-0-kind": "other", "sessions-0-kind_other": "ทำแนวกันไฟ",
              "sessions-0-p-community": "๒๕", "outcomes": ["ข้อหนึ่ง", ""]}
    answer = staff.post(f"{D}/districts/{CODE}/report", data=fields, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == f"{D}/districts/2706/report#sessions-end"
    saved = stored(engine)
    assert len(saved.content["sessions"]) == 2 and saved.content["outcomes"] == ["ข้อหนึ่ง"]
    assert saved.content["sessions"][0]["kind_other"] == "ทำแนวกันไฟ"
    page = staff.get(f"{D}/districts/{CODE}/report").text
    assert "บันทึกร่างรายงานแล้ว" in page and 'name="sessions-1-held_on"' in page
    assert "ทำแนวกันไฟ" in page  # item 3 shows the district's own kind
    removed = staff.post(f"{D}/districts/{CODE}/report", follow_redirects=False, data={
        "csrftoken": token, "version": str(saved.version), "op": "remove-session-0",
        "sessions-0-key": KEYS[0], "sessions-1-key": saved.content["sessions"][1]["key"]})
    assert removed.status_code == 303
    assert [s["key"] for s in stored(engine).content["sessions"]] == \
        [saved.content["sessions"][1]["key"]]


# --- photos ---------------------------------------------------------------------------------------

def test_a_real_jpeg_is_kept_and_a_text_file_renamed_jpg_is_refused_with_the_reason(any_app, any_engine,
                                                                                      tmp_path):
    with client_for(any_app, f"staff-{CODE}") as staff:
        draft(staff, report(), 0)
        answer = upload(staff, KEYS[0], ("ต้นไม้.jpg", jpeg()),
                        ("script.jpg", b"#!/bin/sh\nrm -rf /\n"))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert [r["th"] for r in body["refused"]] == ["script.jpg: ไฟล์นี้ไม่ใช่รูปภาพ JPEG, PNG หรือ HEIC"]
        assert "not a photo" in body["refused"][0]["en"]
        assert body["version"] == 2
        with Session(any_engine) as session:
            photos = photos_of(session, stored(any_engine).id)
        assert [p.original_filename for p in photos] == ["ต้นไม้.jpg"]
        photo = photos[0]
        assert f'/photos/{photo.id}/thumb' in body["html"]["photos"][KEYS[0]]
        thumb = staff.get(f"/photos/{photo.id}/thumb")
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
        assert "private" in thumb.headers["cache-control"]
        assert Image.open(io.BytesIO(thumb.content)).size == (320, 240)
        assert staff.get(f"/photos/{photo.id}").status_code == 200
        assert sorted(p.name for p in (tmp_path / "photos").iterdir()) == sorted(
            [photo.stored_name, photo.display_name, photo.thumb_name])

        # without the script: a redirect back, the reason flashed in Thai and English
        plain = upload(staff, KEYS[0], ("notes.jpg", "สวัสดี".encode()), json=False)
        assert plain.status_code == 303
        assert plain.headers["location"] == f"{D}/districts/2706/report#session-{KEYS[0]}"
        page = staff.get(f"{D}/districts/{CODE}/report").text
        assert "ไม่รับไฟล์: notes.jpg: ไฟล์นี้ไม่ใช่รูปภาพ JPEG, PNG หรือ HEIC" in page
        assert "not a photo" in page

    with client_for(any_app, "staff-2701") as other:
        assert other.get(f"/photos/{photo.id}/thumb").status_code == 403
        assert other.get(f"/photos/{photo.id}").status_code == 403
        assert post_form(other, f"/photos/{photo.id}/delete").status_code == 403
    with client_for(any_app, "coordinator") as coordinator:
        assert coordinator.get(f"/photos/{photo.id}/thumb").status_code == 200


def test_an_oversized_upload_is_refused_without_reading_it_all(staff, engine):
    draft(staff, report(), 0)
    big = b"\xff\xd8\xff" + b"\0" * 10_000_000  # one byte over the form's 10 MB
    body = upload(staff, KEYS[0], ("big.jpg", big)).json()
    assert body["refused"][0]["th"] == "big.jpg: ไฟล์ใหญ่เกิน 10 MB"
    assert stored(engine).version == 1


def test_photos_need_a_saved_session_and_can_be_deleted(staff, engine, tmp_path):
    draft(staff, report(), 0)
    unknown = upload(staff, "f" * 32, ("a.jpg", jpeg())).json()
    assert "บันทึกข้อมูลการจัดกิจกรรมครั้งนี้ก่อน" in unknown["refused"][0]["th"]
    upload(staff, KEYS[1], ("a.jpg", jpeg()))
    with Session(engine) as session:
        (photo,) = photos_of(session, stored(engine).id)
    gone = post_form(staff, f"/photos/{photo.id}/delete")
    assert gone.status_code == 303 and gone.headers["location"].endswith(f"#session-{KEYS[1]}")
    assert list((tmp_path / "photos").iterdir()) == []
    assert staff.get(f"/photos/{photo.id}/thumb").status_code == 404


def test_removing_a_session_removes_its_photos(staff, engine):
    version = draft(staff, report(), 0).json()["version"]
    version = upload(staff, KEYS[2], ("a.jpg", jpeg())).json()["version"]
    body = report()
    body["sessions"] = body["sessions"][:2]
    answer = draft(staff, body, version).json()
    assert set(answer["html"]["photos"]) == set(KEYS[:2])
    with Session(engine) as session:
        assert photos_of(session, stored(engine).id) == []


# --- submitting and reviewing ---------------------------------------------------------------------

def test_submit_is_refused_with_the_thai_message_naming_the_15_participant_session(staff, engine):
    version = draft(staff, report(), 0).json()["version"]
    answer = post_form(staff, f"{D}/districts/{CODE}/report/submit", version=str(version))
    assert answer.status_code == 422
    assert "ยังส่งรายงานไม่ได้" in answer.text and TOO_FEW in answer.text
    assert "บ้านหนองแวง" in answer.text  # nothing typed is lost
    assert stored(engine).status == ReportStatus.DRAFT
    assert item_of(engine, CODE, "R1").status == ItemStatus.OPEN


def test_submitting_from_the_form_saves_what_was_typed_first(staff, engine):
    version = ready_to_submit(staff)
    fields = {"version": str(version), "sessions-form": "1", "outcomes": ["ผลใหม่จากฟอร์ม"]}
    for i, entry in enumerate(report(second_heads=22)["sessions"]):
        fields.update({f"sessions-{i}-{k}": v for k, v in entry.items() if k != "participants"})
        fields.update({f"sessions-{i}-p-{c}": v for c, v in entry["participants"].items()})
    answer = post_form(staff, f"{D}/districts/{CODE}/report/submit", **fields)
    assert answer.status_code == 303, answer.text
    saved = stored(engine)
    assert saved.status == ReportStatus.SUBMITTED and saved.content["outcomes"] == ["ผลใหม่จากฟอร์ม"]


def test_return_accept_and_reopen_are_the_coordinators_alone(any_app, any_engine):
    staff = client_for(any_app, f"staff-{CODE}")
    coordinator = client_for(any_app, "coordinator")
    head = client_for(any_app, "province-head")
    path = f"{D}/districts/{CODE}/report"
    version = ready_to_submit(staff)
    assert post_form(staff, f"{path}/submit", version=str(version)).status_code == 303
    assert item_of(any_engine, CODE, "R1").status == ItemStatus.DONE
    version = stored(any_engine).version

    for who in (staff, head):
        assert post_form(who, f"{path}/accept", version=str(version)).status_code == 403
        assert post_form(who, f"{path}/return", version=str(version), comment="x").status_code == 403
    assert post_form(coordinator, f"{path}/return", version=str(version), comment=" ").status_code == 422
    assert post_form(coordinator, f"{path}/accept", version=str(version - 1)).status_code == 409

    returned = post_form(coordinator, f"{path}/return", version=str(version),
                         comment="ครั้งที่ 3 ระบุหมู่บ้านให้ครบ")
    assert returned.status_code == 303
    assert stored(any_engine).status == ReportStatus.RETURNED
    assert item_of(any_engine, CODE, "R1").status == ItemStatus.OPEN
    page = staff.get(path).text
    assert 'class="review-comment"' in page and "ครั้งที่ 3 ระบุหมู่บ้านให้ครบ" in page

    version = stored(any_engine).version
    assert post_form(staff, f"{path}/submit", version=str(version)).status_code == 303
    version = stored(any_engine).version
    assert post_form(coordinator, f"{path}/accept", version=str(version)).status_code == 303
    assert stored(any_engine).status == ReportStatus.ACCEPTED
    assert item_of(any_engine, CODE, "R1").status == ItemStatus.DONE
    locked = draft(staff, report(second_heads=30), stored(any_engine).version)
    assert locked.status_code == 409 and "ล็อก" in locked.json()["detail"]["th"]
    assert "<fieldset class=\"plain\" disabled>" in staff.get(path).text

    assert post_form(staff, f"{path}/reopen", version=str(stored(any_engine).version),
                     reason="x").status_code == 403
    reopened = post_form(coordinator, f"{path}/reopen", version=str(stored(any_engine).version),
                         reason="ตัวเลขครั้งที่ 1 ไม่ตรงกับหลักฐาน")
    assert reopened.status_code == 303
    assert stored(any_engine).status == ReportStatus.RETURNED
    with Session(any_engine) as session:
        actions = [e.action for e in entries_for(session, "report", stored(any_engine).id)]
    assert actions[-4:] == ["report.return", "report.submit", "report.accept", "report.reopen"]
    history = coordinator.get(path).text
    assert "ตัวเลขครั้งที่ 1 ไม่ตรงกับหลักฐาน" in history and "เปิดให้แก้ไข" in history
    for c in (staff, coordinator, head):
        c.close()


def test_a_form_or_autosave_without_its_csrf_token_is_a_403(staff, engine):
    answer = staff.post(f"{D}/districts/{CODE}/report/draft", json={"version": 0, "report": report()})
    assert answer.status_code == 403
    posted = staff.post(f"{D}/districts/{CODE}/report", data={"version": "0", "op": "save"})
    assert posted.status_code == 403 and "แบบฟอร์มหมดอายุ" in posted.text
    wrong = staff.post(f"{D}/districts/{CODE}/report/submit", data={"version": "0", "csrftoken": "x"})
    assert wrong.status_code == 403
    forged = staff.post(f"{D}/districts/{CODE}/report/draft", json={"version": 0, "report": report()},
                        headers={"x-csrftoken": "forged"})
    assert forged.status_code == 403
    assert stored(engine) is None


def test_a_photo_form_posted_without_script_carries_its_token_in_the_body(staff, engine):
    """The upload form's token is a body field (no header without JavaScript)."""
    draft(staff, report(), 0)
    answer = staff.post(f"{D}/districts/{CODE}/report/photos", follow_redirects=False,
                        data={"csrftoken": csrf(staff), "session_key": KEYS[0]},
                        files=[("files", ("a.jpg", jpeg(), "image/jpeg"))])
    assert answer.status_code == 303


@pytest.mark.parametrize("token", [None, "forged"])
def test_a_photo_form_without_a_valid_token_in_its_body_is_refused(staff, engine, token):
    """asgi-csrf reads a multipart token with our parser (web/csrf_multipart.py): no token, no upload."""
    draft(staff, report(), 0)
    data = {"session_key": KEYS[0]} | ({"csrftoken": token} if token else {})
    answer = staff.post(f"{D}/districts/{CODE}/report/photos", follow_redirects=False, data=data,
                        files=[("files", ("a.jpg", jpeg(), "image/jpeg"))])
    assert answer.status_code == 403


# --- the province's page and its outputs ----------------------------------------------------------

def test_the_reports_page_lists_every_district_and_the_totals_of_accepted_reports(app, engine):
    staff = client_for(app, f"staff-{CODE}")
    coordinator = client_for(app, "coordinator")
    version = ready_to_submit(staff)
    post_form(staff, f"{D}/districts/{CODE}/report/submit", version=str(version))
    draft(client_for(app, "staff-2701"), report(), 0, code="2701")
    page = coordinator.get(f"{D}/reports")
    assert page.status_code == 200
    rows = dict(re.findall(r'<tr data-district="(\d{4})" data-status="(\w+)">', page.text))
    assert len(rows) == 9 and rows[CODE] == "submitted" and rows["2701"] == "draft"
    assert rows["2709"] == "none"
    assert 'data-total="total">0<' in page.text  # nothing accepted yet
    post_form(coordinator, f"{D}/districts/{CODE}/report/accept", version=str(stored(engine).version))
    page = coordinator.get(f"{D}/reports").text
    assert 'data-total="total">89<' in page and 'data-total="centers">2<' in page
    assert "รับรายงานแล้ว 1 จาก 9 อำเภอ" in page
    for link in (f"{D}/reports/print", f"{D}/reports/compiled.pdf", f"{D}/reports/compiled.xlsx",
                 f"{D}/reports/compiled-totals.csv", f"{D}/reports/compiled-sessions.csv"):
        assert f'href="{link}"' in page
    assert staff.get(f"{D}/reports").status_code == 403
    assert f'href="{D}/districts/{CODE}/report"' in page


def test_downloads_have_their_types_and_file_names(app, engine):
    staff = client_for(app, f"staff-{CODE}")
    coordinator = client_for(app, "coordinator")
    version = ready_to_submit(staff)
    post_form(staff, f"{D}/districts/{CODE}/report/submit", version=str(version))
    post_form(coordinator, f"{D}/districts/{CODE}/report/accept", version=str(stored(engine).version))

    xlsx = coordinator.get(f"{D}/reports/compiled.xlsx")
    assert xlsx.status_code == 200
    assert xlsx.headers["content-type"] == \
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert xlsx.headers["content-disposition"] == f'attachment; filename="report-{SLUG}.xlsx"'
    assert load_workbook(io.BytesIO(xlsx.content)).sheetnames == ["totals", "districts", "sessions"]
    csv = coordinator.get(f"{D}/reports/compiled-sessions.csv")
    assert csv.headers["content-type"] == "text/csv; charset=utf-8"
    assert csv.headers["content-disposition"] == f'attachment; filename="report-{SLUG}-sessions.csv"'
    assert csv.content.startswith("\ufeff".encode()) and "บ้านหนองแวง" in csv.content.decode("utf-8-sig")
    assert coordinator.get(f"{D}/reports/compiled-secrets.csv").status_code == 404
    printed = coordinator.get(f"{D}/districts/{CODE}/report/print")
    assert printed.status_code == 200 and "text/html" in printed.headers["content-type"]
    assert "อรัญประเทศ" in printed.text
    in_thai_digits = coordinator.get(f"{D}/districts/{CODE}/report/print?thai_digits=true").text
    assert "๒๕๖๗" in in_thai_digits and "2567" not in in_thai_digits
    assert "thai_digits=true" in coordinator.get(f"{D}/reports").text  # offered on the page
    assert coordinator.get(f"{D}/reports/print").status_code == 200
    assert staff.get(f"{D}/districts/{CODE}/report/print").status_code == 200
    assert staff.get(f"{D}/reports/print").status_code == 403
    assert staff.get(f"{D}/reports/compiled.xlsx").status_code == 403
    other = client_for(app, "staff-2701")
    assert other.get(f"{D}/districts/{CODE}/report/print").status_code == 403
    assert other.get(f"{D}/districts/{CODE}/report.pdf").status_code == 403


@pytest.mark.browser
def test_the_district_pdf_is_made_by_chromium(app, engine):
    if not Path("/usr/bin/chromium").exists():
        from tests.conftest import unavailable

        unavailable("chromium not installed")
    staff = client_for(app, f"staff-{CODE}")
    draft(staff, report(), 0)
    pdf = staff.get(f"{D}/districts/{CODE}/report.pdf")
    assert pdf.status_code == 200, pdf.text
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"] == f'attachment; filename="report-{SLUG}-2706.pdf"'
    assert pdf.content.startswith(b"%PDF")


# --- the JSON API ---------------------------------------------------------------------------------

def test_the_api_reads_saves_and_submits_a_report_with_the_version_check(client, engine):
    headers = api_token(client, f"staff-{CODE}")
    empty = client.get(f"/api/v1/districts/{CODE}/report", headers=headers).json()
    assert empty["status"] == "none" and empty["version"] == 0
    saved = client.put(f"/api/v1/districts/{CODE}/report", headers=headers,
                       json={"version": 0, "report": report()})
    assert saved.status_code == 200 and saved.json()["version"] == 1
    assert saved.json()["errors"][0]["label_th"] == "ครั้งที่ 2 · จำนวนผู้เข้าร่วมรวม"
    stale = client.put(f"/api/v1/districts/{CODE}/report", headers=headers,
                       json={"version": 0, "report": report()})
    assert stale.status_code == 409 and set(stale.json()["detail"]) == {"th", "en"}
    refused = client.post(f"/api/v1/districts/{CODE}/report/submit", headers=headers,
                          json={"version": 1})
    assert refused.status_code == 422 and TOO_FEW in refused.json()["detail"]["th"]
    other = api_token(client, "staff-2701")
    assert client.get(f"/api/v1/districts/{CODE}/report", headers=other).status_code == 403


def test_an_autosave_that_is_not_a_form_or_far_too_big_is_refused(staff, engine):
    headers = {"x-csrftoken": csrf(staff), "content-type": "application/json"}
    garbage = staff.post(f"{D}/districts/{CODE}/report/draft", content=b"{not json", headers=headers)
    assert garbage.status_code == 422
    huge = staff.post(f"{D}/districts/{CODE}/report/draft", headers=headers,
                      content=b'{"version": 0, "report": {"outcomes": ["' + b"x" * 4_000_000 + b'"]}}')
    assert huge.status_code == 422 and "ใหญ่เกิน" in huge.text
    too_many = draft(staff, {"sessions": [{}] * 201}, 0)
    assert too_many.status_code == 422 and "ไม่เกิน 200 ครั้ง" in too_many.json()["detail"]["th"]
    assert stored(engine) is None
