"""People who use tidtam, and how to reach them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, update
from sqlmodel import Column, Field, Session, SQLModel, col, select

from domain.access import Role
from models.types import UTCDateTime, enum_column


class UserBase(SQLModel):
    username: str = Field(unique=True, index=True, max_length=64)
    full_name: str
    role: Role = Field(sa_column=enum_column(Role, index=True))
    province_code: str | None = Field(
        default=None, foreign_key="province.code", max_length=2, index=True,
        description="the user's province; none for the Department, which sits above them all")
    district_code: str | None = Field(default=None, foreign_key="district.code", max_length=4,
                                      index=True)
    email: str | None = None
    line_user_id: str | None = Field(default=None, max_length=64)


class User(UserBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    password_hash: str
    is_active: bool = True
    line_route_error: str | None = Field(
        default=None, description="why LINE refused this user's id; pushes stop until relinked")
    created_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


class UserPublic(UserBase):
    id: int


def get_by_username(session: Session, username: str) -> User | None:
    return session.exec(select(User).where(User.username == username)).first()


def active_users(session: Session, province_code: str | None = None) -> list[User]:
    """Everyone active (of one province, with ``province_code``), by id."""
    query = select(User).where(User.is_active == True)  # noqa: E712
    if province_code is not None:
        query = query.where(User.province_code == province_code)
    return list(session.exec(query.order_by(User.id)))


# --- Broken delivery routes (set by the outbox pump, shown on the outbox page and the digest) --

LINE_ROUTE_BROKEN = "user.line_route_broken"


def mark_line_route_broken(session: Session, user_id: int, line_user_id: str, reason: str,
                           now: datetime) -> bool:
    """Stop pushing to a LINE id LINE refused, and audit when; False if already marked or relinked.

    Conditional on the id still being the user's: a person who relinked meanwhile keeps the
    new route. The audit entry's time is the "since when" the coordinator sees.
    """
    from models import audit

    result = session.execute(
        update(User).where(col(User.id) == user_id, col(User.line_user_id) == line_user_id,
                           col(User.line_route_error).is_(None))
        .values(line_route_error=reason))
    if result.rowcount != 1:
        return False
    audit.record(session, at=now, actor="system:outbox-pump", action=LINE_ROUTE_BROKEN,
                 entity="user", entity_id=user_id, before={"line_route_error": None},
                 after={"line_route_error": reason, "channel": "line"})
    return True


LINE_ROUTE_CLEARED = "user.line_route_cleared"


def clear_token_refusals(session: Session, current_mark: str, now: datetime) -> int:
    """Unmark routes broken only because LINE refused an earlier channel token.

    ``current_mark`` names the token now installed (``[token 1a2b3c4d]``): marks made under
    another token are cleared (and audited); those made under this one stay.
    """
    from models import audit

    stale = list(session.exec(select(User).where(
        col(User.line_route_error).contains("[token "),
        ~col(User.line_route_error).contains(current_mark))))
    for user in stale:
        before = user.line_route_error
        user.line_route_error = None
        session.add(user)
        audit.record(session, at=now, actor="system:outbox-pump", action=LINE_ROUTE_CLEARED,
                     entity="user", entity_id=user.id, before={"line_route_error": before},
                     after={"line_route_error": None, "why": "a new channel access token"})
    return len(stale)


def broken_routes(session: Session, province_code: str) -> list[User]:
    """Active people of the province whose LINE route LINE refused: pushes to them are stopped."""
    return list(session.exec(
        select(User).where(User.province_code == province_code, User.is_active == True,  # noqa: E712
                           col(User.line_route_error).is_not(None))
        .order_by(col(User.district_code).nulls_first(), User.username)))


def route_broken_since(session: Session, user_ids: list[int]) -> dict[int, datetime]:
    """When each user's LINE route was last marked broken (from the audit log)."""
    from models.audit import AuditEntry

    if not user_ids:
        return {}
    rows = session.exec(
        select(AuditEntry.entity_id, func.max(AuditEntry.at))
        .where(AuditEntry.action == LINE_ROUTE_BROKEN, AuditEntry.entity == "user",
               col(AuditEntry.entity_id).in_([str(i) for i in user_ids]))
        .group_by(AuditEntry.entity_id))
    return {int(entity_id): at for entity_id, at in rows}
