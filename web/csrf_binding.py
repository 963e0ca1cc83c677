"""The CSRF token bound to the session, and no skipping the check with an Authorization header.

asgi-csrf checks that a form's ``csrftoken`` equals its signed ``csrftoken`` cookie (a double
submit): any token it ever signed would pass. This layer, between the session middleware and
asgi-csrf, hands asgi-csrf a token derived from this session's own random seed (rotated at
sign-in and sign-out) and from the server-side session's secret, in place of whatever cookie
the browser sent: a token from another session, or from before a sign-in, no longer matches.
A request carrying the session cookie loses its Authorization header here (pages never read
it), so asgi-csrf's "Authorization: Bearer skips the check" applies only to a request with a
bearer token and no session cookie.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from functools import lru_cache
from http.cookies import SimpleCookie

from itsdangerous.url_safe import URLSafeSerializer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
CSRF_COOKIE = "csrftoken"  # asgi-csrf's cookie and form field
SIGNING_NAMESPACE = "csrftoken"  # asgi-csrf's default salt
SEED_KEY = "csrf"  # in the session: this session's random seed


def new_seed(session: dict) -> None:
    """A fresh seed: every token handed out before is void (call at sign-in and sign-out)."""
    session[SEED_KEY] = secrets.token_urlsafe(16)


def bound_value(session: dict) -> str:
    """What the token signs: the seed and the server-side session's secret, hashed (the page
    must never show the session secret itself)."""
    material = f"{session.get(SEED_KEY, '')}:{session.get('sid', '')}"
    return hashlib.sha256(material.encode()).hexdigest()[:32]


class SessionBoundCsrf:
    """Give asgi-csrf the session's own token; strip Authorization from cookie sessions."""

    def __init__(self, app: ASGIApp, *, secret: str, session_cookie: str, secure: bool,
                 skip: Callable[[Scope], bool]) -> None:
        self.app, self.session_cookie, self.skip = app, session_cookie, skip
        self.signer = URLSafeSerializer(secret)
        self.cookie_attrs = "; Path=/; SameSite=Lax" + ("; Secure" if secure else "")
        # The token is a pure function of the bound value (the signature has no timestamp), and
        # each request needs it twice: signed once per session, not twice per request (bench P2).
        self._signed = lru_cache(maxsize=4096)(self._sign)

    def token(self, session: dict) -> str:
        return self._signed(bound_value(session))

    def _sign(self, value: str) -> str:
        return self.signer.dumps(value, SIGNING_NAMESPACE)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.skip(scope):
            return await self.app(scope, receive, send)
        headers = [(k, v) for k, v in scope["headers"]]
        cookies = _cookies(headers)
        has_session = self.session_cookie in cookies
        bearer_only = any(k == b"authorization" for k, _ in headers) and not has_session
        if scope["method"] not in SAFE_METHODS and (not cookies or bearer_only):
            return await self.app(scope, receive, send)  # asgi-csrf's own rules for these
        session = scope["session"]
        if SEED_KEY not in session:
            new_seed(session)
        scope = {**scope, "headers": self._headers(headers, cookies, session, has_session)}
        sent = cookies.get(CSRF_COOKIE)

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                token = self.token(scope["session"])  # after the route: a new seed shows here
                if token != sent:
                    cookie = f"{CSRF_COOKIE}={token}{self.cookie_attrs}".encode("latin-1")
                    message["headers"] = [*message.get("headers", []), (b"set-cookie", cookie)]
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    def _headers(self, headers: list, cookies: dict[str, str], session: dict,
                 has_session: bool) -> list:
        others = "; ".join(f"{k}={v}" for k, v in cookies.items() if k != CSRF_COOKIE)
        cookie = f"{others}; " if others else ""
        cookie += f"{CSRF_COOKIE}={self.token(session)}"
        drop = {b"cookie", b"authorization"} if has_session else {b"cookie"}
        return [*((k, v) for k, v in headers if k not in drop),
                (b"cookie", cookie.encode("latin-1"))]


def _cookies(headers: list) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    for key, value in headers:
        if key == b"cookie":
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # a malformed cookie header: as if none was sent
                continue
    return {name: morsel.value for name, morsel in jar.items()}
