"""LINE: one-time link codes, who follows the bot, the groups it is in, and webhook events seen."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Column, Field, Session, SQLModel, col, select

from models.types import UTCDateTime, enum_column
from models.user import User


class CodePurpose(StrEnum):
    USER = "user"    # links the LINE account that sends it (1:1 chat) to a tidtam user
    GROUP = "group"  # binds the LINE group it is sent in to a district


class LineLinkCode(SQLModel, table=True):
    """A short one-time code shown in tidtam and sent to the bot in LINE."""

    __tablename__ = "line_link_code"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, max_length=8)
    purpose: CodePurpose = Field(sa_column=enum_column(CodePurpose))
    user_id: int | None = Field(default=None, foreign_key="user.id", index=True,
                                description="purpose user: the account the LINE id joins")
    district_code: str | None = Field(default=None, foreign_key="district.code", max_length=4,
                                      description="purpose group: the district the group serves")
    created_by_id: int = Field(foreign_key="user.id")
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    used_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    used_by: str | None = Field(default=None, max_length=64,
                                description="the LINE user or group id that redeemed it")


class LineContact(SQLModel, table=True):
    """A LINE user who follows (or has unfollowed) the office's Official Account."""

    __tablename__ = "line_contact"

    id: int | None = Field(default=None, primary_key=True)
    line_user_id: str = Field(unique=True, max_length=64)
    followed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    unfollowed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()),
                                           description="set while blocked; pushes stop")


class LineGroup(SQLModel, table=True):
    """A LINE group (or multi-person chat) the bot is in, and the district it speaks for."""

    __tablename__ = "line_group"

    id: int | None = Field(default=None, primary_key=True)
    group_id: str = Field(unique=True, max_length=64)
    district_code: str | None = Field(default=None, foreign_key="district.code", max_length=4,
                                      index=True)
    joined_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    left_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()),
                                     description="the bot was removed; nothing is pushed here")
    bound_by_id: int | None = Field(default=None, foreign_key="user.id")
    bound_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


class LineWebhookEvent(SQLModel, table=True):
    """A webhook event already handled: LINE may deliver the same event again."""

    __tablename__ = "line_webhook_event"

    id: int | None = Field(default=None, primary_key=True)
    webhook_event_id: str = Field(unique=True, max_length=64)
    event_type: str = Field(max_length=32)
    received_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


# --- link codes ---------------------------------------------------------------------------------

def code_exists(session: Session, code: str) -> bool:
    return session.exec(select(LineLinkCode.id).where(LineLinkCode.code == code)).first() is not None


def live_code(session: Session, code: str, purpose: CodePurpose, now: datetime) -> LineLinkCode | None:
    """The code if it is of this purpose, unused and not expired."""
    return session.exec(select(LineLinkCode).where(
        LineLinkCode.code == code, LineLinkCode.purpose == purpose,
        col(LineLinkCode.used_at).is_(None), LineLinkCode.expires_at > now)).first()


def claim_code(session: Session, code_id: int, used_by: str, now: datetime) -> bool:
    """Mark the code used, unless someone else just did: only one redemption ever succeeds."""
    result = session.execute(
        update(LineLinkCode).where(LineLinkCode.id == code_id, col(LineLinkCode.used_at).is_(None))
        .values(used_at=now, used_by=used_by))
    return result.rowcount == 1


def live_user_code(session: Session, user_id: int, now: datetime) -> LineLinkCode | None:
    """The user's newest unused, unexpired code (what the profile page shows)."""
    return session.exec(select(LineLinkCode).where(
        LineLinkCode.purpose == CodePurpose.USER, LineLinkCode.user_id == user_id,
        col(LineLinkCode.used_at).is_(None), LineLinkCode.expires_at > now)
        .order_by(col(LineLinkCode.id).desc())).first()


def live_group_codes(session: Session, created_by_id: int, now: datetime) -> dict[str, LineLinkCode]:
    """District code → the newest live group code this person made for it."""
    rows = session.exec(select(LineLinkCode).where(
        LineLinkCode.purpose == CodePurpose.GROUP, LineLinkCode.created_by_id == created_by_id,
        col(LineLinkCode.used_at).is_(None), LineLinkCode.expires_at > now)
        .order_by(col(LineLinkCode.id))).all()
    return {row.district_code: row for row in rows}


def expire_live_codes(session: Session, now: datetime, *, user_id: int | None = None,
                      district_code: str | None = None) -> None:
    """End the earlier live codes for the same account or district: one live code at a time."""
    if user_id is not None:
        target = (LineLinkCode.purpose == CodePurpose.USER, LineLinkCode.user_id == user_id)
    else:
        target = (LineLinkCode.purpose == CodePurpose.GROUP,
                  LineLinkCode.district_code == district_code)
    session.execute(update(LineLinkCode).where(
        *target, col(LineLinkCode.used_at).is_(None), LineLinkCode.expires_at > now)
        .values(expires_at=now))


# --- contacts and groups ------------------------------------------------------------------------

def get_contact(session: Session, line_user_id: str) -> LineContact | None:
    return session.exec(select(LineContact).where(LineContact.line_user_id == line_user_id)).first()


def users_with_line_id(session: Session, line_user_id: str) -> list[User]:
    """Every account that pushes to this LINE id (usually one)."""
    return list(session.exec(select(User).where(User.line_user_id == line_user_id)
                             .order_by(col(User.id))))


def get_group(session: Session, group_id: str) -> LineGroup | None:
    return session.exec(select(LineGroup).where(LineGroup.group_id == group_id)).first()


def groups_by_district(session: Session, district_codes: list[str]) -> dict[str, LineGroup]:
    """District code → its bound group (still joined), for the coordinator's list."""
    rows = session.exec(select(LineGroup).where(
        col(LineGroup.district_code).in_(district_codes), col(LineGroup.left_at).is_(None))
        .order_by(col(LineGroup.bound_at), col(LineGroup.id))).all()
    return {row.district_code: row for row in rows}


def bound_groups(session: Session, district_code: str) -> list[LineGroup]:
    return list(session.exec(select(LineGroup).where(LineGroup.district_code == district_code)
                             .order_by(col(LineGroup.id))))


# --- webhook idempotency ------------------------------------------------------------------------

def first_delivery(session: Session, webhook_event_id: str, event_type: str,
                   now: datetime) -> bool:
    """Record the event id; False when it was seen before (a redelivery, or a concurrent one)."""
    if session.exec(select(LineWebhookEvent.id).where(
            LineWebhookEvent.webhook_event_id == webhook_event_id)).first() is not None:
        return False
    try:
        with session.begin_nested():
            session.add(LineWebhookEvent(webhook_event_id=webhook_event_id,
                                         event_type=event_type[:32], received_at=now))
    except IntegrityError:
        return False
    return True
