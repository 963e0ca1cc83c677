"""What routes declare: the database session, the clock, the signed-in user (page or API)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from datetime import date, datetime
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.exc import OperationalError
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from models.sessions import LoginSession, SessionKind
from models.user import User, UserPublic
from tidtam.app.accounts import Limits, live_session, live_user
from tidtam.infra.db import is_sqlite_busy, session_scope
from tidtam.infra.settings import Settings

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
T = TypeVar("T")


def reads_only(endpoint):
    """Mark a POST route that writes nothing to the database (signing in): its session does not
    take SQLite's write lock first, as every other POST, PUT and DELETE does."""
    endpoint.reads_only = True
    return endpoint


class LoginRequired(Exception):
    """No one is signed in: pages send the browser to /login."""


class NotAuthenticated(Exception):
    """No valid bearer token on an API call: 401 with ``WWW-Authenticate: Bearer``."""


def writes(request: Request) -> bool:
    """Whether the request's session will write: every POST, PUT, DELETE but sign-in's."""
    endpoint = getattr(request.scope.get("route"), "endpoint", None)
    return request.method not in READ_METHODS and not getattr(endpoint, "reads_only", False)


async def db_slot(request: Request) -> AsyncIterator[None]:
    """A database slot for the request (``web.admission``), waited for in the event loop."""
    async with request.app.state.admission.slot(write=writes(request)):
        yield


def get_db(request: Request,
           _slot: Annotated[None, Depends(db_slot, scope="function")]) -> Iterator[Session]:
    """One session per request; it commits before the response is sent, or rolls back.

    A request that writes begins with SQLite's write lock (``tidtam.infra.db.writing``); the
    lock still taken after the busy timeout is "busy" (503), like the pool.
    """
    state = request.app.state
    try:
        with session_scope(state.write_engine if writes(request) else state.engine) as session:
            yield session
    except OperationalError as exc:
        if is_sqlite_busy(exc):
            raise request.app.state.admission.busy() from exc
        raise


# scope="function": commit (or roll back) before the response leaves, so a redirect after a
# POST never shows the old state and a failed commit is an error the user sees.
SessionDep = Annotated[Session, Depends(get_db, scope="function")]


# The dependencies that do no I/O are ``async def``: FastAPI runs a sync one in the thread pool,
# one hop per dependency per request.
async def get_settings_of(request: Request) -> Settings:
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_settings_of)]


async def get_now(request: Request) -> datetime:
    """The current instant (UTC), from the app's one clock."""
    return request.app.state.clock.now()


NowDep = Annotated[datetime, Depends(get_now)]


def client_address(request: Request) -> str:
    """Where a sign-in attempt comes from, for the per-address limit (uvicorn has already
    applied X-Forwarded-For from the trusted proxy)."""
    return request.client.host if request.client else "unknown"


def client_name(request: Request) -> str:
    """The browser or program as it names itself, to tell one's sessions and tokens apart."""
    return request.headers.get("user-agent", "")[:200]


def _page_user(user: User) -> UserPublic:
    """A detached copy for the page header: it outlives the session, even a rolled-back one."""
    return UserPublic.model_validate(user, from_attributes=True)


def forget_browser_session(request: Request) -> None:
    """Empty the cookie session but for the language and the CSRF seed (the page being drawn
    still carries this seed's token)."""
    kept = {k: request.session[k] for k in ("lang", "digits", "csrf") if k in request.session}
    request.session.clear()
    request.session.update(kept)


def _browser_session(request: Request, session: Session) -> LoginSession | None:
    """The live server-side session this browser's cookie names, else None (and the cookie
    forgets it): signed out, password changed, account disabled, idle or too old."""
    data = request.session
    if "sid" not in data:
        return None
    state = request.app.state
    now, limits = state.clock.now(), Limits.of(state.settings)
    row = live_session(session, data.get("sid"), SessionKind.WEB, now, limits)
    try:
        idle = now - datetime.fromisoformat(data.get("seen", ""))
    except (TypeError, ValueError):
        row = None
    if row is None or idle >= limits.idle:
        forget_browser_session(request)
        return None
    data["seen"] = now.isoformat()  # the signed cookie keeps the last request's time
    request.state.login_session_id = row.id
    return row


def _signed_in(request: Request, session: Session) -> User | None:
    row = _browser_session(request, session)
    return session.get(User, row.user_id) if row is not None else None


def current_user(request: Request, session: SessionDep) -> User:
    """The user signed in on this browser session, else LoginRequired."""
    user = _signed_in(request, session)
    if user is None:
        raise LoginRequired()
    request.state.user = _page_user(user)
    return user


CurrentUser = Annotated[User, Depends(current_user)]


# --- The hot path of a click (marking a step done, bench P2) -------------------------------------
# A sync dependency or route is a hop to the thread pool each (the session, the user, the route,
# the commit: four or five a request), and on SQLite every hop after the first statement is taken
# while holding the one writer lane (web.admission). Here the sign-in is checked in one hop
# before the lane (one prepared query, a read slot), and the route's whole unit of work (its
# statements and the commit) is one more hop inside it (``write_unit``).

async def signed_in_user(request: Request) -> UserPublic:
    """``current_user`` as a detached copy, checked in one query outside the writer lane: the
    same checks (the server-side session live, not idle, the user active), the same cookie
    updates, LoginRequired when no one is signed in."""
    data = request.session
    found = None
    if "sid" in data:
        state = request.app.state
        now, limits = state.clock.now(), Limits.of(state.settings)
        found = await read_unit(request, live_user, data.get("sid"), SessionKind.WEB, now,
                                limits)
        try:
            idle = now - datetime.fromisoformat(data.get("seen", ""))
        except (TypeError, ValueError):
            found = None
        if found is None or idle >= limits.idle:
            forget_browser_session(request)
            found = None
        else:
            data["seen"] = now.isoformat()  # the signed cookie keeps the last request's time
            request.state.login_session_id = found[0]
    if found is None:
        raise LoginRequired()
    request.state.user = found[1]
    return found[1]


SignedInUser = Annotated[UserPublic, Depends(signed_in_user)]


async def api_signed_in_user(request: Request,
                             token: Annotated[str | None, Depends(oauth2_scheme)]) -> UserPublic:
    """``api_user`` as a detached copy, checked in one query outside the writer lane."""
    state = request.app.state
    found = await read_unit(request, live_user, token, SessionKind.API, state.clock.now(),
                            Limits.of(state.settings))
    if found is None:
        raise NotAuthenticated()
    request.state.api_token = token
    return found[1]


ApiSignedInUser = Annotated[UserPublic, Depends(api_signed_in_user)]


async def read_unit(request: Request, work: Callable[..., T], *args: Any) -> T:
    """``work(session, *args)`` in a session of its own that writes nothing: a database slot,
    one hop to the thread pool."""
    state = request.app.state
    async with state.admission.slot(write=False):
        return await run_in_threadpool(_unit, request, state.engine, work, args)


async def write_unit(request: Request, work: Callable[..., T], *args: Any) -> T:
    """``work(session, *args)`` as ``SessionDep`` gives a route that writes: a slot (on SQLite the
    writer lane too), a session on the writing engine committed before the answer, rolled back
    on an error, SQLite's "busy" as 503; all of it in one hop to the thread pool."""
    state = request.app.state
    async with state.admission.slot(write=True):
        return await run_in_threadpool(_unit, request, state.write_engine, work, args)


def _unit(request: Request, engine, work: Callable[..., T], args: tuple) -> T:
    try:
        with session_scope(engine) as session:
            return work(session, *args)
    except OperationalError as exc:
        if is_sqlite_busy(exc):
            raise request.app.state.admission.busy() from exc
        raise


def optional_user(request: Request, session: SessionDep) -> User | None:
    """The signed-in user, or None (the sign-in page itself)."""
    user = _signed_in(request, session)
    request.state.user = _page_user(user) if user else None
    return user


OptionalUser = Annotated[User | None, Depends(optional_user)]


oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/token", auto_error=False)


def api_user(request: Request, session: SessionDep,
             token: Annotated[str | None, Depends(oauth2_scheme)]) -> User:
    """The user a live bearer token names; the API never reads the session cookie."""
    state = request.app.state
    row = live_session(session, token, SessionKind.API, state.clock.now(),
                       Limits.of(state.settings))
    if row is None:
        raise NotAuthenticated()
    request.state.api_token = token
    return session.get(User, row.user_id)


ApiUser = Annotated[User, Depends(api_user)]


async def get_today(settings: SettingsDep, now: NowDep) -> date:
    """Today in the office's time zone: what "overdue" is measured against."""
    return now.astimezone(settings.tz).date()


TodayDep = Annotated[date, Depends(get_today)]
