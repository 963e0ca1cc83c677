"""Waiving a step (ยกเว้น / not applicable) on the pages and through the API: only the province's
coordinator sees the forms and may post them; the board, the district page and the item page
show a waived step as settled, in Thai and English."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, func, select

from models.audit import AuditEntry, entries_for
from models.directive import ItemStatus
from tests.web.helpers import CLOCK, api_token, csrf, item_of, signed_in, user_named

REASON = "อำเภอตาพระยาไม่มีศูนย์ผู้นำจิตอาสาที่ต้องจัดตั้งใหม่"


def audit_count(engine) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(AuditEntry)).one()


def post_waive(client: TestClient, item, reason: str = REASON, version: int | None = None):
    return client.post(f"/items/{item.id}/waive",
                       data={"version": item.version if version is None else version,
                             "reason": reason, "csrftoken": csrf(client)},
                       follow_redirects=False)


def post_unwaive(client: TestClient, item, reason: str = ""):
    return client.post(f"/items/{item.id}/unwaive",
                       data={"version": item.version, "reason": reason, "csrftoken": csrf(client)},
                       follow_redirects=False)


# --- the item page --------------------------------------------------------------------------------

def test_the_coordinator_sees_the_waive_form_beside_the_done_form(client, engine):
    signed_in(client, "coordinator")
    item = item_of(engine, "2703", "G3")
    page = client.get(f"/items/{item.id}").text
    assert f'action="/items/{item.id}/waive"' in page and f'action="/items/{item.id}/done"' in page
    form = page.split(f'action="/items/{item.id}/waive"')[1].split("</form>")[0]
    assert f'name="csrftoken" value="{csrf(client)}"' in form
    assert f'name="version" value="{item.version}"' in form
    assert re.search(r'<textarea[^>]*name="reason"[^>]*maxlength="2000" required', form)
    assert "ยกเว้น (ไม่ต้องดำเนินการ)" in page and "ยืนยันการยกเว้น" in form
    assert "/unwaive" not in page


@pytest.mark.parametrize("username", ["staff-2703", "head-2703", "province-head"])
def test_nobody_else_sees_a_waive_form(client, engine, username):
    signed_in(client, username)
    item = item_of(engine, "2703", "G3")
    page = client.get(f"/items/{item.id}").text
    assert "/waive" not in page and "ยืนยันการยกเว้น" not in page


def test_the_report_step_has_no_waive_form(client, engine):
    signed_in(client, "coordinator")
    item = item_of(engine, "2703", "R1")
    page = client.get(f"/items/{item.id}").text
    assert "/waive" not in page
    assert 'href="/directives/fy2567-sakaeo-volunteer-centers/districts/2703/report"' in page


def test_the_coordinator_waives_a_step_and_every_page_shows_it(client, engine):
    signed_in(client, "coordinator")
    item = item_of(engine, "2703", "G1")  # due 17 Jul: overdue on 18 Jul
    assert "เลยกำหนดทั้งหมด 6 รายการ" in client.get("/board").text
    response = post_waive(client, item, reason=f"  {REASON}  ")
    assert response.status_code == 303 and response.headers["location"] == f"/items/{item.id}"
    stored = item_of(engine, "2703", "G1")
    assert (stored.status, stored.version, stored.waiver_reason, stored.waived_at) == \
        (ItemStatus.WAIVED, item.version + 1, REASON, CLOCK)
    assert stored.waived_by_id == user_named(engine, "coordinator").id
    with Session(engine) as session:
        [entry] = entries_for(session, "tracked_item", item.id)
    assert (entry.action, entry.actor, entry.after["reason"]) == ("item.waive", "coordinator", REASON)

    page = client.get(f"/items/{item.id}").text
    assert "บันทึกแล้ว: ยกเว้นขั้นตอนนี้" in page  # the flash
    assert '<span class="badge waived">ยกเว้น</span>' in page
    assert "ยกเว้นเมื่อ" in page and "18 ก.ค. 2567 10:00 น." in page
    assert "ผู้ประสานงานจังหวัด (สาธิต)" in page and REASON in page
    assert f'action="/items/{item.id}/unwaive"' in page
    assert f'action="/items/{item.id}/done"' not in page and f'action="/items/{item.id}/waive"' \
        not in page
    assert f"ยกเว้น (ไม่ต้องดำเนินการ) — {REASON}" in page  # the history

    board = client.get("/board").text
    row = board.split('<tr data-district="2703">')[1].split("</tr>")[0]
    assert re.search(r'<td class="cell waived" data-step="G1" data-state="waived">\s*'
                     rf'<a href="/items/{item.id}" title="G1 · ยกเว้น">⊘</a>', row)
    assert "1/12" in row and "รวมยกเว้น 1" in row
    assert "เลยกำหนดทั้งหมด 5 รายการ" in board and "ยกเว้น 1 รายการ" in board
    assert '<span class="swatch waived">⊘</span> ยกเว้น ไม่ต้องดำเนินการ' in board

    district = client.get("/directives/fy2567-sakaeo-volunteer-centers/districts/2703").text
    assert "ทำเสร็จแล้ว 1 จาก 12 ขั้นตอน (รวมที่ยกเว้น 1)" in district
    assert f'<li id="item-{item.id}" class="item waived"' in district
    card = district.split(f'id="item-{item.id}"')[1].split("</li>")[0]
    assert '<span class="badge waived">ยกเว้น</span>' in card
    assert REASON in card and "/done" not in card
    assert district.count('class="item overdue"') == 1  # A1 only


def test_district_staff_see_the_waiver_and_its_reason_but_no_form(client, engine):
    with TestClient(client.app) as coordinator:
        signed_in(coordinator, "coordinator")
        assert post_waive(coordinator, item_of(engine, "2703", "G3")).status_code == 303
    signed_in(client, "staff-2703")
    item = item_of(engine, "2703", "G3")
    page = client.get("/directives/fy2567-sakaeo-volunteer-centers/districts/2703").text
    assert f'<li id="item-{item.id}" class="item waived"' in page and REASON in page
    assert page.count('name="version" value="1"') == 10  # one done form fewer than before (11)
    detail = client.get(f"/items/{item.id}").text
    assert REASON in detail and "/unwaive" not in detail and "/done" not in detail


def test_the_coordinator_undoes_a_waiver(client, engine):
    signed_in(client, "coordinator")
    post_waive(client, item_of(engine, "2703", "G3"))
    waived = item_of(engine, "2703", "G3")
    response = post_unwaive(client, waived, reason="ยกเว้นผิดอำเภอ")
    assert response.status_code == 303 and response.headers["location"] == f"/items/{waived.id}"
    stored = item_of(engine, "2703", "G3")
    assert (stored.status, stored.version, stored.waiver_reason) == \
        (ItemStatus.OPEN, waived.version + 1, None)
    page = client.get(f"/items/{waived.id}").text
    assert "ยกเลิกการยกเว้นแล้ว" in page
    assert f'action="/items/{waived.id}/waive"' in page and "/unwaive" not in page
    assert "ยกเลิกการยกเว้น — ยกเว้นผิดอำเภอ" in page
    with Session(engine) as session:
        assert [e.action for e in entries_for(session, "tracked_item", waived.id)] == \
            ["item.waive", "item.unwaive"]


@pytest.mark.parametrize(("step", "reason", "version", "status", "text"), [
    ("G3", "", None, 422, "เหตุผล: ต้องระบุเหตุผลที่ขั้นตอนนี้ไม่ต้องดำเนินการ"),
    ("G3", "   ", None, 422, "say why this step does not apply"),
    ("G3", "ก" * 2001, None, 422, "เหตุผล: ไม่เกิน 2000 ตัวอักษร"),
    ("G3", REASON, 99, 409, "มีผู้อื่นแก้ไขรายการนี้แล้ว"),
    ("R1", REASON, None, 409, "ยกเว้นขั้นตอนรายงานไม่ได้"),
])
def test_refused_waivers_are_bilingual_pages_and_change_nothing(client, engine, step, reason,
                                                                version, status, text):
    signed_in(client, "coordinator")
    item = item_of(engine, "2703", step)
    before = audit_count(engine)
    response = post_waive(client, item, reason=reason, version=version)
    assert response.status_code == status and text in response.text
    assert "<html" in response.text
    assert item_of(engine, "2703", step).status == ItemStatus.OPEN
    assert audit_count(engine) == before


def test_a_done_step_cannot_be_waived_nor_an_open_one_unwaived(client, engine):
    signed_in(client, "coordinator")
    done = item_of(engine, "2701", "G1")  # done in the demo
    assert post_waive(client, done).status_code == 409
    open_item = item_of(engine, "2703", "G3")
    refused = post_unwaive(client, open_item)
    assert refused.status_code == 409 and "ไม่ได้ถูกยกเว้น" in refused.text


def test_a_waive_form_without_its_csrf_token_is_refused(client, engine):
    signed_in(client, "coordinator")
    item = item_of(engine, "2703", "G3")
    response = client.post(f"/items/{item.id}/waive",
                           data={"version": item.version, "reason": REASON, "csrftoken": "forged"})
    assert response.status_code == 403
    assert item_of(engine, "2703", "G3").status == ItemStatus.OPEN


@pytest.mark.parametrize("lang", ["th", "en"])
def test_the_waiver_reads_in_both_languages(client, engine, lang):
    signed_in(client, "coordinator")
    client.post("/lang", data={"lang": lang, "next": "/", "csrftoken": csrf(client)})
    open_item = item_of(engine, "2703", "G4")
    waived = item_of(engine, "2703", "G3")
    post_waive(client, waived)
    english = lang == "en"
    assert ("Not applicable (waive)" in client.get(f"/items/{open_item.id}").text) == english
    page = client.get(f"/items/{waived.id}").text
    assert ("Undo the waiver" in page and "Waived on" in page) == english
    assert ("ยกเลิกการยกเว้น" in page) != english
    board = client.get("/board").text
    assert ("incl. 1 waived" in board and "waived, not applicable" in board) == english
    district = client.get("/directives/fy2567-sakaeo-volunteer-centers/districts/2703").text
    assert ("1 of 12 steps done (1 of them waived)" in district) == english


# --- permissions, on both backends ----------------------------------------------------------------

@pytest.mark.parametrize("username", ["staff-2703", "head-2703", "staff-2701", "province-head"])
def test_only_the_coordinator_may_post_a_waiver(any_client, any_engine, username):
    signed_in(any_client, username)
    item = item_of(any_engine, "2703", "G3")
    before = audit_count(any_engine)
    response = post_waive(any_client, item)
    assert response.status_code == 403
    assert "<html" in response.text
    assert item_of(any_engine, "2703", "G3").status == ItemStatus.OPEN
    api = any_client.post(f"/api/v1/items/{item.id}/waive", headers=api_token(any_client, username),
                          json={"reason": REASON, "version": item.version})
    assert api.status_code == 403 and set(api.json()["detail"]) == {"th", "en"}
    assert audit_count(any_engine) == before


def test_district_staff_cannot_undo_a_waiver(any_client, any_engine):
    coordinator = api_token(any_client, "coordinator")
    item = item_of(any_engine, "2703", "G3")
    waived = any_client.post(f"/api/v1/items/{item.id}/waive", headers=coordinator,
                             json={"reason": REASON, "version": item.version})
    assert waived.status_code == 200, waived.text
    signed_in(any_client, "staff-2703")
    assert post_unwaive(any_client, item_of(any_engine, "2703", "G3")).status_code == 403
    staff = api_token(any_client, "staff-2703")
    refused = any_client.post(f"/api/v1/items/{item.id}/unwaive", headers=staff,
                              json={"version": waived.json()["version"]})
    assert refused.status_code == 403
    assert item_of(any_engine, "2703", "G3").status == ItemStatus.WAIVED


# --- the API --------------------------------------------------------------------------------------

def test_api_waive_and_undo(client, engine):
    headers = api_token(client, "coordinator")
    item = item_of(engine, "2703", "G1")
    response = client.post(f"/api/v1/items/{item.id}/waive", headers=headers,
                           json={"reason": f" {REASON} ", "version": item.version})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["version"], body["overdue"], body["waiver_reason"]) == \
        ("waived", item.version + 1, False, REASON)
    assert body["waived_by_id"] == user_named(engine, "coordinator").id
    assert body["waived_at"].startswith("2024-07-18T03:00:00")
    assert (body["completed_at"], body["completed_by_id"]) == (None, None)
    assert client.get(f"/api/v1/items/{item.id}", headers=headers).json() == body
    board = client.get("/api/v1/board", headers=headers).json()
    row = next(r for r in board["districts"] if r["code"] == "2703")
    assert (row["done_count"], row["waived_count"], row["overdue_count"]) == (1, 1, 1)
    assert board["overdue_count"] == 5

    again = client.post(f"/api/v1/items/{item.id}/waive", headers=headers,
                        json={"reason": REASON, "version": body["version"]})
    assert again.status_code == 409 and "ยกเว้นแล้ว" in again.json()["detail"]["th"]
    undone = client.post(f"/api/v1/items/{item.id}/unwaive", headers=headers,
                         json={"version": body["version"]})
    assert undone.status_code == 200, undone.text
    assert (undone.json()["status"], undone.json()["overdue"], undone.json()["waiver_reason"]) == \
        ("open", True, None)
    twice = client.post(f"/api/v1/items/{item.id}/unwaive", headers=headers,
                        json={"version": undone.json()["version"]})
    assert twice.status_code == 409
    with Session(engine) as session:
        assert [e.action for e in entries_for(session, "tracked_item", item.id)] == \
            ["item.waive", "item.unwaive"]


def test_api_errors_are_those_of_the_done_endpoint(client, engine):
    headers = api_token(client, "coordinator")
    item = item_of(engine, "2703", "G2")
    stale = client.post(f"/api/v1/items/{item.id}/waive", headers=headers,
                        json={"reason": REASON, "version": item.version + 5})
    assert stale.status_code == 409
    assert stale.json()["detail"]["th"] == "มีผู้อื่นแก้ไขรายการนี้แล้ว กรุณาโหลดหน้าใหม่แล้วลองอีกครั้ง"
    empty = client.post(f"/api/v1/items/{item.id}/waive", headers=headers,
                        json={"reason": "  ", "version": item.version})
    assert empty.status_code == 422
    assert empty.json()["detail"] == {
        "th": "เหตุผล: ต้องระบุเหตุผลที่ขั้นตอนนี้ไม่ต้องดำเนินการ",
        "en": "reason: say why this step does not apply to the district"}
    shapeless = client.post(f"/api/v1/items/{item.id}/waive", headers=headers,
                            json={"version": item.version})
    assert shapeless.status_code == 422 and "body.reason" in shapeless.json()["detail"]["en"]
    missing = client.post("/api/v1/items/999999/waive", headers=headers,
                          json={"reason": REASON, "version": 1})
    assert missing.status_code == 404
    assert missing.json()["detail"]["th"] == "ไม่พบรายการติดตามเลขที่ 999999"
    report = item_of(engine, "2703", "R1")
    refused = client.post(f"/api/v1/items/{report.id}/waive", headers=headers,
                          json={"reason": REASON, "version": report.version})
    assert refused.status_code == 409 and "report form" in refused.json()["detail"]["en"]
    assert client.post(f"/api/v1/items/{item.id}/waive", json={"reason": REASON, "version": 1}) \
        .status_code == 401
    assert item_of(engine, "2703", "G2").status == ItemStatus.OPEN


def test_the_waive_endpoints_are_in_the_openapi_docs(app):
    with TestClient(app) as c:
        spec = c.get("/openapi.json").json()
    for path in ("/api/v1/items/{item_id}/waive", "/api/v1/items/{item_id}/unwaive"):
        post = spec["paths"][path]["post"]
        assert {"200", "403", "404", "409", "422"} <= set(post["responses"]), path
    schemas = spec["components"]["schemas"]
    assert schemas["WaiveIn"]["required"] == ["reason", "version"]
    assert "reason" not in schemas["UnwaiveIn"].get("required", [])
    assert {"waived_at", "waived_by_id", "waiver_reason"} <= set(schemas["ItemPublic"]["properties"])
    assert "waived_count" in schemas["DistrictRowPublic"]["properties"]
