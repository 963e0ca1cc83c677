"""Pumps killed with SIGKILL while they hold rows, then restarted after the lease.

First, one row, the pump killed between LINE's HTTP 200 and the outbox update. Deterministic,
with no hook in the product: the LINE stand-in (in this process) takes a lock on the row the
moment it accepts the push, before it writes the 200, so the pump's update cannot commit; once
the 200 has gone out (and, on PostgreSQL, the pump is seen waiting for that lock) the pump
process gets SIGKILL. The restarted pump reclaims the row after its lease, pushes again with the
same X-Line-Retry-Key, the stand-in answers 409 like LINE, and the row ends sent: LINE has seen
one delivery, and the row counts one attempt (the crashed claim counts none).

Then nine rows held by two pumps killed in turn (some delivered by LINE, some never started):
the third pump sends each exactly once and every row counts one attempt (issue 16: each crash
used to spend an attempt of every row the pump held).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from models.outbox import OutboxMessage, OutboxStatus
from notifications.line import retry_key
from tests.helpers.poll import wait_until
from tests.notifications.conftest import LINE_USER, NOW, migrate_and_seed, outbox_message
from tidtam.demo.line_standin import RunningFakeLine, run_in_thread

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("pump_process.py")
TOKEN = "crash-test-channel-access-token"
LEASE = timedelta(minutes=5)  # notifications.pump.LEASE


@pytest.fixture
def line() -> Iterator[RunningFakeLine]:
    running = run_in_thread(TOKEN)
    yield running
    running.stop()


@pytest.fixture
def database(fresh_engine: Engine) -> Iterator[tuple[str, int]]:
    """A migrated database on each backend with one LINE message queued; (URL, row id)."""
    migrate_and_seed(fresh_engine)
    with Session(fresh_engine) as session:
        message = outbox_message(recipient=LINE_USER)
        session.add(message)
        session.commit()
        message_id = message.id
    yield fresh_engine.url.render_as_string(hide_password=False), message_id


class RowLock:
    """Holds the database lock that keeps the pump's update of the row from committing."""

    def __init__(self, url: str, message_id: int) -> None:
        self.url, self.message_id = url, message_id
        self.release = lambda: None

    def take(self, _push: dict) -> None:
        if self.url.startswith("sqlite"):
            conn = sqlite3.connect(self.url.split("///", 1)[1], isolation_level=None,
                                   check_same_thread=False)
            conn.execute("BEGIN IMMEDIATE")  # the one writer; the pump's UPDATE waits for it
            self.release = lambda: (conn.rollback(), conn.close())
            return
        engine = create_engine(self.url)
        conn = engine.connect()
        transaction = conn.begin()
        conn.execute(text("SELECT id FROM outbox WHERE id = :id FOR UPDATE"),
                     {"id": self.message_id})
        self.release = lambda: (transaction.rollback(), conn.close(), engine.dispose())


def start_pump(url: str, line: RunningFakeLine, now) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env = {k: v for k, v in env.items() if not k.startswith("TIDTAM_")}
    return subprocess.Popen([sys.executable, str(SCRIPT), url, line.base_url, TOKEN,
                             now.isoformat()], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_until_blocked_on_the_row(url: str, timeout: float = 60) -> None:
    """PostgreSQL shows the pump's UPDATE waiting for our row lock: it has the 200 in hand."""
    engine = create_engine(url)
    query = text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                 "AND query ILIKE 'UPDATE outbox%'")
    try:
        deadline = time.monotonic() + timeout
        with engine.connect() as conn:
            while not conn.execute(query).scalar():
                assert time.monotonic() < deadline, "the pump never reached the outbox update"
                time.sleep(0.05)
    finally:
        engine.dispose()


def row(url: str, message_id: int) -> OutboxMessage:
    engine = create_engine(url)
    try:
        with Session(engine) as session:
            return session.get(OutboxMessage, message_id)
    finally:
        engine.dispose()


def test_sigkill_between_the_200_and_the_update_then_restart(database, line):
    url, message_id = database
    lock, answered = RowLock(url, message_id), threading.Event()
    line.state.on_accepted = lock.take
    line.state.on_answered = lambda _push: answered.set()

    pump = start_pump(url, line, NOW)
    try:
        if not answered.wait(60):
            pytest.fail(f"the pump never pushed: {pump.communicate(timeout=5)}")
        if url.startswith("postgresql"):
            wait_until_blocked_on_the_row(url)
        os.kill(pump.pid, signal.SIGKILL)
        assert pump.wait(10) == -signal.SIGKILL
    finally:
        if pump.poll() is None:
            pump.kill()
        lock.release()

    crashed = row(url, message_id)
    assert (crashed.status, crashed.attempts, crashed.claims, crashed.sent_at) == (
        OutboxStatus.SENDING, 0, 1, None)  # claimed, its try not recorded
    assert crashed.lease_until == NOW + LEASE
    assert len(line.state.snapshot()) == 1  # LINE has delivered it already

    line.state.on_accepted = line.state.on_answered = None
    early = start_pump(url, line, NOW + LEASE - timedelta(seconds=1))  # lease not over yet
    assert early.wait(60) == 0, early.communicate()
    assert len(line.state.requests) == 1

    restarted = start_pump(url, line, NOW + LEASE + timedelta(minutes=1))
    out, err = restarted.communicate(timeout=60)
    assert restarted.returncode == 0, err
    assert "sent=1" in out

    done = row(url, message_id)
    assert (done.status, done.attempts, done.claims) == (OutboxStatus.SENT, 1, 2)  # one try counted
    assert done.sent_at == NOW + LEASE + timedelta(minutes=1)
    [first, replay] = line.state.requests
    assert first["headers"]["x-line-retry-key"] == replay["headers"]["x-line-retry-key"]
    assert len(line.state.snapshot()) == 1  # one delivery
    assert line.state.duplicates == 1  # the replay was answered 409, and 409 counts as sent


# --- Crashes while holding many rows: none of them spends an attempt ------------------------

RECIPIENTS = [f"U{n:032x}" for n in (0xA, 0xB, 0xC)]
ROWS_EACH = 3
ROUND = LEASE + timedelta(minutes=1)  # a restart after the lease of the previous claim


@pytest.fixture
def nine_rows(fresh_engine: Engine) -> Iterator[tuple[str, list[str]]]:
    """Three recipients with three LINE messages each; (URL, idempotency keys in order)."""
    migrate_and_seed(fresh_engine)
    rows = [(f"crash-{n}-{r}", recipient) for n in range(ROWS_EACH)
            for r, recipient in enumerate(RECIPIENTS)]
    with Session(fresh_engine) as session:
        session.add_all(outbox_message(key, recipient=recipient,
                                       created_at=NOW + timedelta(seconds=i))
                        for i, (key, recipient) in enumerate(rows))
        session.commit()
    yield fresh_engine.url.render_as_string(hide_password=False), [key for key, _ in rows]


def all_rows(url: str) -> dict[str, OutboxMessage]:
    engine = create_engine(url)
    try:
        with Session(engine) as session:
            return {m.idempotency_key: m for m in session.exec(select(OutboxMessage))}
    finally:
        engine.dispose()


def kill_when(pump: subprocess.Popen, holding, what: str) -> None:
    """SIGKILL the pump once ``holding()`` says it holds its rows (requests answered no more)."""
    try:
        wait_until(holding, timeout=60, message=lambda: f"{what}: {pump.poll()=}",
                   check=lambda: pump.poll() is None or pytest.fail(
                       f"the pump exited: {pump.communicate(timeout=5)}"))
        os.kill(pump.pid, signal.SIGKILL)
        assert pump.wait(10) == -signal.SIGKILL
    finally:
        if pump.poll() is None:
            pump.kill()


def test_pumps_killed_while_holding_rows_spend_no_attempt_and_send_each_row_once(nine_rows, line):
    """Crash 1: LINE answers the first push (the pump's probe), then holds every answer: the
    pump holds 9 rows, 3 of them delivered by LINE without the pump knowing, 5 not started.
    Crash 2, after the lease: the restarted pump reclaims them and is killed again while LINE
    holds its probe. The third pump, after that lease, sends every row: LINE delivers each
    exactly once (the replays carry the same retry key and are answered 409), and every row
    counts exactly one attempt, however many claims died with their pumps."""
    url, keys = nine_rows
    state = line.state
    state.on_accepted = lambda _push: setattr(state, "holding", len(state.pushes) > 1)

    kill_when(start_pump(url, line, NOW), lambda: state.answers_held == len(RECIPIENTS),
              "the first pump holding a push per recipient")
    assert len(state.snapshot()) == 1 + len(RECIPIENTS)  # the probe and one push per recipient
    delivered = {push["retry_key"] for push in state.snapshot()}
    crashed = all_rows(url)
    unknown = {k for k, m in crashed.items() if m.status == OutboxStatus.SENDING}
    assert len(unknown) >= len(keys) - 1  # all but the probe's row, whose 200 may be recorded
    assert {(crashed[k].attempts, crashed[k].claims) for k in unknown} == {(0, 1)}
    assert len({retry_key(k) for k in unknown} & delivered) >= len(RECIPIENTS)

    state.on_accepted = None  # LINE keeps holding every answer
    requests_before = len(state.requests)
    kill_when(start_pump(url, line, NOW + ROUND),
              lambda: len(state.requests) == requests_before + 1
              and state.answers_held == len(RECIPIENTS) + 1,
              "the second pump holding its probe")
    second = all_rows(url)
    assert {(second[k].status, second[k].attempts, second[k].claims) for k in unknown} == {
        (OutboxStatus.SENDING, 0, 2)}  # reclaimed after the lease, no attempt counted

    state.holding = False
    last = start_pump(url, line, NOW + 2 * ROUND)
    out, err = last.communicate(timeout=60)
    assert last.returncode == 0, err
    assert f"sent={len(unknown)}" in out

    done = all_rows(url)
    assert {m.status for m in done.values()} == {OutboxStatus.SENT}
    assert {k: m.attempts for k, m in done.items()} == dict.fromkeys(keys, 1)
    assert {k: done[k].claims for k in unknown} == dict.fromkeys(unknown, 3)
    pushes = [push["retry_key"] for push in state.snapshot()]
    assert sorted(pushes) == sorted(retry_key(k) for k in keys)  # each delivered exactly once
    sent_keys = {request["headers"]["x-line-retry-key"] for request in state.requests}
    assert sent_keys == set(pushes)  # every request carried its row's one retry key
    assert state.duplicates == len(state.requests) - len(keys) > 0  # replays answered 409
