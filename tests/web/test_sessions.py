"""Sessions and tokens that end: sign-out, password change, lifetimes, API logout and
revocation, and the CSRF token bound to the session (issue 14 items 2 and 6)."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from tests.web.helpers import CLOCK, PASSWORD, api_token, csrf, form_token, item_of, signed_in
from tidtam.infra.clock import FixedClock

NEW_PASSWORD = "mango-river-lantern-27"


def _cookie_client(app, client: TestClient) -> TestClient:
    """Another browser holding a copy of ``client``'s cookies (a stolen or kept cookie)."""
    other = TestClient(app, base_url="http://testserver")
    other.cookies.update(dict(client.cookies))
    return other


def _opens_pages(client: TestClient) -> bool:
    response = client.get("/profile", follow_redirects=False)
    assert response.status_code in (200, 303), response.text
    return response.status_code == 200


def test_sign_out_ends_that_cookie_and_logout_ends_that_token(any_client):
    client = signed_in(any_client, "staff-2703")
    kept = _cookie_client(client.app, client)
    token = api_token(client, "staff-2703")
    other_token = api_token(client, "staff-2703")
    assert _opens_pages(kept)

    client.post("/logout", data={"csrftoken": csrf(client)})
    after = kept.get("/profile", follow_redirects=False)
    assert after.status_code == 303 and after.headers["location"].startswith("/login")
    assert not _opens_pages(client)

    assert any_client.post("/api/v1/logout", headers=token).status_code == 204
    assert any_client.get("/api/v1/me", headers=token).status_code == 401
    assert any_client.post("/api/v1/logout", headers=token).status_code == 401
    assert any_client.get("/api/v1/me", headers=other_token).status_code == 200  # its own life


def test_password_change_ends_every_other_session_and_token(any_client):
    app = any_client.app
    elsewhere = signed_in(TestClient(app, base_url="http://testserver"), "staff-2703")
    token = api_token(any_client, "staff-2703")
    here = signed_in(any_client, "staff-2703")

    page = here.get("/profile")
    changed = here.post("/profile/password", data={
        "csrftoken": form_token(page.text), "current": PASSWORD, "new": NEW_PASSWORD,
        "again": NEW_PASSWORD}, follow_redirects=False)
    assert changed.status_code == 303, changed.text

    assert _opens_pages(here)  # this browser goes on
    assert not _opens_pages(elsewhere)
    assert here.get("/api/v1/me", headers=token).status_code == 401
    fresh = TestClient(app, base_url="http://testserver")
    assert fresh.post("/api/v1/token", data={"username": "staff-2703",
                                             "password": PASSWORD}).status_code == 401
    assert fresh.get("/api/v1/me", headers=api_token(fresh, "staff-2703", NEW_PASSWORD)
                     ).status_code == 200


def test_password_change_asks_the_current_one(client):
    signed_in(client, "staff-2703")
    refused = client.post("/profile/password", data={
        "csrftoken": csrf(client), "current": "not-my-password-at-all", "new": NEW_PASSWORD,
        "again": NEW_PASSWORD})
    assert refused.status_code == 422
    assert "รหัสผ่านปัจจุบันไม่ถูกต้อง" in refused.text and "current password" in refused.text
    assert client.post("/api/v1/token", data={"username": "staff-2703",
                                              "password": PASSWORD}).status_code == 200


def test_idle_and_absolute_lifetimes(client):
    app = client.app
    idle = timedelta(minutes=app.state.settings.session_idle_minutes)
    signed_in(client, "staff-2703")
    app.state.clock = FixedClock(CLOCK + idle - timedelta(seconds=1))
    assert _opens_pages(client)  # activity: the idle time starts again from here
    app.state.clock = FixedClock(CLOCK + 2 * idle - timedelta(seconds=2))
    assert _opens_pages(client)
    app.state.clock = FixedClock(CLOCK + 3 * idle)
    assert not _opens_pages(client)  # idle too long

    app.state.clock = FixedClock(CLOCK)
    signed_in(client, "staff-2703")
    max_age = timedelta(hours=app.state.settings.session_max_hours)
    step = CLOCK
    while step + idle / 2 < CLOCK + max_age:  # never idle, but the sign-in grows old
        step += idle / 2
        app.state.clock = FixedClock(step)
        assert _opens_pages(client)
    app.state.clock = FixedClock(CLOCK + max_age)
    assert not _opens_pages(client)


def test_tokens_listed_on_the_profile_and_revocable(client):
    token = api_token(client, "staff-2703")
    signed_in(client, "staff-2703")
    page = client.get("/profile")
    assert page.text.count("data-token=") == 1
    token_id = page.text.split('data-token="')[1].split('"')[0]
    client.post(f"/profile/tokens/{token_id}/revoke", data={"csrftoken": form_token(page.text)})
    assert client.get("/api/v1/me", headers=token).status_code == 401
    assert "data-token=" not in client.get("/profile").text
    other = signed_in(TestClient(client.app, base_url="http://testserver"), "staff-2704")
    refused = other.post(f"/profile/tokens/{token_id}/revoke", data={"csrftoken": csrf(other)})
    assert refused.status_code == 404  # not theirs


def test_a_csrf_token_from_another_session_is_refused(client, engine):
    item = item_of(engine, "2703", "G1")
    other = signed_in(TestClient(client.app, base_url="http://testserver"), "staff-2703")
    theirs = csrf(other)  # a pair (cookie, token) valid for another session
    before = form_token(client.get("/login").text)  # this browser's token before signing in
    signed_in(client, "staff-2703")
    assert csrf(client) not in (theirs, before)

    def post(token: str):
        return client.post(f"/items/{item.id}/done", data={"version": item.version,
                                                           "csrftoken": token},
                           follow_redirects=False)

    assert post(before).status_code == 403  # signing in made it void
    mine = csrf(client)
    client.cookies.set("csrftoken", theirs)  # a double-submit pair planted from elsewhere
    assert post(theirs).status_code == 403
    assert item_of(engine, "2703", "G1").status == "open"
    client.cookies.set("csrftoken", mine)
    assert post(mine).status_code == 303


def test_a_cookie_session_with_an_authorization_header_still_needs_the_token(client, engine):
    item = item_of(engine, "2703", "G1")
    bearer = api_token(client, "staff-2703")
    signed_in(client, "staff-2703")
    for headers in (bearer, {"Authorization": "Bearer anything"}, {"Authorization": "Basic x"}):
        refused = client.post(f"/items/{item.id}/done", data={"version": item.version},
                              headers=headers)
        assert refused.status_code == 403, headers
    assert item_of(engine, "2703", "G1").status == "open"
    # a bearer token and no session cookie: the API, which reads no cookie, needs no CSRF token
    bare = TestClient(client.app, base_url="http://testserver")
    marked = bare.post(f"/api/v1/items/{item.id}/done", json={"version": item.version},
                       headers=bearer)
    assert marked.status_code == 200, marked.text
