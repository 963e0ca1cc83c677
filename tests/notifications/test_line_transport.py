"""AsyncLineTransport, the LINE transport production uses, against the fake LINE server over
real HTTP on 127.0.0.1 (and, for the exact bytes of a request, an ``httpx.MockTransport``).

Each send is awaited on the pump's own event loop (``PUMP_LOOP``), where the pump awaits it;
the ``async_line`` fixture closes every transport it made on that loop."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import httpx
import pytest

from notifications.base import DELIVERY_KEY_NAMESPACE, TransportError, parse_retry_after
from notifications.line import AsyncLineTransport, token_fingerprint, token_mark
from notifications.pump import PUMP_LOOP


def send(transport: AsyncLineTransport, message) -> None:
    """Await one send on the pump's loop, as the pump does."""
    PUMP_LOOP.run(transport.send(message))


# name, injected mode, recipient (None: a valid id), token (None: the right one), expected:
# None (delivered) or (permanent, retry_after, route_refused, channel_down, text in the message)
CASES = [
    ("200 delivered", None, None, None, None),
    ("429 with Retry-After", {"status": 429, "retry_after": 7}, None, None,
     (False, 7.0, False, True, "rate limit")),
    ("429 without Retry-After", {"status": 429}, None, None,
     (False, None, False, True, "rate limit")),
    ("500", {"status": 500}, None, None, (False, None, False, True, "LINE 500")),
    ("400 bad body", {"status": 400}, None, None,
     (True, None, True, False, "The request body has 1 error(s)")),
    ("400 unknown to", None, "Unot-a-line-id", None,
     (True, None, True, False, "The property, 'to', in the request body is invalid")),
    ("401 wrong token", None, None, "wrong-token",
     (True, None, True, False, "LINE refused the channel access token")),
    ("403 not allowed", {"status": 403}, None, None,
     (True, None, True, False, "LINE 403: Access to this API is not available")),
]


@pytest.mark.parametrize(("mode", "recipient", "token", "expected"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_status_mapping(fake_line, async_line, make_message, line_user, line_token,
                        mode, recipient, token, expected):
    if mode:
        fake_line.state.set_mode(**mode)
    transport = async_line(token=token or line_token)
    message = make_message(recipient=recipient or line_user)
    if expected is None:
        send(transport, message)
        assert len(fake_line.state.snapshot()) == 1
        assert transport.answering
        return
    permanent, retry_after, route_refused, channel_down, text = expected
    with pytest.raises(TransportError) as caught:
        send(transport, message)
    error = caught.value
    assert (error.permanent, error.retry_after, error.retry_at) == (permanent, retry_after, None)
    assert (error.route_refused, error.channel_down) == (route_refused, channel_down)
    assert text in error.message
    # 401/403 name the refused token by its fingerprint (start-up clears those marks once
    # another token is installed); a refused id does not
    refused_token = token is not None or (mode or {}).get("status") in (401, 403)
    assert error.message.startswith(token_mark(token_fingerprint(token or line_token))) == (
        refused_token)
    assert transport.answering == (not channel_down)
    assert fake_line.state.snapshot() == []


def test_retry_after_as_an_http_date_stays_an_instant(fake_line, async_line, make_message):
    """RFC 9110 allows an HTTP date; the pump compares it with its own clock, not ours."""
    fake_line.state.set_mode(status=429, retry_after="Wed, 07 Aug 2024 02:10:00 GMT")
    with pytest.raises(TransportError) as caught:
        send(async_line(), make_message())
    assert caught.value.retry_after is None
    assert caught.value.retry_at == datetime(2024, 8, 7, 2, 10, tzinfo=UTC)


@pytest.mark.parametrize(("header", "expected"), [
    (None, (None, None)), ("", (None, None)), ("120", (120.0, None)), ("1.5", (1.5, None)),
    ("-3", (0.0, None)), ("soon", (None, None)),
    ("Wed, 07 Aug 2024 02:10:00 GMT", (None, datetime(2024, 8, 7, 2, 10, tzinfo=UTC))),
])
def test_parse_retry_after(header, expected):
    assert parse_retry_after(header) == expected


def test_sends_the_exact_request(fake_line, async_line, make_message, line_user, line_token):
    message = make_message(subject="แจ้งเตือน", body="ครบกำหนด 9 ส.ค. 2567")
    send(async_line(api_base=fake_line.base_url + "/"), message)
    [push] = fake_line.state.snapshot()
    [request] = fake_line.state.requests
    assert request["path"] == "/v2/bot/message/push"
    assert push["headers"]["authorization"] == f"Bearer {line_token}"
    assert push["headers"]["content-type"] == "application/json"
    assert push["to"] == line_user
    assert push["messages"] == [{"type": "text", "text": "แจ้งเตือน\n\nครบกำหนด 9 ส.ค. 2567"}]
    key = uuid.UUID(push["retry_key"])
    assert key == uuid.uuid5(DELIVERY_KEY_NAMESPACE, message.idempotency_key)
    assert key.version == 5


def test_retry_key_survives_retries_and_restarts(fake_line, async_line, make_message):
    """A retry after a 500, from a new client and transport, carries the same key; a replay
    of an accepted key answers 409, which counts as delivered."""
    fake_line.state.set_mode(status=500, count=1)
    message = make_message()
    for attempt in range(3):
        transport = async_line()  # new clients: a fresh process each time, in effect
        if attempt == 0:
            with pytest.raises(TransportError):
                send(transport, message)
        else:
            send(transport, message)
    keys = {r["headers"]["x-line-retry-key"] for r in fake_line.state.requests}
    assert len(fake_line.state.requests) == 3
    assert len(keys) == 1
    assert len(fake_line.state.snapshot()) == 1
    assert fake_line.state.duplicates == 1


def test_refused_connection_and_timeout_mean_line_is_down(async_line, make_message, closed_port):
    """Every LINE push goes to one service: if it cannot be reached, none can."""
    with pytest.raises(TransportError) as caught:
        send(async_line(api_base=f"http://127.0.0.1:{closed_port}"), make_message())
    assert caught.value.channel_down and not caught.value.permanent


def test_different_rows_get_different_keys(fake_line, async_line, make_message):
    transport = async_line()
    send(transport, make_message("a"))
    send(transport, make_message("b"))
    assert len({push["retry_key"] for push in fake_line.state.snapshot()}) == 2


def test_long_text_is_cut_to_lines_limit(fake_line, async_line, make_message):
    send(async_line(), make_message(body="ก" * 6000))
    [push] = fake_line.state.snapshot()
    assert len(push["messages"][0]["text"]) == 5000
    assert push["messages"][0]["text"].endswith("…")


def test_refused_connection_is_transient(async_line, make_message, closed_port):
    transport = async_line(api_base=f"http://127.0.0.1:{closed_port}")
    with pytest.raises(TransportError) as caught:
        send(transport, make_message())
    assert not caught.value.permanent
    assert "network error" in caught.value.message


def test_timeout_is_transient(fake_line, async_line, make_message):
    fake_line.state.set_mode(latency_ms=500)
    with pytest.raises(TransportError) as caught:
        send(async_line(timeout=0.1), make_message())
    assert not caught.value.permanent and caught.value.channel_down
    assert "timed out" in caught.value.message


# --- the exact bytes, through httpx.MockTransport -------------------------------------------

def mock_line(answer: httpx.Response, token: str, seen: list[httpx.Request]) -> AsyncLineTransport:
    """The transport over one AsyncClient whose every request gets ``answer``."""

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return AsyncLineTransport([client], token, "https://api.line.me")


def test_the_request_is_exactly_lines_push(make_message, line_user, line_token):
    """Nothing but ``to`` and one text message in the body; the token, the JSON type and the
    row's retry key in the headers."""
    seen: list[httpx.Request] = []
    transport = mock_line(httpx.Response(200, json={"sentMessages": []}), line_token, seen)
    message = make_message(subject="แจ้งเตือน", body="ครบกำหนด")
    try:
        send(transport, message)
    finally:
        PUMP_LOOP.run(transport.aclose())
    [request] = seen
    assert (request.method, str(request.url)) == ("POST", "https://api.line.me/v2/bot/message/push")
    assert json.loads(request.content) == {
        "to": line_user, "messages": [{"type": "text", "text": "แจ้งเตือน\n\nครบกำหนด"}]}
    assert request.headers["authorization"] == f"Bearer {line_token}"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-line-retry-key"] == str(
        uuid.uuid5(DELIVERY_KEY_NAMESPACE, message.idempotency_key))


def test_409_counts_as_delivered(make_message, line_token):
    """LINE answers 409 to a retry key it has already accepted: the message is there."""
    seen: list[httpx.Request] = []
    answer = httpx.Response(409, json={"message": "The retry key is already accepted"})
    transport = mock_line(answer, line_token, seen)
    try:
        send(transport, make_message())
    finally:
        PUMP_LOOP.run(transport.aclose())
    assert len(seen) == 1 and transport.answering
