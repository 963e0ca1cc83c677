"""The district page, marking done, the item page, the board and the outbox, in Thai."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from models.audit import entries_for
from models.directive import ItemStatus
from models.org import districts_of
from models.outbox import Channel, OutboxMessage, OutboxStatus
from tests.web.helpers import CLOCK, csrf, item_of, signed_in, user_named

DISTRICTS_TH = ["เมืองสระแก้ว", "คลองหาด", "ตาพระยา", "วังน้ำเย็น", "วัฒนานคร", "อรัญประเทศ",
                "เขาฉกรรจ์", "โคกสูง", "วังสมบูรณ์"]
STEPS = ["G1", "G2", "G3", "G4", "G5", "G6", "G7", "G8", "A1", "A2", "A3", "R1"]


def test_district_page_lists_the_districts_items_in_thai_with_buddhist_era_dates(client):
    signed_in(client, "staff-2703")
    page = client.get("/directives/fy2567-sakaeo-volunteer-centers/districts/2703")
    assert page.status_code == 200
    assert "อำเภอตาพระยา" in page.text
    assert "ศึกษาแนวทางการดำเนินงานที่กรมการพัฒนาชุมชนกำหนด" in page.text  # G1's Thai title
    assert re.findall(r'data-step="(\w+)"', page.text) == STEPS
    assert "17 ก.ค. 2567" in page.text and "9 ส.ค. 2567" in page.text
    assert page.text.count('class="item overdue"') == 2  # G1 and A1, due the 17th
    assert page.text.count('name="version" value="1"') == 11  # a form per open step; R1 is the report form
    assert "ทำเสร็จแล้ว" in page.text


def test_staff_mark_g1_done_with_a_note_and_it_is_recorded_and_audited(client, engine):
    signed_in(client, "staff-2703")
    item = item_of(engine, "2703", "G1")
    response = client.post(f"/items/{item.id}/done",
                           data={"version": item.version, "note": "ประชุมชี้แจงแล้ว 15 ก.ค.",
                                 "csrftoken": csrf(client)}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == \
        f"/directives/fy2567-sakaeo-volunteer-centers/districts/2703#item-{item.id}"
    done = item_of(engine, "2703", "G1")
    assert done.status == ItemStatus.DONE and done.version == item.version + 1
    assert done.note == "ประชุมชี้แจงแล้ว 15 ก.ค."
    assert done.completed_by_id == user_named(engine, "staff-2703").id
    assert done.completed_at == CLOCK
    with Session(engine) as session:
        audit = entries_for(session, "tracked_item", item.id)
    assert [e.action for e in audit] == ["item.done"]
    assert audit[0].actor == "staff-2703" and audit[0].after["note"] == done.note
    page = client.get("/directives/fy2567-sakaeo-volunteer-centers/districts/2703")
    assert "บันทึกแล้ว" in page.text  # the flash, once
    assert "บันทึกแล้ว" not in client.get("/directives/fy2567-sakaeo-volunteer-centers/districts/2703").text
    assert page.text.count('class="item overdue"') == 1


def test_stale_version_is_a_409_with_the_thai_message_and_changes_nothing(client, engine):
    signed_in(client, "staff-2703")
    item = item_of(engine, "2703", "G2")
    response = client.post(f"/items/{item.id}/done",
                           data={"version": item.version - 1, "csrftoken": csrf(client)})
    assert response.status_code == 409
    assert "มีผู้อื่นแก้ไขรายการนี้แล้ว" in response.text
    assert "someone else changed this item" in response.text
    assert item_of(engine, "2703", "G2").status == ItemStatus.OPEN


def test_marking_a_done_item_again_is_a_409(client, engine):
    signed_in(client, "staff-2701")
    item = item_of(engine, "2701", "G1")  # done by the demo already
    response = client.post(f"/items/{item.id}/done",
                           data={"version": item.version, "csrftoken": csrf(client)})
    assert response.status_code == 409
    assert "รายการนี้ทำเสร็จแล้ว" in response.text


def test_a_too_long_note_is_a_422_page_from_the_tracking_rule(client, engine):
    signed_in(client, "staff-2703")
    item = item_of(engine, "2703", "G1")
    response = client.post(f"/items/{item.id}/done", data={
        "version": item.version, "note": "ก" * 2001, "csrftoken": csrf(client)})
    assert response.status_code == 422
    assert "หมายเหตุ: ไม่เกิน 2000 ตัวอักษร" in response.text
    assert item_of(engine, "2703", "G1").status == ItemStatus.OPEN


def test_unknown_item_and_district_are_404_pages(client):
    signed_in(client, "staff-2703")
    for path in ("/items/999999", "/districts/9999", "/no/such/page"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "ทำรายการไม่ได้" in response.text and "<html" in response.text
    posted = client.post("/items/999999/done", data={"version": 1, "csrftoken": csrf(client)})
    assert posted.status_code == 404
    assert "ไม่พบรายการติดตามเลขที่ 999999" in posted.text


def test_a_form_without_its_version_is_a_422_page(client, engine):
    signed_in(client, "staff-2703")
    item = item_of(engine, "2703", "G1")
    response = client.post(f"/items/{item.id}/done", data={"csrftoken": csrf(client)})
    assert response.status_code == 422
    assert "ข้อมูลที่ส่งมาไม่ครบหรือไม่ถูกต้อง" in response.text


def test_item_page_shows_the_step_and_its_history(client, engine):
    signed_in(client, "staff-2701")
    item = item_of(engine, "2701", "G1")
    page = client.get(f"/items/{item.id}")
    assert page.status_code == 200
    assert "ศึกษาแนวทางการดำเนินงานที่กรมการพัฒนาชุมชนกำหนด" in page.text
    assert "เสร็จแล้ว" in page.text and "ดำเนินการแล้ว (ข้อมูลสาธิต)" in page.text
    assert "staff-2701" in page.text and "2567" in page.text
    assert 'action="/items/' not in page.text  # done: no form


def test_item_page_form_returns_to_the_item(client, engine):
    signed_in(client, "staff-2703")
    item = item_of(engine, "2703", "A3")
    page = client.get(f"/items/{item.id}")
    assert f'action="/items/{item.id}/done"' in page.text
    response = client.post(f"/items/{item.id}/done", data={
        "version": item.version, "csrftoken": csrf(client), "next": f"/items/{item.id}"},
        follow_redirects=False)
    assert response.headers["location"] == f"/items/{item.id}"


def test_coordinator_board_shows_nine_districts_by_twelve_steps(client, engine):
    signed_in(client, "coordinator")
    page = client.get("/board")
    assert page.status_code == 200
    rows = re.findall(r'<tr data-district="(\d{4})">', page.text)
    assert rows == [f"27{n:02d}" for n in range(1, 10)]
    for name in DISTRICTS_TH:
        assert name in page.text
    states = re.findall(r'<td class="cell (\w+)" data-step="(\w+)"', page.text)
    assert len(states) == 9 * 12
    assert [step for _, step in states[:12]] == STEPS
    assert "ส.ค. 2567" in page.text and "17 ก.ค. 2567" in page.text
    assert "เลยกำหนดทั้งหมด 6 รายการ" in page.text  # G1 + A1 of 2703, 2709; G1 2707; A1 2705
    assert sum(state == "done" for state, _ in states) == 19  # the demo's progress
    assert sum(state == "overdue" for state, _ in states) == 6
    assert "5/12" in page.text and "0/12" in page.text  # 2704 and 2703
    for legend in ("เสร็จแล้ว", "ยังไม่ถึงกำหนด", "เลยกำหนด ยังไม่เสร็จ"):
        assert legend in page.text


def test_district_staff_old_board_link_leads_to_their_own_district(client):
    signed_in(client, "staff-2703")
    page = client.get("/board")
    assert page.url.path == "/directives/fy2567-sakaeo-volunteer-centers/districts/2703"
    assert re.findall(r'<li id="item-\d+" class="item \w+" data-step="(\w+)"', page.text) == STEPS
    assert "ข้อความแจ้งเตือน" not in page.text  # no outbox link


def test_coordinator_sees_every_district_page_read_write(client, engine):
    signed_in(client, "coordinator")
    page = client.get("/districts/2709")
    assert page.status_code == 200 and "อำเภอวังสมบูรณ์" in page.text


def add_messages(engine) -> None:
    coordinator = user_named(engine, "coordinator")
    staff = user_named(engine, "staff-2703")
    item = item_of(engine, "2703", "G1")
    rows = [
        dict(idempotency_key="item:1:overdue:email:2024-07-17", channel=Channel.EMAIL,
             recipient="staff-2703@demo.tidtam.local", user_id=staff.id, district_code="2703",
             item_id=item.id, rung="due-today", status=OutboxStatus.SENT, attempts=1,
             sent_at=CLOCK - timedelta(hours=20)),
        dict(idempotency_key="item:1:overdue:line:2024-07-17", channel=Channel.LINE,
             recipient="", user_id=staff.id, district_code="2703", item_id=item.id,
             rung="due-today", status=OutboxStatus.NOT_SENT_NO_CHANNEL, attempts=1,
             last_error="no LINE id for this user"),
        dict(idempotency_key="step:G1:coordinator:line:2024-07-19", channel=Channel.LINE,
             recipient="Ucoordinator", user_id=coordinator.id, rung="coordinator",
             status=OutboxStatus.QUEUED, attempts=2, last_error="LINE 500: try later"),
        dict(idempotency_key="elsewhere:1", channel=Channel.EMAIL, recipient="x@other.example",
             district_code=None, user_id=None, rung=None, status=OutboxStatus.FAILED),
    ]
    with Session(engine) as session:
        for row in rows:
            session.add(OutboxMessage(subject="แจ้งเตือน", body="…", created_at=CLOCK,
                                      next_try_at=CLOCK, **row))
        session.commit()


def test_outbox_page_lists_every_message_with_thai_statuses_and_times(client, engine):
    add_messages(engine)
    signed_in(client, "coordinator")
    page = client.get("/outbox")
    assert page.status_code == 200
    assert page.text.count("<tr data-status=") == 4
    assert "ไม่ได้ส่ง: ไม่มีช่องทาง" in page.text
    assert "ส่งแล้ว" in page.text and "รอส่ง" in page.text and "ส่งไม่สำเร็จ" in page.text
    assert "item:1:overdue:line:2024-07-17" not in page.text  # people read no raw key
    assert "staff-2703@demo.tidtam.local" not in page.text  # addresses are masked
    assert "@demo.tidtam.local" in page.text and "LINE 500: try later" in page.text
    assert "18 ก.ค. 2567 10:00 น." in page.text  # created_at, Bangkok time, B.E.
    assert "17 ก.ค. 2567 14:00 น." in page.text  # sent_at
    assert "ถึงกำหนดแล้ว" in page.text  # the due-today rung, in Thai


def test_outbox_hides_other_provinces_messages(client, engine):
    """A message about another province's district, to another province's person, stays hidden."""
    from tidtam.app.orgtree import load_provinces

    with Session(engine) as session:
        load_provinces(session, ["10"])  # Bangkok: khet 1001 พระนคร
        session.add(OutboxMessage(idempotency_key="bkk:1", channel=Channel.EMAIL,
                                  recipient="bkk@example", district_code="1001", subject="s",
                                  body="b", created_at=CLOCK, next_try_at=CLOCK))
        session.add(OutboxMessage(idempotency_key="sakaeo:1", channel=Channel.EMAIL,
                                  recipient="staff-2703@demo.tidtam.local", district_code="2703",
                                  subject="s", body="b", created_at=CLOCK, next_try_at=CLOCK))
        session.commit()
    signed_in(client, "coordinator")
    page = client.get("/outbox")
    assert page.status_code == 200  # only the province's own is listed
    assert page.text.count("<tr data-status=") == 1 and "@example" not in page.text


def test_provincial_head_sees_the_outbox_and_district_staff_do_not(client, app, engine):
    add_messages(engine)
    signed_in(client, "staff-2703")
    refused = client.get("/outbox")
    assert refused.status_code == 403
    assert "เฉพาะผู้ประสานงานจังหวัด" in refused.text
    with TestClient(app) as head:
        signed_in(head, "province-head")
        assert head.get("/outbox").status_code == 200


def test_board_shows_every_district_of_the_province(client, engine):
    with Session(engine) as session:
        names = [d.name_th for d in districts_of(session, "27")]
    signed_in(client, "province-head")
    page = client.get("/board").text
    assert all(name in page for name in names) and len(names) == 9


def test_healthz_static_and_security_headers(client):
    assert client.get("/healthz").json() == {"ok": True}
    css = client.get("/static/tidtam.css")
    assert css.status_code == 200 and "Noto Sans Thai" in css.text
    page = client.get("/login")
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["cache-control"] == "no-store"


def test_an_unexpected_error_shows_no_stack_trace(app, monkeypatch):
    import web.pages

    def boom(*args, **kwargs):
        raise RuntimeError("secret internals /etc/passwd")

    monkeypatch.setattr(web.pages, "directive_board_page", boom)
    with TestClient(app, raise_server_exceptions=False) as c:
        signed_in(c, "coordinator")
        response = c.get("/directives/fy2567-sakaeo-volunteer-centers")
    assert response.status_code == 500
    assert "ระบบขัดข้อง" in response.text
    assert "secret internals" not in response.text and "Traceback" not in response.text


@pytest.mark.parametrize("username", ["staff-2705", "head-2705"])
def test_district_roles_land_on_their_own_page(client, username):
    signed_in(client, username)
    assert client.get("/", follow_redirects=False).headers["location"] == "/my"
    assert "อำเภอวัฒนานคร" in client.get("/my").text


def test_the_audit_log_has_no_entry_for_a_refused_write(client, engine):
    signed_in(client, "staff-2703")
    item = item_of(engine, "2703", "G2")
    refused = client.post(f"/items/{item.id}/done", data={"version": 99, "csrftoken": csrf(client)})
    assert refused.status_code == 409  # a stale version: the write was refused, not lost elsewhere
    assert item_of(engine, "2703", "G2").status == ItemStatus.OPEN
    with Session(engine) as session:
        assert entries_for(session, "tracked_item", item.id) == []


@pytest.mark.parametrize("lang", ["th", "en"])
def test_every_page_renders_in_both_languages(client, engine, lang):
    add_messages(engine)
    signed_in(client, "coordinator")
    client.post("/lang", data={"lang": lang, "next": "/", "csrftoken": csrf(client)})
    item = item_of(engine, "2701", "G1")
    for path in ("/board", "/districts/2703", f"/items/{item.id}", "/outbox", "/logout",
                 "/provinces/27/directives", "/directives/fy2567-sakaeo-volunteer-centers",
                 "/directives/fy2567-sakaeo-volunteer-centers/districts/2703",
                 "/items/999999"):
        response = client.get(path)
        assert response.status_code in (200, 404), path
        assert f'<html lang="{lang}">' in response.text, path
    english = client.get("/outbox").text
    assert ("Not sent: no channel" in english) == (lang == "en")


def test_the_report_steps_page_leads_to_the_form_not_to_a_done_button(client, engine):
    signed_in(client, "staff-2703")
    item = item_of(engine, "2703", "R1")
    page = client.get(f"/items/{item.id}")
    assert f'action="/items/{item.id}/done"' not in page.text
    assert 'href="/directives/fy2567-sakaeo-volunteer-centers/districts/2703/report"' in page.text
    refused = client.post(f"/items/{item.id}/done", data={
        "version": item.version, "csrftoken": csrf(client)}, follow_redirects=False)
    assert refused.status_code == 409 and "ส่งแบบรายงาน" in refused.text
