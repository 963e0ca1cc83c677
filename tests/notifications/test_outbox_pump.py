"""The pump over a real database, delivering to the fake LINE server with the LINE transport
production uses (``AsyncLineTransport``, sending on the pump's own loop)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from sqlmodel import Session, col, select

from models import OutboxMessage, OutboxStatus, User
from models.audit import entries_for
from models.outbox import PENDING
from models.user import broken_routes, route_broken_since
from notifications.base import TransportError
from notifications.line import AsyncLineTransport
from notifications.pump import (
    MAX_ATTEMPTS,
    PumpResult,
    backoff,
    close_transports,
    deliver_due,
    start_pump,
)
from tidtam.infra.pump import transports_from_settings
from tidtam.infra.settings import Settings


@pytest.fixture
def transports(async_line):
    return {"line": async_line()}


def row(engine, message_id: int) -> OutboxMessage:
    with Session(engine) as session:
        return session.get(OutboxMessage, message_id)


def pending(engine) -> int:
    with Session(engine) as session:
        return len(session.exec(select(OutboxMessage.id).where(
            col(OutboxMessage.status).in_(PENDING))).all())


def test_queued_row_is_sent(engine, session_factory, transports, add_messages, make_message,
                            fake_line, now):
    [message_id] = add_messages(make_message())
    assert deliver_due(session_factory, transports, now) == PumpResult(sent=1)
    sent = row(engine, message_id)
    assert (sent.status, sent.sent_at, sent.attempts) == (OutboxStatus.SENT, now, 1)
    assert sent.lease_until is None and sent.last_error is None
    assert len(fake_line.state.snapshot()) == 1


def test_transient_failure_requeues_with_backoff(engine, session_factory, transports,
                                                 add_messages, make_message, fake_line, now):
    [message_id] = add_messages(make_message())
    fake_line.state.set_mode(status=500, count=1)
    assert deliver_due(session_factory, transports, now) == PumpResult(retried=1)
    queued = row(engine, message_id)
    assert (queued.status, queued.attempts) == (OutboxStatus.QUEUED, 1)
    assert now + timedelta(seconds=24) <= queued.next_try_at <= now + timedelta(seconds=30)
    assert "LINE 500" in queued.last_error

    assert deliver_due(session_factory, transports, now).total == 0  # not due yet
    assert deliver_due(session_factory, transports, queued.next_try_at) == PumpResult(sent=1)
    assert row(engine, message_id).attempts == 2
    keys = {r["headers"]["x-line-retry-key"] for r in fake_line.state.requests}
    assert len(keys) == 1


def test_retry_after_is_honoured(engine, session_factory, transports, add_messages,
                                 make_message, fake_line, now):
    [message_id] = add_messages(make_message())
    fake_line.state.set_mode(status=429, retry_after=600)
    deliver_due(session_factory, transports, now)
    assert row(engine, message_id).next_try_at >= now + timedelta(seconds=600)


@pytest.mark.parametrize(("recipient", "token", "reason"), [
    # LINE refuses the id: stop pushing to it
    ("Unot-a-line-id", None, "LINE 400: The property, 'to', in the request body is invalid"),
    # our token is wrong: the route is marked too, and the reason says the token is at fault
    (None, "revoked-token", "LINE refused the channel access token"),
])
def test_permanent_failure_fails_the_row_and_breaks_the_route(
        engine, session_factory, fake_line, async_line, line_token, line_user, add_user,
        add_messages, make_message, now, recipient, token, reason):
    user_id = add_user(line_user_id=recipient or line_user)
    [message_id] = add_messages(make_message(recipient=recipient or line_user, user_id=user_id))
    transports = {"line": async_line(token=token or line_token)}
    assert deliver_due(session_factory, transports, now) == PumpResult(failed=1)
    failed = row(engine, message_id)
    assert failed.status == OutboxStatus.FAILED
    assert reason in failed.last_error
    with Session(engine) as session:
        assert session.get(User, user_id).line_route_error == failed.last_error
        [entry] = entries_for(session, "user", user_id)
        assert [u.id for u in broken_routes(session, "27")] == [user_id]
        assert route_broken_since(session, [user_id]) == {user_id: now}
    assert (entry.action, entry.actor, entry.at) == ("user.line_route_broken",
                                                      "system:outbox-pump", now)


def test_a_new_channel_token_clears_the_routes_the_old_one_broke(
        engine, session_factory, fake_line, async_line, line_user, add_user, add_messages,
        make_message, now):
    """401 marks the route (naming the token); once another token is installed, the pump's
    start clears those marks, so nobody has to relink for the operator's mistake."""
    token_user = add_user(line_user_id=line_user)
    [message_id] = add_messages(make_message(recipient=line_user, user_id=token_user))
    revoked = {"line": async_line(token="revoked-token")}
    assert deliver_due(session_factory, revoked, now) == PumpResult(failed=1)
    id_user = add_user(username="somsri", line_user_id="Unot-a-line-id")
    add_messages(make_message("item-1:reminder-3:user-2:line:2024-08-07", recipient="Unot-a-line-id",
                              user_id=id_user))
    good = {"line": async_line()}
    deliver_due(session_factory, good, now)  # a 400 about the id itself: not the token's fault
    scheduler = BackgroundScheduler()
    start_pump(scheduler, session_factory, revoked, 60, lambda: now)  # the same token: kept
    with Session(engine) as session:
        assert {u.id for u in broken_routes(session, "27")} == {token_user, id_user}
    start_pump(scheduler, session_factory, good, 60, lambda: now)
    with Session(engine) as session:
        assert [u.id for u in broken_routes(session, "27")] == [id_user]
        assert entries_for(session, "user", token_user)[-1].action == "user.line_route_cleared"
    assert "[token " in row(engine, message_id).last_error


def test_a_due_row_waits_when_the_pump_runs_after_office_hours(
        engine, session_factory, transports, add_messages, make_message, fake_line, now):
    """Due at 16:20, but the pump only got to it at 16:45 (it was stopped): it waits for
    08:30 the next working day instead of waking someone in the evening, and no try is
    counted."""
    bangkok = ZoneInfo("Asia/Bangkok")
    due = datetime(2024, 8, 9, 16, 20, tzinfo=bangkok)  # Friday; Monday 12 Aug is a holiday
    [message_id] = add_messages(make_message(next_try_at=due))
    late = datetime(2024, 8, 9, 16, 45, tzinfo=bangkok)
    assert deliver_due(session_factory, transports, late) == PumpResult(released=1)
    waiting = row(engine, message_id)
    assert (waiting.status, waiting.attempts) == (OutboxStatus.QUEUED, 0)
    assert waiting.next_try_at == datetime(2024, 8, 13, 8, 30, tzinfo=bangkok)
    assert fake_line.state.snapshot() == []
    tuesday = datetime(2024, 8, 13, 8, 30, tzinfo=bangkok)
    assert deliver_due(session_factory, transports, tuesday) == PumpResult(sent=1)


def test_a_relinked_route_is_not_marked_broken(engine, session_factory, transports, add_user,
                                               add_messages, make_message, now):
    """The refused id is no longer the user's: the new one keeps working."""
    user_id = add_user(line_user_id="U" + "0" * 32)
    add_messages(make_message(recipient="Unot-a-line-id", user_id=user_id))
    assert deliver_due(session_factory, transports, now) == PumpResult(failed=1)
    with Session(engine) as session:
        assert session.get(User, user_id).line_route_error is None
        assert broken_routes(session, "27") == []


def test_too_many_transient_failures_give_up(engine, session_factory, transports,
                                             add_messages, make_message, fake_line, now):
    [message_id] = add_messages(make_message(attempts=MAX_ATTEMPTS - 1, claims=MAX_ATTEMPTS - 1))
    fake_line.state.set_mode(status=503)
    assert deliver_due(session_factory, transports, now) == PumpResult(failed=1)
    failed = row(engine, message_id)
    assert (failed.status, failed.attempts) == (OutboxStatus.FAILED, MAX_ATTEMPTS)
    assert failed.last_error.startswith(f"gave up after {MAX_ATTEMPTS} attempts: LINE 503")


def test_claims_lost_to_crashes_do_not_spend_the_attempt_budget(
        engine, session_factory, transports, add_messages, make_message, fake_line, now):
    """Two tries short of the limit, after 30 claims that died with their pumps: one more
    failed try is retried later (the budget counts tries), it does not give the row up."""
    [message_id] = add_messages(make_message(
        status=OutboxStatus.SENDING, attempts=MAX_ATTEMPTS - 2, claims=MAX_ATTEMPTS - 2 + 30,
        lease_until=now - timedelta(seconds=1)))
    fake_line.state.set_mode(status=503)
    assert deliver_due(session_factory, transports, now) == PumpResult(retried=1)
    retried = row(engine, message_id)
    assert (retried.status, retried.attempts, retried.claims) == (
        OutboxStatus.QUEUED, MAX_ATTEMPTS - 1, MAX_ATTEMPTS - 2 + 31)


@pytest.mark.parametrize(("channel", "recipient", "reason"), [
    ("line", "", "recipient has no line address"),
    ("email", "somchai@example.go.th", "no transport configured for channel email"),
])
def test_no_channel_is_kept_visible(engine, session_factory, transports, add_messages,
                                    make_message, fake_line, now, channel, recipient, reason):
    [message_id] = add_messages(make_message(channel=channel, recipient=recipient))
    assert deliver_due(session_factory, transports, now) == PumpResult(no_channel=1)
    parked = row(engine, message_id)
    assert (parked.status, parked.last_error) == (OutboxStatus.NOT_SENT_NO_CHANNEL, reason)
    assert fake_line.state.requests == []


def test_a_row_not_yet_due_is_not_claimed(engine, session_factory, transports, add_messages,
                                          make_message, fake_line, now):
    [message_id] = add_messages(make_message(next_try_at=now + timedelta(minutes=1)))
    assert deliver_due(session_factory, transports, now).total == 0
    waiting = row(engine, message_id)
    assert (waiting.status, waiting.attempts) == (OutboxStatus.QUEUED, 0)


def test_a_crashed_pumps_row_is_reclaimed_after_its_lease(engine, session_factory, transports,
                                                          add_messages, make_message, now):
    """A claim that died with its pump (no result written) is not an attempt: the row is sent on
    its reclaim with one attempt counted, the lost claim showing only in ``claims``."""
    [message_id] = add_messages(make_message(status=OutboxStatus.SENDING, attempts=0, claims=1,
                                             lease_until=now + timedelta(minutes=2)))
    assert deliver_due(session_factory, transports, now).total == 0
    later = now + timedelta(minutes=3)
    assert deliver_due(session_factory, transports, later) == PumpResult(sent=1)
    sent = row(engine, message_id)
    assert (sent.status, sent.attempts, sent.claims) == (OutboxStatus.SENT, 1, 2)


def test_a_stale_claim_cannot_overwrite_a_newer_one(engine, add_messages, make_message, now):
    """Pump A's lease runs out while it still works; pump B reclaims the row. A's results (any
    kind) are refused, B's is written; after B hands the row back untried and C claims it, neither
    A's token nor B's is taken (a result written again after a commit whose answer was lost)."""
    from models.outbox import claim_due, mark_retry, mark_sent, release_claim

    [message_id] = add_messages(make_message())
    lease = timedelta(minutes=1)
    with Session(engine) as session:
        [a] = claim_due(session, now, lease=lease)
    with Session(engine) as session:
        [b] = claim_due(session, now + 2 * lease, lease=lease)
    assert (a.claims, b.claims) == (1, 2)
    with Session(engine) as session:
        assert not mark_sent(session, message_id, a.claims, now)
        assert not mark_retry(session, message_id, a.claims, now, "LINE 500")
        assert not release_claim(session, message_id, a.claims)
        assert release_claim(session, message_id, b.claims)
        session.commit()
    with Session(engine) as session:
        [c] = claim_due(session, now + 2 * lease, lease=lease)
    assert c.claims == 3  # every claim a new token, even after one handed back untried
    with Session(engine) as session:
        assert not mark_sent(session, message_id, a.claims, now)
        assert not release_claim(session, message_id, b.claims)
        assert mark_sent(session, message_id, c.claims, now)
        session.commit()
    done = row(engine, message_id)
    assert (done.status, done.attempts, done.claims) == (OutboxStatus.SENT, 1, 3)


class SlowTransport:
    """Takes a while per send, to run a pass past the half of its lease."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.sent = seconds, []

    def send(self, message: OutboxMessage) -> None:
        # A deliberate part of the scenario (a send that takes this long), not a wait for
        # something to happen: the pass must outlive half its lease whatever the machine's speed.
        time.sleep(self.seconds)
        self.sent.append(message.idempotency_key)


def test_rows_left_when_the_lease_runs_short_are_handed_back(engine, session_factory,
                                                             add_messages, make_message, now):
    ids = add_messages(*(make_message(f"k{i}") for i in range(3)))
    slow = SlowTransport(0.3)
    result = deliver_due(session_factory, {"line": slow}, now, lease=timedelta(seconds=0.4))
    assert result == PumpResult(sent=1, released=2)
    back = [row(engine, i) for i in ids[1:]]
    assert {(r.status, r.attempts, r.claims, r.lease_until) for r in back} == {
        (OutboxStatus.QUEUED, 0, 1, None)}


class BrokenTransport:
    def send(self, message: OutboxMessage) -> None:
        raise KeyError("a bug")


def test_a_transport_bug_is_retried_not_fatal(engine, session_factory, add_messages,
                                              make_message, now):
    ids = add_messages(make_message("a"), make_message("b"))
    assert deliver_due(session_factory, {"line": BrokenTransport()}, now) == PumpResult(retried=2)
    assert "unexpected KeyError" in row(engine, ids[1]).last_error


def test_two_pumps_never_send_a_row_twice(engine, session_factory, transports, add_messages,
                                          make_message, fake_line, now):
    ids = add_messages(*(make_message(f"item-{i}:overdue:line") for i in range(100)))
    fake_line.state.set_mode(latency_ms=2)
    results: list[tuple[str, PumpResult]] = []

    def pump(name: str) -> None:
        """Keep pumping while work is left: losing a claim race returns an empty pass."""
        while pending(engine):
            result = deliver_due(session_factory, transports, now, limit=7)
            if result.total:
                results.append((name, result))

    threads = [threading.Thread(target=pump, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sum(r.sent for _, r in results) == 100
    assert {name for name, _ in results} == {"a", "b"}  # both pumps did take part
    assert len(fake_line.state.requests) == 100
    assert fake_line.state.duplicates == 0
    assert len({p["retry_key"] for p in fake_line.state.snapshot()}) == 100
    assert {row(engine, i).status for i in ids} == {OutboxStatus.SENT}


def test_start_pump_runs_on_the_scheduler(engine, session_factory, transports, add_messages,
                                          make_message, fake_line, now):
    [message_id] = add_messages(make_message(next_try_at=now))
    scheduler = BackgroundScheduler(timezone=UTC)
    job = start_pump(scheduler, session_factory, transports, interval_seconds=0.05,
                     clock=lambda: now)  # a weekday morning: the office is open
    assert (job.max_instances, job.coalesce) == (1, True)
    scheduler.start()
    try:
        deadline = time.monotonic() + 10
        while row(engine, message_id).status != OutboxStatus.SENT:
            assert time.monotonic() < deadline, "the pump never sent the row"
            time.sleep(0.05)
    finally:
        scheduler.shutdown(wait=True)
    assert len(fake_line.state.snapshot()) == 1


# attempts, retry_after, jitter, expected seconds
BACKOFF = [
    (1, None, 0.0, 30), (2, None, 0.0, 60), (3, None, 0.0, 120), (7, None, 0.0, 1920),
    (8, None, 0.0, 3600), (50, None, 0.0, 3600), (1, None, 0.2, 24), (1, None, -0.2, 30),
    (1, None, 0.9, 24), (8, None, 0.2, 2880), (1, 100.0, 0.0, 100), (8, 100.0, 0.0, 3600),
    (8, 7200.0, 0.2, 7200),  # the service's Retry-After is honoured even beyond the cap
]


@pytest.mark.parametrize(("attempts", "retry_after", "jitter", "seconds"), BACKOFF)
def test_backoff(attempts, retry_after, jitter, seconds):
    assert backoff(attempts, retry_after, jitter=jitter) == timedelta(seconds=seconds)


def test_transports_from_settings(tmp_path):
    plain = Settings(_env_file=None, demo=True)
    full = Settings(_env_file=None, demo=True, smtp_host="smtp.example.go.th",
                    line_channel_access_token="a-real-looking-channel-token-42")
    with httpx.Client() as client:
        assert set(transports_from_settings(plain, client)) == {"webhook"}
        built = transports_from_settings(full, client)
        try:
            assert set(built) == {"webhook", "line", "email"}
            assert isinstance(built["line"], AsyncLineTransport)  # what these tests deliver with
        finally:
            close_transports(built)


def test_transport_error_fields():
    error = TransportError("LINE 429", retry_after=3.0)
    assert (error.message, error.permanent, error.retry_after) == ("LINE 429", False, 3.0)
    assert str(error) == "LINE 429"


def test_deliveries_are_recorded_in_one_statement_only_for_claims_still_owned(
        engine, add_messages, make_message, now):
    """mark_sent_many: the claim of row 2 was lost (another pump reclaimed it: claims moved on);
    row 3 was never claimed. Only row 1 is marked sent."""
    from models.outbox import claim_due, mark_sent_many

    ids = add_messages(*(make_message(f"k{n}", recipient=f"U{n:032x}") for n in range(3)))
    with Session(engine) as session:
        claimed = {m.id: m.claims for m in claim_due(session, now, limit=2)}
    assert set(claimed) == set(ids[:2])
    with Session(engine) as session:
        session.get(OutboxMessage, ids[1]).claims += 1
        session.commit()
    with Session(engine) as session:
        owned = mark_sent_many(session, list(claimed.items()) + [(ids[2], 0)], now)
        session.commit()
    assert owned == {ids[0]}
    statuses = [row(engine, i).status for i in ids]
    assert statuses == [OutboxStatus.SENT, OutboxStatus.SENDING, OutboxStatus.QUEUED]
    assert row(engine, ids[0]).lease_until is None and row(engine, ids[0]).sent_at == now
    with Session(engine) as session:
        assert mark_sent_many(session, [], now) == set()
