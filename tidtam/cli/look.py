"""Looking at the state: `tidtam status` (the board) and `tidtam outbox` (every message)."""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated

import typer

from tidtam.cli.common import Now, app, clock_for, fail
from tidtam.infra.clock import today as day_of


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json")] = False,
           today: Annotated[str | None, typer.Option(
               help="YYYY-MM-DD: the day overdue is measured on (default: the day of --now)")] = None,
           now: Now = None) -> None:
    """The district × step board in the terminal."""
    from tidtam.cli.views import board_json, print_board
    from tidtam.infra.db import session_scope
    from tidtam.infra.settings import get_settings

    day = _day(today) if today else day_of(clock_for(now), get_settings().tz)
    with session_scope() as session:
        data = board_json(session, day)
    if data is None:
        fail(ValueError("no directive launched yet; run `tidtam init` (ยังไม่มีหนังสือสั่งการ)"))
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        print_board(data)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        fail(ValueError(f"--today {text!r} is not a date such as 2024-08-09 "
                        "(รูปแบบวันที่ไม่ถูกต้อง เช่น 2024-08-09)"), 2)


@app.command()
def outbox(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every message: key, channel, recipient, district, item, rung, status."""
    from tidtam.cli.views import outbox_json, print_outbox
    from tidtam.infra.db import session_scope

    with session_scope() as session:
        rows = outbox_json(session)
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        print_outbox(rows)
