"""A stand-in for the LINE Messaging API (push and reply), for tests and offline demos.

It answers like LINE does: ``{"sentMessages": [...]}`` with ``x-line-request-id`` on success,
error JSON ``{"message", "details"}``, and for a replayed ``X-Line-Retry-Key`` a 409
``{"message": "The retry key is already accepted", "sentMessages": [...]}`` with
``x-line-accepted-request-id`` naming the first request. It records what it accepted, and
``GET /`` shows it as a page (for ``make run``). Test hooks:
``GET /_fake/pushes`` lists accepted pushes, ``GET /_fake/requests`` every push request,
``POST /_fake/mode`` injects failures ``{"status": 429, "count": 2, "retry_after": 3,
"latency_ms": 50}`` (``"count": null``: until the mode changes), random ones
``{"rate_429": 0.1, "rate_500": 0.05}``, or one status per recipient, every time
``{"by_recipient": {"U…": 500}}``; ``GET /_fake/stats`` counts requests, pushes, duplicates,
injected failures and the most requests it had in flight at once (``max_in_flight``);
``POST /_fake/reset`` forgets everything.

Replies: ``POST /v2/bot/message/reply`` takes ``{replyToken, messages}`` as LINE does (the
token's format checked, each token good for one reply: a second use is LINE's 400 "Invalid reply
token"); ``GET /_fake/replies`` lists them. The page shows pushes and replies as LINE would (text
bubbles; Flex bubbles and carousels as cards; confirm and buttons templates with their buttons)
and plays the user's part: pressing a postback button, or typing in the chat box, makes the
stand-in send a webhook event, signed with the channel secret (``x-line-signature``) and with a
fresh reply token, to ``webhook_url`` — as LINE would when someone taps "ทำแล้ว" on a reminder.
``GET /_fake/stats`` counts ``reply_requests`` (refused ones too).
``POST /_fake/press`` (form or JSON ``{data, to, user_id}``) and ``POST /_fake/say``
(``{text, to, user_id}``) do the same for tests; ``GET /_fake/events`` lists what was sent.
In-process, ``FakeLineState.on_accepted`` runs after a push is recorded and before the 200 is
written, ``on_answered`` after the 200 was written (the crash test uses both); while
``holding`` is set, every push is handled as usual (accepted, refused, or 409) but its answer
waits until ``holding`` is cleared (``answers_held`` counts those waiting): a pump then holds
its claimed rows for as long as the test likes, some of them already delivered.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import random
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import httpx
import uvicorn
from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from tidtam.infra.clock import Clock, SystemClock

PUSH_PATH = "/v2/bot/message/push"
REPLY_PATH = "/v2/bot/message/reply"
REPLY_TOKEN_PATTERN = re.compile(r"^[0-9A-Za-z]{16,64}$")
BOT_USER_ID = "U" + "0" * 31 + "b"  # the Official Account itself: the webhook's ``destination``
TEMPLATE_TYPES = {"confirm": 2, "buttons": 4}  # template type → most actions LINE allows
TO_PATTERN = re.compile(r"^[UCR][0-9a-f]{32}$")
MAX_MESSAGES = 5
MAX_TEXT = 5000
INJECTED_MESSAGES = {
    400: "The request body has 1 error(s)",
    401: "Authentication failed. Confirm that the access token in the authorization header "
         "is valid.",
    403: "Access to this API is not available for your account",
    404: "Not found",
    429: "The API rate limit has been exceeded. Try again later.",
    500: "An error occurred in the server.",
}
PushHook = Callable[[dict], None]


@dataclass
class FakeLineState:
    """What the fake has seen; guarded by a lock because tests read it from another thread."""

    token: str
    pushes: list[dict] = field(default_factory=list)
    requests: list[dict] = field(default_factory=list)
    accepted: dict[str, dict] = field(default_factory=dict)  # retry key → the accepted push
    duplicates: int = 0
    injected: int = 0
    fail_status: int | None = None
    fail_count: int | None = 0  # None: every request until the mode changes
    retry_after: float | str | None = None
    latency_ms: float = 0
    rate_429: float = 0.0
    rate_500: float = 0.0
    by_recipient: dict[str, int] = field(default_factory=dict)  # ``to`` → the status it gets
    in_flight: int = 0
    max_in_flight: int = 0
    on_accepted: PushHook | None = None
    on_answered: PushHook | None = None
    holding: bool = False
    answers_held: int = 0
    clock: Clock = field(default_factory=SystemClock)  # LINE's own: when a push arrived
    replies: list[dict] = field(default_factory=list)
    used_reply_tokens: set[str] = field(default_factory=set)
    reply_requests: list[dict] = field(default_factory=list)  # every call, refused ones too
    issued: dict[str, dict] = field(default_factory=dict)  # reply token we issued → its chat
    events: list[dict] = field(default_factory=list)  # webhook events sent, with the answer
    webhook_url: str | None = None  # where a pressed button's event goes (tidtam's /line/webhook)
    channel_secret: str | None = None  # signs those events as LINE does
    webhook_client: httpx.AsyncClient | None = None  # tests inject one; else one per call
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def snapshot(self) -> list[dict]:
        with self.lock:
            return [dict(push) for push in self.pushes]

    def set_mode(self, status: int | None = None, count: int | None = 1,
                 retry_after: float | str | None = None, latency_ms: float = 0,
                 rate_429: float = 0.0, rate_500: float = 0.0,
                 by_recipient: dict[str, int] | None = None) -> None:
        """Inject failures: ``count`` answers of ``status`` (None: until the next set_mode),
        a random share of 429s and 500s, and/or a status for every push to a recipient;
        ``set_mode()`` alone answers normally."""
        with self.lock:
            self.fail_status = status
            self.fail_count = (count if count is None or count >= 0 else None) if status else 0
            self.retry_after, self.latency_ms = retry_after, latency_ms
            self.rate_429, self.rate_500 = rate_429, rate_500
            self.by_recipient = dict(by_recipient or {})

    def reset(self) -> None:
        with self.lock:
            self.pushes.clear()
            self.requests.clear()
            self.accepted.clear()
            self.duplicates = self.injected = self.max_in_flight = 0
            self.on_accepted = self.on_answered = None
            self.holding = False
            self.replies.clear()
            self.used_reply_tokens.clear()
            self.reply_requests.clear()
            self.issued.clear()
            self.events.clear()
        self.set_mode()

    def stats(self) -> dict[str, int]:
        with self.lock:
            return {"requests": len(self.requests), "pushes": len(self.pushes),
                    "duplicates": self.duplicates, "injected": self.injected,
                    "max_in_flight": self.max_in_flight,
                    "reply_requests": len(self.reply_requests), "replies": len(self.replies)}

    def entered(self) -> None:
        """A push request has arrived: count it in flight until ``left``."""
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def left(self) -> None:
        with self.lock:
            self.in_flight -= 1

    async def hold_answer(self) -> None:
        """Wait while ``holding`` is set (a test holds the pump's requests open)."""
        if not self.holding:
            return
        with self.lock:
            self.answers_held += 1
        try:
            while self.holding:
                await asyncio.sleep(0.01)
        finally:
            with self.lock:
                self.answers_held -= 1

    def status_for(self, to: object) -> int | None:
        """The status injected for every push to this recipient, if any."""
        with self.lock:
            status = self.by_recipient.get(to) if isinstance(to, str) else None
            self.injected += status is not None
            return status

    def take_injected_failure(self) -> int | None:
        """Use up one injected failure, if any are left, or draw a random one."""
        with self.lock:
            status = self._take_counted() or self._draw()
            self.injected += status is not None
            return status

    def _take_counted(self) -> int | None:
        if not self.fail_status:
            return None
        if self.fail_count is None:
            return self.fail_status
        if self.fail_count <= 0:
            return None
        self.fail_count -= 1
        return self.fail_status

    def _draw(self) -> int | None:
        if not (self.rate_429 or self.rate_500):
            return None
        draw = random.random()
        if draw < self.rate_500:
            return 500
        return 429 if draw < self.rate_500 + self.rate_429 else None


def line_error(status: int, message: str, details: list[dict] | None = None,
               headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict = {"message": message}
    if details is not None:
        body["details"] = details
    return JSONResponse(body, status_code=status, headers=headers)


def check_auth(request: Request, token: str) -> JSONResponse | None:
    header = request.headers.get("authorization", "")
    if not header.startswith("Bearer "):
        return line_error(401, "Authorization header required. Must follow the scheme, "
                               "'Authorization: Bearer <ACCESS TOKEN>'")
    if header.removeprefix("Bearer ") != token:
        return line_error(401, "Authentication failed. Confirm that the access token in the "
                               "authorization header is valid.")
    return None


def body_errors(body: object) -> list[dict]:
    """The shape checks LINE makes on a push body, as its ``details`` entries."""
    if not isinstance(body, dict):
        return [{"message": "must be a JSON object", "property": ""}]
    errors = []
    if not isinstance(body.get("to"), str) or not body["to"]:
        errors.append({"message": "Must not be empty", "property": "to"})
    messages = body.get("messages")
    if not isinstance(messages, list) or not 1 <= len(messages) <= MAX_MESSAGES:
        return [*errors, {"message": "Size must be between 1 and 5", "property": "messages"}]
    for i, message in enumerate(messages):
        errors.extend(message_errors(i, message))
    return errors


def message_errors(i: int, message: object) -> list[dict]:
    """LINE's checks on one message object: a text message or a Flex Message."""
    kind = message.get("type") if isinstance(message, dict) else None
    if kind == "flex":
        return flex_errors(i, message)
    if kind != "text":
        return [{"message": "Must be one of the following values: [text, flex]",
                 "property": f"messages[{i}].type"}]
    text = message.get("text")
    if not isinstance(text, str) or not text:
        return [{"message": "Must not be empty", "property": f"messages[{i}].text"}]
    if len(text) > MAX_TEXT:
        return [{"message": "Length must be between 0 and 5000",
                 "property": f"messages[{i}].text"}]
    return []


MAX_ALT_TEXT = 1500
MAX_BUBBLES = 12
MAX_POSTBACK_DATA = 300


def flex_errors(i: int, message: dict) -> list[dict]:
    """A Flex Message as LINE checks it: altText 1-1500 characters, contents a bubble or a
    carousel of 1-12 bubbles; buttons' actions well formed."""
    where = f"messages[{i}]"
    errors = []
    alt = message.get("altText")
    if not isinstance(alt, str) or not alt:
        errors.append({"message": "Must not be empty", "property": f"{where}.altText"})
    elif len(alt) > MAX_ALT_TEXT:
        errors.append({"message": "Length must be between 0 and 1500",
                       "property": f"{where}.altText"})
    contents = message.get("contents")
    kind = contents.get("type") if isinstance(contents, dict) else None
    if kind == "bubble":
        errors.extend(_bubble_errors(contents, f"{where}.contents"))
    elif kind == "carousel":
        bubbles = contents.get("contents")
        if not isinstance(bubbles, list) or not 1 <= len(bubbles) <= MAX_BUBBLES:
            errors.append({"message": "Size must be between 1 and 12",
                           "property": f"{where}.contents.contents"})
        else:
            for j, bubble in enumerate(bubbles):
                path = f"{where}.contents.contents[{j}]"
                if not isinstance(bubble, dict) or bubble.get("type") != "bubble":
                    errors.append({"message": "Must be one of the following values: [bubble]",
                                   "property": f"{path}.type"})
                else:
                    errors.extend(_bubble_errors(bubble, path))
    else:
        errors.append({"message": "Must be one of the following values: [bubble, carousel]",
                       "property": f"{where}.contents.type"})
    return errors


def _bubble_errors(bubble: dict, path: str) -> list[dict]:
    errors = []
    for block in ("header", "hero", "body", "footer"):
        part = bubble.get(block)
        if part is not None:
            errors.extend(_component_errors(part, f"{path}.{block}"))
    return errors


def _component_errors(component: object, path: str) -> list[dict]:
    if not isinstance(component, dict) or not isinstance(component.get("type"), str):
        return [{"message": "Must not be empty", "property": f"{path}.type"}]
    kind = component["type"]
    errors = []
    if kind == "box":
        children = component.get("contents")
        if not isinstance(children, list):
            return [{"message": "Must not be empty", "property": f"{path}.contents"}]
        for k, child in enumerate(children):
            errors.extend(_component_errors(child, f"{path}.contents[{k}]"))
    elif kind == "text":
        if not isinstance(component.get("text"), str) or not component["text"]:
            errors.append({"message": "Must not be empty", "property": f"{path}.text"})
    elif kind == "button":
        errors.extend(_action_errors(component.get("action"), f"{path}.action"))
    elif kind not in ("separator", "filler", "spacer", "image", "icon", "span"):
        errors.append({"message": "Must be one of the following values: "
                       "[box, button, image, icon, text, separator, filler, spacer, span]",
                       "property": f"{path}.type"})
    return errors


def _action_errors(action: object, path: str) -> list[dict]:
    if not isinstance(action, dict):
        return [{"message": "Must not be empty", "property": path}]
    kind = action.get("type")
    errors = []
    if "label" in action and (not isinstance(action["label"], str)
                              or len(action["label"]) > 40):
        errors.append({"message": "Length must be between 0 and 40",
                       "property": f"{path}.label"})
    if kind == "uri":
        uri = action.get("uri")
        if not isinstance(uri, str) or not re.match(r"^(https?|line|tel):", uri):
            errors.append({"message": "invalid uri scheme", "property": f"{path}.uri"})
        elif len(uri) > 1000:
            errors.append({"message": "Length must be between 0 and 1000",
                           "property": f"{path}.uri"})
    elif kind == "postback":
        data = action.get("data")
        if not isinstance(data, str) or not data:
            errors.append({"message": "Must not be empty", "property": f"{path}.data"})
        elif len(data) > MAX_POSTBACK_DATA:
            errors.append({"message": "Length must be between 0 and 300",
                           "property": f"{path}.data"})
    elif kind != "message":
        errors.append({"message": "Must be one of the following values: "
                       "[uri, postback, message]", "property": f"{path}.type"})
    return errors


def injected_failure(state: FakeLineState, status: int) -> JSONResponse:
    headers = {}
    if status in (429, 503) and state.retry_after is not None:
        value = state.retry_after
        headers["Retry-After"] = value if isinstance(value, str) else f"{value:g}"
    details = [{"message": "injected by /_fake/mode", "property": "to"}] if status == 400 else None
    message = INJECTED_MESSAGES.get(status, "Injected failure")
    return line_error(status, message, details, headers)


async def parse_push(request: Request) -> tuple[dict | None, JSONResponse | None]:
    """The body and retry key, or LINE's 400 answer explaining what is wrong."""
    try:
        body = await request.json()
    except ValueError:
        return None, line_error(400, "The request body could not be parsed as JSON")
    errors = body_errors(body)
    if errors:
        return None, line_error(400, f"The request body has {len(errors)} error(s)", errors)
    if not TO_PATTERN.match(body["to"]):
        return None, line_error(400, "The property, 'to', in the request body is invalid "
                                     "(line: -, column: -)")
    key = request.headers.get("x-line-retry-key")
    if key is not None and not _is_uuid(key):
        return None, line_error(400, "The value for the 'X-Line-Retry-Key' header is invalid")
    return body, None


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def accept(state: FakeLineState, request: Request, body: dict) -> JSONResponse:
    """Record a push, or answer 409 (with the first answer's ids) when its retry key was
    accepted before: LINE sends a message once per retry key."""
    key = request.headers.get("x-line-retry-key")
    request_id = str(uuid.uuid4())
    with state.lock:
        first = state.accepted.get(key) if key is not None else None
        if first is not None:
            state.duplicates += 1
            return JSONResponse(
                {"message": "The retry key is already accepted",
                 "sentMessages": first["sent_messages"]}, status_code=409,
                headers={"x-line-request-id": request_id,
                         "x-line-accepted-request-id": first["request_id"]})
        sent = [{"id": str(time.time_ns() + i), "quoteToken": uuid.uuid4().hex}
                for i, _ in enumerate(body["messages"])]
        push = {"to": body["to"], "messages": body["messages"], "retry_key": key,
                "headers": dict(request.headers), "request_id": request_id,
                "sent_messages": sent, "received_at": state.clock.now().isoformat()}
        if key is not None:
            state.accepted[key] = push
        state.pushes.append(push)
        on_accepted, on_answered = state.on_accepted, state.on_answered
    if on_accepted is not None:
        on_accepted(dict(push))
    after = BackgroundTask(on_answered, dict(push)) if on_answered is not None else None
    return JSONResponse({"sentMessages": sent}, headers={"x-line-request-id": request_id},
                        background=after)


# --- replies -------------------------------------------------------------------------------------

def reply_body_errors(body: object) -> list[dict]:
    """The shape checks LINE makes on a reply body: a reply token and 1–5 messages."""
    if not isinstance(body, dict):
        return [{"message": "must be a JSON object", "property": ""}]
    errors = []
    if not isinstance(body.get("replyToken"), str) or not body["replyToken"]:
        errors.append({"message": "Must not be empty", "property": "replyToken"})
    messages = body.get("messages")
    if not isinstance(messages, list) or not 1 <= len(messages) <= MAX_MESSAGES:
        return [*errors, {"message": "Size must be between 1 and 5", "property": "messages"}]
    for i, message in enumerate(messages):
        errors.extend(reply_message_errors(i, message))
    return errors


def reply_message_errors(i: int, message: object) -> list[dict]:
    """A template message (a reply's confirm or buttons) is checked here; others as pushes are."""
    if isinstance(message, dict) and message.get("type") == "template":
        return template_errors(i, message)
    return message_errors(i, message)


def template_errors(i: int, message: dict) -> list[dict]:
    where = f"messages[{i}]"
    errors = []
    if not isinstance(message.get("altText"), str) or not 1 <= len(message["altText"]) <= 400:
        errors.append({"message": "Length must be between 1 and 400", "property": f"{where}.altText"})
    template = message.get("template")
    kind = template.get("type") if isinstance(template, dict) else None
    if kind not in TEMPLATE_TYPES:
        return [*errors, {"message": "Must be one of the following values: [buttons, confirm]",
                          "property": f"{where}.template.type"}]
    text = template.get("text")
    if not isinstance(text, str) or not 1 <= len(text) <= (240 if kind == "confirm" else 160):
        errors.append({"message": "Length must be between 1 and "
                       f"{240 if kind == 'confirm' else 160}", "property": f"{where}.template.text"})
    actions = template.get("actions")
    low = 2 if kind == "confirm" else 1
    if not isinstance(actions, list) or not low <= len(actions) <= TEMPLATE_TYPES[kind]:
        return [*errors, {"message": f"Size must be between {low} and {TEMPLATE_TYPES[kind]}",
                          "property": f"{where}.template.actions"}]
    for j, action in enumerate(actions):
        errors.extend(action_errors(f"{where}.template.actions[{j}]", action))
    return errors


def action_errors(where: str, action: object) -> list[dict]:
    """An action as LINE checks it: a label, and the field its type needs."""
    needs = {"postback": "data", "message": "text", "uri": "uri"}
    kind = action.get("type") if isinstance(action, dict) else None
    if kind not in needs:
        return [{"message": "Must be one of the following values: [message, postback, uri]",
                 "property": f"{where}.type"}]
    errors = []
    if not isinstance(action.get("label"), str) or not 1 <= len(action["label"]) <= 20:
        errors.append({"message": "Length must be between 1 and 20", "property": f"{where}.label"})
    if not isinstance(action.get(needs[kind]), str) or not action[needs[kind]]:
        errors.append({"message": "Must not be empty", "property": f"{where}.{needs[kind]}"})
    return errors


async def parse_reply(state: FakeLineState, request: Request) -> tuple[dict | None, JSONResponse | None]:
    """The reply body, or LINE's 400: bad JSON, bad shape, or a token that is malformed,
    already used, or (when the stand-in issued tokens) one it never issued."""
    try:
        body = await request.json()
    except ValueError:
        return None, line_error(400, "The request body could not be parsed as JSON")
    errors = reply_body_errors(body)
    if errors:
        return None, line_error(400, f"The request body has {len(errors)} error(s)", errors)
    token = body["replyToken"]
    with state.lock:
        used = token in state.used_reply_tokens
    if not REPLY_TOKEN_PATTERN.match(token) or used:
        return None, line_error(400, "Invalid reply token")
    return body, None


def accept_reply(state: FakeLineState, request: Request, body: dict) -> JSONResponse:
    """Record a reply (its token now used up) and answer as LINE does."""
    request_id = str(uuid.uuid4())
    sent = [{"id": str(time.time_ns() + i), "quoteToken": uuid.uuid4().hex}
            for i, _ in enumerate(body["messages"])]
    with state.lock:
        state.used_reply_tokens.add(body["replyToken"])
        chat = state.issued.get(body["replyToken"], {})
        state.replies.append({
            "reply_token": body["replyToken"], "messages": body["messages"],
            "to": chat.get("to"), "user_id": chat.get("user_id"),
            "headers": dict(request.headers), "request_id": request_id, "sent_messages": sent,
            "received_at": state.clock.now().isoformat()})
    return JSONResponse({"sentMessages": sent}, headers={"x-line-request-id": request_id})


# --- playing the user: webhook events, signed as LINE signs them --------------------------------

def line_signature(secret: str, body: bytes) -> str:
    """``x-line-signature``: base64 of HMAC-SHA256 of the raw body, keyed by the channel secret."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def webhook_event(state: FakeLineState, kind: str, to: str, user_id: str | None,
                  **content: object) -> dict:
    """An event as LINE sends it, with a fresh webhookEventId and reply token."""
    if to.startswith("C"):
        source = {"type": "group", "groupId": to, "userId": user_id}
    elif to.startswith("R"):
        source = {"type": "room", "roomId": to, "userId": user_id}
    else:
        source = {"type": "user", "userId": to}
    reply_token = uuid.uuid4().hex
    with state.lock:
        state.issued[reply_token] = {"to": to, "user_id": source["userId"]}
    return {"type": kind, "mode": "active",
            "timestamp": int(state.clock.now().timestamp() * 1000), "source": source,
            "webhookEventId": "01" + uuid.uuid4().hex[:24].upper(),
            "deliveryContext": {"isRedelivery": False}, "replyToken": reply_token, **content}


async def send_event(state: FakeLineState, event: dict, label: str) -> dict:
    """POST the event to the webhook, signed; record what was sent and how it was answered."""
    if not state.webhook_url or not state.channel_secret:
        raise ValueError("no webhook_url or channel_secret: the stand-in cannot send events")
    body = json.dumps({"destination": BOT_USER_ID, "events": [event]},
                      ensure_ascii=False).encode()
    headers = {"content-type": "application/json; charset=utf-8",
               "x-line-signature": line_signature(state.channel_secret, body)}
    try:
        if state.webhook_client is not None:
            response = await state.webhook_client.post(state.webhook_url, content=body,
                                                       headers=headers)
        else:
            async with httpx.AsyncClient(timeout=10) as client:
                response = await client.post(state.webhook_url, content=body, headers=headers)
        status = response.status_code
    except httpx.HTTPError as exc:
        status = f"{type(exc).__name__}"
    record = {"event": event, "label": label, "status": status,
              "sent_at": state.clock.now().isoformat()}
    with state.lock:
        state.events.append(record)
    return record


async def reply_arrived(state: FakeLineState, reply_token: str, seconds: float = 2.0) -> bool:
    """Wait a little for the reply to an event we sent, so the page shows it when it reloads."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with state.lock:
            if reply_token in state.used_reply_tokens:
                return True
        await asyncio.sleep(0.05)
    return False


async def user_input(request: Request) -> dict:
    """A form (the page's buttons) or JSON (tests), as a plain dict of strings."""
    if request.headers.get("content-type", "").startswith("application/json"):
        data = await request.json()
        return {k: str(v) for k, v in data.items() if v is not None} if isinstance(data, dict) else {}
    form = await request.form()
    return {k: str(v) for k, v in form.items()}


def chat_of(data: dict) -> tuple[str, str | None] | None:
    """The chat (``to``) and, in a group, the member acting; None if they are not LINE ids."""
    to, user_id = data.get("to", ""), data.get("user_id") or None
    if not TO_PATTERN.match(to):
        return None
    if to[0] in "CR" and (user_id is None or not TO_PATTERN.match(user_id) or user_id[0] != "U"):
        return None
    return to, user_id


def create_app(state: FakeLineState) -> Starlette:
    """The Starlette app; ``state`` is shared with whoever started it."""

    async def push(request: Request) -> JSONResponse:
        with state.lock:
            state.requests.append({"headers": dict(request.headers), "path": request.url.path})
        state.entered()
        try:
            response = await answer(request)
            await state.hold_answer()
            return response
        finally:
            state.left()

    async def answer(request: Request) -> JSONResponse:
        if state.latency_ms:
            await asyncio.sleep(state.latency_ms / 1000)
        refused = check_auth(request, state.token)
        if refused is not None:
            return refused
        status = state.take_injected_failure() or await recipient_failure(request)
        if status is not None:
            return injected_failure(state, status)
        body, refused = await parse_push(request)
        return refused if refused is not None else accept(state, request, body)

    async def recipient_failure(request: Request) -> int | None:
        if not state.by_recipient:
            return None
        try:
            body = await request.json()
        except ValueError:
            return None
        return state.status_for(body.get("to") if isinstance(body, dict) else None)

    async def pushes(request: Request) -> JSONResponse:
        return JSONResponse(state.snapshot())

    async def requests(request: Request) -> JSONResponse:
        with state.lock:
            return JSONResponse(list(state.requests))

    async def stats(request: Request) -> JSONResponse:
        return JSONResponse(state.stats())

    async def mode(request: Request) -> JSONResponse:
        data = await request.json()
        count = data.get("count", 1)
        state.set_mode(data.get("status"), None if count is None else int(count),
                       data.get("retry_after"), float(data.get("latency_ms", 0)),
                       float(data.get("rate_429", 0)), float(data.get("rate_500", 0)),
                       {str(to): int(status) for to, status in
                        (data.get("by_recipient") or {}).items()})
        return JSONResponse({"ok": True})

    async def reset(request: Request) -> JSONResponse:
        state.reset()
        return JSONResponse({"ok": True})

    async def inbox(request: Request) -> HTMLResponse:
        return HTMLResponse(inbox_page(state))

    async def reply(request: Request) -> JSONResponse:
        response = await answer_reply(request)
        with state.lock:
            state.reply_requests.append({"path": request.url.path,
                                         "status": response.status_code})
        return response

    async def answer_reply(request: Request) -> JSONResponse:
        refused = check_auth(request, state.token)
        if refused is not None:
            return refused
        body, refused = await parse_reply(state, request)
        return refused if refused is not None else accept_reply(state, request, body)

    async def replies(request: Request) -> JSONResponse:
        with state.lock:
            return JSONResponse([dict(r) for r in state.replies])

    async def events(request: Request) -> JSONResponse:
        with state.lock:
            return JSONResponse([dict(e) for e in state.events])

    async def press(request: Request) -> Response:
        """A postback button pressed (``data``), or a message action (``text``)."""
        data = await user_input(request)
        if data.get("text"):
            return await _act(request, data, "message",
                              message={"id": str(time.time_ns()), "type": "text",
                                       "text": data["text"][:5000]})
        if not data.get("data"):
            return line_error(400, "data or text is required")
        return await _act(request, data, "postback", postback={"data": data["data"][:300]})

    async def say(request: Request) -> Response:
        data = await user_input(request)
        if not data.get("text"):
            return line_error(400, "text is required")
        return await _act(request, data, "message",
                          message={"id": str(time.time_ns()), "type": "text",
                                   "text": data["text"][:5000]})

    async def _act(request: Request, data: dict, kind: str, **content: object) -> Response:
        chat = chat_of(data)
        if chat is None:
            return line_error(400, "to must be a LINE user or group id; in a group, user_id "
                                   "names the member (U…)")
        event = webhook_event(state, kind, chat[0], chat[1], **content)
        try:
            record = await send_event(state, event, data.get("label") or data.get("text", ""))
        except ValueError as exc:
            return line_error(409, str(exc))
        if request.headers.get("content-type", "").startswith("application/json"):
            return JSONResponse(record)
        await reply_arrived(state, event["replyToken"])  # tidtam replies after its 200
        return RedirectResponse("/", status_code=303)

    return Starlette(routes=[
        Route("/", inbox, methods=["GET"]),
        Route(PUSH_PATH, push, methods=["POST"]),
        Route(REPLY_PATH, reply, methods=["POST"]),
        Route("/_fake/replies", replies, methods=["GET"]),
        Route("/_fake/events", events, methods=["GET"]),
        Route("/_fake/press", press, methods=["POST"]),
        Route("/_fake/say", say, methods=["POST"]),
        Route("/_fake/pushes", pushes, methods=["GET"]),
        Route("/_fake/requests", requests, methods=["GET"]),
        Route("/_fake/stats", stats, methods=["GET"]),
        Route("/_fake/mode", mode, methods=["POST"]),
        Route("/_fake/reset", reset, methods=["POST"]),
    ])


class RunningFakeLine(NamedTuple):
    base_url: str
    stop: Callable[[], None]
    state: FakeLineState


def run_in_thread(token: str, host: str = "127.0.0.1", *, webhook_url: str | None = None,
                  channel_secret: str | None = None) -> RunningFakeLine:
    """Start the fake on a free port in a daemon thread; call ``stop()`` when done."""
    state = FakeLineState(token=token, webhook_url=webhook_url, channel_secret=channel_secret)
    # proto must say TCP: asyncio sets TCP_NODELAY on accepted sockets only when it does, and
    # without it every answer waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind((host, 0))
    config = uvicorn.Config(create_app(state), log_level="warning", lifespan="off",
                            access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                              name="fake-line")
    thread.start()
    _wait_started(server, thread)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()

    return RunningFakeLine(f"http://{host}:{sock.getsockname()[1]}", stop, state)


def _wait_started(server: uvicorn.Server, thread: threading.Thread) -> None:
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the fake LINE server did not start")
        time.sleep(0.01)


@contextmanager
def fake_line(token: str) -> Iterator[RunningFakeLine]:
    """``with fake_line("tok") as line:`` — a running fake for the block's duration."""
    running = run_in_thread(token)
    try:
        yield running
    finally:
        running.stop()


def inbox_page(state: FakeLineState) -> str:
    """What the stand-in received and sent, newest first, as LINE would show it: pushes and
    replies from the Official Account, and the user's own taps and words."""
    with state.lock:
        entries = [dict(p, kind="push", at=p["received_at"]) for p in state.pushes]
        entries += [dict(r, kind="reply", at=r["received_at"]) for r in state.replies]
        entries += [_user_entry(e) for e in state.events]
        counts = {"requests": len(state.requests), "pushes": len(state.pushes),
                  "duplicates": state.duplicates, "injected": state.injected,
                  "replies": len(state.replies), "events": len(state.events)}
        can_act = bool(state.webhook_url and state.channel_secret)
        webhook_url = state.webhook_url
    entries.sort(key=lambda e: e["at"], reverse=True)
    for entry in entries:
        entry["shown_at"] = _bangkok(entry["at"])
    last_chat = next((e["to"] for e in entries if e.get("to")), "")
    return _inbox_template().render(entries=entries, counts=counts, can_act=can_act,
                                    webhook_url=webhook_url, last_chat=last_chat)


def _user_entry(record: dict) -> dict:
    """A webhook event the stand-in sent: the user's side of the chat."""
    event = record["event"]
    source = event["source"]
    to = source.get("groupId") or source.get("roomId") or source["userId"]
    said = event.get("message", {}).get("text") if event["type"] == "message" else None
    return {"kind": "user", "at": record["sent_at"], "to": to, "user_id": source.get("userId"),
            "text": said or record["label"] or event.get("postback", {}).get("data", ""),
            "event_type": event["type"], "status": record["status"]}


@lru_cache(maxsize=1)
def _inbox_template() -> Template:
    """The stand-in's own page (autoescaped: pushed texts are shown as they came)."""
    env = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                      autoescape=True, undefined=StrictUndefined, trim_blocks=True,
                      lstrip_blocks=True)
    return env.get_template("line_inbox.html.j2")


def _bangkok(iso: str) -> str:
    from zoneinfo import ZoneInfo

    return datetime.fromisoformat(iso).astimezone(ZoneInfo("Asia/Bangkok")).strftime(
        "%Y-%m-%d %H:%M:%S")


def _webhook_from_settings() -> dict[str, str | None]:
    """tidtam's own webhook and channel secret (``TIDTAM_BASE_URL``,
    ``TIDTAM_LINE_CHANNEL_SECRET``): the stand-in signs what it sends as LINE would."""
    from tidtam.infra.settings import Settings

    try:
        settings = Settings()
    except ValueError:  # a settings error is tidtam's to report; the stand-in just cannot act
        return {"webhook_url": None, "channel_secret": None}
    secret = settings.line_channel_secret.get_secret_value() if settings.line_channel_secret else None
    return {"webhook_url": settings.base_url.rstrip("/") + "/line/webhook",
            "channel_secret": secret or None}


def serve_forever(port: int = 8099, token: str = "fake-line-token", host: str = "127.0.0.1",
                  *, latency_ms: float = 0, rate_429: float = 0.0, rate_500: float = 0.0,
                  retry_after: float | None = None) -> None:
    """Run in the foreground, for ``tidtam fake-line --port N``."""
    state = FakeLineState(token=token, **_webhook_from_settings())
    state.set_mode(latency_ms=latency_ms, rate_429=rate_429, rate_500=rate_500,
                   retry_after=retry_after)
    uvicorn.run(create_app(state), host=host, port=port, log_level="info")
