"""The FastAPI app: pages, the JSON API, sessions, CSRF, and (on request) the outbox pump."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from asgi_csrf import asgi_csrf
from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from sqlalchemy.engine import Engine
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tidtam.infra.clock import Clock, clock_from_settings
from tidtam.infra.db import engine_of, session_scope, writing
from tidtam.infra.photos import PhotoStore
from tidtam.infra.settings import Settings
from web import (
    accounts,
    api,
    api_reports,
    auth,
    charts,
    csrf_multipart,
    errors,
    feeds,
    line_webhook,
    national,
    offline,
    pages,
    profile,
    reports,
)
from web.admission import Admission
from web.csrf_binding import SessionBoundCsrf
from web.limits import BodyLimit, BodyReached, MalformedBody
from web.rendering import make_templates, render
from web.security_headers import SecurityHeaders

log = logging.getLogger("tidtam.web")

STATIC_DIR = Path(__file__).resolve().parent / "static"
SESSION_COOKIE = "tidtam_session"
# Sign-in, sign-out and the language and digits switches refuse a POST without the CSRF token even when
# the browser sends no cookie at all (asgi-csrf lets cookie-less POSTs through elsewhere).
ALWAYS_PROTECT = {"/login", "/logout", "/lang", "/digits"}


def freeze_startup_heap() -> None:
    """Before serving: move what start-up loaded (Prefect, SQLAlchemy, the templates…) out of
    the garbage collector's sight. Otherwise every full collection walks it all again, a pause
    of about 100 ms that shows in the boards' p95 (bench/p4_board.py)."""
    gc.collect()
    gc.freeze()


def create_app(settings: Settings, engine: Engine | None = None, *, clock: Clock | None = None,
               run_pump: bool = False) -> FastAPI:
    """The web app over ``engine`` (default: the settings' database) on ``clock`` (default: the
    one the settings describe); the pump only on request."""
    engine = engine if engine is not None else engine_of(settings)
    clock = clock if clock is not None else clock_from_settings(settings)
    app = FastAPIOffline(title="tidtam — ติดตาม", version="1", docs_url="/docs", redoc_url=None,
                  summary="Follow-up of provincial directives to district offices",
                  lifespan=_lifespan(settings, engine, clock, run_pump))
    app.state.settings = settings
    app.state.engine = engine
    app.state.write_engine = writing(engine)  # for requests that write (web.deps.get_db)
    app.state.admission = Admission.for_engine(engine, settings.db_pool_timeout)
    app.state.clock = clock
    app.state.templates = make_templates(settings)
    app.state.photos = PhotoStore(settings.data_dir / "photos")
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_api_route("/healthz", healthz, methods=["GET"], tags=["ops"])
    app.add_api_route("/favicon.ico", favicon, methods=["GET"], include_in_schema=False)
    # Routes are tried in this order, one pattern at a time (twice for the router that has the
    # match), so the JSON API comes right after the pages: its paths (/api/v1/…) and the others
    # never match the same request, and its mark (bench P2) was the 83rd pattern tried, now the
    # 40th. The schema lists the API's paths in the same order as before.
    for router in (auth.router, pages.router, line_webhook.router, api.router, reports.router,
                   national.router, profile.router, accounts.router, api_reports.router,
                   feeds.router):
        app.include_router(router)
    charts.install(app)  # the reporting-rate chart's pages and its templates' helpers
    app.include_router(offline.router)  # /sw.js and /offline: the form opens without a network
    errors.install(app)
    errors.document(app)
    _add_middleware(app, settings)
    return app


def favicon() -> FileResponse:
    """Browsers ask for /favicon.ico on every site whatever the page links (no 404 in the log)."""
    return FileResponse(STATIC_DIR / "favicon.ico", media_type="image/vnd.microsoft.icon")


def healthz() -> dict[str, bool]:
    """Up and serving (used to wait for start-up)."""
    return {"ok": True}


def _add_middleware(app: FastAPI, settings: Settings) -> None:
    """Outermost last: security headers → body limit → session → malformed body → the session's
    CSRF token → CSRF → the app."""
    https = settings.base_url.startswith("https://")
    csrf_multipart.install()
    app.add_middleware(BodyReached)
    app.add_middleware(
        _CsrfWhereCookies, signing_secret=settings.session_secret, cookie_secure=https,
        always_protect=ALWAYS_PROTECT, send_csrf_failed=_csrf_failed,
        skip_if_scope=_no_csrf)
    app.add_middleware(SessionBoundCsrf, secret=settings.session_secret,
                       session_cookie=SESSION_COOKIE, secure=https,
                       skip=lambda scope: _no_csrf(scope) or scope["path"].startswith("/static/"))
    app.add_middleware(MalformedBody)  # the CSRF layers' parse errors: 400, not 500
    # The cookie itself lasts as long as the longest session; the server-side session row
    # (web.deps) decides whether it still opens anything.
    app.add_middleware(SessionMiddleware, secret_key=settings.session_secret,
                       session_cookie=SESSION_COOKIE,
                       max_age=int(settings.session_max_hours * 3600),
                       same_site="lax", https_only=https)
    app.add_middleware(BodyLimit)
    app.add_middleware(SecurityHeaders, https=https)


class _CsrfWhereCookies:
    """asgi-csrf, but not at all for the paths it would let through anyway (``_no_csrf``: the
    API and LINE's webhook, ``skip_if_scope``). Before, every API request still had its
    cookies parsed and a fresh random token signed for a form it never draws (bench P2)."""

    def __init__(self, app: ASGIApp, **options) -> None:
        self.plain, self.checked = app, asgi_csrf(app, **options)
        self.skip = options["skip_if_scope"]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.skip(scope):
            return await self.plain(scope, receive, send)
        return await self.checked(scope, receive, send)


def _no_csrf(scope: Scope) -> bool:
    """The API authenticates by bearer token only, never by cookie, and LINE's webhook by its
    signature only: nothing to forge there."""
    return scope["path"].startswith("/api/") or scope["path"] == line_webhook.PATH


async def _csrf_failed(scope: Scope, send: Send, message_id: object) -> None:
    """A form posted without its token (or from another site): a Thai+English 403 page."""
    request = Request(scope)
    text = errors.bilingual("error.csrf")
    response = render(request, "error.html", {"status": 403, "message_th": text["th"],
                                              "message_en": text["en"]}, status_code=403)
    await response(scope, _no_body, send)


async def _no_body() -> Message:
    return {"type": "http.disconnect"}


def _lifespan(settings: Settings, engine: Engine, clock: Clock, run_pump: bool):
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not run_pump:
            yield
            return
        from tidtam.infra import pump  # only a process that pumps loads the channels

        stop = pump.start(settings, clock, lambda: session_scope(engine))
        try:
            yield
        finally:
            stop()

    return lifespan

