"""The production pump's LINE path: many pushes in flight at once, each row's result its own.

Against the fake LINE server with injected latency: a batch goes out in a fraction of the time
one push after another would take, every recipient gets exactly one push with its own retry
key, no more requests are in flight than the transport allows, no more start in a second than
LINE allows, and whatever LINE answers each row is what the outbox records for it.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from sqlmodel import Session, select

from models import OutboxMessage, OutboxStatus, User
from notifications.line import rate_limiter, retry_key
from notifications.pump import PumpResult, deliver_due, start_pump
from tests.notifications.conftest import NOW


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
