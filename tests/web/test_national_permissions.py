"""Two provinces in one deployment: nobody sees past their scope, and the Department only reads.

Sa Kaeo (27, the demo, its FY 2567 directive) and Chiang Mai (50, a copy of the directive) are
loaded. Each role is sent to every route that names a province, district, item or photo it must
not see, through the pages and the /api/v1 API: the answer is 403/404 and carries none of that
place's data (a marker string in item notes, report text and the photo's bytes). The route table
is checked against ``app.routes``, so a new scoped route fails here until it is listed.
Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from PIL import Image
from sqlmodel import Session, func, select

from domain.access import Role
from domain.directive import load_directive
from domain.report import new_session_key
from models.audit import AuditEntry
from models.directive import find_item, get_directive_by_slug
from models.report import Report, ReportPhoto
from models.user import get_by_username
from tests.conftest import NOW
from tests.web.conftest import make_app
from tests.web.helpers import PASSWORD, api_token, csrf, signed_in
from tidtam.app.accounts import ensure_user, hash_password
from tidtam.app.orgtree import load_provinces
from tidtam.app.reporting import add_photo, save_draft
from tidtam.app.tracking import launch_directive, mark_done
from tidtam.ops.bootstrap import DEFAULT_DIRECTIVE

SCOPED = ("{code}", "{item_id}", "{photo_id}")
PHOTO_MARK = b"tidtam-secret-photo"


@dataclass(frozen=True)
class Place:
    """A district with a note, a report and a photo that only its own people (and above) may see."""

    province: str
    district: str
    item_id: int
    photo_id: int

    @property
    def marker(self) -> str:
        return f"SECRET-{self.district}"


# method, path, what the placeholder names, is it a write
PAGES = [
    ("GET", "/provinces/{code}", "province", False),
    ("GET", "/provinces/{code}/directives", "province", False),
    ("GET", "/directives/{slug}/districts/{code}", "district", False),
    ("GET", "/districts/{code}", "district", False),
    ("GET", "/items/{item_id}", "item", False),
    ("POST", "/items/{item_id}/done", "item", True),
    ("POST", "/items/{item_id}/waive", "item", True),
    ("POST", "/items/{item_id}/unwaive", "item", True),
    ("GET", "/directives/{slug}/districts/{code}/report", "district", False),
    ("POST", "/directives/{slug}/districts/{code}/report", "district", True),
    ("POST", "/directives/{slug}/districts/{code}/report/draft", "district", True),
    ("POST", "/directives/{slug}/districts/{code}/report/submit", "district", True),
    ("POST", "/directives/{slug}/districts/{code}/report/photos", "district", True),
    ("POST", "/directives/{slug}/districts/{code}/report/return", "district", True),
    ("POST", "/directives/{slug}/districts/{code}/report/accept", "district", True),
    ("POST", "/directives/{slug}/districts/{code}/report/reopen", "district", True),
    ("GET", "/directives/{slug}/districts/{code}/report/print", "district", False),
    ("GET", "/directives/{slug}/districts/{code}/report.pdf", "district", False),
    # links from before (a province had one directive): a 303 to the page that names it
    ("GET", "/districts/{code}/report", "district", False),
    ("GET", "/districts/{code}/report/print", "district", False),
    ("GET", "/districts/{code}/report.pdf", "district", False),
    ("GET", "/photos/{photo_id}", "photo", False),
    ("GET", "/photos/{photo_id}/thumb", "photo", False),
    ("POST", "/photos/{photo_id}/delete", "photo", True),
    ("GET", "/directives/{slug}/districts/{code}/cover", "district", False),
]
API = [
    ("GET", "/api/v1/provinces/{code}/board", "province", False),
    ("GET", "/api/v1/districts/{code}/items", "district", False),
    ("GET", "/api/v1/items/{item_id}", "item", False),
    ("POST", "/api/v1/items/{item_id}/done", "item", True),
    ("POST", "/api/v1/items/{item_id}/waive", "item", True),
    ("POST", "/api/v1/items/{item_id}/unwaive", "item", True),
    ("GET", "/api/v1/districts/{code}/report", "district", False),
    ("PUT", "/api/v1/districts/{code}/report", "district", True),
    ("POST", "/api/v1/districts/{code}/report/submit", "district", True),
    ("GET", "/api/v1/districts/{code}/report/photos", "district", False),
    ("POST", "/api/v1/districts/{code}/report/photos", "district", True),
    ("POST", "/api/v1/districts/{code}/report/return", "district", True),
    ("POST", "/api/v1/districts/{code}/report/accept", "district", True),
    ("POST", "/api/v1/districts/{code}/report/reopen", "district", True),
    ("GET", "/api/v1/districts/{code}/report.xlsx", "district", False),
    ("GET", "/api/v1/districts/{code}/report.csv", "district", False),
    ("GET", "/api/v1/districts/{code}/report.pdf", "district", False),
    ("GET", "/api/v1/photos/{photo_id}", "photo", False),
    ("DELETE", "/api/v1/photos/{photo_id}", "photo", True),
]
# A directive's own pages: {slug} is the place's province's directive (not in SCOPED: the table
# check covers routes that name a place; these are aimed at each place all the same).
DIRECTIVE_PAGES = [
    ("GET", "/directives/{slug}", "province", False),
    ("POST", "/directives/{slug}/close", "province", True),
]
# Each province's directive in this test (the demo's Sa Kaeo one, Chiang Mai's copy of it).
SLUGS = {"27": "fy2567-sakaeo-volunteer-centers", "50": "fy2567-sakaeo-volunteer-centers-chiangmai"}
# Province-wide routes with no place in the path: the compilation, the outbox, group codes.
SAKAEO = "/directives/fy2567-sakaeo-volunteer-centers"
PROVINCE_ONLY_PAGES = [f"{SAKAEO}/reports", f"{SAKAEO}/reports/print", f"{SAKAEO}/reports/compiled.xlsx",
                       f"{SAKAEO}/reports/compiled-totals.csv", "/outbox"]
# The Department's alone: the national board (pages and API), read-only.
DEPARTMENT_ONLY = [("GET", "/national"), ("GET", "/national/fy2567-national-volunteer-centers"),
                   ("GET", "/api/v1/national"),
                   ("GET", "/api/v1/national/fy2567-national-volunteer-centers/board")]
# A province's alone: its report to the Department.
PROVINCE_WRITES = [("POST", f"{SAKAEO}/reports/department"),
                   ("POST", "/api/v1/reports/department")]
# Not scoped by place: the line webhook is signature-authenticated; the CSV's {table} is a name.
UNSCOPED = {("POST", "/line/webhook"), ("GET", "/reports/compiled-{table}.csv")}
# Forms posted from pages loaded before directives were named: 404 for everyone, nothing changed.
LEGACY_POSTS = {("POST", "/districts/{code}/report"), ("POST", "/districts/{code}/report/{action}")}


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (320, 240), (200, 40, 40)).save(out, "JPEG", comment=PHOTO_MARK)
    return out.getvalue()


def _user(session: Session, username: str, role: Role, province: str | None,
          district: str | None, password_hash: str) -> None:
    ensure_user(session, username=username, full_name=username, role=role, province_code=province,
                district_code=district, password_hash=password_hash, now=NOW)


def _seed_place(session: Session, store, district: str) -> Place:
    """A done item with a secret note, and a report draft with secret text and one photo."""
    staff = get_by_username(session, f"staff-{district}")
    directive = get_directive_by_slug(session, SLUGS[district[:2]])
    item = find_item(session, directive.id, district, "G3")  # open in the demo everywhere
    mark_done(session, staff, item.id, now=NOW, note=f"SECRET-{district} note")
    key = new_session_key()
    raw = {"sessions": [{"key": key, "held_on": "2024-07-05", "center": f"SECRET-{district} center",
                         "place": "บ้าน", "kind": "tree-planting",
                         "participants": {"community": 10, "cd-officials": 1}}],
           "outcomes": [f"SECRET-{district} outcome"]}
    report = session.exec(select(Report).where(Report.directive_id == directive.id,
                                               Report.district_code == district)).first()
    save_draft(session, staff, district, raw, directive=directive,
               expected_version=report.version if report else 0, now=NOW, store=store)
    add_photo(session, staff, district, key, jpeg(), "secret.jpg", directive=directive, store=store,
              now=NOW)
    report = session.exec(select(Report).where(Report.directive_id == directive.id,
                                               Report.district_code == district)).one()
    photo = session.exec(select(ReportPhoto).where(ReportPhoto.report_id == report.id)).first()
    return Place(district[:2], district, item.id, photo.id)


@pytest.fixture
def national(any_engine, tmp_path):
    """The app over the demo database plus Chiang Mai, its directive, people and secrets."""
    app = make_app(any_engine, data_dir=tmp_path)
    spec = load_directive(DEFAULT_DIRECTIVE)
    with Session(any_engine) as session:
        load_provinces(session, ["50"])
        launch_directive(session, spec.model_copy(update={"slug": f"{spec.slug}-chiangmai",
                                                          "province_code": "50"}), now=NOW)
        demo_hash = hash_password(PASSWORD)
        _user(session, "coordinator-50", Role.COORDINATOR, "50", None, demo_hash)
        _user(session, "staff-5001", Role.DISTRICT_STAFF, "50", "5001", demo_hash)
        _user(session, "department", Role.DEPARTMENT_VIEWER, None, None, demo_hash)
        places = {code: _seed_place(session, app.state.photos, code) for code in ("2701", "2704", "5001")}
        session.commit()
    return app, places


@dataclass
class As:
    """One person, signed in on the pages (cookie) and holding an API token."""

    page: TestClient
    api: TestClient
    headers: dict[str, str]


@pytest.fixture
def as_user(national) -> Iterator:
    app, _ = national
    opened: list[TestClient] = []

    def sign_in(username: str) -> As:
        page, api = TestClient(app), TestClient(app)
        opened.extend([page, api])
        return As(signed_in(page, username), api, api_token(api, username))

    yield sign_in
    for client in opened:
        client.close()


def _path(template: str, target: str, place: Place) -> str:
    value = {"province": place.province, "district": place.district, "item": place.item_id,
             "photo": place.photo_id}[target]
    return template.replace("{code}", str(value)).replace("{item_id}", str(value)) \
        .replace("{photo_id}", str(value)).replace("{slug}", SLUGS[place.province])


def _send(who: As, method: str, path: str):
    if path.startswith("/api/") and path.endswith("/report/photos") and method == "POST":
        return who.api.post(path, headers=who.headers, data={"session_key": "s1"},
                            files={"file": ("a.jpg", PHOTO_MARK, "image/jpeg")})
    if path.startswith("/api/"):
        body = {"version": 1, "report": {"sessions": [], "outcomes": []}, "note": "x", "comment": "x",
                "reason": "x"}
        return who.api.request(method, path, headers=who.headers, json=body)
    if path.endswith("/report/draft"):
        return who.page.post(path, json={"version": 1, "report": {}},
                             headers={"x-csrftoken": csrf(who.page), "accept": "application/json"})
    if path.endswith("/report/photos"):
        return who.page.post(path, data={"csrftoken": csrf(who.page), "session_key": "k"},
                             files=[("files", ("a.jpg", jpeg(), "image/jpeg"))],
                             follow_redirects=False)
    if method == "POST":
        return who.page.post(path, data={"csrftoken": csrf(who.page), "version": "1",
                                         "session_key": "k", "comment": "x", "reason": "x"},
                             follow_redirects=False)
    return who.page.get(path, follow_redirects=False)


def _leaks(who: As, place: Place, routes) -> list[str]:
    """Every route aimed at the place: a refusal, with none of the place's data in the answer."""
    found = []
    for method, template, target, _ in routes:
        path = _path(template, target, place)
        answer = _send(who, method, path)
        if answer.status_code not in (403, 404):
            found.append(f"{method} {path}: {answer.status_code}")
        elif place.marker in answer.text or PHOTO_MARK in answer.content \
                or answer.headers.get("content-type", "").startswith(("image/", "application/pdf")):
            found.append(f"{method} {path}: refused but the body carries the place's data")
    return found


def audit_count(engine) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(AuditEntry)).one()


# --- the route table covers the app ---------------------------------------------------------------

def api_routes(routes) -> Iterator[APIRoute]:
    """Every endpoint, also inside included routers (FastAPI ≥ 0.150 keeps them nested)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif (router := getattr(route, "original_router", None)) is not None:
            yield from api_routes(router.routes)


def test_every_scoped_route_is_in_the_table(national):
    app, _ = national
    listed = {(m, p) for m, p, _, _ in PAGES + API}
    routes = {(method, route.path) for route in api_routes(app.routes)
              for method in route.methods - {"HEAD"} if any(s in route.path for s in SCOPED)}
    assert len(routes) > 20  # the walk found the routers' endpoints
    assert routes - UNSCOPED - LEGACY_POSTS - listed == set()
    assert listed - routes == set()


# --- nobody sees past their scope -----------------------------------------------------------------

OUT_OF_SCOPE = [
    # who, the places they must not see, their province boards they must not see
    ("coordinator", ["5001"], ["50"]),
    ("province-head", ["5001"], ["50"]),
    ("staff-2701", ["2704", "5001"], ["27", "50"]),
    ("head-2701", ["2704", "5001"], ["27", "50"]),
    ("coordinator-50", ["2701", "2704"], ["27"]),
    ("staff-5001", ["2701"], ["27", "50"]),
]


@pytest.mark.parametrize(("username", "districts", "provinces"), OUT_OF_SCOPE)
def test_no_role_sees_another_place_through_pages_or_api(national, as_user, any_engine, username,
                                                         districts, provinces):
    _, places = national
    who = as_user(username)
    before = audit_count(any_engine)
    leaks = []
    for code in districts:
        leaks += _leaks(who, places[code], [r for r in PAGES + API if r[2] != "province"])
    for province in provinces:
        place = Place(province, "", 0, 0)
        leaks += _leaks(who, place, [r for r in PAGES + API + DIRECTIVE_PAGES
                                     if r[2] == "province"])
    assert leaks == []
    assert audit_count(any_engine) == before


def test_the_board_and_province_list_stay_within_the_province(national, as_user):
    coordinator = as_user("coordinator-50")
    board = coordinator.api.get("/api/v1/board", headers=coordinator.headers).json()
    assert {d["code"][:2] for d in board["districts"]} == {"50"} and len(board["districts"]) == 25
    assert "SECRET-2701" not in coordinator.page.get("/board").text
    provinces = coordinator.api.get("/api/v1/provinces", headers=coordinator.headers).json()
    assert [p["code"] for p in provinces] == ["50"]
    sakaeo = as_user("coordinator")
    assert sakaeo.page.get("/provinces/27").status_code == 200
    assert "SECRET-5001" not in sakaeo.page.get("/outbox").text


# --- the Department reads everything and changes nothing -----------------------------------------

def test_the_department_reads_both_provinces(national, as_user):
    _, places = national
    dept = as_user("department")
    home = dept.page.get("/", follow_redirects=False)
    assert home.headers["location"] == "/national"
    listing = dept.page.get("/provinces")
    assert 'href="/provinces/27/directives"' in listing.text
    assert 'href="/provinces/50/directives"' in listing.text
    for province, districts in (("27", 9), ("50", 25)):
        assert dept.page.get(f"/provinces/{province}").status_code == 200
        directives = dept.page.get(f"/provinces/{province}/directives").text
        assert f'href="/directives/{SLUGS[province]}"' in directives and "/close" not in directives
        board = dept.page.get(f"/directives/{SLUGS[province]}")
        assert board.status_code == 200 and board.text.count("<tr data-district=") == districts
        board = dept.api.get(f"/api/v1/provinces/{province}/board", headers=dept.headers)
        assert board.status_code == 200 and len(board.json()["districts"]) == districts
    for place in places.values():
        assert dept.page.get(f"/districts/{place.district}").status_code == 200
        assert place.marker in dept.page.get(f"/items/{place.item_id}").text
        report = dept.api.get(f"/api/v1/districts/{place.district}/report", headers=dept.headers)
        assert report.status_code == 200 and place.marker in report.text
        on = f"/directives/{SLUGS[place.province]}/districts/{place.district}"
        page = dept.page.get(f"{on}/report").text
        assert place.marker in page and '<fieldset class="plain" disabled>' in page
        assert "/report/accept" not in page
        assert PHOTO_MARK in dept.page.get(f"/photos/{place.photo_id}").content
        assert dept.page.get(f"{on}/report/print").status_code == 200
    item = dept.api.get(f"/api/v1/items/{places['5001'].item_id}", headers=dept.headers).json()
    assert (item["district_code"], item["note"]) == ("5001", "SECRET-5001 note")


def test_the_department_gets_403_on_every_write(national, as_user, any_engine):
    _, places = national
    dept = as_user("department")
    before = audit_count(any_engine)
    refused = []
    for place in places.values():
        for method, template, target, write in PAGES + API + DIRECTIVE_PAGES:
            if not write:
                continue
            answer = _send(dept, method, _path(template, target, place))
            if answer.status_code != 403:
                refused.append(f"{method} {template} {place.district}: {answer.status_code}")
    group = dept.page.post("/profile/line-group-code",
                           data={"csrftoken": csrf(dept.page), "district": "2701"})
    assert refused == [] and group.status_code == 403
    assert audit_count(any_engine) == before


def test_the_department_does_not_compile_or_read_a_provinces_outbox(national, as_user):
    dept = as_user("department")
    for path in PROVINCE_ONLY_PAGES:
        answer = dept.page.get(path, follow_redirects=False)
        assert answer.status_code == 403, path
        assert "SECRET" not in answer.text
    assert dept.api.get("/api/v1/outbox", headers=dept.headers).status_code == 403
    assert dept.api.get("/api/v1/board", headers=dept.headers).status_code == 404
    assert dept.api.get("/api/v1/me", headers=dept.headers).json()["province_code"] is None


# --- the national board is the Department's; the report to the Department is the province's ------

@pytest.mark.parametrize("username", ["coordinator", "province-head", "staff-2701", "head-2701",
                                      "coordinator-50", "staff-5001"])
def test_only_the_department_opens_the_national_board(national, as_user, username):
    who = as_user(username)
    for method, path in DEPARTMENT_ONLY:
        answer = _send(who, method, path)
        assert answer.status_code == 403, (username, path, answer.status_code)
        assert "SECRET" not in answer.text


def test_the_department_and_districts_cannot_send_a_provinces_report(national, as_user,
                                                                     any_engine):
    before = audit_count(any_engine)
    for username in ("department", "staff-2701", "head-2701", "staff-5001"):
        who = as_user(username)
        for method, path in PROVINCE_WRITES:
            answer = _send(who, method, path)
            assert answer.status_code == 403, (username, path, answer.status_code)
    assert audit_count(any_engine) == before


# --- the directives API keeps each province's letters to itself -----------------------------------

def test_the_directives_api_stays_within_the_province(national, as_user):
    sakaeo = SLUGS["27"]
    for username in ("coordinator-50", "staff-5001"):
        who = as_user(username)
        for url in (f"/api/v1/directives/{sakaeo}", f"/api/v1/directives/{sakaeo}/board",
                    f"/api/v1/items?directive={sakaeo}", f"/api/v1/board?directive={sakaeo}"):
            answer = who.api.get(url, headers=who.headers)
            assert answer.status_code == 404, (username, url)
            assert SLUGS["50"] in answer.json()["detail"]["en"] and "SECRET" not in answer.text
        assert who.api.get("/api/v1/items?district=2701", headers=who.headers).status_code == 403
        assert who.api.get("/api/v1/directives?province=27", headers=who.headers).status_code == 403
        listing = who.api.get("/api/v1/directives", headers=who.headers).json()
        assert [d["slug"] for d in listing] == [SLUGS["50"]]
    chiangmai = as_user("coordinator-50")
    items = chiangmai.api.get("/api/v1/items?limit=500", headers=chiangmai.headers).json()
    assert items["total"] == 25 * 12 and {i["district_code"][:2] for i in items["items"]} == {"50"}
    dept = as_user("department")
    listing = dept.api.get("/api/v1/directives", headers=dept.headers).json()
    assert {d["slug"] for d in listing} == set(SLUGS.values())
    notes = dept.api.get(f"/api/v1/items?directive={sakaeo}&district=2701&status=done",
                         headers=dept.headers).json()
    assert "SECRET-2701 note" in {i["note"] for i in notes["items"]}
    closing = dept.api.post(f"/api/v1/directives/{sakaeo}/close", headers=dept.headers,
                            json={"reason": "x"})
    assert closing.status_code == 403
