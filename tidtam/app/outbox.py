"""The outbox: putting messages in it (the one way the sweep, the digest and the alerts do it),
and reading it as the province does (its messages, and the people no channel reaches).

A row to be is addressed (a person's address on a channel, or why there is none), keyed
(rung, occurrence, subject, recipient, channel: one message per key, ever) and given its send
time. ``OutboxBatch.write`` reads in one query which keys are queued already, renders only the
new rows' text, inserts them with INSERT … ON CONFLICT DO NOTHING (a key another process wrote
meanwhile is skipped) and counts what happened.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from sqlmodel import Session

from domain.access import PROVINCE_ROLES
from domain.errors import Forbidden, InvalidInput
from domain.ladder import idempotency_key
from models.directive import Directive, directives_of
from models.org import District, districts_of
from models.outbox import (
    Channel,
    MessageFilter,
    OutboxMessage,
    OutboxStatus,
    addressing,
    directive_ids_of,
    enqueue_many,
    existing_keys,
    province_messages,
    province_rungs,
    recipients_of,
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
    parts: dict[str, Enqueued] = field(default_factory=dict)  # the same, per ``OutboxBatch.part``

    def count(self, row: _Row, new: bool) -> None:
        if not new:
            self.already_queued += 1
            return
        self.enqueued += 1
        self.no_channel += row.no_address
        rung = row.values["rung"]
        self.by_rung[rung] = self.by_rung.get(rung, 0) + 1


class Message:
    """One text for many rows (every recipient and channel of a rung), rendered on first use:
    only when some row of it is new."""

    def __init__(self, render: Callable[[], Text]) -> None:
        self._render = render

    @classmethod
    def written(cls, subject: str, body: str) -> Message:
        """A text there is nothing to render for (an event's JSON)."""
        message = cls(lambda: (subject, body))
        message.__dict__["text"] = (subject, body)
        return message

    @cached_property
    def text(self) -> Text:
        return self._render()

    @property
    def rendered(self) -> bool:
        return "text" in self.__dict__


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
    part: str | None = None


class OutboxBatch:
    """The rows one run means to enqueue at ``now``; nothing is written before ``write``.

    ``part``: a label the rows added from now on are counted under (the sweep's province), so
    one write for many provinces still says what each enqueued."""

    def __init__(self, session: Session, now: datetime) -> None:
        self.session, self.now = session, now
        self.rows: list[_Row] = []
        self.part: str | None = None

    def to_user(self, user: User, channel: str, message: Message, *, rung: str,
                occurrence: date, subject_ref: str, send_at: datetime, key_rung: str | None = None,
                **about: Any) -> None:
        """A row for a person on a channel (kept as 'not sent: no channel' without an address)."""
        self.add(channel, message, address=address_of(user, channel), recipient_ref=f"user:{user.id}",
                 who=user.username, user_id=user.id, rung=rung, occurrence=occurrence,
                 subject_ref=subject_ref, send_at=send_at, key_rung=key_rung, **about)

    def add(self, channel: str, message: Message, *, address: str | None, recipient_ref: str,
            who: str, rung: str | None, occurrence: date | None, subject_ref: str | None,
            send_at: datetime, user_id: int | None = None, key_rung: str | None = None,
            key: str | None = None, **about: Any) -> None:
        """A row for any recipient; ``key_rung`` when the key names the rung more finely than
        the row's ``rung`` column (the ops alert's reason); ``key`` for a row keyed otherwise
        than by its rung (an event: ``tidtam.app.events``)."""
        if key is None:
            key = idempotency_key(rung=key_rung or rung, occurrence=occurrence,
                                  subject_ref=subject_ref, recipient_ref=recipient_ref,
                                  channel=str(channel))
        values = {"idempotency_key": key, **addressing(channel, address, who), "user_id": user_id,
                  "rung": rung, "next_try_at": send_at, "created_at": self.now, **about}
        self.rows.append(_Row(key, message, address is None, values, self.part))

    def write(self) -> Enqueued:
        """Insert the rows whose key is new, in the order added; render only their messages.
        What each part added is counted in ``Enqueued.parts`` too."""
        # The keys already there are read first only to spare rendering their text again; rows
        # written out already (an event) go straight to the insert, which skips a known key.
        unrendered = [row.key for row in self.rows if not row.message.rendered]
        existing = existing_keys(self.session, unrendered) if unrendered else set()
        new: dict[str, dict[str, Any]] = {}
        for row in self.rows:
            if row.key not in existing and row.key not in new:
                subject, body = row.message.text
                new[row.key] = {**row.values, "subject": subject, "body": body}
        inserted = enqueue_many(self.session, list(new.values()))
        result = Enqueued()
        for row in self.rows:
            counts = [result]
            if row.part is not None:
                counts.append(result.parts.setdefault(row.part, Enqueued()))
            new_row = row.key in inserted
            inserted.discard(row.key)  # a key repeated within the batch counts once
            for count in counts:
                count.count(row, new_row)
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
    """A page of the province's messages, newest first, with how many match in all
    (``total``) and the routes that stopped working.

    A list, so the JSON API (``/api/v1/outbox``) keeps returning just the messages (the total
    and the next page go in its headers), and the outbox page reads ``broken_routes`` off it.
    """

    broken_routes: list[BrokenRoute]
    total: int


def _may_see(actor: User, directive: Directive | None) -> None:
    """The outbox is the province's: its coordinator and provincial head, its directives."""
    if actor.role not in PROVINCE_ROLES:
        raise Forbidden("only the provincial coordinator and head may see the outbox",
                        "เฉพาะผู้ประสานงานจังหวัดและพัฒนาการจังหวัดเท่านั้นที่ดูรายการข้อความได้")
    if directive is not None and directive.province_code != actor.province_code:
        raise Forbidden(f"you may not see directive {directive.slug}",
                        f"คุณไม่มีสิทธิ์ดูหนังสือสั่งการ {directive.slug}")


def _broken_routes(session: Session, province_code: str) -> list[BrokenRoute]:
    people = broken_routes(session, province_code)
    since = route_broken_since(session, [p.id for p in people])
    return [BrokenRoute(p, Channel.LINE, mask_addresses(p.line_route_error or ""), since.get(p.id))
            for p in people]


def outbox_for(session: Session, actor: User, *, limit: int = 500, offset: int = 0,
               directive: Directive | None = None, events: bool = False,
               query: OutboxQuery | None = None, tz: ZoneInfo | None = None) -> OutboxListing:
    """The province's outbox, newest first, ``limit`` messages from ``offset`` on: for the
    coordinator and the provincial head only.

    ``directive``: only the messages about that directive (one of the actor's province).
    ``events``: the Prefect events about the province's directives too (never another
    province's); without it, only messages to people. ``query``: the filters a person chose
    (its days are ``tz``'s, the settings' by default).
    """
    _may_see(actor, directive)
    query = query or OutboxQuery()
    _in_province(districts_of(session, actor.province_code), query.district_code)
    wanted = query.as_filter(tz or _tz())
    if directive is not None:
        wanted = replace(wanted, directive_id=directive.id)
    messages, total = province_messages(session, actor.province_code, wanted, limit=limit,
                                        offset=offset, events=events)
    listing = OutboxListing(messages)
    listing.broken_routes = _broken_routes(session, actor.province_code)
    listing.total = total
    return listing


def _in_province(districts: list[District], code: str | None) -> None:
    """A district filter names one of the province's districts (else InvalidInput)."""
    if code and code not in {d.code for d in districts}:
        raise InvalidInput(f"district {code} is not in your province",
                           f"อำเภอรหัส {code} ไม่อยู่ในจังหวัดของคุณ")


def _tz() -> ZoneInfo:
    from tidtam.infra.settings import get_settings

    return get_settings().tz


# --- The outbox page for people: filters, names, reasons, pages -------------------------------

PER_PAGE = 50
MAX_PAGE = 100_000
_RUNG = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
_DISTRICT = re.compile(r"^[0-9]{4}$")


@dataclass(frozen=True)
class OutboxQuery:
    """The filters a person chose (the page's GET parameters, the API's query), checked."""

    status: OutboxStatus | None = None
    channel: Channel | None = None
    district_code: str | None = None
    rung: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    page: int = 1

    @property
    def narrowed(self) -> bool:
        """Some filter is set (the page then says "nothing matches", not "nothing yet")."""
        return replace(self, page=1) != OutboxQuery()

    def as_filter(self, tz: ZoneInfo) -> MessageFilter:
        """The query in the database's terms: the chosen local days as UTC instants."""
        return MessageFilter(
            status=self.status, channel=self.channel, district_code=self.district_code,
            rung=self.rung, created_from=_midnight(self.date_from, tz),
            created_before=_midnight(self.date_to + timedelta(days=1), tz)
            if self.date_to else None)


def _midnight(day: date | None, tz: ZoneInfo) -> datetime | None:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC) if day else None


def outbox_query(*, status: str | None = None, channel: str | None = None,
                 district: str | None = None, rung: str | None = None,
                 date_from: str | None = None, date_to: str | None = None,
                 page: str | int | None = None) -> OutboxQuery:
    """The filters as typed (empty: any), checked; a bad value is InvalidInput in both languages."""
    chosen = OutboxQuery(
        status=_choice(status, OutboxStatus, "status", "สถานะ"),
        channel=_choice(channel, Channel, "channel", "ช่องทาง"),
        district_code=_matching(district, _DISTRICT, ("district: a 4-digit district code",
                                                      "อำเภอ: ต้องเป็นรหัสอำเภอ 4 หลัก")),
        rung=_matching(rung, _RUNG, ("rung: letters, digits and '-' (at most 32)",
                                     "ขั้นการแจ้ง: ใช้ได้เฉพาะ a-z 0-9 และ - ไม่เกิน 32 ตัว")),
        date_from=_day(date_from, "from", "ตั้งแต่วันที่"),
        date_to=_day(date_to, "to", "ถึงวันที่"),
        page=_page(page))
    if chosen.date_from and chosen.date_to and chosen.date_from > chosen.date_to:
        raise InvalidInput("dates: 'from' is after 'to'", "วันที่: วันเริ่มต้องไม่อยู่หลังวันสุดท้าย")
    return chosen


def _blank(text: str | None) -> str | None:
    text = (text or "").strip()
    return text or None


def _choice(text: str | None, kind: type[StrEnum], en: str, th: str):
    text = _blank(text)
    if text is None:
        return None
    try:
        return kind(text)
    except ValueError:
        allowed = ", ".join(v.value for v in kind)
        raise InvalidInput(f"{en}: {text[:40]!r} is not one of {allowed}",
                           f"{th}: ไม่รู้จักค่า {text[:40]!r} (ใช้ได้: {allowed})") from None


def _matching(text: str | None, pattern: re.Pattern, label: tuple[str, str]) -> str | None:
    text = _blank(text)
    if text is not None and not pattern.fullmatch(text):
        raise InvalidInput(label[0], label[1])
    return text


def _day(text: str | None, en: str, th: str) -> date | None:
    text = _blank(text)
    if text is None:
        return None
    try:
        if len(text) != 10:
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{en}: {text[:40]!r} is not a date such as 2024-08-09",
                           f"{th}: {text[:40]!r} ไม่ใช่วันที่ในรูปแบบ ค.ศ. เช่น 2024-08-09") from None


def _page(text: str | int | None) -> int:
    text = _blank(str(text)) if text is not None else None
    if text is None:
        return 1
    if not text.isdigit() or not 1 <= int(text) <= MAX_PAGE:
        raise InvalidInput(f"page: a whole number from 1 to {MAX_PAGE}",
                           f"หน้า: ต้องเป็นจำนวนเต็มตั้งแต่ 1 ถึง {MAX_PAGE}")
    return int(text)


@dataclass(frozen=True)
class Reason:
    """Why a message was not sent (yet), in the words of a locale key (``outbox.reason.<code>``,
    Thai and English), with the pump's own English text kept (LINE ids masked)."""

    code: str
    params: dict[str, str]
    original: str
    cause: str | None = None  # after giving up: why the last try failed (a code likewise)


# The pump's, the transports' and the use cases' texts (notifications/, models/outbox.py), first
# match wins; anything else is "other", its English shown as is.
_REASONS: tuple[tuple[str, re.Pattern], ...] = tuple((code, re.compile(pattern)) for code, pattern in (
    ("no_transport", r"^no transport configured for channel (?P<channel>[\w-]+)"),
    ("no_address", r"has no (?P<channel>[\w-]+) address$"),
    ("item_completed", r"^item completed before sending"),
    ("step_completed", r"^every district listed completed the step"),
    ("directive_closed", r"^directive closed before sending"),
    ("report_reviewed", r"^report reviewed before the reminder"),
    ("superseded", r"^superseded by a later review"),
    ("step_removed", r"^step removed by an amended letter"),
    ("step_moved", r"^the step's date moved"),
    ("channel_down", r"^waiting: (?P<channel>[\w-]+) is not answering"),
    ("gave_up", r"^gave up after (?P<attempts>\d+) attempts"),
    ("line_token", r"\[token \w+\] LINE 40[13]"),
    ("line_busy", r"^LINE (429|5\d\d)"),
    ("line_refused", r"^LINE 4\d\d"),
    ("smtp_refused", r"^SMTP recipient refused"),
    ("smtp_deferred", r"^SMTP recipient deferred"),
    ("smtp_setup", r"^SMTP setup"),
    ("smtp_connection", r"^SMTP connection"),
    ("smtp_refused", r"^SMTP 5\d\d"),
    ("smtp_busy", r"^SMTP 4\d\d"),
    ("timeout", r"^timed out"),
    ("network", r"^network error"),
    ("bad_url", r"^bad URL"),
))


def reason_of(text: str | None) -> Reason | None:
    """The reason a person reads for a row's ``last_error`` (None: nothing went wrong)."""
    if not text:
        return None
    inner = text.split(": ", 1)[1] if text.startswith("gave up after ") and ": " in text else ""
    for code, pattern in _REASONS:
        found = pattern.search(text)
        if found:
            params = {k: v for k, v in found.groupdict().items() if v is not None}
            cause = reason_of(inner).code if code == "gave_up" and inner else None
            return Reason(code, params, mask_addresses(text), cause)
    return Reason("other", {}, mask_addresses(text))


_LINE_ID = re.compile(r"\b([UCR][0-9a-f]{4})[0-9a-f]{24}([0-9a-f]{4})\b")
_EMAIL = re.compile(r"(?<![\w.%+-])([\w.%+-]+)@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")


def mask_addresses(text: str) -> str:
    """LINE user, group and room ids cut to their ends (U1a2b…9f0e), and e-mail addresses to
    the ends of their local part (st…3@demo.tidtam.local): enough to tell apart, not to copy."""
    return _EMAIL.sub(lambda m: f"{_masked_local(m.group(1))}@{m.group(2)}",
                      _LINE_ID.sub(r"\1…\2", text))


def _masked_local(local: str) -> str:
    return f"{local[:2]}…{local[-1]}" if len(local) >= 4 else f"{local[:1]}…"


def shown_address(message: OutboxMessage) -> str:
    """Where a row went, as a page may show it: an e-mail or a LINE id masked, a webhook's
    host only."""
    address = message.recipient or ""
    if message.channel == Channel.LINE:
        masked = mask_addresses(address)
        return masked if masked != address or len(address) <= 12 else \
            f"{address[:5]}…{address[-4:]}"
    if message.channel == Channel.WEBHOOK:
        return urlsplit(address).hostname or ""
    if message.channel == Channel.EMAIL:
        return mask_addresses(address)
    return address


@dataclass(frozen=True)
class OutboxRow:
    """One message as a person reads it: to whom (a person and their role, a district's LINE
    group), about which district and directive, and why it was not sent."""

    message: OutboxMessage
    person: User | None
    district: District | None
    directive: Directive | None
    address: str
    reason: Reason | None


@dataclass(frozen=True)
class OutboxPage:
    """A page of the province's messages as filtered, with what the filters offer."""

    rows: list[OutboxRow]
    total: int
    query: OutboxQuery
    per_page: int
    broken_routes: list[BrokenRoute]
    districts: list[District]
    directives: list[Directive]
    rungs: list[str]

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def first(self) -> int:
        """The number of the page's first row (1-based; 0 when there is none)."""
        return (self.query.page - 1) * self.per_page + 1 if self.rows else 0

    @property
    def last(self) -> int:
        return self.first + len(self.rows) - 1 if self.rows else 0


def outbox_page(session: Session, actor: User, query: OutboxQuery, *,
                directive: Directive | None = None, events: bool = False,
                tz: ZoneInfo | None = None, per_page: int = PER_PAGE) -> OutboxPage:
    """The outbox page: the province's messages that match, a page of them, newest first."""
    _may_see(actor, directive)
    province = actor.province_code
    districts = districts_of(session, province)
    _in_province(districts, query.district_code)
    wanted = query.as_filter(tz or _tz())
    if directive is not None:
        wanted = replace(wanted, directive_id=directive.id)
    messages, total = province_messages(session, province, wanted, events=events,
                                        offset=(query.page - 1) * per_page, limit=per_page)
    directives = directives_of(session, province)
    return OutboxPage(
        rows=_rows(session, messages, districts, directives), total=total, query=query,
        per_page=per_page, broken_routes=_broken_routes(session, province),
        districts=districts, directives=directives, rungs=province_rungs(session, province, events))


def _rows(session: Session, messages: list[OutboxMessage], districts: list[District],
          directives: list[Directive]) -> list[OutboxRow]:
    people = recipients_of(session, (m.user_id for m in messages))
    by_code = {d.code: d for d in districts}
    by_id = {d.id: d for d in directives}
    about = directive_ids_of(session, [m.id for m in messages])
    return [OutboxRow(message=m, person=people.get(m.user_id), district=by_code.get(m.district_code),
                      directive=by_id.get(about.get(m.id)), address=shown_address(m),
                      reason=reason_of(m.last_error))
            for m in messages]


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
