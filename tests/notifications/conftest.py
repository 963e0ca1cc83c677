"""Real servers for the notification tests: the fake LINE API, an SMTP sink, a SQLite file."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import httpx
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine
from sqlmodel import Session

import models
from domain.access import Role
from models.directive import find_item
from models.outbox import Channel, OutboxMessage
from models.user import get_by_username
from notifications.line import AsyncLineTransport, line_clients
from notifications.pump import close_transports
from tidtam.demo.line_standin import RunningFakeLine, run_in_thread

LINE_TOKEN = "test-channel-access-token-0123456789"
NOW = datetime(2024, 8, 7, 2, 0, tzinfo=UTC)  # 09:00 in Bangkok, a Wednesday
LINE_USER = "U" + "4af4980629" * 3 + "ab"


def free_port() -> int:
    """A port nobody listens on (bound and released at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- LINE ---------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def _fake_line_server() -> Iterator[RunningFakeLine]:
    running = run_in_thread(LINE_TOKEN)
    yield running
    running.stop()


@pytest.fixture
def fake_line(_fake_line_server: RunningFakeLine) -> RunningFakeLine:
    """The shared fake LINE server, forgotten clean before each test."""
    _fake_line_server.state.reset()
    return _fake_line_server


@pytest.fixture
def async_line(fake_line: RunningFakeLine) -> Iterator[Callable[..., AsyncLineTransport]]:
    """Make the production LINE transport (concurrent, over its own clients) for the fake;
    each is closed after the test."""
    made: list[AsyncLineTransport] = []

    def make(concurrency: int = 50, shards: int = 10, per_second: float = 2000,
             token: str = LINE_TOKEN, api_base: str | None = None,
             timeout: float = 10) -> AsyncLineTransport:
        made.append(AsyncLineTransport(line_clients(concurrency, shards, timeout=timeout), token,
                                       api_base or fake_line.base_url, concurrency=concurrency,
                                       per_second=per_second))
        return made[-1]

    yield make
    close_transports({f"line-{i}": transport for i, transport in enumerate(made)})


@pytest.fixture
def http_client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as client:
        yield client


# --- SMTP ---------------------------------------------------------------------------------

@dataclass
class SmtpSink:
    """An aiosmtpd handler that keeps every message and can refuse with a chosen reply."""

    messages: list[bytes] = field(default_factory=list)
    helos: list[str] = field(default_factory=list)  # the HELO/EHLO name of each message's session
    rcpt_reply: str | None = None
    data_reply: str | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        if self.data_reply:
            return self.data_reply
        self.messages.append(envelope.original_content or envelope.content)
        self.helos.append(session.host_name)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_sink() -> Iterator[tuple[SmtpSink, int]]:
    sink = SmtpSink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port(),
                            server_hostname="localhost")
    controller.start()
    yield sink, controller.port
    controller.stop()


# --- database -----------------------------------------------------------------------------

def migrate_and_seed(engine: Engine) -> Engine:
    """Migrate, then add the province 27 and its district 2701."""
    from tidtam.infra.db import migrate

    migrate(engine.url.render_as_string(hide_password=False))
    with Session(engine) as session:
        session.add(models.Province(code="27", name_th="สระแก้ว", name_en="Sa Kaeo"))
        session.flush()  # the tables declare no relationship, so order the inserts by hand
        session.add(models.District(code="2701", province_code="27", name_th="เมืองสระแก้ว",
                                    name_en="Mueang Sa Kaeo"))
        session.commit()
    return engine


@pytest.fixture
def engine(fresh_engine: Engine) -> Iterator[Engine]:
    """A migrated database (SQLite and PostgreSQL) with the province 27 and district 2701."""
    yield migrate_and_seed(fresh_engine)


@pytest.fixture
def session_factory(engine: Engine) -> Callable[[], Session]:
    return lambda: Session(engine)


@pytest.fixture
def add_user(engine: Engine) -> Callable[..., int]:
    """Insert a district staff user; returns the id."""

    def add(username: str = "somchai", line_user_id: str | None = LINE_USER) -> int:
        user = models.User(username=username, full_name="สมชาย ใจดี",
                           role=Role.DISTRICT_STAFF, province_code="27",
                           district_code="2701", email=f"{username}@example.go.th",
                           line_user_id=line_user_id, password_hash="x")
        with Session(engine) as session:
            session.add(user)
            session.commit()
            return user.id

    return add


def outbox_message(key: str = "item-1:reminder-3:user-1:line:2024-08-07", *,
                   channel: Channel = Channel.LINE, recipient: str = LINE_USER,
                   **fields: object) -> OutboxMessage:
    """An unsaved outbox row with readable defaults."""
    values = dict(idempotency_key=key, channel=channel, recipient=recipient,
                  district_code="2701", rung="reminder-3",
                  subject="แจ้งเตือน: ขั้นตอนที่ 2 ครบกำหนด 9 ส.ค. 2567",
                  body="เรียน เจ้าหน้าที่\n\nโปรดดำเนินการ", next_try_at=NOW, created_at=NOW)
    return OutboxMessage(**(values | fields))


@pytest.fixture
def add_messages(engine: Engine) -> Callable[..., list[int]]:
    """Insert outbox rows; returns their ids."""

    def add(*messages: OutboxMessage) -> list[int]:
        with Session(engine) as session:
            session.add_all(messages)
            session.commit()
            return [m.id for m in messages]

    return add


# --- template context ---------------------------------------------------------------------

@pytest.fixture
def message_context() -> dict:
    """The context the sweep flow passes to every message template."""
    due = date(2024, 8, 9)
    return dict(
        directive=SimpleNamespace(
            title_th="การขับเคลื่อนการดำเนินงานศูนย์ผู้นำจิตอาสาพัฒนาชุมชน ประจำปีงบประมาณ พ.ศ. 2567",
            reference_no="สก 0019/ว 252", slug="fy2567-sakaeo-volunteer-centers"),
        step=SimpleNamespace(code="g2", title_th="จัดประชุมกลไกขับเคลื่อน & จัดทำแผน",
                             due_on=due),
        district=SimpleNamespace(name_th="เมืองสระแก้ว", code="2701"),
        districts_late=[{"name_th": "คลองหาด", "code": "2702", "days_late": 2},
                        {"name_th": "ตาพระยา", "code": "2703", "days_late": 5}],
        rung="reminder-3", due_on=due, days=3, base_url="https://tidtam.example.go.th",
        item_id=42,
    )


@pytest.fixture
def make_message() -> Callable[..., OutboxMessage]:
    return outbox_message


@pytest.fixture
def line_user() -> str:
    return LINE_USER


@pytest.fixture
def line_token() -> str:
    return LINE_TOKEN


@pytest.fixture
def now() -> datetime:
    return NOW


@pytest.fixture
def closed_port() -> int:
    """A local port where nothing listens, for refused connections."""
    return free_port()


# --- Sa Kaeo's FY 2567 directive, launched (the send-time and two-pump tests) ----------------

BKK = ZoneInfo("Asia/Bangkok")
STAFF_LINE = "U" + "ab" * 16


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=BKK)


@pytest.fixture
def world(fresh_engine):
    """Sa Kaeo, the FY 2567 directive launched, the demo accounts; staff-2701 on LINE."""
    from tidtam.app.orgtree import load_provinces
    from tidtam.app.tracking import launch_directive
    from tidtam.demo.province import create_demo_accounts
    from tidtam.infra.db import migrate
    from tidtam.ops.bootstrap import DEFAULT_DIRECTIVE, load_directive

    migrate(fresh_engine.url.render_as_string(hide_password=False))
    with Session(fresh_engine) as session:
        load_provinces(session, ["27"])
        directive = launch_directive(session, load_directive(DEFAULT_DIRECTIVE),
                                     now=at(date(2024, 7, 1), 9)).directive
        create_demo_accounts(session, at(date(2024, 7, 1), 9))
        staff = get_by_username(session, "staff-2701")
        staff.line_user_id = STAFF_LINE
        session.add(staff)
        session.commit()
        items = {code: find_item(session, directive.id, "2701", code).id
                 for code in ("G1", "G8", "R1")}
        steps = {code: find_item(session, directive.id, "2701", code).step_id
                 for code in ("G1", "G8", "R1")}
        staff_id, email_to = staff.id, staff.email
    return {"engine": fresh_engine, "items": items, "steps": steps, "staff": staff_id,
            "email": email_to}


def add_reminder(world, step: str, rung: str, channel: str, queued: datetime) -> None:
    recipient = STAFF_LINE if channel == "line" else world["email"]
    with Session(world["engine"]) as session:
        session.add(OutboxMessage(
            idempotency_key=f"{rung}|{queued.date()}|item:{world['items'][step]}|"
                            f"user:{world['staff']}|{channel}",
            channel=Channel(channel), recipient=recipient, user_id=world["staff"],
            district_code="2701", item_id=world["items"][step], step_id=world["steps"][step],
            rung=rung, subject="ถึงกำหนดแล้ว (as queued)", body="ถึงกำหนดแล้ว (as queued)",
            next_try_at=queued, created_at=queued))
        session.commit()
