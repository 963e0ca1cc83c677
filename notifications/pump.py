"""The outbox pump: claim due rows, send each, and record each result in its own transaction.

The row is written before the send (by whoever enqueued it) and its result after; a pump that
dies mid-send leaves the row ``sending`` under a lease, and ``claim_due`` reclaims it later
(LINE then answers the replayed ``X-Line-Retry-Key`` with 409, which counts as delivered).

Every next try is stored in the row (``next_try_at``) and falls inside office hours of the
calendar of the row's directive, so a restarted pump simply resumes the schedule.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import httpx
from sqlmodel import Session

from domain.calendar import WorkCalendar
from models.outbox import (
    Channel,
    OutboxMessage,
    claim_due,
    defer_claim,
    directive_of,
    mark_failed,
    mark_no_channel,
    mark_retry,
    mark_sent,
    postpone,
    queued_on_channel,
    release_claim,
)
from models.user import clear_token_refusals, mark_line_route_broken
from notifications.base import Transport, TransportError
from notifications.line import LineTransport, token_mark
from notifications.mail import SmtpTransport
from notifications.webhook import WebhookTransport

if TYPE_CHECKING:
    from apscheduler.job import Job
    from apscheduler.schedulers.base import BaseScheduler

    from tidtam.settings import Settings

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


@dataclass
class PumpResult:
    """What one pump pass did, for logs and tests."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    no_channel: int = 0
    released: int = 0

    @property
    def total(self) -> int:
        return sum(getattr(self, f.name) for f in fields(self))


def backoff(attempts: int, retry_after: float | None = None, *,
            jitter: float = 0.0) -> timedelta:
    """Wait before the next try: 30 s doubling per attempt, capped at 1 h, minus the jitter.

    ``jitter`` (clamped to 0–0.2) takes up to a fifth off, so rows that failed together do
    not retry together and the cap stays a cap. A service's own ``Retry-After`` is a floor,
    never shortened (nor capped: the service knows when it will take us back).
    """
    jitter = max(0.0, min(JITTER, jitter))
    seconds = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(0, attempts - 1)) * (1 - jitter)
    return timedelta(seconds=max(seconds, retry_after or 0.0))


def next_try(now: datetime, attempts: int, error: TransportError, calendar: WorkCalendar,
             tz: ZoneInfo, *, jitter: float = 0.0) -> datetime:
    """When to try again: after the backoff and the service's Retry-After, in office hours."""
    earliest = now + backoff(attempts, error.retry_after, jitter=jitter)
    if error.retry_at is not None:
        earliest = max(earliest, error.retry_at)
    return calendar.next_send_slot(earliest, tz)


@dataclass
class _Pass:
    """One pass of the pump: its inputs, the calendars it has read, and what it did."""

    session_factory: SessionFactory
    transports: dict[str, Transport]
    now: datetime
    tz: ZoneInfo
    max_attempts: int
    result: PumpResult = field(default_factory=PumpResult)
    calendars: dict[int | None, WorkCalendar] = field(default_factory=dict)
    # channel → (the instant its service may be back, why it is down)
    down: dict[str, tuple[datetime, str]] = field(default_factory=dict)

    def count(self, outcome: str) -> None:
        setattr(self.result, outcome, getattr(self.result, outcome) + 1)

    def calendar(self, session: Session, directive_id: int | None) -> WorkCalendar:
        """The directive's own working days and office hours; the default for no directive."""
        if directive_id not in self.calendars:
            self.calendars[directive_id] = _calendar_of(session, directive_id)
        return self.calendars[directive_id]


def _calendar_of(session: Session, directive_id: int | None) -> WorkCalendar:
    from domain.directive import DirectiveSpec
    from models.directive import Directive

    directive = session.get(Directive, directive_id) if directive_id is not None else None
    if directive is None:
        return WorkCalendar()
    return DirectiveSpec.model_validate(directive.definition).work_calendar()


def deliver_due(session_factory: SessionFactory, transports: dict[str, Transport],
                now: datetime, *, tz: ZoneInfo = BANGKOK, limit: int = 50,
                max_attempts: int = MAX_ATTEMPTS, lease: timedelta = LEASE) -> PumpResult:
    """Send every due row once; safe to run in several processes at the same time."""
    with session_factory() as session:
        rows = claim_due(session, now, limit=limit, lease=lease)
        session.expunge_all()  # plain objects from here on; each result gets a fresh session
    run = _Pass(session_factory, transports, now, tz, max_attempts)
    deadline = time.monotonic() + lease.total_seconds() / 2
    for row in rows:
        if time.monotonic() > deadline or row.channel in run.down:
            run.count(_record(session_factory, release_claim, row))
        else:
            run.count(_deliver_one(run, row))
    for channel, (until, reason) in run.down.items():
        _hold_channel(run, Channel(channel), until, reason)
    if run.result.total:
        log.info("outbox pump: %s", run.result)
    return run.result


def _deliver_one(run: _Pass, row: OutboxMessage) -> str:
    """Try one claimed row and record the outcome; returns the PumpResult field to count."""
    transport = run.transports.get(row.channel)
    if transport is None or not row.recipient.strip():
        reason = (f"no transport configured for channel {row.channel!s}" if transport is None
                  else f"recipient has no {row.channel!s} address")
        return _record(run.session_factory, mark_no_channel, row, reason)
    with run.session_factory() as session:
        slot = run.calendar(session, directive_of(session, row)).next_send_slot(run.now, run.tz)
    if slot > run.now:  # due, but the office is closed: the pump ran late or was stopped
        return _record(run.session_factory, defer_claim, row, slot)
    try:
        transport.send(row)
    except TransportError as exc:
        return _record_failure(run, row, exc)
    except Exception as exc:  # a bug in a transport must not strand the rest of the batch
        log.exception("outbox %s: unexpected error from %s transport", row.id, row.channel)
        return _record_failure(run, row, TransportError(f"unexpected {type(exc).__name__}: {exc}"))
    return _record(run.session_factory, mark_sent, row, run.now)


def _record_failure(run: _Pass, row: OutboxMessage, exc: TransportError) -> str:
    """Retry a transient failure later; fail a permanent one, or one retried too often."""
    if exc.permanent or row.attempts >= run.max_attempts:
        return _record_final_failure(run, row, exc)
    with run.session_factory() as session:
        calendar = run.calendar(session, directive_of(session, row))
        when = next_try(run.now, row.attempts, exc, calendar, run.tz,
                        jitter=random.uniform(0, JITTER))
        owned = mark_retry(session, row.id, row.attempts, when, exc.message)
        session.commit()
    _warn_if_lost(row, owned)
    if exc.channel_down:
        # The service, not this message, failed: the rest of the channel's queue waits with it.
        run.down[row.channel] = (when, exc.message)
    return "retried"


def _record_final_failure(run: _Pass, row: OutboxMessage, exc: TransportError) -> str:
    """Fail the row with its reason; a refused LINE route is marked broken in the same commit."""
    error = exc.message if exc.permanent else (
        f"gave up after {row.attempts} attempts: {exc.message}")
    with run.session_factory() as session:
        owned = mark_failed(session, row.id, row.attempts, error)
        if owned and exc.route_refused and row.channel == Channel.LINE and row.user_id:
            mark_line_route_broken(session, row.user_id, row.recipient, exc.message, run.now)
        session.commit()
    _warn_if_lost(row, owned)
    return "failed"


def _hold_channel(run: _Pass, channel: Channel, until: datetime, reason: str) -> None:
    """Move every queued row of a channel that is down to its own first office-hour slot after
    ``until``, so nothing hammers the service and all go out oldest first once it is back."""
    note = f"waiting: {channel.value} is not answering ({reason})"
    with run.session_factory() as session:
        rows = queued_on_channel(session, channel, until)
        by_directive: dict[int | None, list[int]] = {}
        for row_id, directive_id in rows:
            by_directive.setdefault(directive_id, []).append(row_id)
        for directive_id, ids in by_directive.items():
            slot = run.calendar(session, directive_id).next_send_slot(until, run.tz)
            postpone(session, ids, slot, note)
        session.commit()
    if rows:
        log.warning("outbox: %s is down; %d queued message(s) wait until %s", channel.value,
                    len(rows), until.isoformat())


_OUTCOMES = {mark_sent: "sent", mark_retry: "retried", mark_failed: "failed",
             mark_no_channel: "no_channel", release_claim: "released", defer_claim: "released"}


def _record(session_factory: SessionFactory, mark: Callable[..., bool], row: OutboxMessage,
            *args: object) -> str:
    """Write one result in its own short transaction."""
    with session_factory() as session:
        owned = mark(session, row.id, row.attempts, *args)
        session.commit()
    _warn_if_lost(row, owned)
    return _OUTCOMES[mark]


def _warn_if_lost(row: OutboxMessage, owned: bool) -> None:
    if not owned:
        log.warning("outbox %s: claim lost before its result was written (lease too short?)",
                    row.id)


def start_pump(scheduler: BaseScheduler, session_factory: SessionFactory,
               transports: dict[str, Transport], interval_seconds: float,
               clock: Callable[[], datetime] = lambda: datetime.now(UTC), *,
               tz: ZoneInfo = BANGKOK) -> Job:
    """Run the pump every few seconds; never two passes at once in this process.

    First, routes marked broken because LINE refused an earlier channel token are cleared.
    """
    line = transports.get(Channel.LINE.value)
    if isinstance(line, LineTransport):
        with session_factory() as session:
            cleared = clear_token_refusals(session, token_mark(line.fingerprint), clock())
            session.commit()
        if cleared:
            log.info("cleared %d LINE routes refused under an earlier channel token", cleared)

    def pump_once() -> PumpResult:
        return deliver_due(session_factory, transports, clock(), tz=tz)

    return scheduler.add_job(pump_once, "interval", seconds=interval_seconds, id="outbox-pump",
                             name="outbox pump", max_instances=1, coalesce=True,
                             replace_existing=True)


def transports_from_settings(settings: Settings, client: httpx.Client) -> dict[str, Transport]:
    """The channels this deployment can use; a missing one leaves rows 'not sent: no channel'."""
    transports: dict[str, Transport] = {Channel.WEBHOOK.value: WebhookTransport(client)}
    token = settings.line_channel_access_token
    if token is not None and token.get_secret_value():
        transports[Channel.LINE.value] = LineTransport(client, token.get_secret_value(),
                                                       settings.line_api_base)
    if settings.smtp_host:
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        transports[Channel.EMAIL.value] = SmtpTransport(
            settings.smtp_host, settings.smtp_port, settings.smtp_user, password,
            settings.smtp_tls, settings.smtp_from)
    return transports
