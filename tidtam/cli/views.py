"""Terminal and JSON views of the directives, their boards and the outbox, for the CLI.

A province follows several directives at once: every view names the directive it shows, and
without ``--directive`` the commands show each active directive in turn.
"""

from __future__ import annotations

from datetime import date

import typer
from rich.console import Console
from rich.table import Table
from sqlmodel import Session, col, select

from domain.thaidate import thai_date
from models.directive import Directive, DirectiveStep, TrackedItem
from models.outbox import MessageFilter, OutboxMessage, all_messages
from tidtam.app.boards import board
from tidtam.app.directives import DirectiveProgress

STATUS_MARK = {"done": "✔", "waived": "–", "open": "·", "overdue": "✗"}


def directive_header(directive: Directive) -> dict:
    return {"slug": directive.slug, "reference_no": directive.reference_no,
            "title_th": directive.title_th, "province_code": directive.province_code,
            "status": str(directive.status)}


def directives_json(lines: list[DirectiveProgress]) -> list[dict]:
    """The directives with where each stands (``tidtam directives --json``)."""
    out = []
    for line in lines:
        d = line.directive
        out.append({
            **directive_header(d), "title_en": d.title_en, "issuer_th": d.issuer_th,
            "fiscal_year": d.fiscal_year, "revision": d.revision,
            "issued_on": d.issued_on.isoformat(), "province_due": d.province_due.isoformat(),
            "department_due": d.department_due.isoformat() if d.department_due else None,
            "closed_at": d.closed_at.isoformat() if d.closed_at else None,
            "close_reason": d.close_reason,
            "progress": {"expected": line.expected, "settled": line.settled,
                         "percent": line.percent, "overdue": line.overdue,
                         "reports_expected": line.reports_expected,
                         "reports_accepted": line.reports_accepted,
                         "reports_submitted": line.reports_submitted},
            "next_due": None if line.next_due is None else {
                "step": line.next_due.step.code, "due_on": line.next_due.step.due_on.isoformat(),
                "open_districts": line.next_due.open_districts},
        })
    return out


STATUS_TH = {"active": "ติดตามอยู่", "loaded": "ยังไม่เริ่ม", "closed": "ปิดแล้ว"}


def print_directives(rows: list[dict]) -> None:
    table = Table(title=f"directives / หนังสือสั่งการ ({len(rows)})")
    for column in ("slug", "เลขที่ / reference", "จังหวัด", "สถานะ / status", "เสร็จ / done",
                   "เลยกำหนด", "รายงาน / reports", "ครบกำหนดถัดไป / next due"):
        table.add_column(column)
    for r in rows:
        p, nxt = r["progress"], r["next_due"]
        table.add_row(
            r["slug"], r["reference_no"], r["province_code"] or "—",
            f"{r['status']} ({STATUS_TH.get(r['status'], r['status'])})",
            f"{p['settled']}/{p['expected']} ({p['percent']}%)", str(p["overdue"]),
            f"{p['reports_accepted']}/{p['reports_expected']}",
            "—" if nxt is None else f"{nxt['step']} {thai_date(date.fromisoformat(nxt['due_on']))}"
                                    f" ({nxt['open_districts']})")
    Console(width=200).print(table)


def board_json(session: Session, directive: Directive, today: date) -> dict:
    """A directive's district × step board as plain data."""
    data = board(session, directive, today)
    return {
        "directive": directive_header(directive),
        "today": today.isoformat(),
        "steps": [{"code": s.code, "title_th": s.title_th, "due_on": s.due_on.isoformat()}
                  for s in data.steps],
        "districts": [{
            "code": row.district.code, "name_th": row.district.name_th,
            "done": row.done_count, "overdue": row.overdue_count,
            "items": {c.step.code: "overdue" if c.overdue else str(c.item.status)
                      for c in row.cells},
            "item_ids": {c.step.code: c.item.id for c in row.cells}} for row in data.rows],
        "overdue_count": data.overdue_count,
    }


def print_board(data: dict) -> None:
    table = Table(title=f"{data['directive']['reference_no']} — {data['directive']['title_th']}"
                        f"  ({thai_date(date.fromisoformat(data['today']))})")
    table.add_column("อำเภอ")
    for step in data["steps"]:
        table.add_column(f"{step['code']}\n{thai_date(date.fromisoformat(step['due_on']))}",
                         justify="center")
    table.add_column("เสร็จ", justify="right")
    for row in data["districts"]:
        table.add_row(f"{row['code']} {row['name_th']}",
                      *[STATUS_MARK[row["items"][s["code"]]] for s in data["steps"]],
                      f"{row['done']}/{len(data['steps'])}")
    Console().print(table)
    Console().print(f"overdue items / ค้างเกินกำหนด: {data['overdue_count']}   "
                    "✔ done  · open  ✗ overdue  – waived")


def outbox_json(session: Session, directive: Directive | None = None, *,
                events: bool = False, wanted: MessageFilter | None = None) -> list[dict]:
    """Every message to people, oldest first, each with the directive it is about (``None``: a
    digest or an alert, about no one directive); ``directive``: only the messages about it;
    ``events``: the Prefect events too; ``wanted``: only those that match these filters."""
    slugs = _directive_of_messages(session)
    messages = reversed(all_messages(session, events=events, wanted=wanted))
    return [{"key": m.idempotency_key, "directive": slugs.get(m.id), "channel": str(m.channel),
             "recipient": m.recipient,
             "district_code": m.district_code, "item_id": m.item_id, "step_id": m.step_id,
             "rung": m.rung, "status": str(m.status), "attempts": m.attempts,
             "created_at": m.created_at.isoformat() if m.created_at else None,
             "subject": m.subject, "body": m.body,
             "next_try_at": m.next_try_at.isoformat(), "last_error": m.last_error,
             "sent_at": m.sent_at.isoformat() if m.sent_at else None}
            for m in messages if directive is None or slugs.get(m.id) == directive.slug]


def _directive_of_messages(session: Session) -> dict[int, str]:
    """Message id → the slug of the directive it names, or its item's or step's (three queries)."""
    own = session.exec(
        select(OutboxMessage.id, Directive.slug)
        .join(Directive, Directive.id == OutboxMessage.directive_id)).all()
    by_item = session.exec(
        select(OutboxMessage.id, Directive.slug)
        .join(TrackedItem, TrackedItem.id == OutboxMessage.item_id)
        .join(Directive, Directive.id == TrackedItem.directive_id)).all()
    by_step = session.exec(
        select(OutboxMessage.id, Directive.slug)
        .join(DirectiveStep, DirectiveStep.id == OutboxMessage.step_id)
        .join(Directive, Directive.id == DirectiveStep.directive_id)
        .where(col(OutboxMessage.item_id).is_(None))).all()
    return dict(own) | dict(by_step) | dict(by_item)


def print_outbox(rows: list[dict], order: list[Directive] | None = None) -> None:
    """A table per directive (in ``order``, then any other), then the messages about none."""
    groups: dict[str | None, list[dict]] = {}
    for d in order or []:
        groups[d.slug] = []
    for r in rows:
        groups.setdefault(r["directive"], []).append(r)
    names = {d.slug: f"{d.reference_no} ({d.slug})" for d in order or []}
    console = Console(width=200)
    if not groups:
        console.print("outbox: 0 messages (ไม่มีข้อความ)")
    for slug, group in sorted(groups.items(), key=lambda kv: kv[0] is None):
        title = (f"outbox — {names.get(slug, slug)}" if slug else
                 "outbox — not about one directive (digests, alerts) / ไม่เจาะจงหนังสือ")
        table = Table(title=f"{title}: {len(group)} messages")
        for column in ("key", "channel", "recipient", "district", "item", "rung", "status"):
            table.add_column(column)
        for r in group:
            table.add_row(r["key"], r["channel"], r["recipient"] or "—", r["district_code"] or "—",
                          str(r["item_id"] or "—"), r["rung"] or "", r["status"])
        console.print(table)


def print_compilation(data: dict) -> None:
    """The totals as the form's items 1-3, then who is missing, then the files written."""
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
