"""Signing in and out, CSRF on every form, the language switch, and the session cookie."""

from __future__ import annotations

from fastapi.testclient import TestClient

from models.directive import ItemStatus
from tests.web.helpers import csrf, form_token, item_of, login, signed_in


def test_login_page_is_thai_and_carries_a_csrf_token(client):
    response = client.get("/login")
    assert response.status_code == 200
    assert '<html lang="th">' in response.text
    assert "เข้าสู่ระบบ" in response.text and "ชื่อผู้ใช้" in response.text
    assert form_token(response.text) == client.cookies["csrftoken"]


def test_district_staff_sign_in_and_land_on_their_district(client):
    response = login(client, "staff-2703")
    assert response.status_code == 303
    cookie = response.headers["set-cookie"].lower()
    assert "tidtam_session=" in cookie and "httponly" in cookie and "samesite=lax" in cookie
    assert "secure" not in cookie  # base_url is http here
    home = client.get("/", follow_redirects=False)
    assert home.headers["location"] == "/my"


def test_coordinator_and_provincial_head_land_on_the_board(client, app):
    for username in ("coordinator", "province-head"):
        with TestClient(app) as fresh:
            signed_in(fresh, username)
            assert fresh.get("/", follow_redirects=False).headers["location"] == \
                "/provinces/27/directives"


def test_session_cookie_is_secure_when_the_site_is_https(engine):
    from tests.web.conftest import make_app

    with TestClient(make_app(engine, base_url="https://tidtam.example"),
                    base_url="https://testserver") as https_client:
        response = login(https_client, "coordinator")
    assert "secure" in response.headers["set-cookie"].lower()


def test_wrong_password_and_unknown_user_get_the_same_bilingual_401(client):
    wrong = login(client, "staff-2703", "not-the-password")
    unknown = login(client, "nobody-at-all", "not-the-password")
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert "ชื่อผู้ใช้หรือรหัสผ่านไม่ถูกต้อง" in response.text
        assert "Wrong username or password." in response.text
        assert "tidtam_session=" not in response.headers.get("set-cookie", "")
    assert client.get("/board", follow_redirects=False).status_code == 303


def test_pages_send_strangers_to_login_and_back(client):
    response = client.get("/board", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fboard"
    token = form_token(client.get("/login?next=/board").text)
    done = client.post("/login", data={"username": "coordinator", "password": "tidtam-demo-2567",
                                       "csrftoken": token, "next": "/board"},
                       follow_redirects=False)
    assert done.headers["location"] == "/board"


def test_login_never_redirects_to_another_site(client):
    client.get("/login")
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        # each sign-in starts a new session, whose CSRF token is new: read it again
        response = client.post("/login", data={"username": "coordinator",
                                               "password": "tidtam-demo-2567",
                                               "csrftoken": csrf(client), "next": target},
                               follow_redirects=False)
        assert response.headers["location"] == "/"


def test_post_without_csrf_token_is_refused_and_with_it_works(client, engine):
    signed_in(client, "staff-2703")
    item = item_of(engine, "2703", "G1")
    refused = client.post(f"/items/{item.id}/done", data={"version": item.version})
    assert refused.status_code == 403
    assert "แบบฟอร์มหมดอายุ" in refused.text and "reload the page" in refused.text
    forged = client.post(f"/items/{item.id}/done",
                         data={"version": item.version, "csrftoken": "forged"})
    assert forged.status_code == 403
    assert item_of(engine, "2703", "G1").status == ItemStatus.OPEN
    accepted = client.post(f"/items/{item.id}/done",
                           data={"version": item.version, "csrftoken": csrf(client)},
                           follow_redirects=False)
    assert accepted.status_code == 303
    assert item_of(engine, "2703", "G1").status == ItemStatus.DONE


def test_login_form_refuses_a_post_without_any_cookie(app):
    with TestClient(app) as stranger:  # no GET first: no csrftoken cookie, no session
        response = stranger.post("/login", data={"username": "coordinator",
                                                 "password": "tidtam-demo-2567"},
                                 follow_redirects=False)
    assert response.status_code == 403


def test_logout_ends_the_session(client):
    signed_in(client, "coordinator")
    page = client.get("/board")
    assert page.status_code == 200
    response = client.post("/logout", data={"csrftoken": form_token(page.text)},
                           follow_redirects=False)
    assert response.headers["location"] == "/login"
    assert "ออกจากระบบแล้ว" in client.get("/login").text
    assert client.get("/board", follow_redirects=False).status_code == 303


def test_language_switch_is_kept_in_the_session(client):
    signed_in(client, "coordinator")
    board = client.get("/board")
    assert "กระดานติดตาม" in board.text
    switched = client.post("/lang", data={"lang": "en", "next": "/board",
                                          "csrftoken": form_token(board.text)},
                           follow_redirects=False)
    assert switched.headers["location"] == "/board"
    english = client.get("/board")
    assert '<html lang="en">' in english.text
    assert "9 Aug 2024" in english.text
    assert "Aranyaprathet" in english.text
    client.post("/lang", data={"lang": "th", "next": "/board", "csrftoken": csrf(client)})
    assert "ส.ค. 2567" in client.get("/board").text
