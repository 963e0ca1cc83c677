"""Bodies the app refuses before reading them: too large (413), or too malformed to parse (400).

``BodyLimit`` counts a request body's bytes as they arrive, with or without Content-Length (a
chunked body is stopped at the cap, not read in full first). Each route has a cap: the report
form and its photo upload their own large one (``web.reports.MAX_REQUEST_BYTES``), the autosave
and the API's report its draft size, everything else ``DEFAULT_MAX_BODY``.

``MalformedBody`` answers 400 when the CSRF layer, which parses a form's body before the app
sees it (for its token), fails on it: a multipart body without a boundary or cut short, a form
that is not UTF-8, a cookie that is not. It does not check the token; it only turns a parser's
crash into a clear answer. ``BodyReached`` (inside the CSRF layer) marks that the body went
through, so an error of the app itself is never mistaken for a malformed body.
"""

from __future__ import annotations

import logging
import re

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from web import errors
from web.reports import MAX_DRAFT_BYTES, MAX_REQUEST_BYTES

log = logging.getLogger("tidtam.web")

DEFAULT_MAX_BODY = 1_000_000  # a sign-in, a reason, a note, LINE's webhook: a few kB at most
# (path pattern, cap in bytes), first match wins. A route with its own check of Content-Length
# keeps it (its own words, 422) with a margin above it: this is the backstop for chunked bodies.
ROUTE_CAPS: list[tuple[re.Pattern[str], int]] = [
    (re.compile(r"/directives/[^/]+/districts/[^/]+/report(/photos|/submit)?"),
     MAX_REQUEST_BYTES + DEFAULT_MAX_BODY),
    (re.compile(r"/directives/[^/]+/districts/[^/]+/report/draft"), MAX_DRAFT_BYTES + DEFAULT_MAX_BODY),
    (re.compile(r"/api/v1/districts/[^/]+/report"), MAX_DRAFT_BYTES + DEFAULT_MAX_BODY),
    (re.compile(r"/api/v1/districts/[^/]+/report/photos"), MAX_REQUEST_BYTES + DEFAULT_MAX_BODY),
]
REACHED = "tidtam.body_reached"


def cap_for(path: str) -> int:
    """The most bytes a request to ``path`` may send."""
    return next((cap for pattern, cap in ROUTE_CAPS if pattern.fullmatch(path)), DEFAULT_MAX_BODY)


class BodyTooLarge(StarletteHTTPException):
    """More bytes arrived than the route's cap: 413 (the app's handler answers it in Thai and
    English; outside the app, ``BodyLimit`` does)."""

    def __init__(self) -> None:
        super().__init__(413)


async def _no_body() -> Message:
    return {"type": "http.disconnect"}


async def _answer(scope: Scope, send: Send, status: int, key: str) -> None:
    """The app's bilingual error (JSON under /api, a page elsewhere), sent from a middleware."""
    text = errors.bilingual(key)
    response = errors.answer(Request(scope), status, text["th"], text["en"])
    await response(scope, _no_body, send)


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


class BodyLimit:
    """413 for a body over its route's cap: at once when Content-Length says so, else as soon as
    the streamed bytes pass it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        cap = cap_for(scope["path"])
        declared = _declared_length(scope)
        if declared is not None and declared > cap:
            return await _answer(scope, send, 413, "error.http.413")
        received, started = 0, False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    raise BodyTooLarge()
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except BodyTooLarge:
            if started:
                raise
            await _answer(scope, send, 413, "error.http.413")


class MalformedBody:
    """400 in Thai and English when the layer inside (the CSRF check) fails to parse a body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        reached = [False]
        try:
            await self.app({**scope, REACHED: reached}, receive, send)
        except StarletteHTTPException:
            raise
        except Exception as exc:
            if reached[0]:
                raise
            log.info("malformed body on %s %s: %s: %s", scope.get("method"), scope["path"],
                     type(exc).__name__, str(exc)[:200])
            await _answer(scope, send, 400, "error.bad_body")


class BodyReached:
    """Marks that the CSRF layer passed the request on: errors from here on are the app's."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if REACHED in scope:
            scope[REACHED][0] = True
        await self.app(scope, receive, send)
