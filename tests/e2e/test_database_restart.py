"""PostgreSQL restarted and stopped under a working `tidtam web` (its outbox pump in-process).

Each test starts a PostgreSQL server of its own on its own port (tests/helpers/postgres_server.py),
the web process on it, the LINE stand-in and an SMTP relay in this process, then:

- restarts PostgreSQL (fast shutdown) while a client loop writes through the API and the pump is
  halfway through a pass: every 2xx answer's change is in the database afterwards, every request
  got an HTTP answer (2xx, or 503 while the database was away), and the pump delivered every
  message exactly once: LINE by its retry key, and e-mail too, because the pass that lost its
  database wrote the deliveries it had made once the database was back instead of leaving them
  to be sent again after the lease. (SMTP has no retry key: an e-mail whose pump process dies
  after the relay's 250, or whose database stays away longer than the lease, goes out again,
  with the same Message-ID.)
- stops PostgreSQL while the pump holds claimed rows (LINE and the relay hold their answers):
  the API and the pages answer 503 in Thai and English on a kept-alive connection, and once the
  database is back the held rows go out within seconds, not after the pump's 5-minute lease.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool
from sqlmodel import Session, col, select

from models.audit import AuditEntry
from models.outbox import Channel, OutboxMessage, OutboxStatus
from notifications.line import retry_key
from notifications.mail import message_id
from notifications.pump import LEASE
from tests.helpers.poll import wait_until
from tests.helpers.postgres_server import PostgresServer, free_port
from tidtam.demo.line_standin import RunningFakeLine, run_in_thread
from tidtam.demo.province import DEMO_PASSWORD
from tidtam.ops.bootstrap import initialise

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "database-restart-test-channel-access-token"
SENDER = "tidtam <tidtam@restart.test>"
# The demo clock of the web process: a working morning, so the pump sends at once.
DEMO_NOW = datetime.fromisoformat("2024-08-20T10:00:00+07:00")
PENDING = (OutboxStatus.QUEUED, OutboxStatus.SENDING)
TH_503 = "ขณะนี้ไม่สามารถติดต่อฐานข้อมูลได้ กรุณาลองใหม่อีกครั้งในอีกสักครู่"
EN_503 = "The database cannot be reached right now; please try again in a moment."


# --- the outside world: PostgreSQL, LINE, a mail relay ----------------------------------------

@pytest.fixture
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.destroy()


@pytest.fixture
def line() -> Iterator[RunningFakeLine]:
    running = run_in_thread(TOKEN)
    yield running
    running.state.holding = False
    running.stop()


@dataclass
class Relay:
    """An SMTP relay that keeps what it accepts; it can take a while per message, or hold its
    answer to DATA (the message is accepted when the answer goes out)."""

    messages: list[email.message.EmailMessage] = field(default_factory=list)
    seconds_each: float = 0.0
    holding: bool = False
    held: int = 0

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        if self.seconds_each:
            await asyncio.sleep(self.seconds_each)  # a slow relay: the pass takes a while
        self.held += 1
        while self.holding:
            await asyncio.sleep(0.01)
        self.held -= 1
        self.messages.append(email.message_from_bytes(envelope.content,
                                                      policy=email.policy.default))
        return "250 OK"


@pytest.fixture
def relay() -> Iterator[tuple[Relay, int]]:
    handler = Relay()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(),
                            server_hostname="localhost")
    controller.start()
    yield handler, controller.port
    handler.holding = False
    controller.stop()


# --- the service ------------------------------------------------------------------------------

@dataclass
class Service:
    url: str  # the database
    base: str  # the web app
    engine: Engine  # the test's own view of the database (no pool: it outlives restarts)
    process: subprocess.Popen
    log: Path

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            pytest.fail(f"tidtam web exited ({self.process.returncode}):\n{self.tail()}")

    def tail(self) -> str:
        return self.logged()[-4000:]

    def logged(self) -> str:
        return self.log.read_text(errors="replace")

    def rows(self, keys: list[str]) -> dict[str, OutboxMessage]:
        with Session(self.engine) as session:
            return {m.idempotency_key: m for m in session.exec(
                select(OutboxMessage).where(col(OutboxMessage.idempotency_key).in_(keys)))}

    def statuses(self, keys: list[str]) -> Counter:
        return Counter(m.status for m in self.rows(keys).values())

    def delivered(self, keys: list[str]) -> bool:
        rows = self.rows(keys)
        return len(rows) == len(keys) and all(m.status == OutboxStatus.SENT
                                              for m in rows.values())


@pytest.fixture
def service(tmp_path, postgres, line, relay) -> Iterator[Service]:
    """The demo database on the test's PostgreSQL and `tidtam web` (with its pump, every
    second) on it, sending to the LINE stand-in and the relay."""
    url = postgres.create_database("tidtam")
    engine = create_engine(url, poolclass=NullPool)
    initialise(engine, demo=True, now=DEMO_NOW)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "TIDTAM_"))}
    env.update(TIDTAM_DATABASE_URL=url, TIDTAM_DATA_DIR=str(tmp_path / "data"), TIDTAM_DEMO="1",
               TIDTAM_DEMO_NOW=DEMO_NOW.isoformat(), TIDTAM_LINE_CHANNEL_ACCESS_TOKEN=TOKEN,
               TIDTAM_LINE_API_BASE=line.base_url, TIDTAM_SMTP_HOST="127.0.0.1",
               TIDTAM_SMTP_PORT=str(relay[1]), TIDTAM_SMTP_TLS="none", TIDTAM_SMTP_FROM=SENDER,
               TIDTAM_PUMP_INTERVAL_SECONDS="1", PREFECT_API_URL="http://127.0.0.1:9/api",
               PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1")
    port = free_port()
    log = tmp_path / "web.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "tidtam.cli", "web", "--port", str(port)],
                                   env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    running = Service(url, f"http://127.0.0.1:{port}", engine, process, log)
    try:
        wait_until(lambda: _answers(f"{running.base}/healthz"), timeout=120, interval=0.2,
                   check=running.check_alive, message=lambda: f"tidtam web:\n{running.tail()}")
        yield running
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        engine.dispose()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def enqueue(service: Service, prefix: str, line_rows: int, mail_rows: int) -> list[str]:
    """Outbox rows due now (as a sweep writes them): LINE to distinct users, e-mail to
    distinct addresses; returns their idempotency keys."""
    due = DEMO_NOW - timedelta(minutes=1)
    messages = [OutboxMessage(idempotency_key=f"{prefix}-line-{n}", channel=Channel.LINE,
                              recipient=f"U{n:032x}", subject=f"{prefix} {n}", body="ทดสอบ",
                              next_try_at=due, created_at=due) for n in range(line_rows)]
    messages += [OutboxMessage(idempotency_key=f"{prefix}-mail-{n}", channel=Channel.EMAIL,
                               recipient=f"staff{n}@restart.test", subject=f"{prefix} {n}",
                               body="ทดสอบ", next_try_at=due, created_at=due)
                 for n in range(mail_rows)]
    keys = [m.idempotency_key for m in messages]
    with Session(service.engine) as session:
        session.add_all(messages)
        session.commit()
    return keys


def bearer(base: str) -> dict[str, str]:
    answer = httpx.post(f"{base}/api/v1/token", timeout=30,
                        data={"username": "coordinator", "password": DEMO_PASSWORD})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def open_items(base: str, headers: dict[str, str], count: int) -> list[dict]:
    """Open items of non-report steps (the coordinator may waive them)."""
    items = httpx.get(f"{base}/api/v1/districts/2701/items", headers=headers, timeout=30).json()
    found = [i for i in items if i["status"] == "open" and not i["step_code"].startswith("R")]
    assert len(found) >= count, items
    return found[:count]


def assert_each_delivered_once(keys: list[str], line: RunningFakeLine, relay: Relay) -> None:
    line_keys = [k for k in keys if "-line-" in k]
    mail_keys = [k for k in keys if "-mail-" in k]
    pushes = Counter(p["retry_key"] for p in line.state.snapshot())
    assert {retry_key(k): pushes[retry_key(k)] for k in line_keys} == {
        retry_key(k): 1 for k in line_keys}
    mails = Counter(m["Message-ID"] for m in relay.messages)
    assert {k: mails[message_id(k, SENDER)] for k in mail_keys} == dict.fromkeys(mail_keys, 1)


# --- a client writing through the API all along ------------------------------------------------

@dataclass
class Writer:
    """Toggles one item between waived and open through the API, each write with a reason of
    its own, and keeps every answer: (reason, status, version answered) or the error."""

    base: str
    headers: dict[str, str]
    item: dict
    name: str
    answers: list[tuple[str, int, int | None]] = field(default_factory=list)
    no_answer: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(base_url=self.base, headers=self.headers, timeout=30) as client:
            n = 0
            while not self.stop.is_set():
                n += 1
                reason = f"{self.name}-{n}"
                action = "waive" if self.item["status"] == "open" else "unwaive"
                try:
                    answer = client.post(f"/api/v1/items/{self.item['id']}/{action}",
                                         json={"reason": reason, "version": self.item["version"]})
                except httpx.HTTPError as exc:
                    self.no_answer.append(f"{reason}: {type(exc).__name__}: {exc}")
                    continue
                ok = 200 <= answer.status_code < 300
                self.answers.append((reason, answer.status_code,
                                     answer.json()["version"] if ok else None))
                if ok:
                    self.item = answer.json()
                else:  # 503, or 409 after a 503 whose commit went through: read it again
                    self.refresh(client)
                time.sleep(0.02)  # a person's pace, many times over

    def refresh(self, client: httpx.Client) -> None:
        while not self.stop.is_set():
            try:
                answer = client.get(f"/api/v1/items/{self.item['id']}")
            except httpx.HTTPError as exc:
                self.no_answer.append(f"GET item: {type(exc).__name__}: {exc}")
                continue
            if answer.status_code == 200:
                self.item = answer.json()
                return
            time.sleep(0.05)


def test_a_restart_under_writes_and_delivery_loses_nothing_and_sends_once(
        service, postgres, line, relay):
    handler, _port = relay
    handler.seconds_each = 0.05  # 40 e-mails: a pass of about 2 s, one at a time
    headers = bearer(service.base)
    writers = [Writer(service.base, headers, item, f"w{n}")
               for n, item in enumerate(open_items(service.base, headers, 2))]
    threads = [threading.Thread(target=w.run, name=w.name) for w in writers]
    for thread in threads:
        thread.start()
    try:
        before = enqueue(service, "before", line_rows=40, mail_rows=40)
        # the pump is halfway through its e-mails when the database goes down
        wait_until(lambda: len(handler.messages) >= 10, timeout=60, check=service.check_alive,
                   message="the pump never started on the e-mails")
        wait_until(lambda: sum(len(w.answers) for w in writers) >= 20, timeout=60,
                   message="the writers never got going")
        answers_before = sum(len(w.answers) for w in writers)
        postgres.restart("fast")
        wait_until(lambda: sum(1 for w in writers for a in w.answers[answers_before:]
                               if a[1] == 200) >= 20, timeout=60, check=service.check_alive,
                   message=lambda: f"no writes succeed after the restart:\n{service.tail()}")
        after = enqueue(service, "after", line_rows=10, mail_rows=10)
        keys = before + after
        wait_until(lambda: service.delivered(keys), timeout=120, interval=0.2,
                   check=service.check_alive,
                   message=lambda: f"not all delivered: {service.statuses(keys)}\n{service.tail()}")
    finally:
        for writer in writers:
            writer.stop.set()
        for thread in threads:
            thread.join(60)

    statuses = Counter(status for w in writers for _reason, status, _v in w.answers)
    assert [m for w in writers for m in w.no_answer] == []  # every request got an answer
    assert set(statuses) <= {200, 409, 503}, statuses
    with Session(service.engine) as session:
        for writer in writers:
            entries = session.exec(select(AuditEntry).where(
                AuditEntry.entity == "tracked_item",
                AuditEntry.entity_id == str(writer.item["id"]))).all()
            recorded = {(e.after or {}).get("reason") for e in entries}
            acknowledged = [reason for reason, status, _v in writer.answers if status == 200]
            assert acknowledged and set(acknowledged) <= recorded  # no acknowledged write lost
            final = httpx.get(f"{service.base}/api/v1/items/{writer.item['id']}",
                              headers=headers, timeout=30).json()
            assert max(v for _r, s, v in writer.answers if s == 200) <= final["version"]

    rows = service.rows(keys)
    assert {(m.status, m.attempts) for m in rows.values()} == {(OutboxStatus.SENT, 1)}
    assert_each_delivered_once(keys, line, handler)
    assert "database went away during a pass" in service.logged()  # the pass did lose it


def test_a_stopped_database_answers_503_and_claimed_rows_go_out_when_it_is_back(
        service, postgres, line, relay):
    handler, _port = relay
    headers = bearer(service.base)
    browser = httpx.Client(base_url=service.base, timeout=30)
    token = re.search(r'name="csrftoken" value="([^"]+)"', browser.get("/login").text).group(1)
    signed_in = browser.post("/login", data={"username": "coordinator", "password": DEMO_PASSWORD,
                                             "csrftoken": token})
    assert signed_in.status_code == 303, signed_in.text[-500:]
    [item] = open_items(service.base, headers, 1)

    line.state.holding = handler.holding = True  # the pump's requests get no answer yet
    keys = enqueue(service, "held", line_rows=6, mail_rows=3)
    wait_until(lambda: line.state.answers_held >= 1 and handler.held >= 1, timeout=60,
               check=service.check_alive, message=lambda: f"the pump never sent:\n{service.tail()}")
    claimed = service.rows(keys)
    assert {m.status for m in claimed.values()} == {OutboxStatus.SENDING}
    lease_until = min(m.lease_until for m in claimed.values())

    postgres.stop("fast")
    try:
        with httpx.Client(base_url=service.base, headers=headers, timeout=30) as api:
            for n in range(10):  # one kept-alive connection; every request gets an answer
                answer = (api.get("/api/v1/me") if n % 2 else
                          api.post(f"/api/v1/items/{item['id']}/waive",
                                   json={"reason": f"during the stop {n}",
                                         "version": item["version"]}))
                assert answer.status_code == 503, answer.text
                assert answer.json() == {"detail": {"th": TH_503, "en": EN_503}}
                assert answer.headers["retry-after"] == "5"
        page = browser.get("/board")
        assert page.status_code == 503
        assert TH_503 in page.text and EN_503 in page.text

        # LINE and the relay answer now: the pump learns its results while the database is away
        line.state.holding = handler.holding = False
        wait_until(lambda: line.state.answers_held == 0 and handler.held == 0, timeout=60,
                   message="the held answers never went out")
        wait_until(lambda: "database went away during a pass" in service.logged(), timeout=60,
                   check=service.check_alive, message=lambda: service.tail())
    finally:
        browser.close()
        if not postgres.running():
            postgres.start()

    # within seconds of the database's return, long before the claims' lease ends
    wait_until(lambda: service.delivered(keys), timeout=60, interval=0.2,
               check=service.check_alive, message=lambda: f"still held:\n{service.tail()}")
    rows = service.rows(keys)
    # by the pump's own clock: sent while the first claim's lease still ran
    assert max(m.sent_at for m in rows.values()) < lease_until
    assert lease_until - min(m.created_at for m in rows.values()) >= LEASE - timedelta(minutes=1)
    assert {(m.status, m.attempts) for m in rows.values()} == {(OutboxStatus.SENT, 1)}
    assert_each_delivered_once(keys, line, handler)
    assert line.state.duplicates == 0  # what LINE had accepted was recorded, not pushed again
    assert len(handler.messages) == 3
