"""The JSON API: OAuth2 password flow, bearer tokens, scoped reads, marking done, errors."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlmodel import Session

from models.audit import entries_for
from models.directive import ItemStatus
from tests.web.helpers import CLOCK, api_token, item_of, signed_in
from tidtam.infra.clock import FixedClock


def test_token_flow_and_me(client):
    response = client.post("/api/v1/token", data={"username": "staff-2703",
                                                  "password": "tidtam-demo-2567"})
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer" and body["access_token"]
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json()["username"] == "staff-2703" and me.json()["district_code"] == "2703"
    assert "password_hash" not in me.json()


def test_bad_password_gives_no_token(client):
    response = client.post("/api/v1/token", data={"username": "staff-2703", "password": "no"})
    assert response.status_code == 401
    assert set(response.json()["detail"]) == {"th", "en"}


def test_no_bad_or_expired_token_is_401(client):
    assert client.get("/api/v1/board").status_code == 401
    garbage = client.get("/api/v1/board", headers={"Authorization": "Bearer nonsense"})
    assert garbage.status_code == 401
    assert garbage.headers["www-authenticate"] == "Bearer"
    assert garbage.json()["detail"]["th"].startswith("ต้องใช้โทเค็น")

    # A token lives TIDTAM_SESSION_MAX_HOURS (12 by default) on the app's clock.
    headers = api_token(client, "coordinator")
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    max_age = timedelta(hours=client.app.state.settings.session_max_hours)
    client.app.state.clock = FixedClock(CLOCK + max_age - timedelta(seconds=1))
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    client.app.state.clock = FixedClock(CLOCK + max_age)
    expired = client.get("/api/v1/me", headers=headers)
    assert expired.status_code == 401 and expired.headers["www-authenticate"] == "Bearer"
    assert client.get("/api/v1/me", headers=api_token(client, "coordinator")).status_code == 200


def test_a_session_cookie_alone_does_not_open_the_api(client):
    signed_in(client, "coordinator")
    assert client.get("/board").status_code == 200
    assert client.get("/api/v1/me").status_code == 401


def test_board_for_the_coordinator(client):
    board = client.get("/api/v1/board", headers=api_token(client, "coordinator")).json()
    assert board["directive"]["slug"] == "fy2567-sakaeo-volunteer-centers"
    assert board["today"] == "2024-07-18" and board["overdue_count"] == 6
    assert [s["code"] for s in board["steps"]][:3] == ["G1", "G2", "G3"]
    by_code = {row["code"]: row for row in board["districts"]}
    assert by_code["2704"]["done_count"] == 5 and by_code["2703"]["name_th"] == "ตาพระยา"


def test_district_items_and_marking_done(client, engine):
    headers = api_token(client, "staff-2703")
    items = client.get("/api/v1/districts/2703/items", headers=headers).json()
    g1 = next(i for i in items if i["step_code"] == "G1")
    assert g1["status"] == "open" and g1["overdue"] is True
    done = client.post(f"/api/v1/items/{g1['id']}/done", headers=headers,
                       json={"note": "ผ่าน API", "version": g1["version"]})
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "done" and done.json()["version"] == g1["version"] + 1
    assert done.json()["overdue"] is False
    stored = item_of(engine, "2703", "G1")
    assert stored.status == ItemStatus.DONE and stored.note == "ผ่าน API"
    assert stored.completed_at == CLOCK
    with Session(engine) as session:
        assert [e.action for e in entries_for(session, "tracked_item", g1["id"])] == ["item.done"]


def test_stale_version_is_409_in_thai_and_english(client, engine):
    headers = api_token(client, "staff-2703")
    item = item_of(engine, "2703", "G2")
    response = client.post(f"/api/v1/items/{item.id}/done", headers=headers,
                           json={"version": item.version + 5})
    assert response.status_code == 409
    assert response.json()["detail"]["th"] == ("มีผู้อื่นแก้ไขรายการนี้แล้ว "
                                               "กรุณาโหลดหน้าใหม่แล้วลองอีกครั้ง")
    assert "reload" in response.json()["detail"]["en"]


def test_unknown_item_404_and_invalid_note_422(client, engine):
    headers = api_token(client, "staff-2703")
    missing = client.post("/api/v1/items/999999/done", headers=headers, json={"version": 1})
    assert missing.status_code == 404
    assert missing.json()["detail"]["th"] == "ไม่พบรายการติดตามเลขที่ 999999"
    item = item_of(engine, "2703", "G1")
    too_long = client.post(f"/api/v1/items/{item.id}/done", headers=headers,
                           json={"version": item.version, "note": "x" * 2001})
    assert too_long.status_code == 422
    assert too_long.json()["detail"] == {"th": "หมายเหตุ: ไม่เกิน 2000 ตัวอักษร",
                                         "en": "note: at most 2000 characters"}
    unknown_district = client.get("/api/v1/districts/9999/items", headers=headers)
    assert unknown_district.status_code == 404


def test_outbox_api_is_for_province_roles(client):
    assert client.get("/api/v1/outbox", headers=api_token(client, "coordinator")).json() == []
    refused = client.get("/api/v1/outbox", headers=api_token(client, "staff-2703"))
    assert refused.status_code == 403 and set(refused.json()["detail"]) == {"th", "en"}


def test_bearer_calls_pass_csrf_even_with_browser_cookies(client, engine):
    client.get("/login")  # the browser now holds a csrftoken cookie
    assert "csrftoken" in client.cookies
    headers = api_token(client, "staff-2703")
    item = item_of(engine, "2703", "A3")
    response = client.post(f"/api/v1/items/{item.id}/done", headers=headers,
                           json={"version": item.version})
    assert response.status_code == 200


def test_openapi_and_docs_are_served(app):
    with TestClient(app) as c:
        docs = c.get("/docs")
        assert docs.status_code == 200 and "swagger" in docs.text.lower()
        assert "https://" not in docs.text, "/docs must work offline (no CDN)"
        js = c.get("/static-offline-docs/swagger-ui-bundle.js")
        assert js.status_code == 200 and len(js.content) > 100_000
        spec = c.get("/openapi.json").json()
    paths = set(spec["paths"])
    assert {"/api/v1/token", "/api/v1/me", "/api/v1/board", "/api/v1/districts/{code}/items",
            "/api/v1/items/{item_id}/done", "/api/v1/outbox"} <= paths
    assert "/login" not in paths and "/board" not in paths
    assert "BoardPublic" in spec["components"]["schemas"]
    assert "OAuth2PasswordBearer" in spec["components"]["securitySchemes"]
