"""`tidtam serve` for real: a Prefect server, the served deployments, the web app and the pump.

Runs the `escalation-sweep` deployment on the Prefect server `tidtam serve` started, and sees the
messages arrive at a real local SMTP server; then SIGTERM leaves no process behind.
"""

from __future__ import annotations

import email
import email.policy
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from aiosmtpd.controller import Controller

from tests.helpers.poll import wait_until

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sink:
    """An aiosmtpd handler that keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


@pytest.fixture
def smtp_sink():
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port(),
                            server_hostname="localhost")
    controller.start()
    yield sink, controller.port
    controller.stop()


def wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen, log: Path):
    """Poll ``predicate`` until it holds; fail at once if `tidtam serve` exits meanwhile."""
    def still_running() -> None:
        if proc.poll() is not None:
            pytest.fail(f"tidtam serve exited ({proc.returncode}) waiting for {what}:\n"
                        f"{log.read_text(errors='replace')[-4000:]}")

    return wait_until(predicate, timeout=timeout, interval=0.5, check=still_running,
                      message=lambda: f"{what}:\n{log.read_text(errors='replace')[-4000:]}")


@pytest.mark.prefect_server
def test_serve_runs_the_sweep_deployment_and_mail_arrives(tmp_path, smtp_sink):
    sink, smtp_port = smtp_sink
    web_port, prefect_port = free_port(), free_port()
    api = f"http://127.0.0.1:{prefect_port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "TIDTAM_"))}
    # The demo clock starts on a working morning, so the pump is inside office hours whenever
    # the test runs (the pump sends nothing before 08:30 or after 16:30, nor on holidays).
    env.update(TIDTAM_DATA_DIR=str(tmp_path), TIDTAM_DEMO="1",
               TIDTAM_DEMO_NOW="2024-08-13T09:00:00+07:00", TIDTAM_SMTP_HOST="127.0.0.1",
               TIDTAM_SMTP_PORT=str(smtp_port), TIDTAM_SMTP_TLS="none",
               TIDTAM_PUMP_INTERVAL_SECONDS="1", PREFECT_SERVER_ANALYTICS_ENABLED="false",
               DO_NOT_TRACK="1")
    subprocess.run([BIN / "tidtam", "init", "--demo"], env=env, cwd=ROOT, check=True,
                   capture_output=True, timeout=120)
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([BIN / "tidtam", "serve", "--port", str(web_port),
                                 "--prefect-port", str(prefect_port)],
                                env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        # The web app answers before Prefect does: it does not wait for the server.
        wait_for(lambda: _ok(f"http://127.0.0.1:{web_port}/healthz"), 120, "the web app", proc, log)
        deployment = wait_for(lambda: _deployment(api), 300, "the served deployment", proc, log)
        schedule = deployment["schedules"][0]["schedule"]
        assert (schedule["cron"], schedule["timezone"]) == ("30 8 * * 1-5", "Asia/Bangkok")

        # No `now` given: the flow run reads its own process's clock, which `serve` gave the
        # same demo epoch as the web process whose pump sends the mail.
        run_env = dict(env, PREFECT_API_URL=api)
        subprocess.run([BIN / "prefect", "deployment", "run", "escalation-sweep/escalation-sweep",
                        "--watch", "--watch-timeout", "180"],
                       env=run_env, cwd=ROOT, check=True, capture_output=True, timeout=240)
        staff = {f"staff-{n}@demo.tidtam.local" for n in range(2701, 2710)}
        wait_for(lambda: staff <= {m["to"] for m in sink.messages}, 120,
                 "mail to every district's staff at the SMTP sink", proc, log)
        # The flow's process (started after the Prefect server came up, ≥ 10 s after the web
        # process) and the web's pump agree on the demo time: a row is sent seconds after it was
        # created by their two clocks. Each on a clock of its own would put it ~15 s+ apart.
        for created, sent in _created_and_sent(tmp_path / "tidtam.db"):
            assert timedelta(0) <= sent - created < timedelta(seconds=10), (created, sent)
        subjects = [m["subject"] for m in sink.messages]
        assert any("รายงาน" in s or "เลยกำหนด" in s for s in subjects), subjects
        body = sink.messages[0].get_body(("plain",)).get_content()
        assert "2567" in body

        children = _children(proc.pid)
        assert children, "serve started no child processes"
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail("tidtam serve did not stop within 60 s of SIGTERM")
    # serve has exited; its children may still be on their way out: poll, do not sleep.
    wait_until(lambda: not [pid for pid in children if _alive(pid)], timeout=10, interval=0.1,
               message=lambda: "orphans left after SIGTERM: "
                               f"{[pid for pid in children if _alive(pid)]}")
    assert not _ok(f"http://127.0.0.1:{prefect_port}/api/health")


def _ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _deployment(api: str) -> dict | None:
    try:
        found = httpx.post(f"{api}/deployments/filter", json={}, timeout=5).json()
    except (httpx.HTTPError, ValueError):
        return None
    return next((d for d in found if d["name"] == "escalation-sweep" and d.get("schedules")), None)


def _children(pid: int) -> list[int]:
    """Every descendant of pid (via /proc)."""
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        for path in Path(f"/proc/{parent}/task").glob("*/children"):
            for child in path.read_text().split():
                found.append(int(child))
                frontier.append(int(child))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except FileNotFoundError:
        return False
    return state != "Z"


def _created_and_sent(database: Path) -> list[tuple[datetime, datetime]]:
    """(created_at, sent_at) of every sent e-mail row, as aware UTC instants."""
    with closing(sqlite3.connect(database)) as connection:
        rows = connection.execute("SELECT created_at, sent_at FROM outbox WHERE status = 'sent' "
                                  "AND channel = 'email'").fetchall()
    assert rows, "no e-mail row was sent"
    return [tuple(datetime.fromisoformat(v).replace(tzinfo=UTC) for v in row) for row in rows]
