"""Headers on every answer: a Content-Security-Policy with no inline script, HSTS over https,
Permissions-Policy, no MIME sniffing, no framing, no referrer to other sites; pages not cached.

Pages load their script and stylesheet from /static only. The printed form inlines its own
stylesheet (it is also the PDF's source), allowed by that stylesheet's hash, and embeds its
photos as data: URIs. The API's docs (/docs, fastapi-offline's Swagger UI) start Swagger with an
inline script: that page alone allows it; it shows no user's data.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tidtam.documents.printing import stylesheet_hash

DOCS_PATHS = ("/docs", "/docs/oauth2-redirect", "/redoc")
HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")
# The photo button opens the phone's camera through the file picker (capture=), which needs no
# camera permission: every powerful feature is off.
PERMISSIONS = b"camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()"


def content_security_policy(docs: bool = False) -> bytes:
    inline = " 'unsafe-inline'" if docs else ""
    return ("default-src 'self'; "
            f"script-src 'self'{inline}; "
            f"style-src 'self' {stylesheet_hash()}{inline}; "
            "img-src 'self' data: blob:; font-src 'self'; connect-src 'self'; "
            "object-src 'none'; base-uri 'none'; form-action 'self'; "
            "frame-ancestors 'none'").encode("ascii")


def security_headers(https: bool, docs: bool = False) -> list[tuple[bytes, bytes]]:
    headers = [(b"content-security-policy", content_security_policy(docs)),
               (b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
               (b"referrer-policy", b"same-origin"), (b"permissions-policy", PERMISSIONS)]
    return [*headers, HSTS] if https else headers


class SecurityHeaders:
    """The headers above on every HTTP answer (and ``cache-control: no-store`` but for /static)."""

    def __init__(self, app: ASGIApp, https: bool = False) -> None:
        self.app = app
        self.pages = security_headers(https)
        self.docs = security_headers(https, docs=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        static = path.startswith("/static/")
        chosen = self.docs if path in DOCS_PATHS else self.pages

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = chosen if static else [*chosen, (b"cache-control", b"no-store")]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)
