"""Sign-in that resists guessing: per-account and per-address limits on /login and
/api/v1/token, 429 with Retry-After in Thai and English, a progressive delay, and no argon2
work for a refused attempt (issue 14 item 3)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from argon2 import PasswordHasher

from tests.web.conftest import make_app
from tests.web.helpers import CLOCK, PASSWORD, form_token
from tidtam.app import accounts
from tidtam.infra.clock import FixedClock

STEP = timedelta(seconds=61)  # longer than the progressive delay, well inside the window


@pytest.fixture
def verifies(monkeypatch) -> list[str]:
    """Every argon2 verification the app does (the real one, counted)."""
    calls: list[str] = []

    class CountingHasher(PasswordHasher):
        def verify(self, hash_, password):
            calls.append(password)
            return super().verify(hash_, password)

    monkeypatch.setattr(accounts, "_hasher", CountingHasher())
    return calls


def _login(client, username: str, password: str):
    token = form_token(client.get("/login").text)
    return client.post("/login", data={"username": username, "password": password,
                                       "csrftoken": token}, follow_redirects=False)


def _token(client, username: str, password: str):
    return client.post("/api/v1/token", data={"username": username, "password": password})


@pytest.mark.parametrize("attempt", [_login, _token], ids=["login", "token"])
def test_the_11th_wrong_password_gets_429_and_no_argon2_work(any_client, verifies, attempt):
    app = any_client.app
    for n in range(10):
        app.state.clock = FixedClock(CLOCK + n * STEP)
        assert attempt(any_client, "staff-2703", f"wrong-guess-{n}").status_code == 401
    assert len(verifies) == 10

    app.state.clock = FixedClock(CLOCK + 10 * STEP)
    for password in ("wrong-guess-10", PASSWORD):  # even the right one waits
        refused = attempt(any_client, "staff-2703", password)
        assert refused.status_code == 429
        window = timedelta(minutes=app.state.settings.login_window_minutes)
        assert int(refused.headers["retry-after"]) == (window - 10 * STEP).total_seconds()
        assert "โปรดลองใหม่" in refused.text or "โปรดรอ" in refused.text
        assert "Try again" in refused.text or "try again" in refused.text
    assert len(verifies) == 10  # the refused attempts cost no argon2 work

    # another account from elsewhere is not held up; this one is, until the window passes
    assert attempt(any_client, "staff-2704", PASSWORD).status_code in (200, 303)
    app.state.clock = FixedClock(CLOCK + window + timedelta(seconds=1))
    assert attempt(any_client, "staff-2703", PASSWORD).status_code in (200, 303)


def test_progressive_delay_from_the_third_failure(client, verifies):
    for n in range(3):
        assert _token(client, "staff-2703", f"wrong-{n}").status_code == 401
    waiting = _token(client, "staff-2703", PASSWORD)  # same instant: must wait 1 s
    assert waiting.status_code == 429 and waiting.headers["retry-after"] == "1"
    assert set(waiting.json()["detail"]) == {"th", "en"}
    client.app.state.clock = FixedClock(CLOCK + timedelta(seconds=1))
    assert _token(client, "staff-2703", "wrong-3").status_code == 401
    client.app.state.clock = FixedClock(CLOCK + timedelta(seconds=2))
    assert _token(client, "staff-2703", PASSWORD).headers["retry-after"] == "1"  # now 2 s
    client.app.state.clock = FixedClock(CLOCK + timedelta(seconds=3))
    assert _token(client, "staff-2703", PASSWORD).status_code == 200
    assert len(verifies) == 5


def test_a_right_password_forgets_the_accounts_failures(client):
    for n in range(2):
        assert _token(client, "staff-2703", f"wrong-{n}").status_code == 401
    assert _token(client, "staff-2703", PASSWORD).status_code == 200
    for n in range(3):  # counted from zero again: no delay before the third
        assert _token(client, "staff-2703", f"again-{n}").status_code == 401


def test_per_address_limit_over_many_usernames(engine, verifies):
    from fastapi.testclient import TestClient

    app = make_app(engine, login_max_failures_per_address=4)
    with TestClient(app, base_url="http://testserver") as client:
        for n in range(4):
            assert _login(client, f"guess-{n}", "password-spray-1").status_code == 401
        refused = _login(client, "staff-2703", PASSWORD)
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
        assert "ลงชื่อเข้าใช้ผิดหลายครั้งเกินไป" in refused.text
        assert "Too many sign-in attempts" in refused.text
    assert len(verifies) == 4
