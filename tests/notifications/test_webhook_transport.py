"""WebhookTransport with an injected httpx transport (the receiver is someone else's system)."""

from __future__ import annotations

import json

import httpx
import pytest

from notifications.base import TransportError, delivery_key
from notifications.webhook import WebhookTransport

URL = "https://hooks.example.go.th/tidtam"


def client_answering(status: int, *, headers: dict | None = None, seen: list | None = None,
                     error: Exception | None = None) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        if error is not None:
            raise error
        return httpx.Response(status, headers=headers, json={"message": f"answer {status}"})

    return httpx.Client(transport=httpx.MockTransport(handler))


def test_posts_the_exact_json(make_message, now):
    seen: list[httpx.Request] = []
    message = make_message(channel="webhook", recipient=URL, item_id=None, step_id=None)
    WebhookTransport(client_answering(200, seen=seen)).send(message)
    [request] = seen
    assert (request.method, str(request.url)) == ("POST", URL)
    assert request.headers["idempotency-key"] == str(delivery_key(message.idempotency_key))
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "key": message.idempotency_key, "subject": message.subject, "body": message.body,
        "district_code": "2701", "rung": "reminder-3", "item_id": None, "step_id": None,
        "created_at": now.isoformat(),
    }


# status, Retry-After, expected: None (delivered) or (permanent, retry_after)
STATUSES = [
    (200, None, None), (202, None, None), (409, None, None),
    (429, "30", (False, 30.0)), (503, None, (False, None)), (408, None, (False, None)),
    (400, None, (True, None)), (404, None, (True, None)), (410, None, (True, None)),
]


@pytest.mark.parametrize(("status", "retry_after", "expected"), STATUSES,
                         ids=[str(s[0]) for s in STATUSES])
def test_status_mapping(make_message, status, retry_after, expected):
    headers = {"Retry-After": retry_after} if retry_after else None
    transport = WebhookTransport(client_answering(status, headers=headers))
    message = make_message(channel="webhook", recipient=URL)
    if expected is None:
        transport.send(message)
        return
    with pytest.raises(TransportError) as caught:
        transport.send(message)
    assert (caught.value.permanent, caught.value.retry_after) == expected
    assert f"answer {status}" in caught.value.message


@pytest.mark.parametrize(("error", "permanent"), [
    (httpx.ConnectError("refused"), False),
    (httpx.ReadTimeout("slow"), False),
    (httpx.UnsupportedProtocol("ftp"), True),
])
def test_network_failures(make_message, error, permanent):
    transport = WebhookTransport(client_answering(200, error=error))
    with pytest.raises(TransportError) as caught:
        transport.send(make_message(channel="webhook", recipient=URL))
    assert caught.value.permanent is permanent


def test_a_recipient_that_is_not_a_url_is_permanent(make_message):
    with httpx.Client() as client, pytest.raises(TransportError) as caught:
        WebhookTransport(client).send(make_message(channel="webhook", recipient="not a url"))
    assert caught.value.permanent
