"""The outbox pump: claim due rows, send each, and record each result after its answer.

The row is written before the send (by whoever enqueued it) and its result after; a pump that
dies mid-send leaves the row ``sending`` under a lease, and ``claim_due`` reclaims it later
(LINE then answers the replayed ``X-Line-Retry-Key`` with 409, which counts as delivered).

Rows of an async transport (LINE) go out concurrently on the pump's own event
loop, while mail and webhooks go one by one in the calling thread; every result is written
as soon as it is known, and all of them before the pass returns (so before the next claim).

Every next try is stored in the row (``next_try_at``) and falls inside office hours of the
calendar of the row's directive, so a restarted pump simply resumes the schedule.

A machine's channel (Prefect events: a transport with ``office_hours = False`` and
``gives_up = False``) is sent at any hour, retried after a short capped backoff for as long as
its service is down (never failed for too many tries), and left queued, untouched, by a pump
that has no transport for it (it waits, visible, for a pump that has one).

Attempts count tries, not claims: a try is counted when its result is written, so a claim
that dies with its pump (kill -9, a lost machine) spends none of the row's ``MAX_ATTEMPTS``;
each claim only takes a new fencing token (``claims``). The retry key (LINE) and Message-ID
(e-mail) derive from the row's idempotency key, so a reclaimed row is sent under the same ones.

A pass that loses its database (a restart, a cut connection) starts no more sends, keeps the
results it learns meanwhile, and writes them, handing back every row it did not try, as soon
as the database answers again: a delivery already accepted is recorded, not sent again, and
the rows not yet tried are due again at once instead of after the lease.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import enum
import inspect
import logging
import queue
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, select

from domain.calendar import WorkCalendar
from models.outbox import (
    MACHINE_CHANNELS,
    Channel,
    DeliveryClaim,
    OutboxMessage,
    OutboxStatus,
    addressing,
    cancel_claimed,
    claim_delivery,
    claim_due,
    defer_claim,
    delivery_went_out,
    directive_of,
    enqueue_many,
    finish_deliveries,
    line_pushes_between,
    mark_failed,
    mark_no_channel,
    mark_retry,
    mark_sent,
    mark_sent_many,
    outbox_values,
    postpone,
    queued_on_channel,
    record_rendered,
    release_claim,
)
from models.unreachable import database_unreachable
from models.user import clear_token_refusals, mark_line_route_broken
from notifications.base import AsyncTransport, Transport, TransportError
from notifications.flex import Card, flex_messages
from notifications.line import AsyncLineTransport, token_mark
from notifications.render import (
    TEMPLATE_FOR_STANDING,
    render_daily_email,
    render_message,
    standing_of,
)

if TYPE_CHECKING:
    from apscheduler.job import Job
    from apscheduler.schedulers.base import BaseScheduler

log = logging.getLogger(__name__)

SessionFactory = Callable[[], AbstractContextManager[Session]]

BANGKOK = ZoneInfo("Asia/Bangkok")
# With the 1 h cap and 8 office hours a day, 20 tries span about two working days of outage.
MAX_ATTEMPTS = 20
BACKOFF_BASE = 30.0
BACKOFF_CAP = 3600.0
JITTER = 0.2
# Sends start only in the first half of the lease, so a send that runs into its own timeout
# (SMTP 30 s, httpx 10 s in the web app) still ends before another pump may reclaim the row.
LEASE = timedelta(minutes=5)
# While the database is unreachable, a pass that holds results tries to write them again after
# this long, doubling up to the cap, until the database answers or the claims' lease ends.
RECONNECT_FIRST = 0.1
RECONNECT_CAP = 2.0
# Rows a pass of the scheduled job claims: LINE sends them 50 at a time, so a bigger batch
# keeps every slot busy for longer between two claims (mail still stops at half the lease).
BATCH = 500
# A machine's channel (events) retries sooner: 5 s doubling, at most a minute apart, so what
# happened while its server was down arrives within a minute of its return.
MACHINE_BACKOFF_BASE = 5.0
MACHINE_BACKOFF_CAP = 60.0


@dataclass
class PumpResult:
    """What one pump pass did, for logs and tests."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    no_channel: int = 0
    released: int = 0
    cancelled: int = 0

    @property
    def total(self) -> int:
        return sum(getattr(self, f.name) for f in fields(self))

    def __add__(self, other: PumpResult) -> PumpResult:
        return PumpResult(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))


def backoff(attempts: int, retry_after: float | None = None, *,
            jitter: float = 0.0, base: float = BACKOFF_BASE, cap: float = BACKOFF_CAP) -> timedelta:
    """Wait before the next try: 30 s doubling per attempt, capped at 1 h, minus the jitter.

    ``jitter`` (clamped to 0–0.2) takes up to a fifth off, so rows that failed together do
    not retry together and the cap stays a cap. A service's own ``Retry-After`` is a floor,
    never shortened (nor capped: the service knows when it will take us back).
    """
    jitter = max(0.0, min(JITTER, jitter))
    seconds = min(cap, base * 2 ** max(0, attempts - 1)) * (1 - jitter)
    return timedelta(seconds=max(seconds, retry_after or 0.0))


def next_try(now: datetime, attempts: int, error: TransportError, calendar: WorkCalendar,
             tz: ZoneInfo, *, jitter: float = 0.0) -> datetime:
    """When to try again: after the backoff and the service's Retry-After, in office hours."""
    earliest = now + backoff(attempts, error.retry_after, jitter=jitter)
    if error.retry_at is not None:
        earliest = max(earliest, error.retry_at)
    return calendar.next_send_slot(earliest, tz)


def keeps_office_hours(transport: object) -> bool:
    """People's channels wait for office hours; a machine's (``office_hours = False``) does not."""
    return getattr(transport, "office_hours", True)


def gives_up(transport: object) -> bool:
    """People's channels stop after ``MAX_ATTEMPTS``; a machine's (``gives_up = False``) retries
    until its service answers."""
    return getattr(transport, "gives_up", True)


def next_machine_try(now: datetime, attempts: int, error: TransportError, *,
                     jitter: float = 0.0) -> datetime:
    """When a machine's row is tried again: soon, at any hour, after the service's Retry-After."""
    earliest = now + backoff(attempts, error.retry_after, jitter=jitter,
                             base=MACHINE_BACKOFF_BASE, cap=MACHINE_BACKOFF_CAP)
    return max(earliest, error.retry_at) if error.retry_at is not None else earliest


class Skipped(enum.Enum):
    """A claimed row the pass did not try: handed back without counting an attempt."""

    NOT_STARTED = "not started"


@dataclass(frozen=True)
class NoChannel:
    """A claimed row with no way to send it: kept as 'not sent: no channel'."""

    reason: str


@dataclass(frozen=True)
class Deferred:
    """A claimed row due while the office is closed: handed back to wait for ``until``."""

    until: datetime


@dataclass(frozen=True)
class Cancelled:
    """A claimed row that must not go out any more (its item is done, a newer message
    supersedes it, or the LINE quota sends it by e-mail): kept, cancelled, with the reason."""

    reason: str


# A claimed row's outcome: None when delivered.
Outcome = TransportError | Skipped | NoChannel | Deferred | Cancelled | None


@dataclass
class _Pass:
    """One pass of the pump: its inputs, the calendars it has read, and what it did."""

    session_factory: SessionFactory
    transports: dict[str, Transport | AsyncTransport]
    now: datetime
    tz: ZoneInfo
    max_attempts: int
    deadline: float  # time.monotonic() after which no send starts
    lease_end: float  # time.monotonic() when the claims' lease ends (results may wait till then)
    policy: DeliveryPolicy = field(default_factory=lambda: DEFAULT_POLICY)
    lease: timedelta = LEASE
    # This pass's name on the deliveries it claims (models.outbox.claim_delivery).
    holder: str = field(default_factory=lambda: uuid.uuid4().hex)
    result: PumpResult = field(default_factory=PumpResult)
    calendars: dict[int | None, WorkCalendar] = field(default_factory=dict)
    # channel → (the instant its service may be back, why it is down)
    down: dict[str, tuple[datetime, str]] = field(default_factory=dict)
    # Results not written because the database was unreachable; once it is, no send starts and
    # every later result joins them, all written by ``_write_held`` before the pass ends.
    held: list[tuple[OutboxMessage, Outcome]] = field(default_factory=list)
    database_lost: bool = False
    # The pass of the same drain whose sends were still in flight when this one claimed
    # (``drain``): once it loses the database, this one starts no send either.
    previous: _Pass | None = None

    def count(self, outcome: str) -> None:
        setattr(self.result, outcome, getattr(self.result, outcome) + 1)

    def calendar(self, session: Session, directive_id: int | None) -> WorkCalendar:
        """The directive's own working days and office hours; the default for no directive."""
        if directive_id not in self.calendars:
            self.calendars[directive_id] = _calendar_of(session, directive_id)
        return self.calendars[directive_id]

    def may_start(self) -> bool:
        return (not self.database_lost and time.monotonic() <= self.deadline
                and not (self.previous is not None and self.previous.database_lost))

    def lose_database(self, exc: DBAPIError) -> None:
        if not self.database_lost:
            log.warning("outbox pump: the database went away during a pass (%s); no more sends "
                        "start in it, and its results are written once the database is back",
                        _first_line(exc))
        self.database_lost = True


def _calendar_of(session: Session, directive_id: int | None) -> WorkCalendar:
    from domain.directive import DirectiveSpec
    from models.directive import Directive

    directive = session.get(Directive, directive_id) if directive_id is not None else None
    if directive is None:
        return WorkCalendar()
    return DirectiveSpec.model_validate(directive.definition).work_calendar()


def deliver_due(session_factory: SessionFactory,
                transports: dict[str, Transport | AsyncTransport], now: datetime, *,
                tz: ZoneInfo = BANGKOK, limit: int = 50, max_attempts: int = MAX_ATTEMPTS,
                lease: timedelta = LEASE, policy: DeliveryPolicy | None = None) -> PumpResult:
    """Send every due row once; safe to run in several processes at the same time.

    Blocks the calling thread until every result is written: call it from a worker thread
    (the APScheduler job), never from a running event loop.
    """
    claimed = _claim(session_factory, transports, now, tz=tz, limit=limit,
                     max_attempts=max_attempts, lease=lease, policy=policy)
    claimed.start()
    return claimed.finish()


# A drain claims its next batch while the current one is still going out, once no more than
# this many of the current one's rows are left to start (``_Claimed.record_until_nearly_sent``):
# a claim waits for the disk (a commit), which on a busy machine can take longer than a few
# rounds of sends, so the next batch is claimed as soon as the service has answered (P3).
OVERLAP_ROWS = BATCH
# A drain's first claim: this many rounds of the async transports' slots (100 rows at 50).
FIRST_ROUNDS = 2


def drain(session_factory: SessionFactory, transports: dict[str, Transport | AsyncTransport],
          clock: Callable[[], datetime], *, tz: ZoneInfo = BANGKOK,
          batch: int = BATCH, policy: DeliveryPolicy | None = None) -> PumpResult:
    """Pass after pass until one comes up short, so a backlog goes out in one run of the job,
    not ``batch`` rows per interval; a pass that hands rows back (the service is down, the
    office closed, the lease ran short) ends it too, so nothing spins.

    The passes overlap where that changes nothing: once a full pass's concurrent sends have
    had an answer, the next batch is claimed and its sends queue behind the ones in flight (a
    recipient's rows still one after another, in order), so the sends never wait for a claim
    or a result write. A pass that has met trouble (a row handed back, the service down, the database
    gone) is finished before anything more is claimed, as is one whose recipients' message of
    the day, or the LINE quota, the next batch's decisions depend on.
    """
    total = PumpResult()
    kwargs = {"tz": tz, "policy": policy}
    # The first claim is what the first send waits for: a few rounds of the slots, claimed
    # quickly, and the next (full) batch claimed while those go out.
    limit = min(batch, max([FIRST_ROUNDS * t.concurrency for t in transports.values()
                            if _is_async(t)], default=batch))
    current = _claim(session_factory, transports, clock(), limit=limit, **kwargs)
    current.start()
    while True:
        following: _Claimed | None = None
        try:
            if len(current.rows) >= limit and current.record_until_nearly_sent(OVERLAP_ROWS):
                following = _claim(session_factory, transports, clock(), limit=batch,
                                   previous=current, **kwargs)
                if not following.depends_on(current):
                    following.start(after=current)
            result = current.finish()
        except BaseException:
            current.abandon()
            if following is not None:
                following.abandon()
            raise
        total += result
        current.run.previous = None  # settled: no chain of finished passes kept alive
        ends = result.total < limit or result.released
        limit = batch
        if following is None:
            if ends:
                return total
            following = _claim(session_factory, transports, clock(), limit=batch, **kwargs)
            following.start()
        elif not following.started:
            if ends:  # the drain stops here: the batch it claimed early goes back untried
                following.hand_back(after=current)
                return total + following.finish()
            following.start(after=current)
        current = following


class _Claimed:
    """One pass's claimed rows, from the claim to the last result written.

    ``start`` decides at send time and starts the sends (a synchronous transport's one by one
    in this thread, an async transport's on the pump's loop); ``finish`` writes every result
    as it comes back, hands back what was not tried, and holds back a channel that is down.
    """

    def __init__(self, run: _Pass, rows: list[OutboxMessage]) -> None:
        self.run, self.rows = run, rows
        self.started = False
        self.fan_outs: list[_FanOut] = []
        self.deliveries: set[tuple[str, str]] = set()  # (channel, recipient) of grouped sends
        self.lanes: dict[str, _Lane] = {}

    def start(self, after: _Claimed | None = None) -> None:
        """``after``: the pass of the same drain still sending; this one shares its view of
        each channel (down: no more sends; a recipient's rows in order across both)."""
        run = self.run
        self.started = True
        if after is not None:
            self.lanes = after.lanes
            run.down = after.run.down
        ready = _at_send_time(run, _sendable(run, self.rows))
        self.deliveries = {(d.channel, d.recipient) for d in ready if isinstance(d, Delivery)}
        self.fan_outs = [_FanOut(run, transport, [r for r in ready if r.channel == channel],
                                 self.lanes.setdefault(channel, _Lane()))
                         for channel, transport in run.transports.items()
                         if _is_async(transport) and any(r.channel == channel for r in ready)]
        try:
            for row in ready:
                if not _is_async(run.transports[row.channel]):
                    _deliver_one(run, row)
                    for fan_out in self.fan_outs:
                        fan_out.record_ready()
        except BaseException:
            self.abandon()
            raise

    def depends_on(self, sending: _Claimed) -> bool:
        """Whether deciding this batch at send time must wait for ``sending``'s results: a
        recipient's message of the day it is sending now (sent, or let go, decides whether
        these rows go today), or the month's LINE pushes the quota counts."""
        policy = self.run.policy
        return any((policy.group and (row.channel, row.recipient) in sending.deliveries)
                   or (policy.line_monthly_quota is not None and row.channel == Channel.LINE
                       and row.rung in NON_URGENT_RUNGS)
                   for row in self.rows)

    def record_until_nearly_sent(self, left: int) -> bool:
        """Write the results coming back until at most ``left`` rows are still to start and the
        service has answered; False (nothing more should be claimed yet) when the pass is not
        all concurrent sends, or has met trouble."""
        if not self.fan_outs:
            return False
        while True:
            if self.troubled():
                return False
            if all(f.unstarted <= left and f.transport.answering for f in self.fan_outs):
                return True
            if all(f.future.done() for f in self.fan_outs):
                return not self.troubled()
            for fan_out in self.fan_outs:
                fan_out.record_some(timeout=0.02)

    def troubled(self) -> bool:
        run = self.run
        return (run.database_lost or bool(run.down) or run.result.released > 0
                or any(lane.down for lane in self.lanes.values())
                or time.monotonic() > run.deadline)

    def finish(self) -> PumpResult:
        run = self.run
        try:
            for fan_out in self.fan_outs:
                fan_out.record_all()
        finally:
            for fan_out in self.fan_outs:
                fan_out.stop()
        _write_held(run)
        for channel, (until, reason) in run.down.items():
            _hold_channel(run, Channel(channel), until, reason)
        if run.result.total:
            log.info("outbox pump: %s", run.result)
        return run.result

    def hand_back(self, after: _Claimed) -> None:
        """Hand every row back untried (the drain ends before this batch is decided); a
        channel ``after`` found down holds them back with the rest of its queue."""
        self.started = True
        self.run.down = after.run.down
        _record(self.run, [(row, Skipped.NOT_STARTED) for row in self.rows])

    def abandon(self) -> None:
        """Start no more sends and wait for those under way (their rows keep their lease)."""
        for fan_out in self.fan_outs:
            fan_out.stop()


def _claim(session_factory: SessionFactory, transports: dict[str, Transport | AsyncTransport],
           now: datetime, *, tz: ZoneInfo = BANGKOK, limit: int = 50,
           max_attempts: int = MAX_ATTEMPTS, lease: timedelta = LEASE,
           policy: DeliveryPolicy | None = None, previous: _Claimed | None = None) -> _Claimed:
    """Claim up to ``limit`` due rows for a new pass."""
    unserved = [c for c in MACHINE_CHANNELS if c.value not in transports]
    with session_factory() as session:
        rows = claim_due(session, now, limit=limit, lease=lease, skip_channels=unserved)
        session.expunge_all()  # plain objects from here on; each result gets a fresh session
    started = time.monotonic()
    run = _Pass(session_factory, transports, now, tz, max_attempts,
                deadline=started + lease.total_seconds() / 2,
                lease_end=started + lease.total_seconds(), policy=policy or DEFAULT_POLICY,
                lease=lease, previous=previous.run if previous is not None else None)
    return _Claimed(run, rows)


def _sendable(run: _Pass, rows: list[OutboxMessage]) -> list[OutboxMessage]:
    """The rows to send now; the others get their result at once, in one transaction: no
    channel to send them on, or due while the office is closed (the pump ran late)."""
    ready: list[OutboxMessage] = []
    outcomes: list[tuple[OutboxMessage, Outcome]] = []
    slots: dict[int | None, datetime] = {}
    with _handed_back_if_database_lost(run, rows) as loss, run.session_factory() as session:
        for row in rows:
            transport = run.transports.get(row.channel)
            if transport is None or not row.recipient.strip():
                reason = (f"no transport configured for channel {row.channel!s}"
                          if transport is None
                          else f"recipient has no {row.channel!s} address")
                outcomes.append((row, NoChannel(reason)))
                continue
            if not keeps_office_hours(transport):
                ready.append(row)
                continue
            directive_id = directive_of(session, row)
            if directive_id not in slots:  # one office-hours check a calendar, not a row
                slots[directive_id] = run.calendar(session, directive_id).next_send_slot(
                    run.now, run.tz)
            slot = slots[directive_id]
            if slot > run.now:
                outcomes.append((row, Deferred(slot)))
            else:
                ready.append(row)
    if loss.lost:
        return []
    _record(run, outcomes)
    return ready


@dataclass
class _Loss:
    lost: bool = False


@contextmanager
def _handed_back_if_database_lost(run: _Pass, rows: list[OutboxMessage]) -> Iterator[_Loss]:
    """A step of the pass before any send: if the database goes away in it, the pass starts no
    send, and every claimed row is handed back untried once the database answers again
    (``_write_held``); ``lost`` tells the caller to go no further. Other errors pass through."""
    loss = _Loss()
    try:
        yield loss
    except DBAPIError as exc:
        if not database_unreachable(exc):
            raise
        run.lose_database(exc)
        run.held.extend((row, Skipped.NOT_STARTED) for row in rows)
        loss.lost = True


# --- At send time: the true text, one message a person a day, the LINE quota --------------

# Rungs about one item that tell its district what to do: their text is decided when sent,
# from the item's standing then, and one person's of a day go out as one message a channel.
REMINDER_RUNGS = frozenset({"reminder-3", "reminder-1", "overdue", "due-today", "late"})
# Rungs about a whole step (one letter listing the late districts, to the coordinators or the
# provincial head): sent as written, but in the recipient's one message of the day.
STEP_RUNGS = frozenset({"coordinator", "provincial-head"})
# Reminders that can wait for e-mail once the LINE quota runs short (the due day and after cannot).
NON_URGENT_RUNGS = frozenset({"reminder-3", "reminder-1"})
DIGEST_RUNG = "digest"
QUOTA_RUNG = "line-quota"
GROUPED_CHANNELS = (Channel.LINE, Channel.EMAIL)


@dataclass(frozen=True)
class DeliveryPolicy:
    """How the pump shapes what it sends: links in the cards, grouping, the LINE quota.

    ``line_monthly_quota``: push messages the Official Account may send in a calendar month
    (Asia/Bangkok); None: no quota kept. Past ``quota_threshold`` of it, non-urgent reminders
    go by e-mail to whoever has one, and the coordinators are told once that month.
    """

    base_url: str = "http://127.0.0.1:8000"
    group: bool = True
    line_monthly_quota: int | None = None
    quota_threshold: float = 0.8


DEFAULT_POLICY = DeliveryPolicy()


@dataclass
class Delivery:
    """One message carrying several rows (one person's reminders of the day on one channel).

    Sent by the transports like a row (``recipient``, ``idempotency_key`` for the LINE retry
    key and the e-mail Message-ID, ``subject``/``body``) plus ``line_messages`` (the Flex
    carousel) or ``html``; every member row gets the delivery's outcome.
    """

    rows: list[OutboxMessage]
    channel: str
    recipient: str
    idempotency_key: str
    subject: str
    body: str
    line_messages: list[dict] | None = None
    html: str | None = None

    @property
    def id(self) -> int | None:
        return self.rows[0].id

    @property
    def user_id(self) -> int | None:
        return self.rows[0].user_id


def month_start(now: datetime, tz: ZoneInfo) -> datetime:
    """The first instant of ``now``'s calendar month in ``tz``."""
    local = now.astimezone(tz)
    return datetime(local.year, local.month, 1, tzinfo=tz)


def next_month_start(now: datetime, tz: ZoneInfo) -> datetime:
    start = month_start(now, tz)
    return datetime(start.year + start.month // 12, start.month % 12 + 1, 1, tzinfo=tz)


def quota_fallback_active(count: int, quota: int | None, threshold: float) -> bool:
    """Whether non-urgent LINE pushes go by e-mail: the month's count reached the threshold."""
    return quota is not None and count >= quota * threshold


def line_pushes_this_month(session: Session, now: datetime, tz: ZoneInfo = BANGKOK) -> int:
    return line_pushes_between(session, month_start(now, tz), next_month_start(now, tz))


def delivery_key_for(channel: str, recipient: str, day: date) -> str:
    """The one reminder message of a recipient on a channel on a local day."""
    return f"daily|{day.isoformat()}|{channel}|{recipient}"


@dataclass
class _Reminder:
    row: OutboxMessage
    card: Card | None  # None: a letter about a whole step, sent as written
    subject: str
    body: str


def _at_send_time(run: _Pass, ready: list[OutboxMessage]) -> list[OutboxMessage | Delivery]:
    """Decide at send time what each ready row says, and in which message it goes.

    An item's reminder is rendered from the item's standing now (done or waived: cancelled); a
    digest of a day gone by is cancelled (that day's own digest supersedes it); one recipient's
    reminders on LINE or e-mail go as one message, at most one a local day (rows that fall due
    after it wait for the next working day); past the LINE quota's threshold, non-urgent
    reminders on LINE are cancelled for the person's e-mail. The text sent is written on the row.
    """
    if not ready:
        return []
    today = run.now.astimezone(run.tz).date()
    sendables: list[OutboxMessage | Delivery] = []
    outcomes: list[tuple[OutboxMessage, Outcome]] = []
    with _handed_back_if_database_lost(run, ready) as loss, run.session_factory() as session:
        fallback = _quota_fallback(run, session, ready)
        groups: dict[tuple[str, str, str], list[_Reminder]] = {}
        for row in ready:
            occurrence = _occurrence(row) if row.rung == DIGEST_RUNG else None
            if occurrence is not None and occurrence < today:
                outcomes.append((row, Cancelled(
                    "superseded: a digest of a day gone by is not sent beside that day's own")))
                continue
            if row.item_id is None and row.step_id is not None and row.rung in STEP_RUNGS \
                    and run.policy.group and row.channel in GROUPED_CHANNELS:
                key = row.delivery_key or delivery_key_for(row.channel, row.recipient, today)
                groups.setdefault((row.channel, row.recipient, key), []).append(
                    _Reminder(row, None, row.subject, row.body))
                continue
            if row.item_id is None or row.rung not in REMINDER_RUNGS:
                sendables.append(row)
                continue
            reminder = _render_reminder(run, session, row, today)
            if isinstance(reminder, Cancelled):
                outcomes.append((row, reminder))
                continue
            if fallback and row.channel == Channel.LINE and row.rung in NON_URGENT_RUNGS:
                moved = _to_email(run, session, reminder)
                if moved is not None:
                    outcomes.append((row, moved))
                    continue
            if run.policy.group and row.channel in GROUPED_CHANNELS:
                key = row.delivery_key or delivery_key_for(row.channel, row.recipient, today)
                groups.setdefault((row.channel, row.recipient, key), []).append(reminder)
                continue
            row.subject, row.body = reminder.subject, reminder.body
            record_rendered(session, row.id, row.claims, row.subject, row.body)
            sendables.append(row)
        # Claimed in the order of their keys: two passes never each wait for a claim the other
        # holds (a deadlock on PostgreSQL).
        for (channel, recipient, key), members in sorted(groups.items()):
            delivery = _group(run, session, channel, recipient, key, members, today, outcomes)
            if delivery is not None:
                sendables.append(delivery)
        session.commit()
    if loss.lost:
        return []
    _record(run, outcomes)
    return sendables


def _occurrence(row: OutboxMessage) -> date | None:
    """The day a row's idempotency key names (``rung|YYYY-MM-DD|…``), if it names one."""
    parts = row.idempotency_key.split("|")
    try:
        return date.fromisoformat(parts[1]) if len(parts) > 1 else None
    except ValueError:
        return None


def _render_reminder(run: _Pass, session: Session, row: OutboxMessage,
                     today: date) -> _Reminder | Cancelled:
    """The reminder as the item stands today: its card and its letter."""
    from models.directive import Directive, DirectiveStep, ItemStatus, StepKind, TrackedItem
    from models.org import District

    item = session.get(TrackedItem, row.item_id)
    if item is None or item.status != ItemStatus.OPEN:
        why = "waived" if item is not None and item.status == ItemStatus.WAIVED else "completed"
        return Cancelled(f"item {why} before sending")
    directive = session.get(Directive, item.directive_id)
    step = session.get(DirectiveStep, item.step_id)
    district = session.get(District, item.district_code)
    calendar = run.calendar(session, item.directive_id)
    days = calendar.working_days_between(item.due_on, today)
    url = f"{run.policy.base_url.rstrip('/')}/items/{item.id}"
    card = Card(item_id=item.id, reference_no=directive.reference_no,
                letter_title=directive.title_th, step_title=step.title_th, due_on=item.due_on,
                days=days, url=url, report_step=step.kind == StepKind.REPORT,
                district_name=district.name_th if district else None)
    subject, body = render_message(
        TEMPLATE_FOR_STANDING[standing_of(days)], directive=directive, step=step,
        district=district, districts_late=[], rung=row.rung, due_on=item.due_on, days=abs(days),
        base_url=run.policy.base_url, item_id=item.id)
    return _Reminder(row, card, subject, body)


def _group(run: _Pass, session: Session, channel: str, recipient: str, key: str,
           members: list[_Reminder], today: date,
           outcomes: list[tuple[OutboxMessage, Outcome]]) -> Delivery | None:
    """One message for a recipient's reminders of the day, or none when today's has gone out
    (then the rows wait for the next working day's office hours)."""
    ids = [m.row.id for m in members]
    if delivery_went_out(session, key, exclude=ids):
        fresh = [m for m in members if m.row.delivery_key != key]
        for member in fresh:
            outcomes.append((member.row, Deferred(_next_working_morning(run, session, member.row,
                                                                        today))))
        members = [m for m in members if m.row.delivery_key == key]
        if not members:
            return None
    # The database decides which pass sends it: another pump may hold this recipient's
    # message of the day (its rows wait for that claim's lease, then see it sent) or have
    # sent it (they wait for the next working day).
    claim, held_until = claim_delivery(session, key, run.holder, run.now, run.lease)
    if claim is not DeliveryClaim.CLAIMED:
        for member in members:
            until = held_until if claim is DeliveryClaim.HELD and held_until is not None \
                else _next_working_morning(run, session, member.row, today)
            outcomes.append((member.row, Deferred(until)))
        return None
    for member in members:
        member.row.subject, member.row.body = member.subject, member.body
        member.row.delivery_key = key
        record_rendered(session, member.row.id, member.row.claims, member.subject, member.body,
                        delivery_key=key)
    rows = [m.row for m in members]
    cards = [m.card for m in members if m.card is not None]
    letters = [m for m in members if m.card is None]
    # The same rows make the same retry key (a retry of the same message); a part of them
    # (a group split by a failure) is another message.
    signature = ",".join(str(i) for i in sorted(r.id for r in rows))
    delivery = Delivery(rows=rows, channel=channel, recipient=recipient,
                        idempotency_key=f"{key}|{signature}",
                        subject=members[0].subject, body=members[0].body)
    if channel == Channel.LINE:
        delivery.line_messages = _line_messages(cards, letters)
    elif len(members) > 1:
        salutation = _salutation(session, rows[0])
        delivery.subject, delivery.body, delivery.html = render_daily_email(
            cards, today, salutation, [(m.subject, m.body) for m in letters])
    return delivery


LINE_MESSAGES_PER_PUSH = 5
LINE_TEXT_LIMIT = 5000


def _line_messages(cards: list[Card], letters: list[_Reminder]) -> list[dict]:
    """One push: the cards as Flex carousels, then the step letters in one text message."""
    messages = flex_messages(cards) if cards else []
    if letters:
        messages = messages[:LINE_MESSAGES_PER_PUSH - 1]
        text = "\n\n――――――――――\n\n".join(f"{m.subject}\n\n{m.body}".strip()
                                              for m in letters)
        if len(text) > LINE_TEXT_LIMIT:
            text = text[:LINE_TEXT_LIMIT - 1] + "…"
        messages.append({"type": "text", "text": text})
    return messages


def _salutation(session: Session, row: OutboxMessage) -> str:
    from models.user import User

    user = session.get(User, row.user_id) if row.user_id is not None else None
    return f"คุณ{user.full_name}" if user is not None else "ผู้รับผิดชอบ"


def _next_working_morning(run: _Pass, session: Session, row: OutboxMessage,
                          today: date) -> datetime:
    calendar = run.calendar(session, directive_of(session, row))
    tomorrow = datetime.combine(today + timedelta(days=1), clock_time(0), tzinfo=run.tz)
    return calendar.next_send_slot(tomorrow, run.tz)


def _quota_fallback(run: _Pass, session: Session, ready: list[OutboxMessage]) -> bool:
    """Whether this pass sends non-urgent LINE reminders by e-mail; the first pass that finds
    the threshold passed tells the coordinators (one row each, once a month)."""
    quota = run.policy.line_monthly_quota
    if quota is None or not any(r.channel == Channel.LINE and r.rung in NON_URGENT_RUNGS
                                for r in ready):
        return False
    count = line_pushes_this_month(session, run.now, run.tz)
    if not quota_fallback_active(count, quota, run.policy.quota_threshold):
        return False
    _tell_coordinators(run, session, count, quota)
    return True


def _tell_coordinators(run: _Pass, session: Session, count: int, quota: int) -> None:
    from domain.access import Role
    from domain.thaidate import thai_date
    from models.user import User

    start = month_start(run.now, run.tz)
    subject, body = render_message(
        "line_quota", count=count, quota=quota, month_th=thai_date(start.date(), "long")
        .split(" ", 1)[1], threshold_percent=round(run.policy.quota_threshold * 100),
        base_url=run.policy.base_url)
    coordinators = session.exec(select(User).where(User.role == Role.COORDINATOR,
                                                   User.is_active == True)  # noqa: E712
                                .order_by(User.id)).all()
    rows = []
    for user in coordinators:
        key = f"{QUOTA_RUNG}|{start.date().isoformat()}|user:{user.id}|{Channel.EMAIL.value}"
        rows.append(outbox_values(OutboxMessage(
            idempotency_key=key, user_id=user.id, rung=QUOTA_RUNG, subject=subject, body=body,
            next_try_at=run.now, created_at=run.now,
            **addressing(Channel.EMAIL, user.email, f"user {user.username}"))))
    enqueue_many(session, rows)


def _to_email(run: _Pass, session: Session, reminder: _Reminder) -> Cancelled | None:
    """A non-urgent LINE reminder sent by e-mail instead (the quota is short): its e-mail row
    (the ladder's own, or a new one under the same key but the channel); None when the person
    has no e-mail, so LINE it stays."""
    from models.user import User

    row = reminder.row
    user = session.get(User, row.user_id) if row.user_id is not None else None
    if user is None or not user.email:
        return None
    parts = row.idempotency_key.split("|")
    key = "|".join([*parts[:-1], Channel.EMAIL.value]) if parts[-1] == Channel.LINE.value \
        else f"{row.idempotency_key}|{Channel.EMAIL.value}"
    enqueue_many(session, [outbox_values(OutboxMessage(
        idempotency_key=key, channel=Channel.EMAIL, recipient=user.email, user_id=user.id,
        district_code=row.district_code, item_id=row.item_id, step_id=row.step_id,
        rung=row.rung, subject=reminder.subject, body=reminder.body,
        status=OutboxStatus.QUEUED, next_try_at=run.now, created_at=run.now))])
    return Cancelled("LINE quota nearly used up this month: this reminder goes by e-mail")


def _deliver_one(run: _Pass, row: OutboxMessage) -> None:
    """Try one row of a synchronous transport and record the outcome."""
    if not run.may_start() or row.channel in run.down:
        outcome: Outcome = Skipped.NOT_STARTED
    else:
        outcome = _attempt(run.transports[row.channel], row)
    _record(run, [(row, outcome)])


def _attempt(transport: Transport, row: OutboxMessage) -> TransportError | None:
    try:
        transport.send(row)
    except TransportError as exc:
        return exc
    except Exception as exc:  # a bug in a transport must not strand the rest of the batch
        return _unexpected(row, exc)
    return None


async def _attempt_async(transport: AsyncTransport, row: OutboxMessage) -> TransportError | None:
    try:
        await transport.send(row)
    except TransportError as exc:
        return exc
    except Exception as exc:
        return _unexpected(row, exc)
    return None


def _unexpected(row: OutboxMessage, exc: Exception) -> TransportError:
    log.error("outbox %s: unexpected error from %s transport", row.id, row.channel,
              exc_info=exc)
    return TransportError(f"unexpected {type(exc).__name__}: {exc}")


# --- Concurrent sends ---------------------------------------------------------------------

@dataclass
class _Lane:
    """An async channel as the overlapping passes of one drain share it, on the pump's loop:
    whether its service is down (no more sends start), and each recipient's last row in flight
    (the recipient's next row, whichever pass it is in, starts only after it)."""

    down: bool = False
    tails: dict[str, asyncio.Future[None]] = field(default_factory=dict)


async def send_all(transport: AsyncTransport, rows: list[OutboxMessage],
                   may_start: Callable[[], bool],
                   report: Callable[[OutboxMessage, Outcome], None],
                   lane: _Lane | None = None,
                   starting: Callable[[], None] | None = None) -> None:
    """Send ``rows`` from ``transport.concurrency`` tasks, reporting each row's outcome.

    One recipient's rows go one after another, in order; different recipients at once. Once
    the service itself fails (``channel_down``) or ``may_start`` says no, rows not started yet
    are reported ``NOT_STARTED``. While the service has not answered yet (a fresh process, or
    it was down), the first row goes alone, as a probe, before the crowd. ``lane``: shared with
    another pass's ``send_all`` on the same transport; ``starting`` is called as each send starts.
    """
    lane = lane if lane is not None else _Lane()
    loop = asyncio.get_running_loop()
    # [rows, the recipient's chain of an earlier pass to wait for, done]: registered at once,
    # so a later pass's rows for the same recipient wait for these, started or not
    chains: deque[list[Any]] = deque()
    for chain in _by_recipient(rows):
        done: asyncio.Future[None] = loop.create_future()
        chains.append([chain, lane.tails.get(chain[0].recipient), done])
        lane.tails[chain[0].recipient] = done

    def finished(entry: list[Any]) -> None:
        chain, _before, done = entry
        if not done.done():
            done.set_result(None)
        if chain and lane.tails.get(chain[0].recipient) is done:
            del lane.tails[chain[0].recipient]

    async def send_rows(chain: list[OutboxMessage]) -> None:
        for row in chain:
            if lane.down or not may_start():
                report(row, Skipped.NOT_STARTED)
                continue
            if starting is not None:
                starting()
            outcome = await _attempt_async(transport, row)
            lane.down = lane.down or (outcome is not None and outcome.channel_down)
            report(row, outcome)

    async def send_chain(entry: list[Any]) -> None:
        try:
            if entry[1] is not None:  # the recipient's rows of an earlier pass, still going out
                await entry[1]
            await send_rows(entry[0])
        finally:
            finished(entry)

    async def worker() -> None:
        while chains:
            await send_chain(chains.popleft())

    try:
        if chains and not transport.answering:
            entry = chains[0]
            if entry[1] is not None:
                await entry[1]
                entry[1] = None
            await send_rows(entry[0][:1])
            if len(entry[0]) == 1:
                finished(chains.popleft())
            else:
                entry[0] = entry[0][1:]
        await asyncio.gather(*(worker() for _ in range(min(transport.concurrency, len(chains)))))
    finally:
        for entry in chains:  # only if this failed: a later pass must not wait for ever
            finished(entry)


def _by_recipient(rows: Iterable[OutboxMessage]) -> list[list[OutboxMessage]]:
    """The rows grouped by recipient, each group in order, groups by their first row."""
    chains: dict[str, list[OutboxMessage]] = {}
    for row in rows:
        chains.setdefault(row.recipient, []).append(row)
    return list(chains.values())


# Results of concurrent sends are written at most once in this long while more are coming:
# each transaction then carries dozens (a SQLite commit waits ~10 ms for the disk), and the
# thread that writes takes the interpreter from the loop that sends less often (P3).
WRITE_EVERY = 0.1


class _FanOut:
    """One async transport's rows of a pass, sent on the pump's loop while this thread
    writes each result that has come back."""

    def __init__(self, run: _Pass, transport: AsyncTransport, rows: list[OutboxMessage],
                 lane: _Lane | None = None) -> None:
        self.run, self.transport, self.rows = run, transport, rows
        self.waiting = self.unstarted = len(rows)
        self.written_at = 0.0
        self.results: queue.SimpleQueue[tuple[OutboxMessage, Outcome]] = queue.SimpleQueue()
        self.stopped = threading.Event()
        self.future = PUMP_LOOP.submit(send_all(transport, rows, self.may_start, self.report,
                                                lane, self._starting))

    def _starting(self) -> None:
        self.unstarted -= 1  # on the pump's loop only; read by the pass's thread

    def report(self, row: OutboxMessage, outcome: Outcome) -> None:
        if outcome is Skipped.NOT_STARTED:
            self.unstarted -= 1
        self.results.put((row, outcome))

    def may_start(self) -> bool:
        return not self.stopped.is_set() and self.run.may_start()

    def record_ready(self) -> None:
        """Write the results that have come back so far, in one transaction."""
        self._write(self._taken())

    def record_some(self, timeout: float) -> None:
        """Wait up to ``timeout`` for a result, then write every one that has come back."""
        try:
            first = self.results.get(timeout=timeout)
        except queue.Empty:
            return
        self._write(self._batch(first))

    def record_all(self) -> None:
        """Write results as they come back, until every row has one."""
        while self.waiting:
            try:
                first = self.results.get(timeout=0.5)
            except queue.Empty:
                if self.future.done() and self.results.empty():
                    break
                continue
            self._write(self._batch(first))
        if self.waiting:  # send_all itself failed: those rows stay claimed until their lease ends
            log.error("outbox pump: %d row(s) left without a result", self.waiting,
                      exc_info=self.future.exception())

    def _batch(self, first: tuple[OutboxMessage, Outcome]) -> list[tuple[OutboxMessage, Outcome]]:
        """``first`` and the results that come back with it: while sends are still starting,
        at most one transaction every ``WRITE_EVERY`` (a pause of this thread, not of a send);
        the last ones as soon as they come."""
        pause = WRITE_EVERY - (time.monotonic() - self.written_at)
        if pause > 0 and self.unstarted > 0 and self.waiting > 1 + self.results.qsize():
            time.sleep(pause)
        return [first, *self._taken()]

    def _taken(self) -> list[tuple[OutboxMessage, Outcome]]:
        taken = []
        while not self.results.empty():
            taken.append(self.results.get_nowait())
        return taken

    def _write(self, results: list[tuple[OutboxMessage, Outcome]]) -> None:
        if results:
            self.waiting -= len(results)
            _record(self.run, results)
            self.written_at = time.monotonic()

    def stop(self) -> None:
        """Start no more sends, and wait for those under way (their rows keep their lease)."""
        self.stopped.set()
        try:
            self.future.result()
        except Exception:
            log.exception("outbox pump: concurrent sends failed")


def _is_async(transport: object) -> bool:
    return inspect.iscoroutinefunction(getattr(transport, "send", None))


_T = TypeVar("_T")


class _LoopThread:
    """The pump's event loop, in a daemon thread of its own, started on first use.

    Every async transport of the process is used on this one loop, so its clients, slots and
    rate limit never see another; the thread that runs a pass (the APScheduler job) only
    waits for results, and the web app's own loop is never blocked.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, coroutine: Coroutine[Any, Any, _T]) -> concurrent.futures.Future[_T]:
        return asyncio.run_coroutine_threadsafe(coroutine, self._running())

    def run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        return self.submit(coroutine).result()

    def _running(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._thread is None or not self._thread.is_alive():
                self._loop = asyncio.new_event_loop()  # also after a fork: threads do not follow
                self._thread = threading.Thread(target=self._loop.run_forever, name=self.name,
                                                daemon=True)
                self._thread.start()
            return self._loop


PUMP_LOOP = _LoopThread("outbox-pump-loop")


def close_transports(transports: dict[str, Transport | AsyncTransport]) -> None:
    """Close the async transports' clients, on the loop they ran on."""
    for transport in transports.values():
        if _is_async(transport):
            PUMP_LOOP.run(transport.aclose())  # type: ignore[union-attr]


# --- Results --------------------------------------------------------------------------------

def _record(run: _Pass, results: list[tuple[OutboxMessage, Outcome]]) -> None:
    """Write results in one short transaction; while the database is unreachable, hold them
    (and start no more sends) for ``_write_held``."""
    results = [(row, outcome) for sent, outcome in results
               for row in (sent.rows if isinstance(sent, Delivery) else [sent])]
    if not results:
        return
    if run.database_lost:
        run.held.extend(results)
        return
    try:
        _write_results(run, results)
    except DBAPIError as exc:
        if not database_unreachable(exc):
            raise
        run.lose_database(exc)
        run.held.extend(results)


def _write_held(run: _Pass) -> None:
    """The results held while the database was unreachable, written as soon as it answers.

    Until the claims' lease ends: after that another pump may take the rows (our writes stay
    fenced by the claim, so a late one is refused, never wrong), and the pass must end.
    """
    if not run.held:
        return
    wait = RECONNECT_FIRST
    while True:
        # A deliberate pause between two tries to reach the database, not a wait for a result.
        time.sleep(wait)
        try:
            _write_results(run, run.held)
        except DBAPIError as exc:
            if not database_unreachable(exc):
                raise
            if time.monotonic() + wait > run.lease_end:
                log.error("outbox pump: the database was still unreachable when the lease of %d "
                          "row(s) ended: they go out once a pump reclaims them (LINE refuses a "
                          "replay by its retry key; an e-mail already accepted goes out again)",
                          len(run.held))
                return
            wait = min(RECONNECT_CAP, wait * 2)
            continue
        log.warning("outbox pump: the database is back; %d result(s) held meanwhile are written "
                    "(rows not tried are due again at once)", len(run.held))
        run.held.clear()
        return


def _write_results(run: _Pass, results: list[tuple[OutboxMessage, Outcome]]) -> None:
    """One transaction: the deliveries in one statement, the rest each; counted once committed."""
    delivered = [row for row, outcome in results if outcome is None]
    with run.session_factory() as session:
        owned = mark_sent_many(session, [(row.id, row.claims) for row in delivered], run.now)
        outcomes = [_write(run, session, row, outcome) for row, outcome in results
                    if outcome is not None]
        finish_deliveries(session, run.holder, sent=[r.delivery_key for r in delivered
                                                     if r.delivery_key],
                          released=[r.delivery_key for r, outcome in results
                                    if outcome is not None and r.delivery_key], now=run.now)
        session.commit()
    for row in delivered:
        _warn_if_lost(row, row.id in owned)
        outcomes.append("sent")
    for outcome in outcomes:
        run.count(outcome)


def _write(run: _Pass, session: Session, row: OutboxMessage, outcome: Outcome) -> str:
    """One row's result; returns the PumpResult field to count."""
    if outcome is Skipped.NOT_STARTED:
        return _mark(session, release_claim, row)
    if isinstance(outcome, NoChannel):
        return _mark(session, mark_no_channel, row, outcome.reason)
    if isinstance(outcome, Deferred):
        return _mark(session, defer_claim, row, outcome.until)
    if isinstance(outcome, Cancelled):
        return _mark(session, cancel_claimed, row, outcome.reason)
    assert isinstance(outcome, TransportError)
    return _write_failure(run, session, row, outcome)


def _write_failure(run: _Pass, session: Session, row: OutboxMessage,
                   exc: TransportError) -> str:
    """Retry a transient failure later; fail a permanent one, or one retried too often."""
    tries = row.attempts + 1  # this one included: it is counted as the result is written
    transport = run.transports[row.channel]
    if exc.permanent or (tries >= run.max_attempts and gives_up(transport)):
        return _write_final_failure(run, session, row, exc)
    if keeps_office_hours(transport):
        calendar = run.calendar(session, directive_of(session, row))
        when = next_try(run.now, tries, exc, calendar, run.tz, jitter=_jitter(row))
    else:
        when = next_machine_try(run.now, tries, exc, jitter=random.uniform(0, JITTER))
    _warn_if_lost(row, mark_retry(session, row.id, row.claims, when, exc.message))
    if exc.channel_down:
        # The service, not this message, failed: the rest of the channel's queue waits with it.
        held = run.down.get(row.channel)
        if held is None or when > held[0]:
            run.down[row.channel] = (when, exc.message)
    return "retried"


def _jitter(row: OutboxMessage) -> float:
    """The rows of one delivery draw the same jitter, so they are retried together."""
    draw = random.Random(row.delivery_key) if row.delivery_key else random
    return draw.uniform(0, JITTER)


def _write_final_failure(run: _Pass, session: Session, row: OutboxMessage,
                         exc: TransportError) -> str:
    """Fail the row with its reason; a refused LINE route is marked broken in the same commit."""
    error = exc.message if exc.permanent else (
        f"gave up after {row.attempts + 1} attempts: {exc.message}")
    owned = mark_failed(session, row.id, row.claims, error)
    if owned and exc.route_refused and row.channel == Channel.LINE and row.user_id:
        mark_line_route_broken(session, row.user_id, row.recipient, exc.message, run.now)
    _warn_if_lost(row, owned)
    return "failed"


def _hold_channel(run: _Pass, channel: Channel, until: datetime, reason: str) -> None:
    """Move every queued row of a channel that is down to its own first office-hour slot after
    ``until``, so nothing hammers the service and all go out oldest first once it is back."""
    note = f"waiting: {channel.value} is not answering ({reason})"
    try:
        with run.session_factory() as session:
            rows = queued_on_channel(session, channel, until)
            by_directive: dict[int | None, list[int]] = {}
            for row_id, directive_id in rows:
                by_directive.setdefault(directive_id, []).append(row_id)
            office_hours = keeps_office_hours(run.transports[channel.value])
            for directive_id, ids in by_directive.items():
                slot = (run.calendar(session, directive_id).next_send_slot(until, run.tz)
                        if office_hours else until)
                postpone(session, ids, slot, note)
            session.commit()
    except DBAPIError as exc:
        if not database_unreachable(exc):
            raise
        # Only an economy (the queue would be tried and held back again): the next pass does it.
        log.warning("outbox pump: %s is down, but its queue could not be held back: the "
                    "database is unreachable (%s)", channel.value, _first_line(exc))
        return
    if rows:
        log.warning("outbox: %s is down; %d queued message(s) wait until %s", channel.value,
                    len(rows), until.isoformat())


_OUTCOMES = {mark_sent: "sent", mark_retry: "retried", mark_failed: "failed",
             mark_no_channel: "no_channel", release_claim: "released", defer_claim: "released",
             cancel_claimed: "cancelled"}


def _mark(session: Session, mark: Callable[..., bool], row: OutboxMessage,
          *args: object) -> str:
    """One conditional update of a claimed row; returns the PumpResult field to count."""
    _warn_if_lost(row, mark(session, row.id, row.claims, *args))
    return _OUTCOMES[mark]


def _warn_if_lost(row: OutboxMessage, owned: bool) -> None:
    if not owned:
        log.warning("outbox %s: claim lost before its result was written (lease too short?)",
                    row.id)


def _first_line(exc: BaseException) -> str:
    """The driver's own message, first line: enough for a log line without the SQL."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return (text.splitlines() or [type(exc).__name__])[0][:300]


def start_pump(scheduler: BaseScheduler, session_factory: SessionFactory,
               transports: dict[str, Transport | AsyncTransport], interval_seconds: float,
               clock: Callable[[], datetime], *,
               tz: ZoneInfo = BANGKOK, batch: int = BATCH,
               policy: DeliveryPolicy | None = None) -> Job:
    """Run the pump every few seconds; never two passes at once in this process.

    First, routes marked broken because LINE refused an earlier channel token are cleared.
    The async transports' clients are closed when the scheduler shuts down.
    """
    line = transports.get(Channel.LINE.value)
    if isinstance(line, AsyncLineTransport):
        with session_factory() as session:
            cleared = clear_token_refusals(session, token_mark(line.fingerprint), clock())
            session.commit()
        if cleared:
            log.info("cleared %d LINE routes refused under an earlier channel token", cleared)
    if any(_is_async(t) for t in transports.values()):
        from apscheduler.events import EVENT_SCHEDULER_SHUTDOWN

        scheduler.add_listener(lambda _event: close_transports(transports),
                               EVENT_SCHEDULER_SHUTDOWN)

    def pump_once() -> PumpResult:
        try:
            return drain(session_factory, transports, clock, tz=tz, batch=batch, policy=policy)
        except DBAPIError as exc:
            if not database_unreachable(exc):
                raise
            # A claim that failed is not committed (the rare commit cut off on its way back
            # leaves its rows to their lease); results held by a pass were written before it
            # returned. The next run tries again.
            log.warning("outbox pump: the database is unreachable (%s); trying again in %g s",
                        _first_line(exc), interval_seconds)
            return PumpResult()

    return scheduler.add_job(pump_once, "interval", seconds=interval_seconds, id="outbox-pump",
                             name="outbox pump", max_instances=1, coalesce=True,
                             replace_existing=True)
