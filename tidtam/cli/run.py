"""Running the service: `tidtam serve` (everything on one machine), and for many machines `web`,
`pump` and `watch-flows` (deploy/README.md); `fake-line`, the LINE stand-in."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from domain.errors import InvalidInput
from tidtam.cli.common import app, fail


@app.command()
def serve(host: str = "127.0.0.1", port: int = 8000,
          prefect_port: Annotated[int, typer.Option(help="port of the Prefect server started")] = 4200,
          ) -> None:
    """Web app + outbox pump + Prefect server (unless PREFECT_API_URL is set) + deployments."""
    from tidtam.infra.settings import SettingsError, get_settings
    from tidtam.ops.supervisor import run_all

    try:
        get_settings().check_bind(host)  # a demo listens on loopback only
        code = run_all(host=host, port=port, prefect_port=prefect_port)
    except SettingsError as error:
        fail(error, 2)
    sys.exit(code)


@app.command()
def web(host: str = "127.0.0.1", port: int = 8000,
        pump: Annotated[bool, typer.Option(help="also run the outbox pump in this process")] = True,
        ) -> None:
    """The web app alone (no Prefect server, no deployments): one of several behind a proxy."""
    import uvicorn

    from tidtam.infra.clock import process_clock
    from tidtam.infra.settings import SettingsError, get_settings
    from web.app import create_app, freeze_startup_heap

    settings = get_settings()
    try:
        _ = settings.session_secret  # outside demo mode, refuse to start without a real key
        settings.check_bind(host)  # a demo listens on loopback only
    except SettingsError as error:
        fail(error, 2)
    # uvicorn trusts X-Forwarded-* from FORWARDED_ALLOW_IPS (default 127.0.0.1): the proxy.
    app_ = create_app(settings, clock=process_clock(), run_pump=pump)
    freeze_startup_heap()
    uvicorn.run(app_, host=host, port=port, log_level="info", server_header=False)


@app.command()
def pump() -> None:
    """The outbox pump alone, until SIGTERM; several may run at once (rows are claimed)."""
    import logging
    import signal
    import threading

    from tidtam.infra import pump as outbox_pump
    from tidtam.infra.clock import process_clock
    from tidtam.infra.db import get_engine, session_scope
    from tidtam.infra.settings import get_settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # One line per pass that did something; not one per HTTP request, nor per skipped tick.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    engine = get_engine()
    stop = outbox_pump.start(get_settings(), process_clock(), lambda: session_scope(engine))
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    typer.echo("outbox pump running; SIGTERM stops it (ตัวส่งข้อความทำงานอยู่)")
    while not done.wait(1):
        pass
    stop()
    typer.echo("outbox pump stopped")


@app.command("watch-flows")
def watch_flows() -> None:
    """Create or update the Prefect automations that run ops-alert when the escalation flows
    fail or fall silent, and compile-provincial-report when a directive's last district report
    is accepted; run it after `prefect deploy --all` (`serve` does it by itself)."""
    from prefect.client.orchestration import get_client

    from tidtam.ops.automations import OPS_ALERT
    from tidtam.ops.deployments import watch
    from tidtam.ops.prefect_server import reachable_api_url

    api_url = reachable_api_url()
    if not api_url:
        fail(ValueError("no Prefect server reachable; set PREFECT_API_URL "
                        "(เชื่อมต่อเซิร์ฟเวอร์ Prefect ไม่ได้)"))
    os.environ["PREFECT_API_URL"] = api_url
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(f"{OPS_ALERT}/{OPS_ALERT}")
    ids = watch(deployment.id)
    typer.echo(f"{len(ids)} Prefect automations set: {OPS_ALERT} ({deployment.id}) runs when "
               "escalation-sweep or coordinator-digest fails or falls silent; "
               "compile-provincial-report runs when a directive's last district report is "
               "accepted (if that deployment exists)")


@app.command("fake-line")
def fake_line(
    port: int = 8099, token: str = "fake-line-token", host: str = "127.0.0.1",
    latency_ms: Annotated[float, typer.Option(help="delay before each answer")] = 0,
    rate_429: Annotated[float, typer.Option(help="share of pushes answered 429 (0–1)")] = 0.0,
    rate_500: Annotated[float, typer.Option(help="share of pushes answered 500 (0–1)")] = 0.0,
    retry_after: Annotated[float | None, typer.Option(help="Retry-After seconds on a 429")] = None,
) -> None:
    """A local stand-in for the LINE Messaging API push endpoint (demos and tests); GET / lists
    what it received."""
    from tidtam.demo.line_standin import serve_forever

    for name, rate in (("--rate-429", rate_429), ("--rate-500", rate_500)):
        if not 0 <= rate <= 1:
            fail(InvalidInput(f"{name} must be between 0 and 1", f"{name} ต้องอยู่ระหว่าง 0 ถึง 1"), 2)
    typer.echo(f"LINE stand-in on http://{host}:{port}/ (LINE จำลอง) — token {token!r}")
    serve_forever(port=port, token=token, host=host, latency_ms=latency_ms, rate_429=rate_429,
                  rate_500=rate_500, retry_after=retry_after)
