"""POST /line/webhook: the LINE Platform's events, authenticated only by their signature.

LINE signs the raw body: ``x-line-signature`` = base64(HMAC-SHA256(channel secret, body)). The
signature is checked before the body is parsed; a missing or wrong one (or no channel secret
configured) gets 401 and changes nothing. LINE waits about two seconds for a 2xx, so the handful
of rows an event touches are written in the request, in one transaction.

Answers (a reminder's "ทำแล้ว" postback, "งาน" typed in the chat; ``tidtam.app.line_answers``)
are replied to with the event's reply token after that transaction has committed, in a
background task once the 200 is written. Replies never go through the outbox: a reply token is
good for one use within about a minute, so a reply is sent once, and a failed one is logged while
the change it reports stands.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from datetime import datetime

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.engine import Engine
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from notifications.line_reply import LineReplier
from tidtam.app.line_answers import Reply, handle_events
from tidtam.infra.db import session_scope
from tidtam.infra.settings import Settings

log = logging.getLogger("tidtam.line")

router = APIRouter(tags=["line"])

PATH = "/line/webhook"
MAX_BODY_BYTES = 1_000_000  # LINE batches a few events of a few kB; anything larger is not LINE
MAX_JSON_DEPTH = 32  # LINE's events nest about five levels; a deeper body is not LINE's


def expected_signature(secret: str, body: bytes) -> str:
    """What LINE puts in ``x-line-signature`` for this body."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def signature_valid(settings: Settings, body: bytes, signature: str | None) -> bool:
    """Constant-time comparison; False when no channel secret is configured."""
    secret = settings.line_channel_secret.get_secret_value() if settings.line_channel_secret else ""
    if not secret or not signature:
        return False
    return hmac.compare_digest(expected_signature(secret, body).encode("ascii"),
                               signature.strip().encode("utf-8", "replace"))


@router.post(PATH, summary="LINE Messaging API webhook (signed by LINE; not for people)")
async def line_webhook(request: Request) -> Response:
    body = await _bounded_body(request)
    if body is None:
        return _answer(413, "request too large")
    if not signature_valid(request.app.state.settings, body, request.headers.get("x-line-signature")):
        log.warning("LINE webhook refused: missing or wrong signature")
        return _answer(401, "invalid signature")
    events = _events_of(body)
    if events is None:
        return _answer(400, "not a webhook body")
    if not events:  # LINE's "Verify" button: just answer 200
        return JSONResponse({})
    async with request.app.state.admission.slot(write=True):
        replies = await run_in_threadpool(_apply, request.app.state.write_engine, events,
                                          request.app.state.clock.now())
    after = BackgroundTask(send_replies, request.app.state.settings, replies) if replies else None
    return JSONResponse({}, background=after)


def _apply(engine: Engine, events: list, now: datetime) -> list[Reply]:
    """Apply the events in one transaction; what to reply comes back once it has committed."""
    with session_scope(engine) as session:
        return handle_events(session, events, now).replies


async def send_replies(settings: Settings, replies: list[Reply]) -> int:
    """Reply to each answered event; a failure is logged and changes nothing already committed."""
    token = settings.line_channel_access_token
    if token is None or not token.get_secret_value():
        log.warning("LINE replies not sent: no channel access token configured")
        return 0
    async with httpx.AsyncClient(timeout=5.0) as client:
        replier = LineReplier(client, token.get_secret_value(), settings.line_api_base)
        return await replier.reply_all([(reply.token, reply.messages) for reply in replies])


async def _bounded_body(request: Request) -> bytes | None:
    """The raw body (what the signature covers), or None past MAX_BODY_BYTES."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY_BYTES:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _events_of(body: bytes) -> list | None:
    """The ``events`` array of a signed body, or None if the body is not LINE's shape."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested past the parser's stack
        return None
    if _nested_deeper(payload, MAX_JSON_DEPTH):
        return None
    events = payload.get("events") if isinstance(payload, dict) else None
    return events if isinstance(events, list) else None


def _nested_deeper(value: object, limit: int) -> bool:
    """Whether JSON nests past ``limit`` levels (LINE's events nest about five)."""
    level = [value]
    for _ in range(limit):
        level = [child for item in level if isinstance(item, dict | list)
                 for child in (item.values() if isinstance(item, dict) else item)]
        if not level:
            return False
    return True


def _answer(status: int, reason: str) -> JSONResponse:
    return JSONResponse({"detail": reason}, status_code=status)
