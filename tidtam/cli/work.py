"""Acting on the work at an instant (`--now`): launch, sweep, digest, compile, mark-done.

Each command that runs a flow runs it tracked when a Prefect server answers, else untracked;
either way at the one instant the command's clock gives.
"""

from __future__ import annotations

import json
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated

import typer

from domain.errors import InvalidInput, TidtamError
from tidtam.cli.common import DirectiveSlug, Now, app, fail, instant_for, run_flow, shown


@app.command()
def launch(file: Path, now: Now = None) -> None:
    """Load, validate and launch a directive YAML (re-running creates nothing new)."""
    from flows.launch_directive import launch_directive

    instant = instant_for(now)
    try:
        report = run_flow(launch_directive, path=str(file.resolve()), now=local(instant))
    except TidtamError as error:
        fail(error, 1)
    typer.echo(f"{report.directive}: {report.created_items} new tracked items")
    if report.amendment_summary:
        typer.echo(f"{report.directive}: amended letter applied: {report.amendment_summary}")


@app.command()
def sweep(directive: DirectiveSlug = None,
          province: Annotated[str | None, typer.Option(
              "--province", metavar="CODE", help="only this province's directives (e.g. 27)")] = None,
          district_tasks: Annotated[bool | None, typer.Option(
              "--district-tasks/--province-tasks",
              help="a Prefect task run per district, or per province only (default: per district "
                   "when the run covers a few provinces)")] = None,
          as_json: Annotated[bool, typer.Option("--json")] = False,
          now: Now = None) -> None:
    """Run the escalation sweep once, now or at the given instant: every active directive, one
    province's, or the one named. Directives whose closing day has come are closed first."""
    from contextlib import redirect_stdout

    from flows.escalation_sweep import escalation_sweep

    instant = instant_for(now)
    try:
        with redirect_stdout(sys.stderr) if as_json else nullcontext():
            report = run_flow(escalation_sweep, now=instant.astimezone(_tz()),
                              directive_slug=directive, province_code=province,
                              district_tasks=district_tasks)
    except TidtamError as error:
        fail(error)
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
        return
    typer.echo(f"enqueued {report.enqueued} messages ({report.already_queued} already "
               f"queued, {report.no_channel} with no channel) at {shown(instant)}")
    swept = report.directives
    shown_slugs = ", ".join(swept[:10]) + (f" … (+{len(swept) - 10})" if len(swept) > 10 else "")
    typer.echo(f"directives swept / หนังสือที่ติดตาม: {shown_slugs or '-'}")
    for slug in report.closed:
        typer.echo(f"closed automatically / ปิดอัตโนมัติ: {slug}")
    late = [d for p in report.provinces for d in p.districts if d.late]
    if late and len(report.provinces) == 1:
        typer.echo("late / ช้า: " + ", ".join(f"{d.name_th} {d.late}" for d in late))


def _tz():
    from tidtam.infra.settings import get_settings

    return get_settings().tz


@app.command()
def digest(now: Now = None, province: Annotated[str | None, typer.Option(
               "--province", metavar="CODE",
               help="only this province's coordinators (e.g. 27); default: every province")] = None
           ) -> None:
    """Enqueue the coordinators' daily digest once, now or at the given instant."""
    from flows.coordinator_digest import coordinator_digest

    instant = instant_for(now)
    try:
        report = run_flow(coordinator_digest, now=local(instant), province_code=province)
    except TidtamError as error:
        fail(error, 2 if isinstance(error, InvalidInput) else 1)
    typer.echo(f"digest for {report.provinces} province(s): enqueued {report.enqueued} "
               f"messages ({report.already_queued} already queued, {report.no_channel} "
               f"with no channel) at {shown(instant)}")
    for reason in report.skipped:
        typer.echo(f"  nobody to send to in province {reason}")
    for slug in report.closed:
        typer.echo(f"closed automatically / ปิดอัตโนมัติ: {slug}")


@app.command("compile")
def compile_(directive: Annotated[str | None, typer.Option(
                 "--directive", metavar="SLUG",
                 help="the directive (any status); default: the one active directive "
                      "(several: name one)")] = None,
             out: Annotated[Path | None, typer.Option(help="folder for the files "
                                                      "(default: <data dir>/compiled/<slug>)")] = None,
             pdf: Annotated[bool, typer.Option(help="also print the compiled form to PDF")] = False,
             thai_digits: Annotated[bool, typer.Option(help="Thai digits in the PDF")] = False,
             as_json: Annotated[bool, typer.Option("--json")] = False,
             now: Now = None) -> None:
    """Compile the accepted district reports: totals, missing districts, XLSX + CSV (+ PDF)."""
    from contextlib import redirect_stdout

    from flows.compile_provincial_report import compile_provincial_report

    instant = instant_for(now)
    try:
        with redirect_stdout(sys.stderr):  # the flow's log lines must not mix with --json
            report = run_flow(compile_provincial_report, directive_slug=directive,
                              out_dir=str(out.resolve()) if out else None, pdf=pdf,
                              thai_digits=thai_digits, now=local(instant))
    except TidtamError as error:
        fail(error, 2 if isinstance(error, InvalidInput) else 1)
    result = report.model_dump(mode="json")
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        from tidtam.cli.views import print_compilation

        print_compilation(result)


def local(instant):
    """The instant handed to a flow: aware, in the office's time zone (a tracked run's
    parameters then read like the command's ``--now``)."""
    from tidtam.infra.settings import get_settings

    return instant.astimezone(get_settings().tz)


@app.command("mark-done")
def mark_done(district: str, step: str,
              user: Annotated[str, typer.Option(help="the username acting")],
              note: Annotated[str | None, typer.Option()] = None,
              directive: Annotated[str | None, typer.Option(
                  "--directive", metavar="SLUG",
                  help="the directive; default: the one active directive with this step")] = None,
              now: Now = None) -> None:
    """Mark a district's step done as a user (checks the user's district like the web does)."""
    from models.directive import Directive
    from tidtam.app.tracking import mark_done_by_codes
    from tidtam.infra.db import session_scope

    instant = instant_for(now)
    try:
        with session_scope() as session:
            item = mark_done_by_codes(session, user, district, step, note=note, now=instant,
                                      directive_slug=directive)
            slug = session.get(Directive, item.directive_id).slug
    except TidtamError as error:
        fail(error, 1)
    typer.echo(f"item {item.id} ({slug} {district} {step}) done at {shown(instant)}")
