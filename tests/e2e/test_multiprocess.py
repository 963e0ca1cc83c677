"""The whole-country shape on one machine: two web processes and two outbox pumps, one PostgreSQL.

As deploy/country/ runs it: `tidtam web --no-pump` (twice, as behind the proxy) and `tidtam pump`
(twice, as on two machines), each its own process, all on one PostgreSQL database, with the
LINE stand-in and an SMTP sink as the outside world. Two sweeps at the same instant run at
once, then three at later dates (also at once), while both pumps poll every second: a few
hundred messages.

What it proves: the outbox drains with every row sent on its first attempt; LINE (the stand-in)
saw each row's retry key exactly once and no replay; the SMTP sink got each row's Message-ID
exactly once; the pumps' own counts add up to the rows; two sweeps at once enqueue each message
once; and a session signed in on one web process is honoured by the other (one secret key, so
the proxy needs no sticky sessions).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from aiosmtpd.controller import Controller
from sqlmodel import Session, select

from domain.access import Role
from models.outbox import Channel, OutboxMessage, OutboxStatus, to_people
from notifications.line import retry_key
from notifications.mail import message_id
from tests.conftest import make_database
from tests.e2e.test_serve import Sink, free_port
from tidtam.app.accounts import ensure_user
from tidtam.demo.line_standin import RunningFakeLine, run_in_thread
from tidtam.demo.province import DEMO_PASSWORD, demo_line_id
from tidtam.infra.db import engine_for

# Several processes on a shared 2-core machine: minutes, not seconds, under load.
pytestmark = [pytest.mark.postgres, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
TIDTAM = [sys.executable, "-m", "tidtam.cli"]
TOKEN = "multiprocess-test-channel-access-token"
SENDER = "tidtam <tidtam@multiprocess.test>"
# Sweeps on four working mornings; the pumps' clock stands after the last, in office hours.
FIRST_SWEEP = "2024-08-12T09:00:00+07:00"
LATER_SWEEPS = ("2024-08-14T09:00:00+07:00", "2024-08-16T09:00:00+07:00",
                "2024-08-20T09:00:00+07:00")
PUMP_CLOCK = "2024-08-20T10:00:00+07:00"
EXTRA_STAFF = 6  # per district, beside the demo's one: more messages per sweep
PENDING = {OutboxStatus.QUEUED, OutboxStatus.SENDING}


@pytest.fixture
def line() -> Iterator[RunningFakeLine]:
    running = run_in_thread(TOKEN)
    yield running
    running.stop()


@pytest.fixture
def smtp() -> Iterator[tuple[Sink, int]]:
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port(),
                            server_hostname="localhost")
    controller.start()
    yield sink, controller.port
    controller.stop()


@pytest.fixture
def database(tmp_path_factory) -> Iterator[str]:
    url, drop = make_database("postgresql", tmp_path_factory)  # CI=true: no PostgreSQL fails
    yield url
    drop()


class Processes:
    """The tidtam processes of the test, each logging to a file; all stopped at the end."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs = env, logs
        self.running: dict[str, subprocess.Popen] = {}

    def start(self, name: str, *args: str) -> None:
        with open(self.logs / f"{name}.log", "wb") as out:
            self.running[name] = subprocess.Popen([*TIDTAM, *args], env=self.env, cwd=ROOT,
                                                  stdout=out, stderr=subprocess.STDOUT)

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def check_alive(self) -> None:
        for name, proc in self.running.items():
            if proc.poll() is not None:
                pytest.fail(f"{name} exited ({proc.returncode}):\n{self.log(name)[-3000:]}")

    def wait_for(self, predicate, what: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            self.check_alive()
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {n}\n{self.log(n)[-1500:]}" for n in self.running)
                pytest.fail(f"timed out waiting for {what}\n{logs}")
            time.sleep(0.5)

    def stop(self) -> None:
        for proc in self.running.values():
            proc.terminate()
        for name, proc in self.running.items():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                pytest.fail(f"{name} did not stop within 30 s of SIGTERM")


def environment(url: str, data_dir: Path, line: RunningFakeLine, smtp_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "TIDTAM_"))}
    env.update(
        TIDTAM_DATABASE_URL=url, TIDTAM_DATA_DIR=str(data_dir), TIDTAM_DEMO="1",
        TIDTAM_DEMO_NOW=PUMP_CLOCK, TIDTAM_SECRET_KEY="multiprocess-test-key-0123456789abcdef",
        TIDTAM_LINE_CHANNEL_ACCESS_TOKEN=TOKEN, TIDTAM_LINE_API_BASE=line.base_url,
        TIDTAM_SMTP_HOST="127.0.0.1", TIDTAM_SMTP_PORT=str(smtp_port), TIDTAM_SMTP_TLS="none",
        TIDTAM_SMTP_FROM=SENDER, TIDTAM_PUMP_INTERVAL_SECONDS="1",
        # Each row its own message: what is proven here is row-level exactly-once across
        # processes (the day's grouping is tests/notifications/test_send_time.py's).
        TIDTAM_PUMP_GROUP_REMINDERS="false", TIDTAM_LINE_MONTHLY_QUOTA="0",
        # No Prefect server: `tidtam sweep` runs the flow's code without orchestration.
        PREFECT_API_URL="http://127.0.0.1:9/api", PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1")
    return env


def add_staff(url: str) -> None:
    """More district staff, each with LINE and e-mail, so each sweep enqueues more."""
    engine = engine_for(url)
    with Session(engine) as session:
        for n in range(2701, 2710):
            for extra in range(1, EXTRA_STAFF + 1):
                username = f"staff-{n}-{extra}"
                ensure_user(session, username=username, full_name=f"เจ้าหน้าที่ {username}",
                            role=Role.DISTRICT_STAFF, province_code="27", district_code=str(n),
                            now=datetime.now(UTC), password_hash="x",
                            email=f"{username}@multiprocess.test",
                            line_user_id=demo_line_id(username))
        session.commit()


def sweep(env: dict[str, str], *instants: str) -> list[int]:
    """`tidtam sweep --now …` for each instant, all at once; the number each enqueued."""
    procs = [subprocess.Popen([*TIDTAM, "sweep", "--now", at], env=env, cwd=ROOT, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for at in instants]
    enqueued = []
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
        enqueued.append(int(re.search(r"enqueued (\d+) messages", out).group(1)))
    return enqueued


def outbox(url: str) -> list[OutboxMessage]:
    """The messages to people (the Prefect events of the launch and the marks have no server
    here: they stay queued, and are not this test's)."""
    with Session(engine_for(url)) as session:
        return list(session.exec(select(OutboxMessage).where(to_people())))


def signed_in_on_one_served_by_the_other(web_a: str, web_b: str) -> None:
    """Sign in through web A's form; web B knows the session (and A's CSRF cookie)."""
    with httpx.Client(timeout=20) as client:
        token = re.search(r'name="csrftoken" value="([^"]+)"',
                          client.get(f"{web_a}/login").text).group(1)
        answer = client.post(f"{web_b}/login", data={"username": "coordinator",
                                                     "password": DEMO_PASSWORD,
                                                     "csrftoken": token})
        assert answer.status_code == 303, answer.text[-500:]  # signed in: off to the board
        assert "/login" not in answer.headers["location"]
        board = client.get(f"{web_a}/provinces/27/directives", follow_redirects=False)
        assert board.status_code == 200 and "/logout" in board.text, board.headers


def pump_sent(log: str) -> int:
    return sum(int(n) for n in re.findall(r"outbox pump: PumpResult\(sent=(\d+)", log))


def test_two_web_processes_and_two_pumps_send_every_message_once(tmp_path, database, line, smtp):
    sink, smtp_port = smtp
    env = environment(database, tmp_path / "data", line, smtp_port)
    init = subprocess.run([*TIDTAM, "init", "--demo"], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=180)
    assert init.returncode == 0, init.stderr
    add_staff(database)

    processes = Processes(env, tmp_path)
    web_ports = free_port(), free_port()
    try:
        for n, port in enumerate(web_ports, 1):
            processes.start(f"web-{n}", "web", "--no-pump", "--port", str(port))
        for n in (1, 2):
            processes.start(f"pump-{n}", "pump")
        webs = [f"http://127.0.0.1:{port}" for port in web_ports]
        processes.wait_for(lambda: all(_answers(f"{w}/healthz") for w in webs), "both web processes")
        processes.wait_for(lambda: all("outbox pump running" in processes.log(f"pump-{n}")
                                       for n in (1, 2)), "both pumps")
        signed_in_on_one_served_by_the_other(*webs)

        twice_at_once = sweep(env, FIRST_SWEEP, FIRST_SWEEP)
        later = sweep(env, *LATER_SWEEPS)
        processes.wait_for(lambda: not any(r.status in PENDING for r in outbox(database)),
                           "the outbox to drain", timeout=600)
        # Both pumps have written every result (the last pass logs after its last commit).
        processes.wait_for(lambda: pump_sent(processes.log("pump-1"))
                           + pump_sent(processes.log("pump-2")) >= len(outbox(database)),
                           "the pumps' logs")
        processes.check_alive()
    finally:
        processes.stop()

    rows = outbox(database)
    assert len(rows) >= 250, len(rows)  # a few hundred
    assert sum(twice_at_once) + sum(later) == len(rows)  # the two sweeps at once: each row once
    assert {(r.status, r.attempts) for r in rows} == {(OutboxStatus.SENT, 1)}
    assert sum(pump_sent(processes.log(f"pump-{n}")) for n in (1, 2)) == len(rows)

    line_rows = [r for r in rows if r.channel == Channel.LINE]
    pushes = Counter(p["retry_key"] for p in line.state.snapshot())
    assert pushes == Counter({retry_key(r.idempotency_key): 1 for r in line_rows})
    assert line.state.duplicates == 0 and len(line.state.requests) == len(line_rows)

    mail_rows = [r for r in rows if r.channel == Channel.EMAIL]
    delivered = Counter(m["Message-ID"] for m in sink.messages)
    assert delivered == Counter({message_id(r.idempotency_key, SENDER): 1 for r in mail_rows})
    assert len(line_rows) + len(mail_rows) == len(rows)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
