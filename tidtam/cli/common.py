"""What every command shares: the Typer app, errors as one line, ``--now``, and running a flow."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, NoReturn

import typer

from domain.errors import InvalidInput
from tidtam.infra.clock import Clock, clock_at

app = typer.Typer(help="tidtam (ติดตาม): follow up a provincial directive district by district.",
                  no_args_is_help=True, pretty_exceptions_enable=False)

Now = Annotated[str | None, typer.Option(
    "--now", help="act at this instant (ISO-8601 with offset, e.g. 2024-07-31T16:00:00+07:00); "
                  "default: the clock (TIDTAM_DEMO_NOW in a demo)")]

DirectiveSlug = Annotated[str | None, typer.Option(
    "--directive", metavar="SLUG",
    help="the directive (slug, see `tidtam directives`); default: every active one")]


def fail(error: Exception, code: int = 1) -> NoReturn:
    typer.secho(f"error / ข้อผิดพลาด: {error}", fg="red", err=True)
    raise typer.Exit(code)


def clock_for(now: str | None) -> Clock:
    """The command's clock: ``--now`` when given, else this process's (demo or real)."""
    from domain.calendar import parse_instant

    try:
        return clock_at(parse_instant(now, "--now") if now else None)
    except InvalidInput as error:
        fail(error, 2)


def instant_for(now: str | None) -> datetime:
    """The one instant a command acts at."""
    return clock_for(now).now()


def shown(instant: datetime) -> str:
    """An instant as a person reads it: ISO-8601 in the office's time zone."""
    from tidtam.infra.settings import get_settings

    return instant.astimezone(get_settings().tz).isoformat()


@app.callback()
def _settings_check() -> None:
    """Validate settings before any command (placeholder secrets stop here)."""
    from tidtam.infra.settings import SettingsError, get_settings

    try:
        get_settings()
    except (SettingsError, ValueError) as error:
        fail(error, 2)


def run_flow(flow, **parameters) -> dict:
    """A tracked flow run when a Prefect server answers; otherwise the same code, untracked."""
    from tidtam.ops.prefect_server import reachable_api_url

    api_url = reachable_api_url()
    if api_url:
        # Prefect read its settings when it was imported (with the flow): setting the variable
        # now would go unseen and the run would go to a temporary server of its own.
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings(updates={PREFECT_API_URL: api_url}):
            return flow(**parameters)
    typer.echo(f"no Prefect server reachable: running {flow.name} without orchestration",
               err=True)
    return flow.fn(**parameters)
