"""Looking at the state: `tidtam status` (the boards) and `tidtam outbox` (every message).

Both take ``--directive SLUG``; without it they show every active directive, one after another.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated

import typer

from domain.errors import InvalidInput, TidtamError
from tidtam.cli.common import DirectiveSlug, Now, app, clock_for, fail
from tidtam.infra.clock import today as day_of


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json")] = False,
           today: Annotated[str | None, typer.Option(
               help="YYYY-MM-DD: the day overdue is measured on (default: the day of --now)")] = None,
           directive: DirectiveSlug = None,
           now: Now = None) -> None:
    """The district × step board in the terminal: of the directive named, else of each active
    one (--json: {"today", "directives": [board, …]}; with --directive: that one board)."""
    from models.directive import active_directives
    from tidtam.app.directives import find_directive
    from tidtam.cli.views import board_json, print_board
    from tidtam.infra.db import session_scope
    from tidtam.infra.settings import get_settings

    day = _day(today) if today else day_of(clock_for(now), get_settings().tz)
    try:
        with session_scope() as session:
            if directive:
                boards = [board_json(session, find_directive(session, directive), day)]
            else:
                boards = [board_json(session, d, day) for d in active_directives(session)]
    except TidtamError as error:
        fail(error)
    if not boards:
        fail(ValueError("no active directive; `tidtam directives` lists them all, `tidtam launch "
                        "FILE` starts one (ไม่มีหนังสือสั่งการที่ติดตามอยู่)"))
    if as_json:
        data = boards[0] if directive else {"today": day.isoformat(), "directives": boards}
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        for data in boards:
            print_board(data)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        fail(ValueError(f"--today {text!r} is not a date such as 2024-08-09 "
                        "(รูปแบบวันที่ไม่ถูกต้อง เช่น 2024-08-09)"), 2)


@app.command()
def outbox(as_json: Annotated[bool, typer.Option("--json")] = False,
           directive: DirectiveSlug = None,
           events: Annotated[bool, typer.Option(
               "--events", help="the Prefect events (channel prefect-event) too")] = False,
           status: Annotated[str | None, typer.Option(
               help="only messages in this status: queued, sending, sent, failed, cancelled, "
                    "not-sent-no-channel")] = None,
           channel: Annotated[str | None, typer.Option(
               help="only messages on this channel: line, email, webhook")] = None,
           district: Annotated[str | None, typer.Option(
               help="only messages about this district (its 4-digit code)")] = None,
           rung: Annotated[str | None, typer.Option(
               help="only messages of this rung, e.g. late, reminder-3, report-returned")] = None,
           date_from: Annotated[str | None, typer.Option(
               "--from", help="created on or after this day (YYYY-MM-DD, the office's time "
                              "zone)")] = None,
           date_to: Annotated[str | None, typer.Option(
               "--to", help="created on or before this day (YYYY-MM-DD)")] = None) -> None:
    """Every message to people (key, directive, channel, recipient, district, item, rung,
    status; --json: with its creation time, subject and body), grouped by directive, active
    ones first; --directive: only the messages about that one; --events: the Prefect events
    too; --status, --channel, --district, --rung, --from, --to: the outbox page's filters."""
    from models.directive import active_directives
    from tidtam.app.directives import find_directive
    from tidtam.app.outbox import outbox_query
    from tidtam.cli.views import outbox_json, print_outbox
    from tidtam.infra.db import session_scope
    from tidtam.infra.settings import get_settings

    try:
        wanted = outbox_query(status=status, channel=channel, district=district, rung=rung,
                              date_from=date_from, date_to=date_to).as_filter(get_settings().tz)
    except InvalidInput as error:
        fail(error, 2)
    try:
        with session_scope() as session:
            chosen = find_directive(session, directive) if directive else None
            rows = outbox_json(session, chosen, events=events, wanted=wanted)
            order = [chosen] if chosen else active_directives(session)
    except TidtamError as error:
        fail(error)
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        print_outbox(rows, order)
