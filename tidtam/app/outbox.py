"""The outbox: putting messages in it (the one way the sweep, the digest and the alerts do it),
and reading it as the province does (its messages, and the people no channel reaches).

A row to be is addressed (a person's address on a channel, or why there is none), keyed
(rung, occurrence, subject, recipient, channel: one message per key, ever) and given its send
time. ``OutboxBatch.write`` reads in one query which keys are queued already, renders only the
new rows' text, inserts them with INSERT … ON CONFLICT DO NOTHING (a key another process wrote
meanwhile is skipped) and counts what happened.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from typing import Any

from sqlmodel import Session

from domain.access import PROVINCE_ROLES
from domain.errors import Forbidden
from domain.ladder import idempotency_key
from models.directive import Directive
from models.outbox import (
    Channel,
    OutboxMessage,
    addressing,
    enqueue_many,
    existing_keys,
    messages_for_province,
)
from models.user import User, broken_routes, route_broken_since

Text = tuple[str, str]  # (subject, body)


@dataclass
class Enqueued:
    """What a batch did: rows new in the outbox (of which without an address), rows whose key
    was there already, and the new rows per rung."""

    enqueued: int = 0
    already_queued: int = 0
    no_channel: int = 0
    by_rung: dict[str, int] = field(default_factory=dict)


class Message:
    """One text for many rows (every recipient and channel of a rung), rendered on first use:
    only when some row of it is new."""

    def __init__(self, render: Callable[[], Text]) -> None:
        self._render = render

    @cached_property
    def text(self) -> Text:
        return self._render()


def address_of(user: User, channel: str) -> str | None:
    """Where this person gets messages on a channel; None when there is no usable route."""
    if channel == Channel.EMAIL:
        return user.email or None
    if channel == Channel.LINE:
        return None if user.line_route_error else (user.line_user_id or None)
    return None


@dataclass(frozen=True)
class _Row:
    key: str
    message: Message
    no_address: bool
    values: dict[str, Any]


class OutboxBatch:
    """The rows one run means to enqueue at ``now``; nothing is written before ``write``."""

    def __init__(self, session: Session, now: datetime) -> None:
        self.session, self.now = session, now
        self.rows: list[_Row] = []

    def to_user(self, user: User, channel: str, message: Message, *, rung: str,
                occurrence: date, subject_ref: str, send_at: datetime, key_rung: str | None = None,
                **about: Any) -> None:
        """A row for a person on a channel (kept as 'not sent: no channel' without an address)."""
        self.add(channel, message, address=address_of(user, channel), recipient_ref=f"user:{user.id}",
                 who=user.username, user_id=user.id, rung=rung, occurrence=occurrence,
                 subject_ref=subject_ref, send_at=send_at, key_rung=key_rung, **about)

    def add(self, channel: str, message: Message, *, address: str | None, recipient_ref: str,
            who: str, rung: str, occurrence: date, subject_ref: str, send_at: datetime,
            user_id: int | None = None, key_rung: str | None = None, **about: Any) -> None:
        """A row for any recipient; ``key_rung`` when the key names the rung more finely than
        the row's ``rung`` column (the ops alert's reason)."""
        key = idempotency_key(rung=key_rung or rung, occurrence=occurrence, subject_ref=subject_ref,
                              recipient_ref=recipient_ref, channel=str(channel))
        values = {"idempotency_key": key, **addressing(channel, address, who), "user_id": user_id,
                  "rung": rung, "next_try_at": send_at, "created_at": self.now, **about}
        self.rows.append(_Row(key, message, address is None, values))

    def write(self) -> Enqueued:
        """Insert the rows whose key is new, in the order added; render only their messages."""
        existing = existing_keys(self.session, (row.key for row in self.rows))
        new: dict[str, dict[str, Any]] = {}
        for row in self.rows:
            if row.key not in existing and row.key not in new:
                subject, body = row.message.text
                new[row.key] = {**row.values, "subject": subject, "body": body}
        inserted = enqueue_many(self.session, list(new.values()))
        result = Enqueued()
        for row in self.rows:
            if row.key in inserted:
                inserted.discard(row.key)  # a key repeated within the batch counts once
                result.enqueued += 1
                result.no_channel += row.no_address
                rung = row.values["rung"]
                result.by_rung[rung] = result.by_rung.get(rung, 0) + 1
            else:
                result.already_queued += 1
        self.rows.clear()
        return result


# --- The outbox as the province reads it ---------------------------------------------------------

@dataclass(frozen=True)
class BrokenRoute:
    """A person the system can no longer reach on a channel: who, where, why, since when."""

    user: User
    channel: Channel
    reason: str
    since: datetime | None


class OutboxListing(list[OutboxMessage]):
    """The province's messages, newest first, with the routes that stopped working.

    A list, so the JSON API (``/api/v1/outbox``) keeps returning just the messages, and the
    outbox page reads ``broken_routes`` off the same value.
    """

    broken_routes: list[BrokenRoute]


def outbox_for(session: Session, actor: User, *, limit: int = 500,
               directive: Directive | None = None, events: bool = False) -> OutboxListing:
    """The province's outbox, newest first: for the coordinator and the provincial head only.

    ``directive``: only the messages about that directive (one of the actor's province).
    ``events``: the Prefect events about the province's directives too (never another
    province's); without it, only messages to people.
    """
    if actor.role not in PROVINCE_ROLES:
        raise Forbidden("only the provincial coordinator and head may see the outbox",
                        "เฉพาะผู้ประสานงานจังหวัดและพัฒนาการจังหวัดเท่านั้นที่ดูรายการข้อความได้")
    if directive is not None and directive.province_code != actor.province_code:
        raise Forbidden(f"you may not see directive {directive.slug}",
                        f"คุณไม่มีสิทธิ์ดูหนังสือสั่งการ {directive.slug}")
    listing = OutboxListing(messages_for_province(
        session, actor.province_code, limit=limit,
        directive_id=directive.id if directive is not None else None, events=events))
    people = broken_routes(session, actor.province_code)
    since = route_broken_since(session, [p.id for p in people])
    listing.broken_routes = [BrokenRoute(p, Channel.LINE, p.line_route_error or "", since.get(p.id))
                             for p in people]
    return listing


@dataclass(frozen=True)
class PushQuota:
    """The month's LINE push messages against the Official Account's quota."""

    count: int
    quota: int | None  # None: no quota kept
    threshold: float
    fallback_active: bool
    month: date

    @property
    def percent(self) -> int | None:
        return round(100 * self.count / self.quota) if self.quota else None


def push_quota(session: Session, now: datetime) -> PushQuota:
    """The calendar month's (Asia/Bangkok) LINE pushes, counted as messages (a person's grouped
    reminders of a day count once), against ``TIDTAM_LINE_MONTHLY_QUOTA``; past
    ``TIDTAM_LINE_QUOTA_THRESHOLD`` non-urgent reminders go by e-mail."""
    from notifications.pump import line_pushes_this_month, month_start, quota_fallback_active
    from tidtam.infra.settings import get_settings

    settings = get_settings()
    quota = settings.line_monthly_quota or None
    count = line_pushes_this_month(session, now, settings.tz)
    return PushQuota(count=count, quota=quota, threshold=settings.line_quota_threshold,
                     fallback_active=quota_fallback_active(count, quota,
                                                           settings.line_quota_threshold),
                     month=month_start(now, settings.tz).date())
