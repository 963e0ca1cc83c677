"""``create_app(run_pump=True)``: the outbox pump runs in the app's lifespan and stops with it;
and what the pump finds out (a route LINE refuses) reaches the coordinator's outbox page."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import httpx
from fastapi.testclient import TestClient
from sqlmodel import Session

from models.outbox import Channel, OutboxMessage, OutboxStatus
from models.user import get_by_username
from notifications.pump import PumpResult, close_transports, deliver_due
from tests.web.helpers import CLOCK, api_token, signed_in
from tidtam.demo.line_standin import fake_line
from tidtam.demo.province import demo_line_id
from tidtam.infra.pump import transports_from_settings
from tidtam.infra.settings import Settings
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


def test_a_route_line_refuses_is_shown_on_the_outbox_page(any_client, any_engine):
    """LINE answers 400 for staff-2703's id: the message fails with LINE's reason, the route is
    marked broken, and the coordinator's page says who, which channel, why and since when."""
    with Session(any_engine) as session:
        staff = get_by_username(session, "staff-2703")
        assert staff.line_user_id == demo_line_id("staff-2703")
        session.add(OutboxMessage(idempotency_key="item:9:overdue:line", channel=Channel.LINE,
                                  recipient=staff.line_user_id, user_id=staff.id,
                                  district_code="2703", subject="เลยกำหนด", body="โปรดรายงาน",
                                  created_at=CLOCK, next_try_at=CLOCK))
        session.commit()
    with fake_line("web-test-token") as line, httpx.Client(timeout=5) as client:
        line.state.set_mode(status=400)
        settings = Settings(demo=True, _env_file=None, line_api_base=line.base_url,
                            line_channel_access_token="web-test-token")
        transports = transports_from_settings(settings, client)  # as the web process's pump
        try:
            assert deliver_due(lambda: Session(any_engine), transports, CLOCK) == PumpResult(
                failed=1)
        finally:
            close_transports(transports)

    signed_in(any_client, "coordinator")
    page = any_client.get("/outbox").text
    section = page[page.index('class="broken-routes"'):page.index("</section>")]
    assert "ช่องทางที่ใช้ส่งไม่ได้" in section
    assert "(staff-2703)" in section and "<td>2703</td>" in section
    assert "<td>LINE</td>" in section
    assert "LINE 400: The request body has 1 error(s)" in section
    assert "18 ก.ค. 2567 10:00 น." in section  # since: the pump's clock, Bangkok time
    assert section.count("<tr data-user=") == 1
    assert '<tr data-status="failed">' in page
    listed = any_client.get("/api/v1/outbox", headers=api_token(any_client, "coordinator"))
    assert [(m["key"], m["status"]) for m in listed.json()] == [("item:9:overdue:line", "failed")]


def test_no_broken_routes_no_section(client):
    signed_in(client, "coordinator")
    assert 'class="broken-routes"' not in client.get("/outbox").text
