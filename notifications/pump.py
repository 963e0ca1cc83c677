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
from collections import deque
from collections.abc import Callable, Coroutine, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from domain.calendar import WorkCalendar
from models.outbox import (
    MACHINE_CHANNELS,
    Channel,
    OutboxMessage,
    claim_due,
    defer_claim,
    directive_of,
    mark_failed,
    mark_no_channel,
    mark_retry,
    mark_sent,
    mark_sent_many,
    postpone,
    queued_on_channel,
    release_claim,
)
from models.unreachable import database_unreachable
from models.user import clear_token_refusals, mark_line_route_broken
from notifications.base import AsyncTransport, Transport, TransportError
from notifications.line import AsyncLineTransport, token_mark

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


# A claimed row's outcome: None when delivered.
Outcome = TransportError | Skipped | NoChannel | Deferred | None


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
    result: PumpResult = field(default_factory=PumpResult)
    calendars: dict[int | None, WorkCalendar] = field(default_factory=dict)
    # channel → (the instant its service may be back, why it is down)
    down: dict[str, tuple[datetime, str]] = field(default_factory=dict)
    # Results not written because the database was unreachable; once it is, no send starts and
    # every later result joins them, all written by ``_write_held`` before the pass ends.
    held: list[tuple[OutboxMessage, Outcome]] = field(default_factory=list)
    database_lost: bool = False

    def count(self, outcome: str) -> None:
        setattr(self.result, outcome, getattr(self.result, outcome) + 1)

    def calendar(self, session: Session, directive_id: int | None) -> WorkCalendar:
        """The directive's own working days and office hours; the default for no directive."""
        if directive_id not in self.calendars:
            self.calendars[directive_id] = _calendar_of(session, directive_id)
        return self.calendars[directive_id]

    def may_start(self) -> bool:
        return not self.database_lost and time.monotonic() <= self.deadline

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
                lease: timedelta = LEASE) -> PumpResult:
    """Send every due row once; safe to run in several processes at the same time.

    Blocks the calling thread until every result is written: call it from a worker thread
    (the APScheduler job), never from a running event loop.
    """
    unserved = [c for c in MACHINE_CHANNELS if c.value not in transports]
    with session_factory() as session:
        rows = claim_due(session, now, limit=limit, lease=lease, skip_channels=unserved)
        session.expunge_all()  # plain objects from here on; each result gets a fresh session
    started = time.monotonic()
    run = _Pass(session_factory, transports, now, tz, max_attempts,
                deadline=started + lease.total_seconds() / 2,
                lease_end=started + lease.total_seconds())
    ready = _sendable(run, rows)
    fan_outs = [_FanOut(run, transport, [r for r in ready if r.channel == channel])
                for channel, transport in transports.items()
                if _is_async(transport) and any(r.channel == channel for r in ready)]
    try:
        for row in ready:
            if not _is_async(transports[row.channel]):
                _deliver_one(run, row)
                for fan_out in fan_outs:
                    fan_out.record_ready()
        for fan_out in fan_outs:
            fan_out.record_all()
    finally:
        for fan_out in fan_outs:
            fan_out.stop()
    _write_held(run)
    for channel, (until, reason) in run.down.items():
        _hold_channel(run, Channel(channel), until, reason)
    if run.result.total:
        log.info("outbox pump: %s", run.result)
    return run.result


def drain(session_factory: SessionFactory, transports: dict[str, Transport | AsyncTransport],
          clock: Callable[[], datetime], *, tz: ZoneInfo = BANGKOK,
          batch: int = BATCH) -> PumpResult:
    """Pass after pass until one comes up short, so a backlog goes out in one run of the job,
    not ``batch`` rows per interval; a pass that hands rows back (the service is down, the
    office closed, the lease ran short) ends it too, so nothing spins."""
    total = PumpResult()
    while True:
        result = deliver_due(session_factory, transports, clock(), tz=tz, limit=batch)
        total += result
        if result.total < batch or result.released:
            return total


def _sendable(run: _Pass, rows: list[OutboxMessage]) -> list[OutboxMessage]:
    """The rows to send now; the others get their result at once, in one transaction: no
    channel to send them on, or due while the office is closed (the pump ran late)."""
    ready: list[OutboxMessage] = []
    outcomes: list[tuple[OutboxMessage, Outcome]] = []
    try:
        with run.session_factory() as session:
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
                calendar = run.calendar(session, directive_of(session, row))
                slot = calendar.next_send_slot(run.now, run.tz)
                if slot > run.now:
                    outcomes.append((row, Deferred(slot)))
                else:
                    ready.append(row)
    except DBAPIError as exc:
        if not database_unreachable(exc):
            raise
        run.lose_database(exc)
        run.held.extend((row, Skipped.NOT_STARTED) for row in rows)
        return []
    _record(run, outcomes)
    return ready


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

async def send_all(transport: AsyncTransport, rows: list[OutboxMessage],
                   may_start: Callable[[], bool],
                   report: Callable[[OutboxMessage, Outcome], None]) -> None:
    """Send ``rows`` from ``transport.concurrency`` tasks, reporting each row's outcome.

    One recipient's rows go one after another, in order; different recipients at once. Once
    the service itself fails (``channel_down``) or ``may_start`` says no, rows not started yet
    are reported ``NOT_STARTED``. While the service has not answered yet (a fresh process, or
    it was down), the first row goes alone, as a probe, before the crowd.
    """
    chains = deque(_by_recipient(rows))
    down = False

    async def send_chain(chain: list[OutboxMessage]) -> None:
        nonlocal down
        for row in chain:
            if down or not may_start():
                report(row, Skipped.NOT_STARTED)
                continue
            outcome = await _attempt_async(transport, row)
            down = down or (outcome is not None and outcome.channel_down)
            report(row, outcome)

    async def worker() -> None:
        while chains:
            await send_chain(chains.popleft())

    if chains and not transport.answering:
        first = chains.popleft()
        await send_chain(first[:1])
        if first[1:]:
            chains.appendleft(first[1:])
    await asyncio.gather(*(worker() for _ in range(min(transport.concurrency, len(chains)))))


def _by_recipient(rows: Iterable[OutboxMessage]) -> list[list[OutboxMessage]]:
    """The rows grouped by recipient, each group in order, groups by their first row."""
    chains: dict[str, list[OutboxMessage]] = {}
    for row in rows:
        chains.setdefault(row.recipient, []).append(row)
    return list(chains.values())


class _FanOut:
    """One async transport's rows of a pass, sent on the pump's loop while this thread
    writes each result that has come back."""

    def __init__(self, run: _Pass, transport: AsyncTransport, rows: list[OutboxMessage]) -> None:
        self.run, self.waiting = run, len(rows)
        self.results: queue.SimpleQueue[tuple[OutboxMessage, Outcome]] = queue.SimpleQueue()
        self.stopped = threading.Event()
        self.future = PUMP_LOOP.submit(send_all(transport, rows, self.may_start, self.report))

    def report(self, row: OutboxMessage, outcome: Outcome) -> None:
        self.results.put((row, outcome))

    def may_start(self) -> bool:
        return not self.stopped.is_set() and self.run.may_start()

    def record_ready(self) -> None:
        """Write the results that have come back so far, in one transaction."""
        self._write(self._taken())

    def record_all(self) -> None:
        """Write results as they come back, until every row has one."""
        while self.waiting:
            try:
                first = self.results.get(timeout=0.5)
            except queue.Empty:
                if self.future.done() and self.results.empty():
                    break
                continue
            self._write([first, *self._taken()])
        if self.waiting:  # send_all itself failed: those rows stay claimed until their lease ends
            log.error("outbox pump: %d row(s) left without a result", self.waiting,
                      exc_info=self.future.exception())

    def _taken(self) -> list[tuple[OutboxMessage, Outcome]]:
        taken = []
        while not self.results.empty():
            taken.append(self.results.get_nowait())
        return taken

    def _write(self, results: list[tuple[OutboxMessage, Outcome]]) -> None:
        if results:
            self.waiting -= len(results)
            _record(self.run, results)

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
        when = next_try(run.now, tries, exc, calendar, run.tz, jitter=random.uniform(0, JITTER))
    else:
        when = next_machine_try(run.now, tries, exc, jitter=random.uniform(0, JITTER))
    _warn_if_lost(row, mark_retry(session, row.id, row.claims, when, exc.message))
    if exc.channel_down:
        # The service, not this message, failed: the rest of the channel's queue waits with it.
        held = run.down.get(row.channel)
        if held is None or when > held[0]:
            run.down[row.channel] = (when, exc.message)
    return "retried"


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
             mark_no_channel: "no_channel", release_claim: "released", defer_claim: "released"}


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
               tz: ZoneInfo = BANGKOK, batch: int = BATCH) -> Job:
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
            return drain(session_factory, transports, clock, tz=tz, batch=batch)
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
