"""A pump killed with SIGKILL between LINE's HTTP 200 and the outbox update, then restarted.

Deterministic, with no hook in the product: the LINE stand-in (in this process) takes a lock on
the row the moment it accepts the push, before it writes the 200, so the pump's update cannot
commit; once the 200 has gone out (and, on PostgreSQL, the pump is seen waiting for that lock)
the pump process gets SIGKILL. The restarted pump reclaims the row after its lease, pushes
again with the same X-Line-Retry-Key, the stand-in answers 409 like LINE, and the row ends sent:
LINE has seen one delivery.
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
from sqlmodel import Session

from models.outbox import OutboxMessage, OutboxStatus
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
