"""The `tidtam` command: init, serve, launch, sweep, compile, status, outbox, mark-done; and for
many machines web, pump and watch-flows (deploy/README.md)."""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from domain.errors import InvalidInput, TidtamError
from tidtam.demo_data import demo_data_command

app = typer.Typer(help="tidtam (ติดตาม): follow up a provincial directive district by district.",
                  no_args_is_help=True, pretty_exceptions_enable=False)


def fail(error: Exception, code: int = 1) -> None:
    typer.secho(f"error / ข้อผิดพลาด: {error}", fg="red", err=True)
    raise typer.Exit(code)


def _now(value: str | None) -> datetime:
    from domain.calendar import parse_instant

    if not value:
        return datetime.now(UTC)
    try:
        return parse_instant(value, "--now")
    except InvalidInput as error:
        fail(error, 2)


@app.callback()
def _settings_check() -> None:
    """Validate settings before any command (placeholder secrets stop here)."""
    from tidtam.settings import SettingsError, get_settings

    try:
        get_settings()
    except (SettingsError, ValueError) as error:
        fail(error, 2)


@app.command()
def init(demo: Annotated[bool, typer.Option(help="add demo accounts and mid-July progress")] = False,
         exist_ok: Annotated[bool, typer.Option(help="an initialised database is not an error")] = False,
         provinces: Annotated[str, typer.Option(
             help="'all' (the Department's 76 provinces, Bangkok left out) or DOPA codes, e.g. 27,50"
         )] = "27",
         ) -> None:
    """Migrate, load the provinces' districts (Sa Kaeo's 9 by default), launch the FY 2567 directive."""
    from tidtam.bootstrap import DEMO_PASSWORD, initialise
    from tidtam.db import get_engine
    from tidtam.orgtree import parse_province_codes
    from tidtam.photos import PhotoStore
    from tidtam.settings import get_settings

    try:
        result = initialise(get_engine(), demo=demo, now=datetime.now(UTC), exist_ok=exist_ok,
                            photos=PhotoStore(get_settings().data_dir / "photos"),
                            provinces=parse_province_codes(provinces))
    except TidtamError as error:
        fail(error, 2 if isinstance(error, InvalidInput) else 1)
    if result is None:
        typer.echo("already initialised; nothing changed (ตั้งค่าไว้แล้ว ไม่มีการเปลี่ยนแปลง)")
        return
    plural = "s" if result.provinces != 1 else ""
    typer.echo(f"loaded {result.provinces} province{plural}, {result.districts} districts; directive "
               f"{result.directive.reference_no}: {result.items} tracked items")
    if result.demo_users:
        typer.echo(f"demo accounts: {', '.join(result.demo_users)}")
        typer.secho(f"demo password (demo only / ใช้สาธิตเท่านั้น): {DEMO_PASSWORD}", bold=True)
        typer.echo(f"demo progress: {result.demo_done} steps marked done as of 16 Jul 2567; "
                   f"{result.demo_reports} report drafts with photos")


@app.command()
def launch(file: Path) -> None:
    """Load, validate and launch a directive YAML (re-running creates nothing new)."""
    from flows.launch_directive import launch_directive

    try:
        summary = _run_flow(launch_directive, path=str(file.resolve()))
    except TidtamError as error:
        fail(error, 1)
    typer.echo(f"{summary['directive']}: {summary['created_items']} new tracked items")


@app.command()
def sweep(now: Annotated[str | None, typer.Option(help="ISO-8601 instant with offset")] = None,
          ) -> None:
    """Run the escalation sweep once, now or at the given instant."""
    from flows.escalation_sweep import escalation_sweep

    instant = _now(now)
    result = _run_flow(escalation_sweep, now=instant.isoformat())
    typer.echo(f"enqueued {result['enqueued']} messages ({result['already_queued']} already "
               f"queued, {result['no_channel']} with no channel) at {instant.isoformat()}")


@app.command("compile")
def compile_(directive: Annotated[str | None, typer.Option(help="directive slug (default: newest)")] = None,
             out: Annotated[Path | None, typer.Option(help="folder for the files "
                                                      "(default: <data dir>/compiled/<slug>)")] = None,
             pdf: Annotated[bool, typer.Option(help="also print the compiled form to PDF")] = False,
             thai_digits: Annotated[bool, typer.Option(help="Thai digits in the PDF")] = False,
             as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Compile the accepted district reports: totals, missing districts, XLSX + CSV (+ PDF)."""
    from contextlib import redirect_stdout

    from flows.compile_provincial_report import compile_provincial_report

    try:
        with redirect_stdout(sys.stderr):  # the flow's log lines must not mix with --json
            result = _run_flow(compile_provincial_report, directive_slug=directive,
                               out_dir=str(out.resolve()) if out else None, pdf=pdf,
                               thai_digits=thai_digits)
    except TidtamError as error:
        fail(error, 2 if isinstance(error, InvalidInput) else 1)
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        _print_compilation(result)


def _print_compilation(data: dict) -> None:
    """The totals as the form's items 1-3, then who is missing, then the files written."""
    from rich.console import Console
    from rich.table import Table

    totals = data["totals"]
    table = Table(title=f"{data['directive']['reference_no']} — สรุปผลภาพรวมจังหวัด / provincial totals")
    table.add_column("รายการ / item")
    table.add_column("จำนวน", justify="right")
    table.add_row("๑. ศูนย์ผู้นำจิตอาสาพัฒนาชุมชนที่จัดกิจกรรม (แห่ง) / centers", f"{totals['centers']:,}")
    table.add_row("จำนวนครั้งที่จัดกิจกรรม / sessions", f"{totals['sessions']:,}")
    for category in totals["participants"]:
        table.add_row(f"๒. {category['title_th']} (คน)", f"{category['count']:,}")
    table.add_row("๒. รวมผู้เข้าร่วมกิจกรรม (คน) / participants", f"{totals['total_participants']:,}",
                  style="bold")
    for kind in totals["kinds"]:
        table.add_row(f"๓. กิจกรรม{kind['title_th']} (แห่ง)", f"{kind['places']:,}")
    console = Console()
    console.print(table)
    typer.echo(f"accepted / รับรายงานแล้ว: {len(data['accepted'])} of {len(data['districts'])} districts")
    for district in data["missing"]:
        typer.echo(f"  missing / ยังไม่มีรายงานที่รับแล้ว: {district['code']} "
                   f"อำเภอ{district['name_th']} — {district['status_th']}")
    for path in data["files"]:
        typer.echo(f"wrote {path}")


def _run_flow(flow, **parameters) -> dict:
    """A tracked flow run when a Prefect server answers; otherwise the same code, untracked."""
    from tidtam.prefect_server import reachable_api_url

    api_url = reachable_api_url()
    if api_url:
        os.environ["PREFECT_API_URL"] = api_url
        return flow(**parameters)
    typer.echo(f"no Prefect server reachable: running {flow.name} without orchestration",
               err=True)
    return flow.fn(**parameters)


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json")] = False,
           today: Annotated[str | None, typer.Option(help="YYYY-MM-DD (default: today)")] = None,
           ) -> None:
    """The district × step board in the terminal."""
    from tidtam.db import session_scope
    from tidtam.reports import board_json, print_board
    from tidtam.settings import get_settings

    day = datetime.fromisoformat(today).date() if today else \
        datetime.now(UTC).astimezone(get_settings().tz).date()
    with session_scope() as session:
        data = board_json(session, day)
    if data is None:
        fail(ValueError("no directive launched yet; run `tidtam init` (ยังไม่มีหนังสือสั่งการ)"))
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        print_board(data)


@app.command()
def outbox(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every message: key, channel, recipient, district, item, rung, status."""
    from tidtam.db import session_scope
    from tidtam.reports import outbox_json, print_outbox

    with session_scope() as session:
        rows = outbox_json(session)
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        print_outbox(rows)


@app.command("mark-done")
def mark_done(district: str, step: str,
              user: Annotated[str, typer.Option(help="the username acting")],
              note: Annotated[str | None, typer.Option()] = None) -> None:
    """Mark a district's step done as a user (checks the user's district like the web does)."""
    from tidtam.db import session_scope
    from tidtam.tracking import mark_done_by_codes

    try:
        with session_scope() as session:
            item = mark_done_by_codes(session, user, district, step, note=note,
                                      now=datetime.now(UTC))
    except TidtamError as error:
        fail(error, 1)
    typer.echo(f"item {item.id} ({district} {step}) done")


@app.command()
def serve(host: str = "127.0.0.1", port: int = 8000,
          prefect_port: Annotated[int, typer.Option(help="port of the Prefect server started")] = 4200,
          ) -> None:
    """Web app + outbox pump + Prefect server (unless PREFECT_API_URL is set) + deployments."""
    from tidtam.settings import SettingsError
    from tidtam.supervisor import run_all

    try:
        code = run_all(host=host, port=port, prefect_port=prefect_port)
    except SettingsError as error:
        fail(error, 2)
    sys.exit(code)


# --- Many machines (deploy/README.md): the parts `serve` runs together, one at a time ----------

@app.command()
def web(host: str = "127.0.0.1", port: int = 8000,
        pump: Annotated[bool, typer.Option(help="also run the outbox pump in this process")] = True,
        ) -> None:
    """The web app alone (no Prefect server, no deployments): one of several behind a proxy."""
    import uvicorn

    from tidtam.settings import SettingsError, get_settings
    from web.app import create_app, freeze_startup_heap

    settings = get_settings()
    try:
        _ = settings.session_secret  # outside demo mode, refuse to start without a real key
    except SettingsError as error:
        fail(error, 2)
    # uvicorn trusts X-Forwarded-* from FORWARDED_ALLOW_IPS (default 127.0.0.1): the proxy.
    app = create_app(settings, run_pump=pump)
    freeze_startup_heap()
    uvicorn.run(app, host=host, port=port, log_level="info")


@app.command()
def pump() -> None:
    """The outbox pump alone, until SIGTERM; several may run at once (rows are claimed)."""
    import logging
    import signal
    import threading

    from tidtam.db import get_engine, session_scope
    from tidtam.settings import get_settings
    from web.app import _start_pump  # the web process's own pump: one code path for both

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # One line per pass that did something; not one per HTTP request, nor per skipped tick.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    engine = get_engine()
    stop = _start_pump(get_settings(), lambda: session_scope(engine))
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
    fail or fall silent; run it after `prefect deploy --all` (`serve` does it by itself)."""
    from prefect.client.orchestration import get_client

    from tidtam.automations import OPS_ALERT, ensure_automations
    from tidtam.prefect_server import reachable_api_url

    api_url = reachable_api_url()
    if not api_url:
        fail(ValueError("no Prefect server reachable; set PREFECT_API_URL "
                        "(เชื่อมต่อเซิร์ฟเวอร์ Prefect ไม่ได้)"))
    os.environ["PREFECT_API_URL"] = api_url
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(f"{OPS_ALERT}/{OPS_ALERT}")
    ids = ensure_automations(deployment.id)
    typer.echo(f"{len(ids)} Prefect automations run {OPS_ALERT} ({deployment.id}) when "
               "escalation-sweep or coordinator-digest fails or falls silent")


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
    from notifications.fake_line import serve_forever

    for name, rate in (("--rate-429", rate_429), ("--rate-500", rate_500)):
        if not 0 <= rate <= 1:
            fail(InvalidInput(f"{name} must be between 0 and 1", f"{name} ต้องอยู่ระหว่าง 0 ถึง 1"), 2)
    typer.echo(f"LINE stand-in on http://{host}:{port}/ (LINE จำลอง) — token {token!r}")
    serve_forever(port=port, token=token, host=host, latency_ms=latency_ms, rate_429=rate_429,
                  rate_500=rate_500, retry_after=retry_after)


@app.command("user-add")
def user_add(
    username: str,
    role: Annotated[str, typer.Option(help="coordinator, provincial_head, district_staff, "
                                           "district_head or department_viewer")],
    full_name: Annotated[str, typer.Option("--full-name")],
    province: Annotated[str | None, typer.Option(help="DOPA province code, e.g. 27")] = None,
    district: Annotated[str | None, typer.Option(help="DOPA district code, e.g. 2701")] = None,
    email: Annotated[str | None, typer.Option()] = None,
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="read the password from standard input (scripts)")] = False,
) -> None:
    """Create a real account (a Department viewer: --role department_viewer, no province)."""
    from models.user import Role
    from tidtam.accounts import create_account
    from tidtam.db import get_engine, session_scope

    try:
        chosen = Role(role)
    except ValueError:
        fail(InvalidInput(f"unknown role {role!r}; one of {', '.join(r.value for r in Role)}",
                          f"ไม่รู้จักบทบาท {role!r}"), 2)
    password = sys.stdin.readline().rstrip("\n") if password_stdin else typer.prompt(
        "password (รหัสผ่าน)", hide_input=True, confirmation_prompt=True)
    try:
        with session_scope(get_engine()) as session:
            user = create_account(session, username=username, full_name=full_name, role=chosen,
                                  province_code=province, district_code=district,
                                  password=password, now=datetime.now(UTC), email=email)
            typer.echo(f"created {user.username} ({user.role}) — สร้างผู้ใช้แล้ว")
    except TidtamError as error:
        fail(error, 2 if isinstance(error, InvalidInput) else 1)


app.command("demo-data")(demo_data_command)


if __name__ == "__main__":
    app()
