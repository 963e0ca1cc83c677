"""What routes declare: the database session, the clock, the signed-in user (page or API)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import date, datetime
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from models.user import User, UserPublic
from tidtam.infra.db import is_sqlite_busy, session_scope
from tidtam.infra.settings import Settings

API_TOKEN_SALT = "api-token"
API_TOKEN_MAX_AGE = 12 * 60 * 60  # seconds: one working day, then sign in again


READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


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


def _active_user(session: Session, user_id: object) -> User | None:
    user = session.get(User, user_id) if isinstance(user_id, int) else None
    return user if user is not None and user.is_active else None


def _page_user(user: User) -> UserPublic:
    """A detached copy for the page header: it outlives the session, even a rolled-back one."""
    return UserPublic.model_validate(user, from_attributes=True)


def current_user(request: Request, session: SessionDep) -> User:
    """The user signed in on this browser session, else LoginRequired."""
    user = _active_user(session, request.session.get("user_id"))
    if user is None:
        raise LoginRequired()
    request.state.user = _page_user(user)
    return user


CurrentUser = Annotated[User, Depends(current_user)]


def optional_user(request: Request, session: SessionDep) -> User | None:
    """The signed-in user, or None (the sign-in page itself)."""
    user = _active_user(session, request.session.get("user_id"))
    request.state.user = _page_user(user) if user else None
    return user


OptionalUser = Annotated[User | None, Depends(optional_user)]


def token_serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.session_secret, salt=API_TOKEN_SALT)


def issue_token(settings: Settings, user: User) -> str:
    """A bearer token over the user id, valid for API_TOKEN_MAX_AGE."""
    return token_serializer(settings).dumps(user.id)


oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/token", auto_error=False)


def api_user(session: SessionDep, settings: SettingsDep,
             token: Annotated[str | None, Depends(oauth2_scheme)]) -> User:
    """The user a bearer token names; the API never reads the session cookie (so no CSRF)."""
    if not token:
        raise NotAuthenticated()
    try:
        user_id = token_serializer(settings).loads(token, max_age=API_TOKEN_MAX_AGE)
    except BadSignature as exc:  # also SignatureExpired
        raise NotAuthenticated() from exc
    user = _active_user(session, user_id)
    if user is None:
        raise NotAuthenticated()
    return user


ApiUser = Annotated[User, Depends(api_user)]


async def get_today(settings: SettingsDep, now: NowDep) -> date:
    """Today in the office's time zone: what "overdue" is measured against."""
    return now.astimezone(settings.tz).date()


TodayDep = Annotated[date, Depends(get_today)]
