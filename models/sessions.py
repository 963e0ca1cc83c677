"""Sign-in records: a row per browser session and per API token (ended on sign-out, password
change or disabling), the failed sign-ins the limiter counts, and one-time reset links."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import bindparam, delete, func, or_, update
from sqlalchemy import select as sa_select
from sqlmodel import Column, Field, Session, SQLModel, col, select

from models.types import UTCDateTime, enum_column
from models.user import User, UserPublic


class SessionKind(StrEnum):
    WEB = "web"  # a browser's cookie session
    API = "api"  # a bearer token from /api/v1/token


class LoginSession(SQLModel, table=True):
    """One sign-in: the browser's cookie or the API token names it by a secret whose SHA-256 is
    ``key_hash`` (the secret itself is never stored)."""

    __tablename__ = "login_session"

    id: int | None = Field(default=None, primary_key=True)
    key_hash: str = Field(unique=True, max_length=64)
    user_id: int = Field(foreign_key="user.id", index=True)
    kind: SessionKind = Field(sa_column=enum_column(SessionKind, length=8))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    last_seen_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    ended_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    end_reason: str | None = Field(default=None, max_length=32)
    client: str | None = Field(default=None, max_length=200,
                               description="the browser or program, as it named itself")


class SignInFailure(SQLModel, table=True):
    """A wrong password (or unknown name) at /login or /api/v1/token, for the limiter."""

    __tablename__ = "sign_in_failure"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(index=True, max_length=64)
    address: str = Field(index=True, max_length=64)
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))


class ResetLink(SQLModel, table=True):
    """A one-time link to set a new password, valid until ``expires_at``."""

    __tablename__ = "password_reset"

    id: int | None = Field(default=None, primary_key=True)
    key_hash: str = Field(unique=True, max_length=64)
    user_id: int = Field(foreign_key="user.id", index=True)
    created_by: str = Field(max_length=120)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    used_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


def session_by_key(session: Session, key_hash: str, kind: SessionKind) -> LoginSession | None:
    return session.exec(select(LoginSession).where(LoginSession.key_hash == key_hash,
                                                   LoginSession.kind == kind)).first()


def session_and_user(session: Session, key_hash: str, kind: SessionKind):
    """The session this key names and its user's columns, in one prepared query (a request's
    sign-in check on the hot path, bench P2): a row (``session_id``, ``created_at``,
    ``ended_at``, ``is_active``, then ``UserPublic``'s fields), or None."""
    return session.execute(_SESSION_AND_USER, {"key_hash": key_hash, "kind": kind}).first()


def _session_and_user_query():
    login, user = LoginSession.__table__, User.__table__
    return (sa_select(login.c.id.label("session_id"), login.c.created_at, login.c.ended_at,
                      user.c.is_active, *(user.c[name] for name in UserPublic.model_fields))
            .select_from(login.join(user, user.c.id == login.c.user_id))
            .where(login.c.key_hash == bindparam("key_hash"), login.c.kind == bindparam("kind")))


_SESSION_AND_USER = _session_and_user_query()


def live_sessions(session: Session, user_id: int, kind: SessionKind) -> list[LoginSession]:
    """The user's sessions or tokens not ended, newest first (the profile lists the tokens)."""
    return list(session.exec(
        select(LoginSession).where(LoginSession.user_id == user_id, LoginSession.kind == kind,
                                   col(LoginSession.ended_at).is_(None))
        .order_by(col(LoginSession.created_at).desc(), col(LoginSession.id).desc())))


def end_sessions(session: Session, user_id: int, now: datetime, reason: str,
                 keep: int | None = None) -> int:
    """End every live session and token of the user (but ``keep``); how many were ended."""
    query = update(LoginSession).where(col(LoginSession.user_id) == user_id,
                                       col(LoginSession.ended_at).is_(None))
    if keep is not None:
        query = query.where(col(LoginSession.id) != keep)
    return session.execute(query.values(ended_at=now, end_reason=reason)).rowcount


def failures_since(session: Session, since: datetime, *, username: str | None = None,
                   address: str | None = None) -> tuple[int, datetime | None, datetime | None]:
    """(count, first, last) of the failures since ``since`` of one username or one address."""
    query = select(func.count(), func.min(SignInFailure.at), func.max(SignInFailure.at)).where(
        col(SignInFailure.at) >= since)
    if username is not None:
        query = query.where(SignInFailure.username == username)
    if address is not None:
        query = query.where(SignInFailure.address == address)
    count, first, last = session.exec(query).one()
    return count, _utc(first), _utc(last)


def _utc(value: datetime | None) -> datetime | None:
    """Aggregates bypass the column type: SQLite answers a naive UTC instant."""
    from datetime import UTC

    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def forget_failures(session: Session, username: str, before: datetime) -> None:
    """After a right password, the account's earlier failures no longer count (nor older rows)."""
    session.execute(delete(SignInFailure).where(
        or_(col(SignInFailure.username) == username, col(SignInFailure.at) < before)))


def reset_by_key(session: Session, key_hash: str) -> ResetLink | None:
    return session.exec(select(ResetLink).where(ResetLink.key_hash == key_hash)).first()
