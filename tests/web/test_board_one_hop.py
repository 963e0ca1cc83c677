"""The board pages read in one hop (``web.deps.signed_in_page``, bench P4): the sign-in is checked
by the same cookie rules as every page (a session named, not idle, not too old, not ended, its
user active), else /login; who is signed in is kept for an error page; and the national board's
two plain queries (the chart's settlements, the provinces' own letters) read what the ORM read.
On SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect
from sqlmodel import Session, select

from domain.access import Role
from domain.directive import load_directive
from models.charts import copies_settled_days, copies_settlements, item_timings
from models.directive import (
    Directive,
    DirectiveStatus,
    TrackedItem,
    active_directives,
    get_directive_by_slug,
    provinces_own_active,
    steps_of,
)
from models.user import get_by_username
from tests.conftest import NOW
from tests.db.test_national import NATIONAL
from tests.db.test_national import SLUG as NATIONAL_SLUG
from tests.web.conftest import make_app
from tests.web.helpers import CLOCK, PASSWORD, SLUG, csrf, signed_in
from tidtam.app.accounts import ensure_user, hash_password
from tidtam.app.national import launch_national
from tidtam.app.orgtree import load_provinces
from tidtam.app.tracking import waive
from tidtam.infra.clock import FixedClock

BOARD = f"/directives/{SLUG}"


def _to_login(response, path: str) -> bool:
    return (response.status_code == 303
            and response.headers["location"] == f"/login?next={quote(path, safe='')}")


@pytest.fixture
def app(any_engine, tmp_path):
    """The demo (Sa Kaeo) with Chiang Mai, a Department viewer and the Department's directive."""
    app = make_app(any_engine, data_dir=tmp_path)
    with Session(any_engine) as session:
        load_provinces(session, ["50"])
        ensure_user(session, username="department", full_name="กรมฯ ผู้ดู", role=Role.DEPARTMENT_VIEWER,
                    province_code=None, district_code=None, password_hash=hash_password(PASSWORD),
                    now=NOW)
        launch_national(session, load_directive(NATIONAL), now=NOW)
        session.commit()
    return app


PAGES = {"coordinator": BOARD, "department": "/national"}


@pytest.mark.parametrize("who", sorted(PAGES))
def test_signed_out_the_board_pages_send_to_login(app, who):
    with TestClient(app) as client:
        for path in (PAGES[who], f"/national/{NATIONAL_SLUG}"):
            assert _to_login(client.get(path, follow_redirects=False), path)
        signed_in(client, who)
        assert client.get(PAGES[who]).status_code == 200
        client.post("/logout", data={"csrftoken": csrf(client)})
        assert _to_login(client.get(PAGES[who], follow_redirects=False), PAGES[who])


@pytest.mark.parametrize("who", sorted(PAGES))
def test_an_idle_session_goes_to_login_and_the_cookie_forgets_it(app, who):
    path = PAGES[who]
    idle = timedelta(minutes=app.state.settings.session_idle_minutes)
    with TestClient(app) as client:
        signed_in(client, who)
        app.state.clock = FixedClock(CLOCK + idle - timedelta(seconds=1))
        assert client.get(path).status_code == 200  # activity: the idle time starts again
        app.state.clock = FixedClock(CLOCK + 2 * idle - timedelta(seconds=2))
        assert client.get(path).status_code == 200
        app.state.clock = FixedClock(CLOCK + 3 * idle)
        assert _to_login(client.get(path, follow_redirects=False), path)
        app.state.clock = FixedClock(CLOCK + 3 * idle - timedelta(seconds=3))
        assert _to_login(client.get(path, follow_redirects=False), path)  # forgotten, not just late
        assert _to_login(client.get("/profile", follow_redirects=False), "/profile")


def test_a_session_too_old_goes_to_login_though_never_idle(app):
    idle = timedelta(minutes=app.state.settings.session_idle_minutes)
    max_age = timedelta(hours=app.state.settings.session_max_hours)
    with TestClient(app) as client:
        signed_in(client, "coordinator")
        step = CLOCK
        while step + idle / 2 < CLOCK + max_age:
            step += idle / 2
            app.state.clock = FixedClock(step)
            assert client.get(BOARD).status_code == 200
        app.state.clock = FixedClock(CLOCK + max_age)
        assert _to_login(client.get(BOARD, follow_redirects=False), BOARD)


def test_an_ended_session_or_a_disabled_user_is_refused_with_the_kept_cookie(app, any_engine):
    with TestClient(app) as client:
        signed_in(client, "coordinator")
        kept = TestClient(app)
        kept.cookies.update(dict(client.cookies))
        assert kept.get(BOARD).status_code == 200
        client.post("/logout", data={"csrftoken": csrf(client)})
        assert _to_login(kept.get(BOARD, follow_redirects=False), BOARD)
        signed_in(client, "department")
        assert client.get("/national").status_code == 200
        with Session(any_engine) as session:
            user = get_by_username(session, "department")
            user.is_active = False
            session.add(user)
            session.commit()
        assert _to_login(client.get("/national", follow_redirects=False), "/national")


def test_who_is_signed_in_shows_on_the_error_pages_of_the_board(app):
    with TestClient(app) as client:
        signed_in(client, "staff-2703")
        refused = client.get(BOARD)  # the province's board: not a district's to see
        assert refused.status_code == 403
        with Session(app.state.engine) as session:
            name = get_by_username(session, "staff-2703").full_name
        assert name in refused.text
        missing = client.get("/directives/no-such-letter")
        assert missing.status_code == 404 and name in missing.text
        assert client.get("/national").status_code == 403
    with TestClient(app) as client:
        signed_in(client, "coordinator")
        assert client.get("/national").status_code == 403
        assert client.get(f"/national/{NATIONAL_SLUG}").status_code == 403
        assert client.get(f"/directives/{NATIONAL_SLUG}-p50").status_code == 403  # Chiang Mai's
        assert client.get(f"/directives/{NATIONAL_SLUG}-p27").status_code == 200  # its own copy


def test_the_national_board_opens_both_ways(app):
    with TestClient(app) as client:
        signed_in(client, "department")
        newest = client.get("/national")
        named = client.get(f"/national/{NATIONAL_SLUG}")
        assert newest.status_code == named.status_code == 200
        assert f'href="/directives/{NATIONAL_SLUG}-p27"' in newest.text
        assert newest.text == named.text.replace(f"/national/{NATIONAL_SLUG}", "/national")


def test_the_provinces_own_letters_are_those_the_python_filter_kept(app, any_engine):
    with Session(any_engine) as session:
        own = get_directive_by_slug(session, SLUG)
        closed = Directive.model_validate(own.model_dump(exclude={"id"}) | {
            "slug": f"{SLUG}-closed", "status": DirectiveStatus.CLOSED})
        later = Directive.model_validate(own.model_dump(exclude={"id"}) | {
            "slug": f"{SLUG}-later", "issued_on": own.issued_on + timedelta(days=3),
            "province_code": "50"})
        session.add_all([closed, later])
        session.commit()
    with Session(any_engine) as session:
        before = [d.id for d in active_directives(session) if d.parent_id is None]
        assert len([d for d in active_directives(session) if d.parent_id]) == 2  # the copies
    with Session(any_engine) as session:
        now = provinces_own_active(session)
        assert [d.id for d in now] == before and len(before) == 2
        assert all("definition" in inspect(d).unloaded for d in now)  # the YAML not read
        assert now[0].definition == get_directive_by_slug(session, f"{SLUG}-later").definition


def test_the_charts_settlements_are_the_items_the_orm_read(app, any_engine):
    copy = f"{NATIONAL_SLUG}-p27"
    with Session(any_engine) as session:
        directive = get_directive_by_slug(session, copy)
        coordinator = get_by_username(session, "coordinator")
        codes = [s.code for s in steps_of(session, directive.id)]
    first, second = codes[0], codes[1]
    for district, code in (("2701", first), ("2702", second)):
        with Session(any_engine) as session:
            item = session.exec(select(TrackedItem).where(
                TrackedItem.directive_id == directive.id, TrackedItem.district_code == district,
                TrackedItem.step_id.in_([s.id for s in steps_of(session, directive.id)
                                         if s.code == code]))).one()
            waive(session, coordinator, item.id, reason="ไม่มี", now=CLOCK,
                  expected_version=item.version)
            session.commit()
    with Session(any_engine) as session:
        national = get_directive_by_slug(session, NATIONAL_SLUG)
        department_codes = [s.code for s in steps_of(session, national.id)]
        rows = copies_settlements(session, national.id, department_codes)
        expected = Counter()
        for copy_row in session.exec(select(Directive).where(Directive.parent_id == national.id)):
            for timing in item_timings(session, copy_row.id):
                if timing.step_code in department_codes:
                    expected[(timing.step_code, timing.settled, timing.settled_at)] += 1
        got = Counter((code, settled, at) for code, settled, at in rows)
        assert got == expected
        assert any(settled and at is not None and at.tzinfo is not None for _, settled, at in rows)
        assert all(type(settled) is bool for _, settled, _ in rows)
        assert copies_settlements(session, national.id, []) == []
        # counted by day: by PostgreSQL itself, or from each item, the same counts
        tz = ZoneInfo("Asia/Bangkok")
        by_day = Counter()
        for (code, settled, at), n in expected.items():
            by_day[(code, settled, at.astimezone(tz).date() if settled and at else None)] += n
        assert copies_settled_days(session, national.id, department_codes, tz) == dict(by_day)
        assert sum(n for (_, settled, _), n in by_day.items() if settled) >= 2  # the two waived
