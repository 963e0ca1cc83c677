"""``drain`` claims its next batch while the current one's sends are in flight: what it must
keep doing anyway. A recipient's messages arrive in order across the passes, every row goes out
once, and a service that goes down stops the batch claimed early too (handed back, held with the
rest of the queue), as a drain that did one pass after another would leave it."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session

from models import OutboxStatus
from notifications.pump import PumpResult, drain
from tests.notifications.conftest import NOW
from tests.notifications.test_concurrent_pump import line_id, queue_rows, rows_by_id


def test_one_recipients_messages_arrive_in_order_across_overlapping_passes(
        engine, fake_line, async_line, add_messages, make_message):
    """Batches of 10 with 8 in flight: each person's rows span several passes."""
    queue_rows(add_messages, make_message, 60, recipient=lambda i: line_id(i % 3))
    fake_line.state.set_mode(latency_ms=15)
    result = drain(lambda: Session(engine), {"line": async_line(concurrency=4, shards=2)},
                   lambda: NOW, batch=10)
    assert result == PumpResult(sent=60)
    texts: dict[str, list[int]] = {}
    for push in fake_line.state.snapshot():
        texts.setdefault(push["to"], []).append(int(push["messages"][0]["text"][11:14]))
    assert texts == {line_id(r): list(range(r, 60, 3)) for r in range(3)}
    assert fake_line.state.duplicates == 0
    assert fake_line.state.stats()["max_in_flight"] <= 3  # one at a time per recipient
    assert {row.status for row in rows_by_id(engine).values()} == {OutboxStatus.SENT}


def test_every_row_once_over_many_overlapping_passes(engine, fake_line, async_line,
                                                     add_messages, make_message):
    ids = queue_rows(add_messages, make_message, 230)
    fake_line.state.set_mode(latency_ms=5)
    result = drain(lambda: Session(engine), {"line": async_line(concurrency=8, shards=2)},
                   lambda: NOW, batch=40)
    assert result == PumpResult(sent=230)
    assert len(fake_line.state.snapshot()) == len(ids) == len(fake_line.state.requests)
    rows = rows_by_id(engine)
    assert all(rows[i].status == OutboxStatus.SENT and rows[i].attempts == 1 for i in ids)


def test_line_going_down_mid_drain_stops_the_batch_claimed_early_too(
        engine, fake_line, async_line, add_messages, make_message):
    """LINE fails from its 30th push on: nothing more goes out, and every row not sent waits,
    queued and held back with the rest of the queue, an attempt spent only on those tried."""
    ids = queue_rows(add_messages, make_message, 120)
    fake_line.state.set_mode(latency_ms=10)
    accepted = {"n": 0}

    def fail_from_now_on(_push: dict) -> None:
        accepted["n"] += 1
        if accepted["n"] == 30:
            fake_line.state.set_mode(status=500, count=None, latency_ms=10)

    fake_line.state.on_accepted = fail_from_now_on
    result = drain(lambda: Session(engine), {"line": async_line(concurrency=4, shards=2)},
                   lambda: NOW, batch=30)
    rows = rows_by_id(engine)
    sent = [i for i in ids if rows[i].status == OutboxStatus.SENT]
    waiting = [i for i in ids if rows[i].status == OutboxStatus.QUEUED]
    assert len(sent) + len(waiting) == len(ids)  # none left claimed
    assert result.sent == len(sent) == len(fake_line.state.snapshot()) >= 30
    assert result.retried >= 1 and result.released >= 1
    assert sum(rows[i].attempts for i in waiting) == result.retried
    assert all(rows[i].next_try_at > NOW + timedelta(seconds=1) for i in waiting)
    assert len(fake_line.state.requests) == len(sent) + result.retried  # nothing after that
