"""``create_app(run_pump=True)``: the outbox pump runs in the app's lifespan and stops with it."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlmodel import Session

from models.outbox import Channel, OutboxMessage, OutboxStatus
from tidtam.settings import Settings
from web.app import create_app


def status_of(engine, message_id: int) -> OutboxStatus:
    with Session(engine) as session:
        return session.get(OutboxMessage, message_id).status


def test_the_lifespan_runs_the_pump_and_shuts_it_down(engine):
    now = datetime.now(UTC)
    with Session(engine) as session:
        message = OutboxMessage(idempotency_key="pump-test:1", channel=Channel.EMAIL,
                                recipient="staff-2703@demo.tidtam.local", subject="s", body="b",
                                created_at=now, next_try_at=now - timedelta(minutes=1))
        session.add(message)
        session.commit()
        message_id = message.id
    settings = Settings(demo=True, _env_file=None, pump_interval_seconds=0.2)  # no SMTP set
    app = create_app(settings, engine, run_pump=True)
    with TestClient(app) as client:
        assert client.get("/healthz").json() == {"ok": True}
        deadline = time.monotonic() + 15
        while status_of(engine, message_id) == OutboxStatus.QUEUED:
            assert time.monotonic() < deadline, "the pump never picked the message up"
            time.sleep(0.1)
    assert status_of(engine, message_id) == OutboxStatus.NOT_SENT_NO_CHANNEL
    assert not [t for t in threading.enumerate() if t.name == "APScheduler" and t.is_alive()]


def test_without_run_pump_nothing_is_sent(engine):
    now = datetime.now(UTC)
    with Session(engine) as session:
        message = OutboxMessage(idempotency_key="pump-test:2", channel=Channel.EMAIL,
                                recipient="x@example", subject="s", body="b", created_at=now,
                                next_try_at=now - timedelta(minutes=1))
        session.add(message)
        session.commit()
        message_id = message.id
    with TestClient(create_app(Settings(demo=True, _env_file=None), engine)) as client:
        client.get("/healthz")
        time.sleep(0.3)
    assert status_of(engine, message_id) == OutboxStatus.QUEUED
