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


# --- replies, the page, and the user's part ------------------------------------------------------

REPLY = "/v2/bot/message/reply"
GROUP = "C" + "ab" * 16
MEMBER = "U" + "cd" * 16


def confirm_template(item: int = 7) -> dict:
    return {"type": "template", "altText": "ยืนยันว่าทำแล้ว?", "template": {
        "type": "confirm", "text": "ยืนยันว่า \"ศึกษาแนวทาง\" ของอำเภอวัฒนานคร ทำแล้ว?", "actions": [
            {"type": "postback", "label": "ยืนยัน", "data": f"action=done-confirm&item={item}"},
            {"type": "postback", "label": "ยกเลิก", "data": f"action=cancel&item={item}"}]}}


def test_the_reply_endpoint_takes_a_token_once(line_api, fake_line):
    token = uuid.uuid4().hex
    body = {"replyToken": token, "messages": [{"type": "text", "text": "บันทึกแล้ว"},
                                              confirm_template()]}
    first = line_api.post(REPLY, json=body)
    assert first.status_code == 200 and len(first.json()["sentMessages"]) == 2
    again = line_api.post(REPLY, json=body)
    assert (again.status_code, again.json()) == (400, {"message": "Invalid reply token"})
    [reply] = line_api.get("/_fake/replies").json()
    assert reply["reply_token"] == token and reply["messages"] == body["messages"]
    assert fake_line.state.pushes == []  # a reply is not a push: it counts against no quota


@pytest.mark.parametrize(("body", "status", "message"), [
    ({"replyToken": "not a token!", "messages": [{"type": "text", "text": "x"}]}, 400,
     "Invalid reply token"),
    ({"replyToken": "", "messages": []}, 400, "The request body has 2 error(s)"),
    ({"replyToken": uuid.uuid4().hex, "messages": [dict(confirm_template(), template={
        "type": "confirm", "text": "?", "actions": [{"type": "postback", "label": "ok"}]})]},
     400, "The request body has 1 error(s)"),
    ({"replyToken": uuid.uuid4().hex, "messages": [dict(confirm_template(), template={
        "type": "confirm", "text": "?", "actions": [
            {"type": "postback", "label": "ok", "data": "a"},
            {"type": "uri", "label": "x" * 21, "uri": ""}]})]},
     400, "The request body has 2 error(s)"),
])
def test_a_bad_reply_gets_lines_400(line_api, body, status, message):
    response = line_api.post(REPLY, json=body)
    assert (response.status_code, response.json()["message"]) == (status, message)
    assert line_api.get("/_fake/replies").json() == []


def test_a_reply_needs_the_channel_token(fake_line):
    response = httpx.post(fake_line.base_url + REPLY, json={"replyToken": uuid.uuid4().hex,
                                                            "messages": [{"type": "text",
                                                                          "text": "x"}]})
    assert response.status_code == 401


def flex_carousel() -> dict:
    """A reminder as DELIVERY sends it: a carousel of cards, each with its buttons."""
    def card(step: str, item: int | None) -> dict:
        button = ({"type": "button", "style": "primary", "action": {
            "type": "postback", "label": "ทำแล้ว", "data": f"action=done&item={item}"}}
            if item else {"type": "button", "style": "link", "action": {
                "type": "uri", "label": "เปิดแบบรายงาน", "uri": "http://127.0.0.1:8000/report"}})
        return {"type": "bubble",
                "header": {"type": "box", "layout": "vertical", "contents": [
                    {"type": "text", "text": "สก ๐๐๑๙/ว ๒๕๒", "size": "xs", "color": "#5b6470"}]},
                "body": {"type": "box", "layout": "vertical", "contents": [
                    {"type": "text", "text": step, "weight": "bold", "wrap": True},
                    {"type": "separator"},
                    {"type": "box", "layout": "baseline", "contents": [
                        {"type": "text", "text": "ครบกำหนด", "size": "sm"},
                        {"type": "text", "text": "๑๗ ก.ค. ๒๕๖๗", "size": "sm"}]}]},
                "footer": {"type": "box", "layout": "vertical", "contents": [button]}}
    return {"type": "flex", "altText": "งานวันนี้ 2 รายการ", "contents": {
        "type": "carousel", "contents": [card("ศึกษาแนวทางการดำเนินงาน", 7),
                                         card("ส่งแบบรายงาน", None)]}}


def test_the_page_shows_flex_and_templates_as_cards_with_buttons(line_api, fake_line, line_user):
    # Pushed Flex is accepted once DELIVERY's body checks take it; the page is shown here.
    with fake_line.state.lock:
        fake_line.state.pushes.append({"to": line_user, "messages": [flex_carousel()],
                                       "retry_key": None, "received_at": "2024-07-18T01:30:00+00:00"})
        fake_line.state.pushes.append({"to": GROUP, "messages": [flex_carousel()],
                                       "retry_key": None, "received_at": "2024-07-18T01:31:00+00:00"})
    token = uuid.uuid4().hex
    assert line_api.post(REPLY, json={"replyToken": token,
                                      "messages": [confirm_template()]}).status_code == 200
    page = line_api.get("/").text
    assert page.count('<div class="carousel">') == 2
    assert page.count('<div class="card flex">') == 4
    for part in ('<section class="header">', '<section class="body">', '<section class="footer">',
                 '<div class="box baseline">', '<hr class="separator">',
                 '<div class="text md bold">ศึกษาแนวทางการดำเนินงาน</div>',
                 'href="http://127.0.0.1:8000/report"', ">เปิดแบบรายงาน</a>",
                 '<div class="card template confirm">', ">ยืนยัน</button>", ">ยกเลิก</button>",
                 f"replyToken {token}"):
        assert part in page, part
    assert page.count('data-postback="action=done&amp;item=7"') == 2  # one card per chat
    assert 'data-postback="action=done-confirm&amp;item=7"' in page
    assert page.count('name="user_id"') == 1  # in the group's card, whoever presses names themself


@pytest.fixture
def webhook(fake_line, monkeypatch):
    """Point the stand-in at a webhook that records what it is sent."""
    received: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(200, json={})

    monkeypatch.setattr(fake_line.state, "webhook_url", "http://tidtam.test/line/webhook")
    monkeypatch.setattr(fake_line.state, "channel_secret", "8c570fa6dd201bb328f1c1eac23a96d8")
    monkeypatch.setattr(fake_line.state, "webhook_client",
                        httpx.AsyncClient(transport=httpx.MockTransport(handler)))
    return received


def test_pressing_a_postback_button_sends_a_signed_event_as_line_does(line_api, webhook, line_user):
    import base64
    import hashlib
    import hmac
    import json

    answer = line_api.post("/_fake/press", json={"data": "action=done&item=7", "to": line_user,
                                                 "label": "ทำแล้ว"})
    assert answer.status_code == 200 and answer.json()["status"] == 200
    [request] = webhook
    assert str(request.url) == "http://tidtam.test/line/webhook"
    expected = base64.b64encode(hmac.new(b"8c570fa6dd201bb328f1c1eac23a96d8", request.content,
                                         hashlib.sha256).digest()).decode()
    assert request.headers["x-line-signature"] == expected
    [event] = json.loads(request.content)["events"]
    assert event["type"] == "postback" and event["postback"] == {"data": "action=done&item=7"}
    assert event["source"] == {"type": "user", "userId": line_user}
    assert event["deliveryContext"] == {"isRedelivery": False} and event["webhookEventId"]
    # The reply token it issued is good for one reply, shown in that user's chat.
    reply = line_api.post(REPLY, json={"replyToken": event["replyToken"],
                                       "messages": [{"type": "text", "text": "ok"}]})
    assert reply.status_code == 200
    assert line_api.get("/_fake/replies").json()[0]["to"] == line_user
    assert "ทำแล้ว" in line_api.get("/").text  # the user's tap, on their side of the chat


def test_in_a_group_the_member_who_presses_is_named(line_api, webhook):
    import json

    refused = line_api.post("/_fake/press", json={"data": "action=done&item=7", "to": GROUP})
    assert refused.status_code == 400 and webhook == []
    form = line_api.post("/_fake/press", data={"data": "action=done&item=7", "to": GROUP,
                                               "user_id": MEMBER}, follow_redirects=False)
    assert form.status_code == 303  # the page's button comes back to the page
    said = line_api.post("/_fake/say", json={"text": "งาน", "to": GROUP, "user_id": MEMBER})
    assert said.status_code == 200
    pressed, typed = (json.loads(r.content)["events"][0] for r in webhook)
    assert pressed["source"] == {"type": "group", "groupId": GROUP, "userId": MEMBER}
    assert typed["type"] == "message" and typed["message"]["text"] == "งาน"


def test_without_a_webhook_the_buttons_are_off(line_api, fake_line, line_user):
    assert fake_line.state.webhook_url is None
    response = line_api.post("/_fake/press", json={"data": "action=done&item=7", "to": line_user})
    assert response.status_code == 409
    assert "ยังกดปุ่มไม่ได้" in line_api.get("/").text


def test_the_demos_stand_in_signs_for_the_demos_webhook(tmp_path):
    """`make run` (tidtam serve, demo, no LINE channel): the stand-in and the web app share a
    demo channel secret, and the stand-in's buttons post to the web app's port."""
    from tidtam.infra.settings import Settings
    from tidtam.ops.supervisor import DEMO_LINE_SECRET, Children, _demo_line

    children = Children()
    try:
        settings, env, page = _demo_line(children, Settings(demo=True, _env_file=None), tmp_path,
                                         8123)
        assert settings.line_channel_secret.get_secret_value() == DEMO_LINE_SECRET
        assert env["TIDTAM_LINE_CHANNEL_SECRET"] == DEMO_LINE_SECRET
        html = httpx.get(page, timeout=5).text
        assert "http://127.0.0.1:8123/line/webhook" in html and "ยังกดปุ่มไม่ได้" not in html
    finally:
        children.stop()


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
