"""The Department's national board page and API, and the province's report to the Department,
through the real app on SQLite and PostgreSQL."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, func, select

from domain.access import Role
from domain.directive import load_directive
from models.audit import AuditEntry
from models.directive import Directive, get_directive_by_slug
from models.report import ProvincialReport
from tests.conftest import NOW
from tests.db.test_national import NATIONAL, SLUG
from tests.db.test_reporting import accepted
from tests.web.conftest import make_app
from tests.web.helpers import PASSWORD, api_token, csrf, signed_in
from tidtam.app.accounts import ensure_user, hash_password
from tidtam.app.national import launch_national
from tidtam.app.orgtree import load_provinces

COPY = f"/directives/{SLUG}-p27"  # Sa Kaeo's copy of the Department's directive


def copy(session: Session) -> Directive:
    return get_directive_by_slug(session, f"{SLUG}-p27")


@pytest.fixture
def app(any_engine, tmp_path):
    """The demo database plus Chiang Mai and a Department viewer; no national directive yet."""
    app = make_app(any_engine, data_dir=tmp_path)
    with Session(any_engine) as session:
        load_provinces(session, ["50"])
        ensure_user(session, username="department", full_name="กรมฯ", role=Role.DEPARTMENT_VIEWER,
                    province_code=None, district_code=None, password_hash=hash_password(PASSWORD),
                    now=NOW)
        session.commit()
    return app


def launch(engine) -> None:
    with Session(engine) as session:
        launch_national(session, load_directive(NATIONAL), now=NOW)
        session.commit()


def row(html: str, province: str) -> str:
    return re.search(rf'<tr data-province="{province}">(.*?)</tr>', html, re.S).group(1)


def test_the_department_lands_on_the_national_board(app, any_engine):
    with TestClient(app) as client:
        signed_in(client, "department")
        assert client.get("/", follow_redirects=False).headers["location"] == "/national"
        empty = client.get("/national")
        assert empty.status_code == 200 and "ยังไม่ได้ออกหนังสือสั่งการระดับประเทศ" in empty.text
        launch(any_engine)
        page = client.get("/national")
        assert page.status_code == 200
        # Each province opens its copy's board (a directive's pages carry it in their URL).
        assert f'href="/directives/{SLUG}-p27"' in page.text
        assert f'href="/directives/{SLUG}-p50"' in page.text
        # The demo's copy is fresh: at 18 Jul G1 and A1 (due 17 Jul) are overdue everywhere.
        g1 = re.search(r'data-step="G1">(.*?)</td>', row(page.text, "27"), re.S).group(1)
        assert 'data-expected="9" data-actual="0" data-on-time="0"' in g1
        assert "ทั้งประเทศดำเนินการแล้ว 0%" in page.text
        assert "เลยกำหนด 68 รายการ" in page.text  # (9 + 25) districts × G1, A1
        client.post("/lang", data={"lang": "en", "next": "/", "csrftoken": csrf(client)})
        english = client.get("/national").text
        assert "National board: reporting by province" in english and "68 steps overdue" in english
        assert client.get(f"/national/{SLUG}").status_code == 200
        assert client.get(f"/national/{SLUG}-p27").status_code == 404


def test_the_coordinator_sends_the_compiled_report_and_the_department_sees_it(app, any_engine):
    launch(any_engine)
    with TestClient(app) as coordinator:
        signed_in(coordinator, "coordinator")
        refused = coordinator.post(f"{COPY}/reports/department",
                                   data={"csrftoken": csrf(coordinator)})
        assert refused.status_code == 422
        assert "ยังไม่มีรายงานของอำเภอที่ตรวจรับแล้ว" in refused.text
        with Session(any_engine) as session:
            assert session.exec(select(func.count()).select_from(ProvincialReport)).one() == 0
            accepted(session, app.state.photos, "2706", copy(session))
            session.commit()
        reports = coordinator.get(f"{COPY}/reports")
        assert 'data-sent="no"' in reports.text
        assert f'action="{COPY}/reports/department"' in reports.text
        sent = coordinator.post(f"{COPY}/reports/department",
                                data={"csrftoken": csrf(coordinator), "note": "ส่งรอบแรก"},
                                follow_redirects=False)
        assert sent.status_code == 303 and sent.headers["location"] == f"{COPY}/reports#department"
        assert 'data-sent="yes"' in coordinator.get(f"{COPY}/reports").text
        # the province's own directive has sent nothing: its page says so
        assert 'data-sent="no"' in coordinator.get("/directives/fy2567-sakaeo-volunteer-centers/reports").text
        no_token = coordinator.post(f"{COPY}/reports/department", data={"note": "x"})
        assert no_token.status_code == 403  # CSRF
    with Session(any_engine) as session:
        report = session.exec(select(ProvincialReport)).one()
        assert (report.province_code, report.districts_accepted, report.note) == ("27", 1, "ส่งรอบแรก")
        assert session.exec(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "provincial_report.submit")).one() == 1
    with TestClient(app) as department:
        signed_in(department, "department")
        html = department.get("/national").text
        assert 'data-report="on-time"' in row(html, "27")
        assert 'data-report="none"' in row(html, "50")
        assert "ส่งรายงานถึงกรมฯ แล้ว 1 จาก 2 จังหวัด" in html


def test_the_api_gives_the_department_the_rates_and_the_province_its_sending(app, any_engine):
    launch(any_engine)
    with Session(any_engine) as session:
        accepted(session, app.state.photos, "2706", copy(session))
        session.commit()
    with TestClient(app) as client:
        coordinator = api_token(client, "coordinator")
        unnamed = client.post("/api/v1/reports/department", headers=coordinator, json={"note": "api"})
        assert unnamed.status_code == 409  # Sa Kaeo follows two directives: the API names one
        assert f"{SLUG}-p27" in unnamed.json()["detail"]["en"]
        assert "fy2567-sakaeo-volunteer-centers" in unnamed.json()["detail"]["th"]
        sent = client.post(f"/api/v1/reports/department?directive={SLUG}-p27", headers=coordinator,
                           json={"note": "api"})
        assert sent.status_code == 200, sent.text
        body = sent.json()
        assert (body["province_code"], body["version"], body["on_time"]) == ("27", 1, True)
        assert body["totals"]["total_participants"] == 69
        department = api_token(client, "department")
        listing = client.get("/api/v1/national", headers=department).json()
        assert [d["slug"] for d in listing] == [SLUG]
        board = client.get(f"/api/v1/national/{SLUG}/board", headers=department).json()
        provinces = {p["province"]["code"]: p for p in board["provinces"]}
        assert set(provinces) == {"27", "50"}
        assert provinces["27"]["steps"]["R1"] == {"expected": 9, "actual": 1, "on_time": 1,
                                                  "overdue": 0, "percent": 11, "on_time_percent": 11}
        assert provinces["27"]["report"]["districts_accepted"] == 1
        assert provinces["27"]["copy_slug"] == f"{SLUG}-p27"
        copy_board = client.get(f"/api/v1/directives/{SLUG}-p27/board", headers=department)
        assert copy_board.status_code == 200 and len(copy_board.json()["districts"]) == 9
        assert provinces["50"]["report"] is None
        assert board["reports"]["actual"] == 1 and board["reports"]["expected"] == 2
        assert client.get(f"/api/v1/national/{SLUG}/board", headers=coordinator).status_code == 403


def letter(html: str, slug: str) -> str:
    return re.search(rf'<tr data-letter="{slug}"[^>]*>(.*?)</tr>', html, re.S).group(1)


def test_the_national_board_lists_the_national_directive_and_the_provinces_own_letters(
        app, any_engine):
    own = "fy2567-sakaeo-volunteer-centers"
    with TestClient(app) as client:
        signed_in(client, "department")
        before = client.get("/national").text
        assert "ยังไม่ได้ออกหนังสือสั่งการระดับประเทศ" in before
        assert 'data-letter-province="27"' in before and f'href="/directives/{own}"' in letter(
            before, own)
        launch(any_engine)
        page = client.get("/national")
        assert page.status_code == 200
        # The Department's directive: Sa Kaeo's copy in its rates, linked to the copy's board.
        assert f'href="/directives/{SLUG}-p27"' in row(page.text, "27")
        # The province's own letter is still there, with its own progress: both are on the board.
        sakaeo = letter(page.text, own)
        assert "หนังสือสั่งการของจังหวัดเอง" in page.text
        assert 'data-settled="19" data-expected="108"' in sakaeo and "18%" in sakaeo
        assert 'data-overdue="6"' in sakaeo and 'href="/provinces/27/directives"' in sakaeo
        assert f'data-letter="{SLUG}-p27"' not in page.text  # a copy is not a letter of its own
        client.post("/lang", data={"lang": "en", "next": "/", "csrftoken": csrf(client)})
        assert "Provinces&#39; own letters" in client.get("/national").text  # autoescaped
    with TestClient(app) as coordinator:
        signed_in(coordinator, "coordinator")
        assert coordinator.get("/national").status_code == 403
