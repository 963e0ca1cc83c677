"""A province's many directives from the command line: `tidtam directives` (the list, where each
stands), `tidtam load FILE` (stored, not yet tracked), `tidtam close SLUG --reason …`, and
`tidtam directive new --from SLUG --fiscal-year N --out FILE` (next year's letter as a draft)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from domain.errors import InvalidInput, TidtamError
from tidtam.cli.common import Now, app, clock_for, fail, instant_for, shown
from tidtam.infra.clock import today as day_of

STATUS_ORDER = {"active": 0, "loaded": 1, "closed": 2}


@app.command()
def directives(province: Annotated[str | None, typer.Option(
                   help="DOPA province code, e.g. 27 (default: every province)")] = None,
               as_json: Annotated[bool, typer.Option("--json")] = False,
               now: Now = None) -> None:
    """Every province's directives (or one province's): slug, reference number, status and
    progress; active ones first, then loaded, then closed."""
    from models.directive import directives_of
    from models.org import get_province
    from tidtam.app.directives import progress_of
    from tidtam.cli.views import directives_json, print_directives
    from tidtam.infra.db import session_scope
    from tidtam.infra.settings import get_settings

    day = day_of(clock_for(now), get_settings().tz)
    with session_scope() as session:
        if province is not None and get_province(session, province) is None:
            fail(InvalidInput(f"no province {province}", f"ไม่พบจังหวัดรหัส {province}"), 2)
        found = sorted(directives_of(session, province),
                       key=lambda d: (STATUS_ORDER.get(str(d.status), 9), d.province_code or ""))
        rows = directives_json(progress_of(session, found, day))
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
    elif not rows:
        typer.echo("no directive yet; `tidtam launch FILE` or `tidtam load FILE` "
                   "(ยังไม่มีหนังสือสั่งการ)")
    else:
        print_directives(rows)


@app.command()
def load(file: Path, now: Now = None) -> None:
    """Store a directive YAML without tracking it yet (loaded); `tidtam launch FILE` starts it."""
    from domain.directive import load_directive as read_directive
    from tidtam.app.tracking import load_directive
    from tidtam.infra.db import session_scope

    instant = instant_for(now)
    try:
        spec = read_directive(file)
        with session_scope() as session:
            directive = load_directive(session, spec, now=instant)
            slug, status = directive.slug, str(directive.status)
    except TidtamError as error:
        fail(error, 2 if isinstance(error, InvalidInput) else 1)
    typer.echo(f"{slug}: {status} — start tracking it with `tidtam launch {file}` "
               "(เก็บไว้แล้ว ยังไม่เริ่มติดตาม)" if status == "loaded" else f"{slug}: {status}")


@app.command()
def close(slug: str,
          reason: Annotated[str, typer.Option(help="why it is closed (shown with it)")],
          user: Annotated[str | None, typer.Option(
              help="close as this coordinator (checked as on the web); default: the operator")
          ] = None,
          now: Now = None) -> None:
    """Close a directive: never chased again, its queued messages cancelled, still readable."""
    from models.user import get_by_username
    from tidtam.app.directives import close_by_operator, close_directive, find_directive
    from tidtam.infra.db import session_scope

    instant = instant_for(now)
    try:
        with session_scope() as session:
            if user is None:
                directive = close_by_operator(session, slug, reason=reason, now=instant)
            else:
                actor = get_by_username(session, user)
                if actor is None:
                    fail(InvalidInput(f"no user {user!r}", f"ไม่พบผู้ใช้ {user!r}"), 2)
                find_directive(session, slug)  # an unknown slug: the list of active ones
                directive = close_directive(session, actor, slug, reason=reason, now=instant)
            reference = directive.reference_no
    except TidtamError as error:
        fail(error, 2 if isinstance(error, InvalidInput) else 1)
    typer.echo(f"closed {slug} ({reference}) at {shown(instant)} — ปิดแล้ว: {reason}")


directive_app = typer.Typer(help="One directive's file: `tidtam directive new` drafts next "
                                 "year's letter from this year's.", no_args_is_help=True)
app.add_typer(directive_app, name="directive")


@directive_app.command("new")
def new(source: Annotated[str, typer.Option("--from", metavar="SLUG",
                                            help="last year's directive (slug)")],
        fiscal_year: Annotated[int, typer.Option(help="the new B.E. fiscal year, e.g. 2568")],
        out: Annotated[Path, typer.Option(help="the YAML file to write")],
        force: Annotated[bool, typer.Option(help="overwrite --out if it exists")] = False) -> None:
    """Write next year's letter: every date moved to the new fiscal year and marked
    '# ตรวจสอบ/review:', the slug, fiscal year and number updated; check it, then launch it."""
    from domain.directive import parse_directive
    from domain.next_year import next_year, to_yaml
    from models.directive import get_directive_by_slug
    from tidtam.app.directives import find_directive
    from tidtam.infra.db import session_scope

    if out.exists() and not force:
        fail(InvalidInput(f"{out} exists; choose another --out or add --force",
                          f"มีไฟล์ {out} อยู่แล้ว — เลือก --out อื่น หรือใส่ --force"), 2)
    try:
        with session_scope() as session:
            directive = find_directive(session, source)
            draft = next_year(dict(directive.definition), fiscal_year)
            taken = get_directive_by_slug(session, draft.spec["slug"]) is not None
        text = to_yaml(draft, source=source)
        parse_directive(text, str(out))  # what is written loads as a directive
    except TidtamError as error:
        fail(error, 2 if isinstance(error, InvalidInput) else 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {out}: {draft.spec['slug']} (fiscal year {fiscal_year}), "
               f"{len(draft.review)} lines marked for review / บรรทัดที่ต้องตรวจสอบ")
    if taken:
        typer.echo(f"note: a directive {draft.spec['slug']} exists already; change the slug "
                   "before launching (มีหนังสือสั่งการ slug นี้อยู่แล้ว)", err=True)
