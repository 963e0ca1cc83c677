"""The notification outbox: every message is a row first, and its delivery result after."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import Index, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Column, Field, Session, SQLModel, col, select

from models.types import UTCDateTime, enum_column


class Channel(StrEnum):
    LINE = "line"
    EMAIL = "email"
    WEBHOOK = "webhook"


class OutboxStatus(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"
    NOT_SENT_NO_CHANNEL = "not-sent-no-channel"


PENDING = (OutboxStatus.QUEUED, OutboxStatus.SENDING)


class OutboxMessage(SQLModel, table=True):
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_try_at"),)

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(unique=True, max_length=255)
    channel: Channel = Field(sa_column=enum_column(Channel))
    recipient: str = Field(description="email address, LINE user/group id, or webhook URL; "
                                       "empty when the person has no usable channel")
    user_id: int | None = Field(default=None, foreign_key="user.id", index=True)
    district_code: str | None = Field(default=None, max_length=4)
    item_id: int | None = Field(default=None, foreign_key="tracked_item.id", index=True)
    step_id: int | None = Field(default=None, foreign_key="directive_step.id")
    rung: str | None = Field(default=None, max_length=32)
    subject: str
    body: str
    status: OutboxStatus = Field(default=OutboxStatus.QUEUED,
                                 sa_column=enum_column(OutboxStatus))
    attempts: int = 0
    next_try_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    lease_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    last_error: str | None = None
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    sent_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


def enqueue(session: Session, message: OutboxMessage) -> bool:
    """Insert the message unless its idempotency key exists; True when it was new."""
    exists = session.exec(select(OutboxMessage.id).where(
        OutboxMessage.idempotency_key == message.idempotency_key)).first()
    if exists is not None:
        return False
    try:
        with session.begin_nested():
            session.add(message)
    except IntegrityError:  # another sweep inserted the same key a moment ago
        return False
    return True


def claim_due(session: Session, now: datetime, *, limit: int = 50,
              lease: timedelta = timedelta(minutes=2)) -> list[OutboxMessage]:
    """Claim due rows by conditional update, so two pumps never send the same row.

    A row left in ``sending`` by a crashed pump becomes claimable again once its lease ends.
    """
    due = or_(
        (OutboxMessage.status == OutboxStatus.QUEUED) & (OutboxMessage.next_try_at <= now),
        (OutboxMessage.status == OutboxStatus.SENDING) & (OutboxMessage.lease_until < now))
    # On PostgreSQL, SKIP LOCKED lets concurrent pumps take different rows instead of racing
    # for the same first batch; SQLite has one writer at a time and ignores the clause.
    candidates = session.exec(
        select(OutboxMessage.id).where(due)
        .order_by(OutboxMessage.next_try_at, OutboxMessage.id).limit(limit)
        .with_for_update(skip_locked=True)).all()
    claimed = []
    for row_id in candidates:
        result = session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == row_id, due)
            .values(status=OutboxStatus.SENDING, lease_until=now + lease,
                    attempts=OutboxMessage.attempts + 1))
        if result.rowcount == 1:
            claimed.append(row_id)
    session.commit()
    if not claimed:
        return []
    return list(session.exec(select(OutboxMessage).where(col(OutboxMessage.id).in_(claimed))
                             .order_by(OutboxMessage.next_try_at, OutboxMessage.id)))


def cancel_pending_for_item(session: Session, item_id: int) -> int:
    """Cancel queued messages about an item that is now done; returns how many."""
    result = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.item_id == item_id, OutboxMessage.status == OutboxStatus.QUEUED)
        .values(status=OutboxStatus.CANCELLED, last_error="item completed before sending"))
    return result.rowcount


def all_messages(session: Session, *, limit: int | None = None) -> list[OutboxMessage]:
    query = select(OutboxMessage).order_by(col(OutboxMessage.id).desc())
    if limit:
        query = query.limit(limit)
    return list(session.exec(query))


# --- Delivery results, written by the pump (notifications/pump.py) -------------------------
# Each update is fenced on (status = sending, attempts = the claim's attempts): a pump whose
# lease ran out and whose row another pump has since reclaimed cannot overwrite that result.

def _finish_claim(session: Session, message_id: int, claimed_attempts: int, /,
                  **values) -> bool:
    result = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.status == OutboxStatus.SENDING,
               OutboxMessage.attempts == claimed_attempts)
        .values(lease_until=None, **values))
    return result.rowcount == 1


def mark_sent(session: Session, message_id: int, attempts: int, now: datetime) -> bool:
    """Record a delivery; False when this claim no longer owns the row."""
    return _finish_claim(session, message_id, attempts, status=OutboxStatus.SENT, sent_at=now,
                         last_error=None)


def mark_retry(session: Session, message_id: int, attempts: int, next_try_at: datetime,
               error: str) -> bool:
    """Put the row back in the queue for a later try after a transient failure."""
    return _finish_claim(session, message_id, attempts, status=OutboxStatus.QUEUED,
                         next_try_at=next_try_at, last_error=error)


def mark_failed(session: Session, message_id: int, attempts: int, error: str) -> bool:
    """Give up on the row: a permanent error, or too many transient ones."""
    return _finish_claim(session, message_id, attempts, status=OutboxStatus.FAILED,
                         last_error=error)


def mark_no_channel(session: Session, message_id: int, attempts: int, reason: str) -> bool:
    """Park the row, visible as "not sent: no channel", instead of dropping it silently."""
    return _finish_claim(session, message_id, attempts, status=OutboxStatus.NOT_SENT_NO_CHANNEL,
                         last_error=reason)


def release_claim(session: Session, message_id: int, attempts: int) -> bool:
    """Hand back a claimed row that was not tried, without counting an attempt."""
    return _finish_claim(session, message_id, attempts, status=OutboxStatus.QUEUED,
                         attempts=attempts - 1)


def disable_line_route(session: Session, user_id: int, line_user_id: str, error: str) -> bool:
    """Stop pushing to a LINE id that LINE refused, unless the user has since relinked."""
    from models.user import User

    result = session.execute(
        update(User).where(User.id == user_id, User.line_user_id == line_user_id)
        .values(line_route_error=error))
    return result.rowcount == 1


# --- Read by the web app's outbox page (web/pages.py, web/api.py) ---------------------------

def messages_for_province(session: Session, province_code: str, *,
                          limit: int | None = None) -> list[OutboxMessage]:
    """A province's messages, newest first: about its districts, to its people, or unaddressed."""
    from models.org import District
    from models.user import User

    districts = select(District.code).where(District.province_code == province_code)
    people = select(User.id).where(User.province_code == province_code)
    query = (select(OutboxMessage)
             .where(or_(col(OutboxMessage.district_code).in_(districts),
                        col(OutboxMessage.user_id).in_(people),
                        col(OutboxMessage.district_code).is_(None)
                        & col(OutboxMessage.user_id).is_(None)))
             .order_by(col(OutboxMessage.id).desc()))
    if limit:
        query = query.limit(limit)
    return list(session.exec(query))
