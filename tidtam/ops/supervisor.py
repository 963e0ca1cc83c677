"""`tidtam serve`: one command that runs the web app, the pump, Prefect and the deployments.

Children run in their own process groups and die with us (PR_SET_PDEATHSIG), and Ctrl-C or
SIGTERM stops every child this process started, so no orphan is left behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import typer
from pydantic import SecretStr

from tidtam.infra.clock import Clock, epoch_env, process_clock
from tidtam.infra.paths import ROOT
from tidtam.infra.settings import get_settings
from tidtam.ops.prefect_server import LOCAL_API, healthy, server_env

if TYPE_CHECKING:
    from tidtam.infra.settings import Settings

PR_SET_PDEATHSIG = 1
# Demo mode without a LINE channel: the LINE stand-in, and the token the pump presents to it.
DEMO_LINE_PORT = 8010
DEMO_LINE_TOKEN = "tidtam-demo-line-stand-in-token"
# …and the channel secret both sign and check the webhook events its page sends (ทำแล้ว pressed).
DEMO_LINE_SECRET = "tidtam-demo-line-stand-in-secret"


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM if the supervisor dies, even by SIGKILL."""
    os.setsid()
    with contextlib.suppress(OSError):  # not Linux: the group kill in stop() still applies
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Children:
    """The processes `tidtam serve` started, stopped together."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
        log.parent.mkdir(parents=True, exist_ok=True)
        out = open(log, "ab")  # noqa: SIM115 (kept open for the child's life)
        proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        self.procs.append((name, proc))
        typer.echo(f"started {name} (pid {proc.pid}, log {log})")
        return proc

    def stop(self, timeout: float = 15.0) -> None:
        for _name, proc in reversed(self.procs):
            _signal_group(proc, signal.SIGTERM)
        for name, proc in reversed(self.procs):
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                typer.echo(f"{name} did not stop in {timeout:.0f} s; killing it", err=True)
                _signal_group(proc, signal.SIGKILL)
                proc.wait()


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def _interrupt(*_args) -> None:
    """SIGTERM before uvicorn takes over its signals: unwind like Ctrl-C."""
    raise KeyboardInterrupt


def run_all(*, host: str, port: int, prefect_port: int) -> int:
    """Start everything, serve the web app in this process, stop all children on exit."""
    settings = get_settings()
    _ = settings.session_secret  # outside demo mode, refuse to start without a real key
    clock = process_clock()  # built here first: every child gets its demo epoch, so all agree
    logs = settings.data_dir / "logs"
    children = Children()
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        settings, line_env, line_page = _demo_line(children, settings, logs, port)
        api_url = _ensure_prefect(children, settings.data_dir, prefect_port, logs)
        env = dict(os.environ, PREFECT_API_URL=api_url, PREFECT_SERVER_ANALYTICS_ENABLED="false",
                   DO_NOT_TRACK="1", TIDTAM_HOME=str(ROOT), **line_env, **epoch_env(clock))
        # The web app (and its pump) does not need Prefect: it serves at once, and the
        # deployments process waits for the Prefect server (tens of seconds) by itself.
        # Every child starts here, before uvicorn's threads exist (preexec_fn and threads).
        children.start("prefect deployments (prefect.yaml)",
                       [sys.executable, "-m", "tidtam.ops.deployments"], env, logs / "flows.log")
        # The pump in this process sends the Prefect events to the server found or started.
        settings = settings.model_copy(update={"prefect_api_url": api_url})
        _serve_web(settings, clock, host, port, api_url, line_page)
    except KeyboardInterrupt:
        pass
    finally:
        typer.echo("stopping… (กำลังหยุดระบบ)")
        children.stop()
    return 0


def _demo_line(children: Children, settings: Settings, logs: Path,
               web_port: int) -> tuple[Settings, dict[str, str], str | None]:
    """In demo mode with no LINE channel configured, start the LINE stand-in and point the
    LINE transport at it; returns the settings to use, env for children, and its page's URL."""
    token = settings.line_channel_access_token
    if not settings.demo or (token is not None and token.get_secret_value()):
        return settings, {}, None
    port = DEMO_LINE_PORT if _port_free(DEMO_LINE_PORT) else _any_free_port()
    base = f"http://127.0.0.1:{port}"
    secret = settings.line_channel_secret
    secret = secret.get_secret_value() if secret and secret.get_secret_value() else DEMO_LINE_SECRET
    signing = {"TIDTAM_LINE_CHANNEL_SECRET": secret,
               "TIDTAM_BASE_URL": f"http://127.0.0.1:{web_port}"}  # its buttons post here
    proc = children.start("LINE stand-in", [sys.executable, "-m", "tidtam.cli", "fake-line",
                                            "--port", str(port), "--token", DEMO_LINE_TOKEN],
                          dict(os.environ, **signing), logs / "fake-line.log")
    if not _wait_answering(base + "/", is_alive=lambda: proc.poll() is None):
        raise SystemExit(f"the LINE stand-in did not start; see {logs / 'fake-line.log'}")
    demo = settings.model_copy(update={"line_api_base": base,
                                       "line_channel_access_token": SecretStr(DEMO_LINE_TOKEN),
                                       "line_channel_secret": SecretStr(secret)})
    env = {"TIDTAM_LINE_API_BASE": base, "TIDTAM_LINE_CHANNEL_ACCESS_TOKEN": DEMO_LINE_TOKEN,
           "TIDTAM_LINE_CHANNEL_SECRET": secret}
    return demo, env, base + "/"


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _any_free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_answering(url: str, *, is_alive, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and is_alive():
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


def _ensure_prefect(children: Children, data_dir: Path, port: int, logs: Path) -> str:
    """PREFECT_API_URL when it points at a server; otherwise start `prefect server start`
    (without waiting for it: the deployments process does)."""
    configured = os.environ.get("PREFECT_API_URL")
    if configured:
        if not healthy(configured, timeout=5):
            raise SystemExit(f"PREFECT_API_URL={configured} does not answer "
                             "(เซิร์ฟเวอร์ Prefect ไม่ตอบสนอง)")
        return configured
    api_url = LOCAL_API.format(port=port)
    if healthy(api_url):
        raise SystemExit(f"something already answers on {api_url}; set PREFECT_API_URL to use it "
                         "or --prefect-port for another port")
    prefect = str(Path(sys.executable).with_name("prefect"))
    children.start("prefect server", [prefect, "server", "start", "--host", "127.0.0.1",
                                      "--port", str(port)],
                   server_env(data_dir, port), logs / "prefect-server.log")
    typer.echo("the Prefect server is starting; the deployments follow once it answers "
               "(เซิร์ฟเวอร์ Prefect กำลังเริ่มทำงาน)")
    return api_url


def _serve_web(settings: Settings, clock: Clock, host: str, port: int, api_url: str,
               line_page: str | None) -> None:
    import uvicorn

    from web.app import create_app, freeze_startup_heap

    app = create_app(settings, clock=clock, run_pump=True)
    typer.secho(f"\ntidtam: http://{host}:{port}   Prefect UI: {api_url.removesuffix('/api')}",
                bold=True)
    if line_page:
        typer.secho(f"LINE stand-in (ข้อความ LINE จำลอง): {line_page}", bold=True)
    freeze_startup_heap()
    uvicorn.run(app, host=host, port=port, log_level="info", server_header=False)
