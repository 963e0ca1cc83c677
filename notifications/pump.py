"""The outbox pump: claim due rows, send each, and record each result in its own transaction.

The row is written before the send (by whoever enqueued it) and its result after; a pump that
dies mid-send leaves the row ``sending`` under a lease, and ``claim_due`` reclaims it later.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import httpx
from sqlmodel import Session

from models.outbox import (
    Channel,
    OutboxMessage,
    claim_due,
    disable_line_route,
    mark_failed,
    mark_no_channel,
    mark_retry,
    mark_sent,
    release_claim,
)
from notifications.base import Transport, TransportError
from notifications.line import LineTransport
from notifications.mail import SmtpTransport
from notifications.webhook import WebhookTransport

if TYPE_CHECKING:
    from apscheduler.job import Job
    from apscheduler.schedulers.base import BaseScheduler

    from tidtam.settings import Settings

log = logging.getLogger(__name__)

SessionFactory = Callable[[], AbstractContextManager[Session]]

MAX_ATTEMPTS = 10
BACKOFF_BASE = 30.0
BACKOFF_CAP = 3600.0
JITTER = 0.2
# Sends start only in the first half of the lease, so a send that runs into its own timeout
# (SMTP 30 s, httpx 5 s by default) still ends before another pump may reclaim the row.
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
    """Wait before the next try: 30 s doubling per attempt, capped at 1 h.

    ``jitter`` (clamped to ±0.2) spreads rows that failed together so they do not retry
    together; a service's own ``Retry-After`` is a floor, never shortened.
    """
    jitter = max(-JITTER, min(JITTER, jitter))
    seconds = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(0, attempts - 1)) * (1 + jitter)
    return timedelta(seconds=max(seconds, retry_after or 0.0))


def deliver_due(session_factory: SessionFactory, transports: dict[str, Transport],
                now: datetime, *, limit: int = 50, max_attempts: int = MAX_ATTEMPTS,
                lease: timedelta = LEASE) -> PumpResult:
    """Send every due row once; safe to run in several processes at the same time."""
    with session_factory() as session:
        rows = claim_due(session, now, limit=limit, lease=lease)
        session.expunge_all()  # plain objects from here on; each result gets a fresh session
    result = PumpResult()
    deadline = time.monotonic() + lease.total_seconds() / 2
    for row in rows:
        if time.monotonic() > deadline:
            outcome = _record(session_factory, release_claim, row)
        else:
            outcome = _deliver_one(session_factory, transports, row, now, max_attempts)
        setattr(result, outcome, getattr(result, outcome) + 1)
    if result.total:
        log.info("outbox pump: %s", result)
    return result


def _deliver_one(session_factory: SessionFactory, transports: dict[str, Transport],
                 row: OutboxMessage, now: datetime, max_attempts: int) -> str:
    """Try one claimed row and record the outcome; returns the PumpResult field to count."""
    transport = transports.get(row.channel)
    if transport is None or not row.recipient.strip():
        reason = (f"no transport configured for channel {row.channel!s}" if transport is None
                  else f"recipient has no {row.channel!s} address")
        return _record(session_factory, mark_no_channel, row, reason)
    try:
        transport.send(row)
    except TransportError as exc:
        return _record_failure(session_factory, row, exc, now, max_attempts)
    except Exception as exc:  # a bug in a transport must not strand the rest of the batch
        log.exception("outbox %s: unexpected error from %s transport", row.id, row.channel)
        error = TransportError(f"unexpected {type(exc).__name__}: {exc}")
        return _record_failure(session_factory, row, error, now, max_attempts)
    return _record(session_factory, mark_sent, row, now)


def _record_failure(session_factory: SessionFactory, row: OutboxMessage, exc: TransportError,
                    now: datetime, max_attempts: int) -> str:
    """Retry a transient failure later; fail a permanent one, or one retried too often."""
    if not exc.permanent and row.attempts < max_attempts:
        delay = backoff(row.attempts, exc.retry_after, jitter=random.uniform(-JITTER, JITTER))
        return _record(session_factory, mark_retry, row, now + delay, exc.message)
    error = exc.message if exc.permanent else (
        f"gave up after {row.attempts} attempts: {exc.message}")
    with session_factory() as session:
        owned = mark_failed(session, row.id, row.attempts, error)
        if owned and exc.route_refused and row.channel == Channel.LINE and row.user_id:
            disable_line_route(session, row.user_id, row.recipient, error)
        session.commit()
    _warn_if_lost(row, owned)
    return "failed"


_OUTCOMES = {mark_sent: "sent", mark_retry: "retried", mark_failed: "failed",
             mark_no_channel: "no_channel", release_claim: "released"}


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
               clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> Job:
    """Run the pump every few seconds; never two passes at once in this process."""

    def pump_once() -> PumpResult:
        return deliver_due(session_factory, transports, clock())

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
