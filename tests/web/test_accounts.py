"""Accounts: the coordinator's district accounts and the Department's own (create, disable,
re-enable, reset by a one-time link), weak passwords refused everywhere, the secret key's
length and the demo mode's loopback and banner (issue 14 items 1 and 3)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlmodel import Session

from domain.access import Role
from models.audit import entries_for
from models.org import Province
from models.user import get_by_username
from tests.web.helpers import CLOCK, PASSWORD, api_token, csrf, signed_in, user_named
from tidtam.app.accounts import ensure_user
from tidtam.infra.clock import FixedClock
from tidtam.infra.settings import Settings, SettingsError
from web.app import create_app

STRONG = "lantern-papaya-orbit-93"
WEAK = [("            ", "ช่องว่าง", "spaces"), ("aaaaaaaaaaaa", "ตัวเดียวซ้ำ", "one character"),
        ("password1234", "เดาง่าย", "too common"), ("short-1", "อย่างน้อย 12", "at least 12")]


def _link(html: str) -> str:
    return re.search(r"data-reset-link>https?://[^/]+(/reset/[^<]+)<", html).group(1)


def _fresh(client: TestClient) -> TestClient:
    return TestClient(client.app, base_url="http://testserver")


def test_disabling_stops_the_live_session_and_token_at_once(any_client, any_engine):
    staff = signed_in(_fresh(any_client), "staff-2703")
    token = api_token(staff, "staff-2703")
    coordinator = signed_in(any_client, "coordinator")
    target = user_named(any_engine, "staff-2703")
    page = coordinator.get("/accounts")
    assert page.status_code == 200 and 'data-user="staff-2703"' in page.text
    done = coordinator.post(f"/accounts/{target.id}/disable", data={"csrftoken": csrf(coordinator)},
                            follow_redirects=False)
    assert done.status_code == 303

    assert staff.get("/my", follow_redirects=False).status_code == 303
    assert staff.get("/api/v1/me", headers=token).status_code == 401
    assert _fresh(any_client).post("/api/v1/token", data={"username": "staff-2703",
                                                          "password": PASSWORD}).status_code == 401
    coordinator.post(f"/accounts/{target.id}/enable", data={"csrftoken": csrf(coordinator)})
    assert _fresh(any_client).post("/api/v1/token", data={"username": "staff-2703",
                                                          "password": PASSWORD}).status_code == 200
    assert staff.get("/api/v1/me", headers=token).status_code == 401  # ended, not paused
    with Session(any_engine) as session:
        actions = [e.action for e in entries_for(session, "user", target.id)]
    assert "user.disable" in actions and "user.enable" in actions


def test_reset_link_works_once_and_ends_every_session(client, engine):
    staff = signed_in(_fresh(client), "staff-2703")
    coordinator = signed_in(client, "coordinator")
    target = user_named(engine, "staff-2703")
    shown = coordinator.post(f"/accounts/{target.id}/reset", data={"csrftoken": csrf(coordinator)})
    assert shown.status_code == 200
    path = _link(shown.text)
    assert path not in coordinator.get("/accounts").text  # shown once

    owner = _fresh(client)
    form = owner.get(path)
    assert form.status_code == 200
    weak = owner.post(path, data={"csrftoken": csrf(owner), "password": "password1234"})
    assert weak.status_code == 422 and "เดาง่าย" in weak.text and "too common" in weak.text
    set_ = owner.post(path, data={"csrftoken": csrf(owner), "password": STRONG},
                      follow_redirects=False)
    assert set_.status_code == 303 and set_.headers["location"] == "/login"
    again = owner.post(path, data={"csrftoken": csrf(owner), "password": STRONG + "x"})
    assert again.status_code == 404 and "ใช้ไม่ได้" in again.text
    assert owner.get(path).status_code == 404

    assert staff.get("/my", follow_redirects=False).status_code == 303
    assert owner.post("/api/v1/token", data={"username": "staff-2703",
                                             "password": STRONG}).status_code == 200


def test_reset_link_expires(client, engine):
    coordinator = signed_in(client, "coordinator")
    target = user_named(engine, "staff-2704")
    path = _link(coordinator.post(f"/accounts/{target.id}/reset",
                                  data={"csrftoken": csrf(coordinator)}).text)
    minutes = client.app.state.settings.reset_link_minutes
    client.app.state.clock = FixedClock(CLOCK + timedelta(minutes=minutes))
    owner = _fresh(client)
    assert owner.get(path).status_code == 404
    late = owner.post(path, data={"csrftoken": csrf(owner), "password": STRONG})
    assert late.status_code == 404
    assert owner.post("/api/v1/token", data={"username": "staff-2704",
                                             "password": STRONG}).status_code == 401


def test_coordinator_creates_a_district_account_whose_owner_sets_the_password(client, engine):
    coordinator = signed_in(client, "coordinator")
    created = coordinator.post("/accounts", data={
        "csrftoken": csrf(coordinator), "username": "staff2-2705", "full_name": "นายใหม่ ทดสอบ",
        "role": "district_staff", "district": "2705", "email": ""})
    assert created.status_code == 201, created.text
    path = _link(created.text)
    user = user_named(engine, "staff2-2705")
    assert user.province_code == "27" and user.district_code == "2705"
    owner = _fresh(client)
    owner.get(path)
    owner.post(path, data={"csrftoken": csrf(owner), "password": STRONG})
    assert owner.post("/api/v1/token", data={"username": "staff2-2705",
                                             "password": STRONG}).status_code == 200
    with Session(engine) as session:
        actions = [e.action for e in entries_for(session, "user", user.id)]
    assert {"user.add", "user.reset_link", "user.password_reset"} <= set(actions)
    refused = coordinator.post("/accounts", data={
        "csrftoken": csrf(coordinator), "username": "boss", "full_name": "x",
        "role": "provincial_head", "district": "", "email": ""})
    assert refused.status_code == 403


def test_who_may_manage_whom(client, engine):
    with Session(engine) as session:  # a district account in another province
        session.add(Province(code="50", name_th="เชียงใหม่", name_en="Chiang Mai"))
        session.flush()
        other, _ = ensure_user(session, username="staff-other", full_name="x",
                               role=Role.COORDINATOR, province_code="50", district_code=None,
                               password_hash="x", now=CLOCK)
        session.commit()
        other_id = other.id
    coordinator = signed_in(client, "coordinator")
    head = user_named(engine, "province-head")
    department = user_named(engine, "department")
    for target, status in ((head.id, 403), (other_id, 404), (department.id, 404),
                           (user_named(engine, "coordinator").id, 403)):
        for action in ("disable", "reset", "enable"):
            answer = coordinator.post(f"/accounts/{target}/{action}",
                                      data={"csrftoken": csrf(coordinator)})
            assert answer.status_code == status, (target, action, answer.status_code)
    assert user_named(engine, "province-head").is_active

    staff = signed_in(_fresh(client), "staff-2703")
    assert staff.get("/accounts").status_code == 403
    viewer = signed_in(_fresh(client), "department")
    assert 'data-user="staff-2703"' not in viewer.get("/accounts").text
    assert viewer.post(f"/accounts/{head.id}/disable",
                       data={"csrftoken": csrf(viewer)}).status_code == 403


@pytest.mark.parametrize(("password", "th", "en"), WEAK)
def test_weak_passwords_refused_on_change(client, password, th, en):
    signed_in(client, "staff-2703")
    refused = client.post("/profile/password", data={
        "csrftoken": csrf(client), "current": PASSWORD, "new": password, "again": password})
    assert refused.status_code == 422
    assert th in refused.text and en in refused.text
    assert client.post("/api/v1/token", data={"username": "staff-2703",
                                              "password": PASSWORD}).status_code == 200


def test_the_secret_key_must_be_long_outside_demo_mode():
    for short in ("a", "123", "x" * 31):
        with pytest.raises((SettingsError, ValidationError), match="at least 32") as refused:
            Settings(_env_file=None, secret_key=short)
        assert "อย่างน้อย 32" in str(refused.value)
    assert Settings(_env_file=None, secret_key="k" * 32).session_secret == "k" * 32
    assert Settings(_env_file=None, demo=True, secret_key="a").session_secret == "a"


def test_demo_mode_listens_on_loopback_unless_told():
    demo = Settings(_env_file=None, demo=True)
    demo.check_bind("127.0.0.1")
    with pytest.raises(SettingsError, match="TIDTAM_DEMO_BIND=0.0.0.0"):
        demo.check_bind("0.0.0.0")
    Settings(_env_file=None, demo=True, demo_bind="0.0.0.0").check_bind("0.0.0.0")
    Settings(_env_file=None, secret_key="k" * 40).check_bind("0.0.0.0")  # not a demo
    with pytest.raises((SettingsError, ValidationError), match="TIDTAM_DEMO_BIND"):
        Settings(_env_file=None, secret_key="k" * 40, demo_bind="0.0.0.0")


def test_every_page_of_a_demo_shows_the_banner(client, engine):
    banner = "โหมดสาธิต — อย่าใช้กับข้อมูลจริง"
    assert banner in client.get("/login").text and "Demo mode" in client.get("/login").text
    signed_in(client, "coordinator")
    for path in ("/", "/profile", "/accounts", "/reports", "/outbox"):
        page = client.get(path)
        assert page.status_code == 200 and "data-demo-banner" in page.text, path
    real = create_app(Settings(_env_file=None, secret_key="k" * 40), engine,
                      clock=FixedClock(CLOCK))
    with TestClient(real, base_url="http://testserver") as other:
        assert "data-demo-banner" not in other.get("/login").text


def test_user_add_refuses_a_weak_password(engine):
    from domain.errors import InvalidInput
    from tidtam.app.accounts import create_account

    with Session(engine) as session:
        for password, th, en in WEAK:
            with pytest.raises(InvalidInput) as refused:
                create_account(session, username="new-one", full_name="x",
                               role=Role.DISTRICT_STAFF, province_code="27",
                               district_code="2703", password=password, now=CLOCK)
            assert th in refused.value.message_th and en in refused.value.message_en
        assert get_by_username(session, "new-one") is None
