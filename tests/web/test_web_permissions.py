"""District roles see and change only their own district, in the UI and the API alike.

Run on SQLite and PostgreSQL (``any_client``): the checks live in queries and use cases, so
both backends must refuse the same things.
"""

from __future__ import annotations

import pytest
from sqlmodel import Session, func, select

from models.audit import AuditEntry
from models.directive import ItemStatus
from tests.web.helpers import api_token, csrf, item_of, signed_in


def audit_count(engine) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(AuditEntry)).one()


@pytest.mark.parametrize("username", ["staff-2703", "head-2703"])
def test_another_districts_page_and_item_are_403_in_thai_and_english(any_client, any_engine,
                                                                     username):
    signed_in(any_client, username)
    page = any_client.get("/districts/2701")
    assert page.status_code == 403
    assert "คุณไม่มีสิทธิ์ดูข้อมูลอำเภอเมืองสระแก้ว" in page.text
    assert "you may not see district 2701" in page.text
    item = item_of(any_engine, "2701", "G3")
    assert any_client.get(f"/items/{item.id}").status_code == 403


def test_posting_to_another_districts_item_is_403_and_changes_nothing(any_client, any_engine):
    signed_in(any_client, "staff-2703")
    item = item_of(any_engine, "2701", "G3")
    before = audit_count(any_engine)
    response = any_client.post(f"/items/{item.id}/done",
                               data={"version": item.version, "note": "ไม่ใช่ของเรา",
                                     "csrftoken": csrf(any_client)})
    assert response.status_code == 403
    after = item_of(any_engine, "2701", "G3")
    assert (after.status, after.version, after.note) == (ItemStatus.OPEN, item.version, None)
    assert audit_count(any_engine) == before


def test_own_district_is_markable_on_both_backends(any_client, any_engine):
    signed_in(any_client, "staff-2703")
    item = item_of(any_engine, "2703", "G1")
    response = any_client.post(f"/items/{item.id}/done",
                               data={"version": item.version, "csrftoken": csrf(any_client)},
                               follow_redirects=False)
    assert response.status_code == 303
    assert item_of(any_engine, "2703", "G1").status == ItemStatus.DONE


def test_api_refuses_another_district_with_a_bilingual_403(any_client, any_engine):
    headers = api_token(any_client, "staff-2703")
    listing = any_client.get("/api/v1/districts/2701/items", headers=headers)
    assert listing.status_code == 403
    assert listing.json()["detail"] == {"th": "คุณไม่มีสิทธิ์ดูข้อมูลอำเภอเมืองสระแก้ว",
                                        "en": "you may not see district 2701"}
    item = item_of(any_engine, "2701", "G3")
    before = audit_count(any_engine)
    posted = any_client.post(f"/api/v1/items/{item.id}/done", headers=headers,
                             json={"note": "x", "version": item.version})
    assert posted.status_code == 403
    assert item_of(any_engine, "2701", "G3").status == ItemStatus.OPEN
    assert audit_count(any_engine) == before
    assert any_client.get(f"/api/v1/items/{item.id}", headers=headers).status_code == 403


def test_api_board_is_scoped_to_the_district_role(any_client):
    staff = any_client.get("/api/v1/board", headers=api_token(any_client, "staff-2703")).json()
    assert [row["code"] for row in staff["districts"]] == ["2703"]
    coordinator = any_client.get("/api/v1/board",
                                 headers=api_token(any_client, "coordinator")).json()
    assert len(coordinator["districts"]) == 9
    assert all(len(row["items"]) == 12 for row in coordinator["districts"])


def test_outbox_is_province_wide_for_the_coordinator_only(any_client, any_engine):
    from datetime import UTC, datetime

    from models.outbox import Channel, OutboxMessage

    now = datetime(2024, 7, 18, 3, 0, tzinfo=UTC)
    with Session(any_engine) as session:
        session.add(OutboxMessage(idempotency_key="perm:1", channel=Channel.EMAIL,
                                  recipient="staff-2703@demo.tidtam.local",
                                  district_code="2703", subject="s", body="b",
                                  created_at=now, next_try_at=now))
        session.commit()
    keys = [m["key"] for m in any_client.get(
        "/api/v1/outbox", headers=api_token(any_client, "coordinator")).json()]
    assert keys == ["perm:1"]
    staff = any_client.get("/api/v1/outbox", headers=api_token(any_client, "staff-2703"))
    assert staff.status_code == 403
