"""The fake LINE server answers the way LINE does, so tests against it mean something."""

from __future__ import annotations

import uuid

import httpx
import pytest

PUSH = "/v2/bot/message/push"


@pytest.fixture
def line_api(fake_line, line_token):
    with httpx.Client(base_url=fake_line.base_url, timeout=5,
                      headers={"Authorization": f"Bearer {line_token}"}) as client:
        yield client


def push_body(to: str, text: str = "สวัสดี") -> dict:
    return {"to": to, "messages": [{"type": "text", "text": text}]}


def test_missing_token_gets_lines_401(fake_line, line_user):
    response = httpx.post(fake_line.base_url + PUSH, json=push_body(line_user))
    assert response.status_code == 401
    assert response.json()["message"].startswith("Authorization header required")


@pytest.mark.parametrize(("body", "errors"), [
    ({"to": "", "messages": []}, 2),
    ({"messages": [{"type": "text", "text": ""}]}, 2),
    ({"to": "U", "messages": [{"type": "sticker"}]}, 1),
    ({"to": "U", "messages": [{"type": "text", "text": "x" * 5001}]}, 1),
])
def test_bad_shape_gets_400_with_details(line_api, body, errors):
    response = line_api.post(PUSH, json=body)
    assert response.status_code == 400
    assert response.json()["message"] == f"The request body has {errors} error(s)"
    assert len(response.json()["details"]) == errors


def test_replayed_retry_key_gets_409(line_api, fake_line, line_user):
    key = str(uuid.uuid4())
    first = line_api.post(PUSH, json=push_body(line_user), headers={"X-Line-Retry-Key": key})
    second = line_api.post(PUSH, json=push_body(line_user), headers={"X-Line-Retry-Key": key})
    assert first.status_code == 200
    assert len(first.json()["sentMessages"]) == 1
    assert second.status_code == 409
    assert second.json()["message"] == "The retry key is already accepted"
    assert second.headers["x-line-accepted-request-id"] == first.headers["x-line-request-id"]
    pushes = line_api.get("/_fake/pushes").json()
    assert [(p["to"], p["retry_key"]) for p in pushes] == [(line_user, key)]


def test_mode_injects_failures_then_recovers(line_api, line_user):
    line_api.post("/_fake/mode", json={"status": 429, "count": 2, "retry_after": 3})
    answers = [line_api.post(PUSH, json=push_body(line_user)) for _ in range(3)]
    assert [a.status_code for a in answers] == [429, 429, 200]
    assert answers[0].headers["retry-after"] == "3"


def test_reset_forgets_everything(line_api, line_user):
    line_api.post(PUSH, json=push_body(line_user))
    line_api.post("/_fake/reset")
    assert line_api.get("/_fake/pushes").json() == []
