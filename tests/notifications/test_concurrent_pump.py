"""The production pump's LINE path: many pushes in flight at once, each row's result its own.

Against the fake LINE server with injected latency: a batch goes out in a fraction of the time
one push after another would take, every recipient gets exactly one push with its own retry
key, no more requests are in flight than the transport allows, no more start in a second than
LINE allows, and whatever LINE answers each row is what the outbox records for it.
"""

from __future__ import annotations

import asyncio
import bisect
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from sqlmodel import Session, select

from models import OutboxMessage, OutboxStatus, User
from models.outbox import DeliveryClaim, OutboxDelivery, claim_delivery, finish_deliveries
from notifications.line import rate_limiter, retry_key
from notifications.pump import DeliveryPolicy, PumpResult, deliver_due, start_pump
from tests.notifications.conftest import NOW, STAFF_LINE, add_reminder, at


def line_id(i: int) -> str:
    return f"U{i:032x}"


def queue_rows(add_messages, make_message, n: int, *, recipient=line_id, **fields) -> list[int]:
    """n due LINE rows, oldest first, to recipient(i) each."""
    return add_messages(*(make_message(f"item-{i}:overdue:line", recipient=recipient(i),
                                       subject=f"ข้อความที่ {i:03d}",
                                       created_at=NOW - timedelta(seconds=n - i), **fields)
                          for i in range(n)))


def rows_by_id(engine) -> dict[int, OutboxMessage]:
    with Session(engine) as session:
        return {row.id: row for row in session.exec(select(OutboxMessage))}


def most_in_one_second(instants: list[datetime]) -> int:
    """The most instants in any sliding window of one second."""
    times = sorted(t.timestamp() for t in instants)
    return max((bisect.bisect_right(times, t + 1 - 1e-9) - i for i, t in enumerate(times)),
               default=0)


@pytest.mark.parametrize(("concurrency", "shards"), [(50, 10), (8, 3)])
def test_a_batch_goes_out_concurrently_once_each_within_the_bound(
        engine, fake_line, async_line, add_messages, make_message, concurrency, shards):
    """200 pushes at 100 ms each would take 20 s one after another."""
    ids = queue_rows(add_messages, make_message, 200)
    fake_line.state.set_mode(latency_ms=100)
    line = async_line(concurrency=concurrency, shards=shards)
    start = time.monotonic()
    result = deliver_due(lambda: Session(engine), {"line": line}, NOW, limit=200)
    elapsed = time.monotonic() - start

    assert result == PumpResult(sent=200)
    assert elapsed < 8, f"{elapsed:.1f} s: the pushes did not overlap"
    stats = fake_line.state.stats()
    assert 2 <= stats["max_in_flight"] <= concurrency, stats
    rows = rows_by_id(engine)
    assert {rows[i].status for i in ids} == {OutboxStatus.SENT}
    pushes = fake_line.state.snapshot()
    assert Counter(p["to"] for p in pushes) == Counter(line_id(i) for i in range(200))
    assert sorted(p["retry_key"] for p in pushes) == sorted(
        retry_key(rows[i].idempotency_key) for i in ids)  # every push keyed, each its own key
    assert stats["requests"] == 200 and stats["duplicates"] == 0


def test_each_row_of_a_mixed_batch_gets_its_own_answer(engine, fake_line, async_line, add_user,
                                                       add_messages, make_message, http_client,
                                                       line_token):
    """200, 409 (already accepted: delivered), 400 and 404 (the route is refused) answered to
    pushes in flight together: each row records its own."""
    refused = add_user("refused", line_user_id=line_id(5))
    ids = queue_rows(add_messages, make_message, 60)
    with Session(engine) as session:
        session.get(OutboxMessage, ids[5]).user_id = refused
        replayed = session.get(OutboxMessage, ids[7])
        session.commit()
        http_client.post(fake_line.base_url + "/v2/bot/message/push",  # LINE has this one
                         json={"to": line_id(7), "messages": [{"type": "text", "text": "x"}]},
                         headers={"Authorization": f"Bearer {line_token}",
                                  "X-Line-Retry-Key": retry_key(replayed.idempotency_key)})
    fake_line.state.set_mode(latency_ms=50, by_recipient={line_id(5): 400, line_id(6): 404})

    result = deliver_due(lambda: Session(engine), {"line": async_line()}, NOW, limit=60)

    assert result == PumpResult(sent=58, failed=2)
    rows = rows_by_id(engine)
    assert rows[ids[5]].status == rows[ids[6]].status == OutboxStatus.FAILED
    assert rows[ids[5]].last_error.startswith("LINE 400")
    assert rows[ids[6]].last_error.startswith("LINE 404")
    assert {rows[i].status for i in ids if i not in (ids[5], ids[6])} == {OutboxStatus.SENT}
    with Session(engine) as session:
        assert session.get(User, refused).line_route_error.startswith("LINE 400")
    assert fake_line.state.duplicates == 1  # the 409, counted as delivered
    assert len(fake_line.state.snapshot()) == 58
    assert fake_line.state.stats()["max_in_flight"] > 2


def test_500_and_429_in_flight_stop_the_rest_and_every_row_says_what_happened(
        engine, fake_line, async_line, add_messages, make_message):
    """LINE fails two pushes of a concurrent batch: those two are retried later (the 429 after
    its Retry-After), no push starts after the failures are seen, and each row's state matches
    what LINE did with it: delivered once and sent, or never received and queued again."""
    ids = queue_rows(add_messages, make_message, 150)
    fake_line.state.set_mode(latency_ms=50, retry_after=120,
                             by_recipient={line_id(3): 500, line_id(10): 429})
    result = deliver_due(lambda: Session(engine), {"line": async_line()}, NOW, limit=150)

    rows = rows_by_id(engine)
    failed_500, failed_429 = rows[ids[3]], rows[ids[10]]
    assert (failed_500.status, failed_500.attempts) == (OutboxStatus.QUEUED, 1)
    # its own retry (~30 s) comes before the 429's 120 s, so it waits with the queue
    assert failed_500.last_error.startswith("waiting: line is not answering (LINE 429")
    assert failed_500.next_try_at >= NOW + timedelta(seconds=120)
    assert (failed_429.status, failed_429.attempts) == (OutboxStatus.QUEUED, 1)
    assert "LINE 429" in failed_429.last_error
    assert failed_429.next_try_at >= NOW + timedelta(seconds=120)

    received = Counter(p["to"] for p in fake_line.state.snapshot())
    assert set(received.values()) <= {1}
    others = [rows[i] for n, i in enumerate(ids) if n not in (3, 10)]
    sent = [r for r in others if r.status == OutboxStatus.SENT]
    held = [r for r in others if r.status != OutboxStatus.SENT]
    assert {r.recipient for r in sent} == set(received)
    assert {(r.status, r.attempts) for r in held} <= {(OutboxStatus.QUEUED, 0)}
    assert all(r.next_try_at >= NOW + timedelta(seconds=120) for r in held)
    assert all(r.last_error.startswith("waiting: line is not answering") for r in held)
    assert {rows[i].recipient for i in ids[:51]} - {line_id(3), line_id(10)} <= set(received)
    assert len(held) > 0  # 150 rows at 50 in flight: the rest were stopped, not all sent
    assert result == PumpResult(sent=len(sent), retried=2, released=len(held))
    assert len(fake_line.state.requests) == len(sent) + 2


def test_a_new_transport_probes_with_one_push_while_line_is_down(
        engine, fake_line, async_line, add_messages, make_message):
    """Nothing heard from LINE yet and it is down: one request, not fifty."""
    queue_rows(add_messages, make_message, 30)
    fake_line.state.set_mode(status=500, count=None)
    line = async_line()
    assert deliver_due(lambda: Session(engine), {"line": line}, NOW) == PumpResult(
        retried=1, released=29)
    assert len(fake_line.state.requests) == 1 and not line.answering

    fake_line.state.set_mode()  # back
    later = NOW + timedelta(hours=1)
    assert deliver_due(lambda: Session(engine), {"line": line}, later) == PumpResult(sent=30)
    assert line.answering and len(fake_line.state.snapshot()) == 30


def test_one_recipients_messages_arrive_in_order(engine, fake_line, async_line, add_messages,
                                                 make_message):
    """Different people at once, but one person's messages one after another, oldest first."""
    queue_rows(add_messages, make_message, 40, recipient=lambda i: line_id(i % 4))
    fake_line.state.set_mode(latency_ms=20)
    deliver_due(lambda: Session(engine), {"line": async_line()}, NOW)
    texts: dict[str, list[int]] = {}
    for push in fake_line.state.snapshot():
        texts.setdefault(push["to"], []).append(int(push["messages"][0]["text"][11:14]))
    assert texts == {line_id(r): list(range(r, 40, 4)) for r in range(4)}
    assert fake_line.state.stats()["max_in_flight"] == 4


def test_no_more_pushes_start_in_a_second_than_allowed(engine, fake_line, async_line,
                                                       add_messages, make_message):
    """At 40 a second, 80 pushes take at least a second; without a limit they took ~0.1 s.
    The stand-in's own clock adds scheduling jitter, hence a little slack."""
    queue_rows(add_messages, make_message, 80)
    start = time.monotonic()
    assert deliver_due(lambda: Session(engine), {"line": async_line(per_second=40)}, NOW,
                       limit=80) == PumpResult(sent=80)
    assert time.monotonic() - start >= 1.0
    received = [datetime.fromisoformat(p["received_at"]) for p in fake_line.state.snapshot()]
    assert most_in_one_second(received) <= 48


def test_the_rate_limiter_never_admits_more_than_the_limit_in_any_second():
    """aiolimiter's ``AsyncLimiter(500, 1)`` would admit up to 1,000 in a sliding second."""

    async def admissions() -> list[float]:
        limiter, loop, stamps = rate_limiter(500, 50), asyncio.get_running_loop(), []

        async def one() -> None:
            async with limiter:
                stamps.append(loop.time())

        await asyncio.gather(*(one() for _ in range(1000)))
        return stamps

    stamps = sorted(asyncio.run(admissions()))
    assert max(bisect.bisect_right(stamps, t + 1 - 1e-6) - i
               for i, t in enumerate(stamps)) <= 500
    assert stamps[-1] - stamps[0] >= 1.0


def test_the_scheduled_job_drains_a_backlog_and_shutdown_closes_the_clients(
        engine, fake_line, async_line, add_messages, make_message):
    """One run of the job sends more than one batch; the scheduler's shutdown closes the
    LINE transport's clients."""
    ids = queue_rows(add_messages, make_message, 120)
    fake_line.state.set_mode(latency_ms=10)
    line = async_line()
    scheduler = BackgroundScheduler(timezone=UTC)
    start_pump(scheduler, lambda: Session(engine), {"line": line}, interval_seconds=0.05,
               clock=lambda: NOW, batch=50)
    scheduler.start()
    try:
        deadline = time.monotonic() + 20
        while {r.status for r in rows_by_id(engine).values()} != {OutboxStatus.SENT}:
            assert time.monotonic() < deadline, "the pump never sent the backlog"
            time.sleep(0.05)
    finally:
        scheduler.shutdown(wait=True)
    assert all(client.is_closed for client in line.clients)
    assert len(fake_line.state.snapshot()) == len(ids)
    assert fake_line.state.duplicates == 0


# --- One message a person a day, even with two pumps at once ---------------------------------

def in_flight(fake_line, timeout: float = 10.0) -> None:
    """Wait until the stand-in has a push in flight (it answers after its latency)."""
    deadline = time.monotonic() + timeout
    while not fake_line.state.stats()["max_in_flight"]:
        assert time.monotonic() < deadline, "no push reached the stand-in"
        time.sleep(0.01)


@pytest.mark.parametrize("second", ["same-instant", "while-the-first-sends"])
def test_two_pumps_at_once_send_a_person_one_message_that_day(world, fake_line, async_line,
                                                              second):
    """staff-2701's due-day reminders for G8 and R1 (due Fri 9 Aug 2567), one row claimed by
    each of two pumps: started at the same instant, or the second while the first's push is in
    flight (each has claimed a row, and neither is sent yet). The database lets one of them
    send staff-2701's message of the day; the other's row waits, then for the next working
    day."""
    friday = at(date(2024, 8, 9), 8, 30)
    add_reminder(world, "G8", "due-today", "line", friday)
    add_reminder(world, "R1", "due-today", "line", friday)
    fake_line.state.set_mode(latency_ms=400)
    transports = [{"line": async_line()}, {"line": async_line()}]
    start = threading.Barrier(2)

    def pump(i: int, now) -> PumpResult:
        start.wait()
        if i == 1 and second == "while-the-first-sends" and now == friday:
            in_flight(fake_line)
        return deliver_due(lambda: Session(world["engine"]), transports[i], now, limit=1,
                           policy=DeliveryPolicy(base_url="https://tidtam.example"))

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(pump, range(2), [friday] * 2))
    assert sorted(r.sent for r in results) == [0, 1], results
    if second == "while-the-first-sends":
        assert results[1].released == 1  # it had claimed R1's row, and handed it back
    assert [p["to"] for p in fake_line.state.snapshot()] == [STAFF_LINE]

    # Later that day, and again on Monday (12 Aug is Mother's Day), nothing more goes out; the
    # row the second pump held back goes on Tuesday, in Tuesday's message.
    for now in (at(date(2024, 8, 9), 15), at(date(2024, 8, 13), 8, 30)):
        start.reset()
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(pump, range(2), [now] * 2))
    pushes = fake_line.state.snapshot()
    assert [p["to"] for p in pushes] == [STAFF_LINE, STAFF_LINE]
    with Session(world["engine"]) as session:
        rows = session.exec(select(OutboxMessage).where(OutboxMessage.channel == "line")
                            .order_by(OutboxMessage.sent_at)).all()
        deliveries = session.exec(select(OutboxDelivery).order_by(OutboxDelivery.sent_at)).all()
    assert [r.status for r in rows] == [OutboxStatus.SENT] * 2
    assert [r.sent_at.date() for r in rows] == [date(2024, 8, 9), date(2024, 8, 13)]
    assert [(d.delivery_key.split("|")[1], d.holder) for d in deliveries] == [
        ("2024-08-09", None), ("2024-08-13", None)]


def test_a_delivery_is_claimed_by_one_holder_until_it_is_sent_or_let_go(engine):
    """models.outbox.claim_delivery, from two sessions as two pumps hold them."""
    lease = timedelta(minutes=5)
    key = "daily|2024-08-07|line|U1"
    with Session(engine) as a, Session(engine) as b:
        assert claim_delivery(a, key, "a" * 32, NOW, lease) == (DeliveryClaim.CLAIMED, None)
        a.commit()
        claim, until = claim_delivery(b, key, "b" * 32, NOW, lease)
        b.commit()
        assert (claim, until) == (DeliveryClaim.HELD, NOW + lease)
        # A claim whose holder died is free once its lease is over.
        later = NOW + lease + timedelta(seconds=1)
        assert claim_delivery(b, key, "b" * 32, later, lease)[0] == DeliveryClaim.CLAIMED
        b.commit()
        finish_deliveries(a, "a" * 32, sent=[key], released=[], now=later)  # not a's any more
        a.commit()
        assert claim_delivery(a, key, "a" * 32, later, lease)[0] == DeliveryClaim.HELD
        a.commit()
        # Let go (the push will be retried): anyone may claim it again.
        finish_deliveries(b, "b" * 32, sent=[], released=[key], now=later)
        b.commit()
        assert claim_delivery(a, key, "a" * 32, later, lease)[0] == DeliveryClaim.CLAIMED
        finish_deliveries(a, "a" * 32, sent=[key], released=[key], now=later)
        a.commit()
        # Sent: the recipient's message of that day is spent, for every holder.
        for holder, session in (("a" * 32, a), ("b" * 32, b)):
            assert claim_delivery(session, key, holder, later + lease * 9, lease) == (
                DeliveryClaim.SENT, None)
            session.commit()
