"""The fake LINE server answers the way LINE does, so tests against it mean something."""

from __future__ import annotations

import threading
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
    """LINE's 409: the first request's id in x-line-accepted-request-id, a new request id, and
    for a push the same sentMessages as the accepted answer."""
    key = str(uuid.uuid4())
    first = line_api.post(PUSH, json=push_body(line_user), headers={"X-Line-Retry-Key": key})
    second = line_api.post(PUSH, json=push_body(line_user), headers={"X-Line-Retry-Key": key})
    assert first.status_code == 200
    assert len(first.json()["sentMessages"]) == 1
    assert set(first.json()["sentMessages"][0]) == {"id", "quoteToken"}
    assert second.status_code == 409
    assert second.json() == {"message": "The retry key is already accepted",
                             "sentMessages": first.json()["sentMessages"]}
    assert second.headers["x-line-accepted-request-id"] == first.headers["x-line-request-id"]
    assert second.headers["x-line-request-id"] != first.headers["x-line-request-id"]
    pushes = line_api.get("/_fake/pushes").json()
    assert [(p["to"], p["retry_key"]) for p in pushes] == [(line_user, key)]


def test_mode_injects_failures_then_recovers(line_api, line_user):
    line_api.post("/_fake/mode", json={"status": 429, "count": 2, "retry_after": 3})
    answers = [line_api.post(PUSH, json=push_body(line_user)) for _ in range(3)]
    assert [a.status_code for a in answers] == [429, 429, 200]
    assert answers[0].headers["retry-after"] == "3"


def test_reset_forgets_everything(line_api, line_user):
    assert line_api.post(PUSH, json=push_body(line_user)).status_code == 200
    assert len(line_api.get("/_fake/pushes").json()) == 1
    line_api.post("/_fake/mode", json={"status": 500, "count": 5})
    line_api.post("/_fake/reset")
    assert line_api.get("/_fake/pushes").json() == []
    assert line_api.post(PUSH, json=push_body(line_user)).status_code == 200  # the mode is gone too


def test_an_outage_lasts_until_the_mode_changes(line_api, line_user):
    line_api.post("/_fake/mode", json={"status": 500, "count": None})
    answers = [line_api.post(PUSH, json=push_body(line_user)) for _ in range(4)]
    assert {a.status_code for a in answers} == {500}
    assert answers[0].json() == {"message": "An error occurred in the server."}
    line_api.post("/_fake/mode", json={})
    assert line_api.post(PUSH, json=push_body(line_user)).status_code == 200


def test_random_failure_rates(fake_line, line_api, line_user):
    fake_line.state.set_mode(rate_429=0.5, rate_500=0.5)  # every answer fails, either way
    statuses = {line_api.post(PUSH, json=push_body(line_user)).status_code for _ in range(30)}
    assert statuses == {429, 500}
    assert fake_line.state.injected == 30
    fake_line.state.set_mode(rate_500=0.0)
    assert line_api.post(PUSH, json=push_body(line_user)).status_code == 200


def test_the_page_lists_what_arrived_in_thai(line_api, line_user):
    line_api.post(PUSH, json=push_body(line_user, "แจ้งเตือน: <รายงาน> ครบกำหนด 9 ส.ค. 2567"))
    page = httpx.get(str(line_api.base_url) + "/")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert "แจ้งเตือน: &lt;รายงาน&gt; ครบกำหนด 9 ส.ค. 2567" in page.text
    assert line_user in page.text


def test_hooks_run_around_the_answer(fake_line, line_api, line_user):
    seen: list[tuple[str, str]] = []
    answered = threading.Event()

    def on_answered(push: dict) -> None:
        seen.append(("answered", push["to"]))
        answered.set()

    fake_line.state.on_accepted = lambda push: seen.append(("accepted", push["to"]))
    fake_line.state.on_answered = on_answered
    assert line_api.post(PUSH, json=push_body(line_user)).status_code == 200
    assert answered.wait(5)
    assert seen == [("accepted", line_user), ("answered", line_user)]


def test_the_command_line_stand_in(tmp_path, line_user):
    """`tidtam fake-line --port N` with injected failures, as `make run` and demos use it."""
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "tidtam.cli", "fake-line", "--port", str(port),
                             "--token", "t0k3n-for-the-cli-test", "--rate-429", "1",
                             "--retry-after", "9"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 20
        while True:
            try:
                httpx.get(url + "/", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.1)
        answer = httpx.post(url + PUSH, json=push_body(line_user),
                            headers={"Authorization": "Bearer t0k3n-for-the-cli-test"})
        assert answer.status_code == 429 and answer.headers["retry-after"] == "9"
    finally:
        proc.terminate()
        proc.wait(10)


def flex_body(to: str, contents: dict, alt: str = "งานที่ต้องทำวันนี้") -> dict:
    return {"to": to, "messages": [{"type": "flex", "altText": alt, "contents": contents}]}


def bubble(data: str = "action=done&item=1") -> dict:
    return {"type": "bubble", "body": {"type": "box", "layout": "vertical", "contents": [
        {"type": "text", "text": "หนังสือ"}]},
        "footer": {"type": "box", "layout": "vertical", "contents": [
            {"type": "button", "action": {"type": "postback", "label": "ทำแล้ว",
                                          "data": data}}]}}


def test_flex_carousel_accepted(line_api, line_user):
    body = flex_body(line_user, {"type": "carousel", "contents": [bubble(), bubble()]})
    assert line_api.post(PUSH, json=body).status_code == 200


@pytest.mark.parametrize(("contents", "alt", "errors"), [
    ({"type": "carousel", "contents": [bubble()] * 13}, "x", 1),
    ({"type": "carousel", "contents": []}, "x", 1),
    ({"type": "bubble"}, "", 1),
    ({"type": "bubble"}, "x" * 1501, 1),
    ({"type": "box"}, "x", 1),
    (bubble("x" * 301), "x", 1),
])
def test_bad_flex_refused_as_line_does(line_api, line_user, contents, alt, errors):
    response = line_api.post(PUSH, json=flex_body(line_user, contents, alt))
    assert response.status_code == 400
    assert response.json()["message"] == f"The request body has {errors} error(s)"
