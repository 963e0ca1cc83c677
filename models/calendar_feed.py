"""Calendar feeds: a secret address per person (their own deadlines) or per district (a
district's deadlines), named by the SHA-256 of its secret; revoking one ends it for good."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel import Column, Field, Session, SQLModel, col, select

from models.directive import Directive, DirectiveStatus, DirectiveStep, TrackedItem
from models.types import UTCDateTime, enum_column


class FeedScope(StrEnum):
    PERSON = "person"      # the deadlines of the person's own items
    DISTRICT = "district"  # every deadline of one district


class CalendarFeed(SQLModel, table=True):
    """One subscribable address. The secret in the URL is never stored, only ``key_hash``."""

    __tablename__ = "calendar_feed"

    id: int | None = Field(default=None, primary_key=True)
    key_hash: str = Field(unique=True, max_length=64)
    user_id: int = Field(foreign_key="user.id", index=True)
    scope: FeedScope = Field(sa_column=enum_column(FeedScope, length=8))
    district_code: str | None = Field(default=None, foreign_key="district.code", max_length=4)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


def feed_by_key(session: Session, key_hash: str) -> CalendarFeed | None:
    """The live (not revoked) feed this hash names."""
    return session.exec(select(CalendarFeed).where(
        CalendarFeed.key_hash == key_hash, col(CalendarFeed.revoked_at).is_(None))).first()


def live_feeds(session: Session, user_id: int) -> list[CalendarFeed]:
    """The person's feeds not revoked: their own first, then districts by code."""
    return list(session.exec(
        select(CalendarFeed).where(CalendarFeed.user_id == user_id,
                                   col(CalendarFeed.revoked_at).is_(None))
        .order_by(col(CalendarFeed.scope).desc(), col(CalendarFeed.district_code),
                  col(CalendarFeed.id))))


def district_deadlines(session: Session, district_code: str,
                       ) -> list[tuple[TrackedItem, DirectiveStep, Directive]]:
    """Every item of one district in its province's active directives, with its step and
    letter, by due day (one query)."""
    return [tuple(row) for row in session.exec(
        select(TrackedItem, DirectiveStep, Directive)
        .join(DirectiveStep, col(DirectiveStep.id) == col(TrackedItem.step_id))
        .join(Directive, col(Directive.id) == col(TrackedItem.directive_id))
        .where(TrackedItem.district_code == district_code,
               Directive.status == DirectiveStatus.ACTIVE)
        .order_by(col(TrackedItem.due_on), col(Directive.id), col(DirectiveStep.order)))]


def province_step_items(session: Session, province_code: str | None,
                        ) -> list[tuple[TrackedItem, DirectiveStep, Directive]]:
    """Every item of a province's active directives (every province's with ``None``), with its
    step and letter: the province's deadlines are its steps, each over its districts."""
    query = (select(TrackedItem, DirectiveStep, Directive)
             .join(DirectiveStep, col(DirectiveStep.id) == col(TrackedItem.step_id))
             .join(Directive, col(Directive.id) == col(TrackedItem.directive_id))
             .where(Directive.status == DirectiveStatus.ACTIVE))
    if province_code is not None:
        query = query.where(Directive.province_code == province_code)
    return [tuple(row) for row in session.exec(
        query.order_by(col(DirectiveStep.due_on), col(Directive.id), col(DirectiveStep.order),
                       col(TrackedItem.district_code)))]
