"""The JSON API of many directives: the list with progress, a board per slug, items filtered by
directive, district and status and paged, and the older endpoints that named no directive —
on the Sa Kaeo demo with the Department's national directive launched on top (two active
directives), on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from domain.access import Role
from domain.directive import load_directive, province_slug
from models.directive import find_item, get_directive_by_slug
from models.outbox import Channel, OutboxMessage
from models.user import get_by_username
from tests.conftest import NOW
from tests.db.test_national import NATIONAL, SLUG
from tests.web.conftest import make_app
from tests.web.helpers import PASSWORD, api_token
from tidtam.app.accounts import ensure_user, hash_password
from tidtam.app.directives import close_directive
from tidtam.app.national import launch_national

OWN = "fy2567-sakaeo-volunteer-centers"
COPY = province_slug(SLUG, "27")
STEPS = 12
DISTRICTS = 9


def _add_department(engine) -> None:
    with Session(engine) as session:
        ensure_user(session, username="department", full_name="กรมฯ", role=Role.DEPARTMENT_VIEWER,
                    province_code=None, district_code=None, password_hash=hash_password(PASSWORD),
                    now=NOW)
        session.commit()


@pytest.fixture
def client(any_engine):
    """The demo (the province's own letter, with progress) plus the Department's copy, fresh."""
    _add_department(any_engine)
    with Session(any_engine) as session:
        launch_national(session, load_directive(NATIONAL), now=NOW)
        session.commit()
    with TestClient(make_app(any_engine)) as c:
        yield c


@pytest.fixture
def single(engine):
    """The demo as shipped: one active directive."""
    _add_department(engine)
    with TestClient(make_app(engine)) as c:
        yield c


def get(client: TestClient, user: str, url: str):
    return client.get(url, headers=api_token(client, user))


def test_the_coordinator_lists_both_directives_with_their_progress(client):
    listing = get(client, "coordinator", "/api/v1/directives")
    assert listing.status_code == 200, listing.text
    by_slug = {d["slug"]: d for d in listing.json()}
    assert set(by_slug) == {OWN, COPY}
    own, copy = by_slug[OWN]["progress"], by_slug[COPY]["progress"]
    assert by_slug[OWN]["status"] == by_slug[COPY]["status"] == "active"
    assert by_slug[COPY]["parent_id"] is not None and by_slug[OWN]["parent_id"] is None
    assert own["expected"] == copy["expected"] == STEPS * DISTRICTS
    assert (own["settled"], own["overdue"], own["reports_expected"]) == (19, 6, DISTRICTS)
    # The fresh copy: nothing done; G1 and A1 (due 17 Jul) overdue in every district on 18 Jul.
    assert (copy["settled"], copy["percent"], copy["overdue"]) == (0, 0, 2 * DISTRICTS)
    assert copy["next_due"]["due_on"] == "2024-07-19" and copy["next_due"]["open_districts"] == 9
    one = get(client, "coordinator", f"/api/v1/directives/{OWN}").json()
    assert one["progress"] == own and one["reference_no"] == by_slug[OWN]["reference_no"]


def test_the_department_lists_one_province_or_every_province(client):
    department = api_token(client, "department")
    everyone = client.get("/api/v1/directives", headers=department).json()
    assert {d["slug"] for d in everyone} == {OWN, COPY}  # only Sa Kaeo has districts; no national row
    sakaeo = client.get("/api/v1/directives?province=27", headers=department).json()
    assert {d["slug"] for d in sakaeo} == {OWN, COPY}
    assert all(d["progress"] is not None for d in sakaeo)
    national_row = client.get(f"/api/v1/directives/{SLUG}", headers=department)
    assert national_row.status_code == 404 and "/national/" in national_row.json()["detail"]["en"]
    assert client.get("/api/v1/directives?province=99", headers=department).status_code == 404


def test_a_board_per_directive(client):
    headers = api_token(client, "coordinator")
    own = client.get(f"/api/v1/directives/{OWN}/board", headers=headers).json()
    copy = client.get(f"/api/v1/directives/{COPY}/board", headers=headers).json()
    assert own["directive"]["slug"] == OWN and copy["directive"]["slug"] == COPY
    # The province's own letter is exactly as before the national launch.
    assert own["overdue_count"] == 6
    assert {r["code"]: r["done_count"] for r in own["districts"]}["2704"] == 5
    assert copy["overdue_count"] == 2 * DISTRICTS
    assert all(r["done_count"] == 0 for r in copy["districts"])
    assert {i["directive_slug"] for r in copy["districts"] for i in r["items"]} == {COPY}
    # The older endpoints give the same boards when the directive is named.
    assert client.get(f"/api/v1/board?directive={OWN}", headers=headers).json() == own
    assert client.get(f"/api/v1/provinces/27/board?directive={COPY}",
                      headers=headers).json() == copy


@pytest.mark.parametrize("url", ["/api/v1/board", "/api/v1/provinces/27/board",
                                 "/api/v1/districts/2703/items"])
def test_older_endpoints_answer_409_when_the_province_follows_several(client, url):
    refused = get(client, "coordinator", url)
    assert refused.status_code == 409
    detail = refused.json()["detail"]
    assert OWN in detail["en"] and COPY in detail["en"] and "?directive=" in detail["en"]
    assert OWN in detail["th"] and "หลายฉบับ" in detail["th"]
    named = get(client, "coordinator", f"{url}?directive={COPY}")
    assert named.status_code == 200, named.text


def test_an_unknown_slug_is_404_listing_the_active_ones(client):
    for url in ["/api/v1/directives/no-such", "/api/v1/directives/no-such/board",
                "/api/v1/items?directive=no-such", "/api/v1/board?directive=no-such",
                "/api/v1/outbox?directive=no-such"]:
        missing = get(client, "coordinator", url)
        assert missing.status_code == 404, url
        detail = missing.json()["detail"]
        assert OWN in detail["en"] and COPY in detail["en"] and OWN in detail["th"], url


def test_items_filtered_by_directive_district_and_status_and_paged(client):
    headers = api_token(client, "coordinator")
    everything = client.get("/api/v1/items?limit=500", headers=headers).json()
    assert everything["total"] == 2 * STEPS * DISTRICTS and len(everything["items"]) == 216
    one = client.get(f"/api/v1/items?directive={COPY}&district=2703", headers=headers).json()
    assert one["total"] == STEPS
    assert {(i["directive_slug"], i["district_code"]) for i in one["items"]} == {(COPY, "2703")}
    due = [i["due_on"] for i in one["items"]]
    assert due == sorted(due)
    done = client.get(f"/api/v1/items?directive={OWN}&status=done", headers=headers).json()
    assert done["total"] > 0 and {i["status"] for i in done["items"]} == {"done"}
    open_copy = client.get(f"/api/v1/items?directive={COPY}&status=open", headers=headers).json()
    assert open_copy["total"] == STEPS * DISTRICTS
    # Pages partition the whole, in a stable order.
    pages = [client.get(f"/api/v1/items?district=2703&limit=5&offset={o}", headers=headers).json()
             for o in range(0, 25, 5)]
    assert {p["total"] for p in pages} == {2 * STEPS}
    ids = [i["id"] for p in pages for i in p["items"]]
    assert len(ids) == len(set(ids)) == 2 * STEPS
    assert [len(p["items"]) for p in pages] == [5, 5, 5, 5, 4]
    assert client.get("/api/v1/items?limit=501", headers=headers).status_code == 422
    assert client.get("/api/v1/items?status=late", headers=headers).status_code == 422


def test_district_staff_read_only_their_district(client):
    headers = api_token(client, "staff-2703")
    listing = client.get("/api/v1/directives", headers=headers).json()
    assert {d["slug"] for d in listing} == {OWN, COPY}
    assert all(d["progress"] is None for d in listing)  # no province-wide counts
    board = client.get(f"/api/v1/directives/{COPY}/board", headers=headers).json()
    assert [r["code"] for r in board["districts"]] == ["2703"]
    items = client.get("/api/v1/items?limit=500", headers=headers).json()
    assert items["total"] == 2 * STEPS and {i["district_code"] for i in items["items"]} == {"2703"}
    assert client.get("/api/v1/items?district=2704", headers=headers).status_code == 403
    assert client.get("/api/v1/districts/2704/items?directive=" + OWN,
                      headers=headers).status_code == 403
    own_board = client.get(f"/api/v1/board?directive={OWN}", headers=headers).json()
    assert [r["code"] for r in own_board["districts"]] == ["2703"]
    assert client.get("/api/v1/outbox", headers=headers).status_code == 403


def _message_about(session: Session, slug: str, district: str, step: str) -> int:
    """An overdue reminder queued about one item of a directive; its id."""
    item = find_item(session, get_directive_by_slug(session, slug).id, district, step)
    message = OutboxMessage(idempotency_key=f"test:{slug}:{item.id}", channel=Channel.EMAIL,
                            recipient="staff@example.org", district_code=district,
                            item_id=item.id, rung="overdue", subject=f"{slug} {step}", body="-",
                            next_try_at=NOW, created_at=NOW)
    session.add(message)
    session.flush()
    return message.id


def test_the_outbox_filters_by_directive(client, any_engine):
    with Session(any_engine) as session:
        own_id = _message_about(session, OWN, "2703", "G1")
        copy_id = _message_about(session, COPY, "2703", "G1")
        session.commit()
    headers = api_token(client, "coordinator")
    every = client.get("/api/v1/outbox", headers=headers)
    # A message list is not ambiguous: without ?directive= it has every directive's, newest first.
    assert every.status_code == 200 and [m["id"] for m in every.json()] == [copy_id, own_id]
    copy = client.get(f"/api/v1/outbox?directive={COPY}", headers=headers).json()
    own = client.get(f"/api/v1/outbox?directive={OWN}", headers=headers).json()
    assert [m["id"] for m in copy] == [copy_id] and [m["id"] for m in own] == [own_id]


def test_one_active_directive_answers_as_before(single):
    headers = api_token(single, "coordinator")
    board = single.get("/api/v1/board", headers=headers).json()
    assert board["directive"]["slug"] == OWN and board["overdue_count"] == 6
    items = single.get("/api/v1/districts/2703/items", headers=api_token(single, "staff-2703"))
    assert items.status_code == 200 and {i["directive_slug"] for i in items.json()} == {OWN}
    assert [d["slug"] for d in single.get("/api/v1/directives", headers=headers).json()] == [OWN]
    item = items.json()[0]
    read = single.get(f"/api/v1/items/{item['id']}", headers=headers).json()
    assert read["directive_slug"] == OWN and read["id"] == item["id"]
    department = api_token(single, "department")
    assert single.get("/api/v1/board", headers=department).status_code == 404
    assert single.get("/api/v1/provinces/27/board", headers=department).json() == board


def test_the_openapi_documents_the_new_endpoints(single):
    spec = single.get("/openapi.json").json()
    assert {"/api/v1/directives", "/api/v1/directives/{slug}", "/api/v1/directives/{slug}/board",
            "/api/v1/items"} <= set(spec["paths"])
    assert "409" in spec["paths"]["/api/v1/board"]["get"]["responses"]
    assert "directive_slug" in spec["components"]["schemas"]["ItemPublic"]["properties"]


def test_a_closed_directive_stays_readable_and_leaves_one_active(client, any_engine):
    with Session(any_engine) as session:
        coordinator = get_by_username(session, "coordinator")
        close_directive(session, coordinator, OWN, reason="งานเสร็จสิ้น", now=NOW)
        session.commit()
    headers = api_token(client, "coordinator")
    listing = client.get("/api/v1/directives", headers=headers).json()
    assert [(d["slug"], d["status"]) for d in listing] == [(COPY, "active"), (OWN, "closed")]
    assert listing[1]["close_reason"] == "งานเสร็จสิ้น" and listing[1]["progress"]["overdue"] == 0
    # One active directive again: the older endpoints answer without ?directive=.
    assert client.get("/api/v1/board", headers=headers).json()["directive"]["slug"] == COPY
    active_items = client.get("/api/v1/items?limit=500", headers=headers).json()
    assert {i["directive_slug"] for i in active_items["items"]} == {COPY}
    closed = client.get(f"/api/v1/items?directive={OWN}&status=done", headers=headers).json()
    assert closed["total"] > 0 and {i["directive_slug"] for i in closed["items"]} == {OWN}
    board = client.get(f"/api/v1/directives/{OWN}/board", headers=headers).json()
    assert board["directive"]["status"] == "closed" and len(board["districts"]) == DISTRICTS
