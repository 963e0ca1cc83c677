"""Setting a database up: `tidtam init`, `tidtam user-add`, `tidtam demo-data`."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from domain.errors import InvalidInput, TidtamError
from tidtam.cli.common import Now, app, fail, instant_for
from tidtam.demo.dataset import DEFAULT_AS_OF, DEFAULT_SEED, Progress


@app.command()
def init(demo: Annotated[bool, typer.Option(help="add demo accounts and mid-July progress")] = False,
         exist_ok: Annotated[bool, typer.Option(help="an initialised database is not an error")] = False,
         provinces: Annotated[str, typer.Option(
             help="'all' (the Department's 76 provinces, Bangkok left out) or DOPA codes, e.g. 27,50"
         )] = "27",
         follow_up: Annotated[bool, typer.Option(
             help="with --demo: also the second Sa Kaeo letter (26 Jul 2567), followed side by "
                  "side with a few steps done, and its progress (make run does)")] = False,
         now: Now = None) -> None:
    """Migrate, load the provinces' districts (Sa Kaeo's 9 by default), launch the FY 2567 directive."""
    from tidtam.app.orgtree import parse_province_codes
    from tidtam.demo.province import DEMO_PASSWORD
    from tidtam.infra.db import get_engine
    from tidtam.infra.photos import PhotoStore
    from tidtam.infra.settings import get_settings
    from tidtam.ops.bootstrap import DEMO_FOLLOW_UPS, initialise

    instant = instant_for(now)
    try:
        result = initialise(get_engine(), demo=demo, now=instant, exist_ok=exist_ok,
                            photos=PhotoStore(get_settings().data_dir / "photos"),
                            provinces=parse_province_codes(provinces),
                            follow_ups=DEMO_FOLLOW_UPS if demo and follow_up else ())
    except TidtamError as error:
        fail(error, 2 if isinstance(error, InvalidInput) else 1)
    if result is None:
        typer.echo("already initialised; nothing changed (ตั้งค่าไว้แล้ว ไม่มีการเปลี่ยนแปลง)")
        return
    plural = "s" if result.provinces != 1 else ""
    typer.echo(f"loaded {result.provinces} province{plural}, {result.districts} districts; directive "
               f"{result.directive.reference_no}: {result.items} tracked items")
    for follow_up in result.follow_ups:
        typer.echo(f"directive {follow_up.directive.reference_no} ({follow_up.directive.slug}): "
                   f"{follow_up.items} tracked items, {follow_up.done} steps done (demo)")
    if result.demo_users:
        typer.echo(f"demo accounts: {', '.join(result.demo_users)}")
        if "department" in result.demo_users:
            typer.echo("the Department's view (national board, every province): department")
        typer.secho(f"demo password (demo only / ใช้สาธิตเท่านั้น): {DEMO_PASSWORD}", bold=True)
        typer.echo(f"demo progress: {result.demo_done} steps marked done as of 16 Jul 2567; "
                   f"{result.demo_reports} report drafts with photos")


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
    now: Now = None,
) -> None:
    """Create a real account (a Department viewer: --role department_viewer, no province)."""
    from domain.access import Role
    from tidtam.app.accounts import create_account
    from tidtam.infra.db import get_engine, session_scope

    try:
        chosen = Role(role)
    except ValueError:
        fail(InvalidInput(f"unknown role {role!r}; one of {', '.join(r.value for r in Role)}",
                          f"ไม่รู้จักบทบาท {role!r}"), 2)
    instant = instant_for(now)
    password = sys.stdin.readline().rstrip("\n") if password_stdin else typer.prompt(
        "password (รหัสผ่าน)", hide_input=True, confirmation_prompt=True)
    try:
        with session_scope(get_engine()) as session:
            user = create_account(session, username=username, full_name=full_name, role=chosen,
                                  province_code=province, district_code=district,
                                  password=password, now=instant, email=email)
            typer.echo(f"created {user.username} ({user.role}) — สร้างผู้ใช้แล้ว")
    except TidtamError as error:
        fail(error, 2 if isinstance(error, InvalidInput) else 1)


@app.command("demo-data")
def demo_data(
    provinces: Annotated[str, typer.Option(
        help="'all' (the Department's 76 provinces, Bangkok left out) or DOPA codes, e.g. 27,50,96"
    )] = "all",
    seed: Annotated[int, typer.Option(help="the same seed and provinces give the same data")] = DEFAULT_SEED,
    as_of: Annotated[str, typer.Option(
        help="ISO-8601 instant with offset: nothing happens after it")] = DEFAULT_AS_OF,
    photos: Annotated[bool, typer.Option(
        help="write a small generated photo per session (--no-photos: the rows only, no files)"
    )] = True,
    exist_ok: Annotated[bool, typer.Option(
        help="a database that holds the national directive already is not an error (nothing changes)"
    )] = False,
) -> None:
    """A national dataset for tests and benchmarks: the FY 2567 national directive in every
    province, with people, seeded progress, reports and an outbox, as of one instant."""
    from domain.calendar import parse_instant
    from tidtam.app.orgtree import parse_province_codes
    from tidtam.demo.dataset import generate
    from tidtam.infra.db import get_engine
    from tidtam.infra.photos import PhotoStore
    from tidtam.infra.settings import get_settings

    settings = get_settings()
    try:
        instant = parse_instant(as_of, "--as-of")
        result = generate(get_engine(), provinces=parse_province_codes(provinces), seed=seed,
                          as_of=instant, tz=settings.tz, base_url=settings.base_url,
                          photos=PhotoStore(settings.data_dir / "photos") if photos else None,
                          exist_ok=exist_ok, progress=_printer())
    except TidtamError as error:
        fail(error, 2 if isinstance(error, InvalidInput) else 1)
    if result is None:
        typer.echo("the national directive is there already; nothing changed "
                   "(มีข้อมูลอยู่แล้ว ไม่มีการเปลี่ยนแปลง)")
        return
    for line in result.lines():
        typer.echo(line)


def _printer() -> Progress:
    """Progress on stderr: one line per stage, and on a terminal the province being written."""
    tty = sys.stderr.isatty()

    def show(text: str, done: bool) -> None:
        if done:
            typer.echo(("\r\033[K" if tty else "") + text, err=True)
        elif tty:
            typer.echo("\r\033[K" + text, err=True, nl=False)
    return show
