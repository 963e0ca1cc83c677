"""Terminal and JSON views of the board and the outbox, for the CLI."""

from __future__ import annotations

from datetime import date

import typer
from rich.console import Console
from rich.table import Table
from sqlmodel import Session

from domain.thaidate import thai_date
from models.directive import latest_directive
from models.outbox import all_messages
from tidtam.app.boards import board

STATUS_MARK = {"done": "✔", "waived": "–", "open": "·", "overdue": "✗"}


def board_json(session: Session, today: date) -> dict | None:
    """The newest directive's district × step board as plain data."""
    directive = latest_directive(session)
    if directive is None:
        return None
    data = board(session, directive, today)
    return {
        "directive": {"slug": directive.slug, "reference_no": directive.reference_no,
                      "title_th": directive.title_th},
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


def outbox_json(session: Session) -> list[dict]:
    return [{"key": m.idempotency_key, "channel": str(m.channel), "recipient": m.recipient,
             "district_code": m.district_code, "item_id": m.item_id, "step_id": m.step_id,
             "rung": m.rung, "status": str(m.status), "attempts": m.attempts,
             "created_at": m.created_at.isoformat() if m.created_at else None,
             "next_try_at": m.next_try_at.isoformat(), "last_error": m.last_error,
             "sent_at": m.sent_at.isoformat() if m.sent_at else None}
            for m in reversed(all_messages(session))]


def print_outbox(rows: list[dict]) -> None:
    table = Table(title=f"outbox ({len(rows)} messages)")
    for column in ("key", "channel", "recipient", "district", "item", "rung", "status"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["key"], r["channel"], r["recipient"] or "—", r["district_code"] or "—",
                      str(r["item_id"] or "—"), r["rung"] or "", r["status"])
    Console(width=200).print(table)


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
