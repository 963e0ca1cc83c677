"""What routes declare: the database session, the clock, the signed-in user (page or API)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from models.directive import ItemFacts, item_facts
from models.sessions import LoginSession, SessionKind
from models.user import User, UserPublic
from tidtam.app.accounts import Limits, live_session, live_user, live_user_and_item
from tidtam.infra.db import (
    StaleConnection,
    autocommitting,
    is_sqlite_busy,
    session_scope,
    stale_connection,
    unpinged,
)
from tidtam.infra.settings import Settings
from web.write_batches import BatchBusy, WriteBatches

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
# the commit: four or five a request), each unit of work a pool checkout, a transaction and its
# commit; on SQLite every hop after the first statement is taken while holding the one writer
# lane (web.admission). Here the sign-in is checked in the same unit of work as the change, in one
# prepared query, and that unit is one hop (``signed_in_and_item``).
#
# Which answer comes first is kept: a request no one is signed in for is sent to sign in even
# when its form is also wrong. So the credentials are checked at once (``read_unit``), as the
# dependency always did, unless the form (or JSON body) is one FastAPI surely accepts; a cookie
# without a session, a stale one or a request without a token is refused at once, as ever.

_DIGITS = re.compile(r"[0-9]{1,18}")  # a non-negative int below 2^63 (RowId, Version)


@dataclass(frozen=True)
class Credentials:
    """Who a request says it is: a browser's session or an API token, and the user when it has
    been checked already (else the unit of work checks it)."""

    kind: SessionKind
    secret: str
    now: datetime
    found: tuple[int, UserPublic] | None = None


def cookie_credentials(request: Request) -> Credentials:
    """What the browser's signed cookie says, checked without the database: a session named, not
    idle. Else LoginRequired, and the cookie forgets the session (but for the language and the
    CSRF seed)."""
    data = request.session
    if "sid" not in data:
        raise LoginRequired()
    state = request.app.state
    now, limits = state.clock.now(), Limits.of(state.settings)
    try:
        idle = now - datetime.fromisoformat(data.get("seen", ""))
    except (TypeError, ValueError):
        idle = None
    secret = data.get("sid")
    if idle is None or idle >= limits.idle or not isinstance(secret, str) or not secret:
        forget_browser_session(request)
        raise LoginRequired()
    return Credentials(SessionKind.WEB, secret, now)


async def browser_credentials(request: Request) -> Credentials:
    """``current_user``'s checks of the cookie (a session named, not idle) now; of the server-side
    session (live, its user active) in the unit of work, or now when the form may be refused."""
    credentials = cookie_credentials(request)
    if not await _surely_valid_form(request):
        credentials = _checked(request, credentials, await read_unit(
            request, live_user, credentials.secret, SessionKind.WEB, credentials.now,
            Limits.of(request.app.state.settings)))
    return credentials


BrowserCredentials = Annotated[Credentials, Depends(browser_credentials)]


async def api_credentials(request: Request,
                          token: Annotated[str | None, Depends(oauth2_scheme)]) -> Credentials:
    """``api_user``'s check of the bearer token: in the unit of work, or now when the body may be
    refused (or there is no token)."""
    state = request.app.state
    now = state.clock.now()
    if not isinstance(token, str) or not token:
        raise NotAuthenticated()
    credentials = Credentials(SessionKind.API, token, now)
    if not _surely_valid_json(request):
        credentials = _checked(request, credentials, await read_unit(
            request, live_user, token, SessionKind.API, now, Limits.of(state.settings)))
    return credentials


ApiCredentials = Annotated[Credentials, Depends(api_credentials)]


async def _surely_valid_form(request: Request) -> bool:
    """The done form as FastAPI surely accepts it (a version, the item's id as plain digits;
    text fields as text); anything else is left to FastAPI, after the sign-in is checked."""
    form = await request.form()  # parsed already by FastAPI: its cached copy
    return (_row_id(request) and _plain_int(form.get("version"))
            and all(isinstance(form.get(name, ""), str) for name in ("note", "next")))


def _surely_valid_json(request: Request) -> bool:
    body = getattr(request, "_json", None)  # parsed already by FastAPI, when it was JSON
    if not _row_id(request) or not isinstance(body, dict):
        return False
    version, note = body.get("version"), body.get("note")
    return (type(version) is int and 0 <= version < 2**63 and (note is None or isinstance(note, str)))


def _row_id(request: Request) -> bool:
    value = request.path_params.get("item_id")
    return _plain_int(value) and int(value) >= 1


def _plain_int(value: object) -> bool:
    return isinstance(value, str) and _DIGITS.fullmatch(value) is not None


def _checked(request: Request, credentials: Credentials,
               found: tuple[int, UserPublic] | None) -> Credentials:
    """What a check of the credentials leaves on the request, as ``current_user`` and
    ``api_user`` leave it; LoginRequired or NotAuthenticated when they name no one."""
    if credentials.kind == SessionKind.API:
        if found is None:
            raise NotAuthenticated()
        request.state.api_token = credentials.secret
    else:
        if found is None:
            forget_browser_session(request)
            raise LoginRequired()
        request.session["seen"] = credentials.now.isoformat()  # the last request's time
        request.state.login_session_id = found[0]
        request.state.user = found[1]
    return replace(credentials, found=found)


class _Refused(Exception):
    """The unit's work failed after the sign-in was checked: who it was, and the error."""

    def __init__(self, found: tuple[int, UserPublic], error: BaseException) -> None:
        self.found, self.error = found, error


async def signed_in_and_item(request: Request, credentials: Credentials, item_id: int,
                             work: Callable[[Session, UserPublic, ItemFacts | None], T]) -> T:
    """``work(session, user, facts)`` in one ``write_unit``, the credentials checked first with
    the item's facts read in the same query (``tidtam.app.accounts.live_user_and_item``; only the
    facts when the credentials were checked already): signed out, nothing is done. ``facts`` is
    None when there is no such item.

    ``work`` writes in one statement on PostgreSQL (``tidtam.app.tracking.complete_facts``), so
    the unit runs on an autocommit connection (``one_write``): no BEGIN, no COMMIT."""
    limits = Limits.of(request.app.state.settings)

    def unit(session: Session) -> tuple[tuple[int, UserPublic] | None, T | None]:
        try:  # the unit's first statement, a read: it may run again (``unpinged``)
            if credentials.found is not None:
                found, facts = credentials.found, item_facts(session, item_id)
            else:
                found, facts = live_user_and_item(session, credentials.secret, credentials.kind,
                                                  credentials.now, limits, item_id)
        except DBAPIError as error:
            if stale_connection(error):
                raise StaleConnection() from error
            raise
        if found is None:
            return None, None
        try:
            return found, work(session, found[1], facts)
        except Exception as error:  # rolled back by the unit; the request still knows who it was
            raise _Refused(found, error) from error

    try:
        found, result = await write_unit(request, unit, one_write=True)
    except _Refused as refused:
        _checked(request, credentials, refused.found)
        error = refused.error
        if isinstance(error, OperationalError) and is_sqlite_busy(error):
            raise request.app.state.admission.busy() from error
        raise error from None
    _checked(request, credentials, found)
    return result


async def read_unit(request: Request, work: Callable[..., T], *args: Any) -> T:
    """``work(session, *args)`` in a session of its own that writes nothing: a database slot,
    one hop to the thread pool."""
    state = request.app.state
    async with state.admission.slot(write=False):
        return await run_in_threadpool(_unit, request, state.engine, work, args)


async def write_unit(request: Request, work: Callable[..., T], *args: Any,
                     one_write: bool = False) -> T:
    """``work(session, *args)`` as ``SessionDep`` gives a route that writes: a slot (on SQLite the
    writer lane too), a session on the writing engine committed before the answer, rolled back
    on an error, SQLite's "busy" as 503; all of it in one hop to the thread pool. On SQLite the
    units waiting for the lane share that hop and one transaction, each in its own SAVEPOINT
    (``web.write_batches``: one commit, one fsync, for all of them). ``one_write``: the unit
    writes in one statement at most, after its reads (PostgreSQL: on an autocommit connection,
    ``tidtam.infra.db.autocommitting``; its one statement is atomic by itself)."""
    state = request.app.state
    if state.write_engine.dialect.name == "sqlite":  # one writer: commit together (group commit)
        batches = getattr(state, "write_batches", None)
        if batches is None:
            batches = state.write_batches = WriteBatches(state.write_engine, state.admission)
        try:
            return await batches.run(lambda session: work(session, *args))
        except BatchBusy as busy:
            raise state.admission.busy() from busy.error
    async with state.admission.slot(write=True):
        if one_write:
            return await run_in_threadpool(_one_write_unit, request, state.write_engine, work,
                                           args)
        return await run_in_threadpool(_unit, request, state.write_engine, work, args)


def _one_write_unit(request: Request, engine, work: Callable[..., T], args: tuple) -> T:
    """A ``one_write`` unit on PostgreSQL: on an autocommit connection, taken from the pool
    without its ping (``tidtam.infra.db.unpinged``). A connection the server dropped fails the
    unit's first statement, a read, with ``StaleConnection`` before anything is written; the
    unit then runs once more on a fresh (pinged) connection. A connection lost during the write
    itself is an OperationalError (503): never run twice."""
    engine = autocommitting(engine)
    try:
        with unpinged():
            return _unit(request, engine, work, args)
    except StaleConnection:
        try:
            return _unit(request, engine, work, args)
        except StaleConnection as again:  # the database is going away: 503
            raise again.__cause__ from None


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


# --- A page read in one hop (the boards, bench P4) -----------------------------------------------
# A page's sync dependencies and route are hops to the thread pool each (the session, the user,
# the route; the session's exit). A board page checks the sign-in (``live_user``: one query),
# reads and renders in one ``read_unit`` instead: one hop, one session. The cookie's rules are
# ``cookie_credentials`` (above), the same ones ``browser_credentials`` applies for the marks.


async def signed_in_page(request: Request, work: Callable[..., T], *args: Any) -> T:
    """``work(session, user, *args)`` for the person signed in on this browser, in one
    ``read_unit`` (one database slot, one hop to the thread pool, one session) with the sign-in
    check: the cookie as ``browser_credentials`` checks it, then the server-side session and its
    user (``live_user``) in the same session, left on the request as ``current_user`` leaves it
    before ``work`` runs (an error page still shows who is signed in). Signed out: LoginRequired,
    nothing read. ``work`` may render (``web.rendering.render``): the page is drawn in the same
    hop."""
    credentials = cookie_credentials(request)
    limits = Limits.of(request.app.state.settings)

    def unit(session: Session) -> T:
        found = live_user(session, credentials.secret, SessionKind.WEB, credentials.now, limits)
        _checked(request, credentials, found)  # LoginRequired when it names no one
        return work(session, found[1], *args)

    return await read_unit(request, unit)
