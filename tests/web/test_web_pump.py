"""``create_app(run_pump=True)``: the outbox pump runs in the app's lifespan and stops with it;
and what the pump finds out (a route LINE refuses) reaches the coordinator's outbox page."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import httpx
from fastapi.testclient import TestClient
from sqlmodel import Session

from models.outbox import Channel, OutboxMessage, OutboxStatus
from models.user import get_by_username
from notifications.pump import PumpResult, close_transports, deliver_due
from tests.helpers.poll import holds_for, wait_until
from tests.web.helpers import CLOCK, api_token, signed_in
from tidtam.demo.line_standin import fake_line
from tidtam.demo.province import demo_line_id
from tidtam.infra.clock import FixedClock
from tidtam.infra.pump import transports_from_settings
from tidtam.infra.settings import Settings
from web.app import create_app


def status_of(engine, message_id: int) -> OutboxStatus:
    with Session(engine) as session:
        return session.get(OutboxMessage, message_id).status


def queue_email(engine, key: str) -> int:
    """An e-mail due a minute before the app's clock; with no SMTP set, the pump's first pass
    marks it 'not sent: no channel', so any pass at all shows in its status."""
    with Session(engine) as session:
        message = OutboxMessage(idempotency_key=key, channel=Channel.EMAIL,
                                recipient="staff-2703@demo.tidtam.local", subject="s", body="b",
                                created_at=CLOCK, next_try_at=CLOCK - timedelta(minutes=1))
        session.add(message)
        session.commit()
        return message.id


def scheduler_threads() -> set[threading.Thread]:
    """The APScheduler threads alive now (``BackgroundScheduler`` names its thread so)."""
    return {t for t in threading.enumerate() if t.name == "APScheduler" and t.is_alive()}


INTERVAL = 0.1  # pump_interval_seconds for both apps below: its first pass comes after this


def pump_settings() -> Settings:
    return Settings(demo=True, _env_file=None, pump_interval_seconds=INTERVAL)  # no SMTP set


def test_the_lifespan_runs_the_pump_and_shuts_it_down(engine):
    message_id = queue_email(engine, "pump-test:1")
    before = scheduler_threads()
    app = create_app(pump_settings(), engine, clock=FixedClock(CLOCK), run_pump=True)
    with TestClient(app) as client:
        assert client.get("/healthz").json() == {"ok": True}
        assert scheduler_threads() - before, "run_pump=True started no scheduler"
        wait_until(lambda: status_of(engine, message_id) != OutboxStatus.QUEUED, timeout=15,
                   message="the pump never picked the message up")
    assert status_of(engine, message_id) == OutboxStatus.NOT_SENT_NO_CHANNEL
    assert not scheduler_threads() - before, "the scheduler outlived the app"


def test_without_run_pump_nothing_is_sent(engine):
    """The control first: with run_pump=True and the same interval the pump handles a message,
    and how long that takes sets the window; without run_pump, a message stays queued for three
    times that window (and at least 20 intervals), and no scheduler thread is started."""
    control = queue_email(engine, "pump-test:control")
    with TestClient(create_app(pump_settings(), engine, clock=FixedClock(CLOCK), run_pump=True)):
        started = time.monotonic()
        wait_until(lambda: status_of(engine, control) != OutboxStatus.QUEUED, timeout=15,
                   message="the control app (run_pump=True) never handled its message")
        took = time.monotonic() - started

    message_id = queue_email(engine, "pump-test:2")
    before = scheduler_threads()
    with TestClient(create_app(pump_settings(), engine, clock=FixedClock(CLOCK))) as client:
        assert client.get("/healthz").json() == {"ok": True}
        holds_for(lambda: status_of(engine, message_id) == OutboxStatus.QUEUED,
                  seconds=max(3 * took, 20 * INTERVAL),
                  message="an app created without run_pump sent the message")
        assert not scheduler_threads() - before, "an app without run_pump started a scheduler"
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
    page = client.get("/outbox")
    assert page.status_code == 200 and "<h1>ข้อความแจ้งเตือน</h1>" in page.text
    assert 'class="broken-routes"' not in page.text
