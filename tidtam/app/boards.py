"""The boards: the district × step board of a directive, a district's page, one item's page — what
the web pages, the API and the CLI read, scoped to what the signed-in person may see.

Each function checks access with ``domain.access`` and raises ``NotFound``/``Forbidden``, so a
route or an API endpoint cannot forget the check: district roles see only their own district,
province roles their province, the Department viewer every province (read-only).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property

from sqlalchemy import Row
from sqlmodel import Session

from domain.access import (
    can_mark_item,
    can_see_province,
    can_waive_item,
)
from domain.errors import Forbidden, NotFound
from domain.evidence import Proof
from domain.standing import is_late
from domain.thaidate import thai_date
from models.audit import AuditEntry, entries_for
from models.board import (
    BoardItem,
    StepRow,
    board_directive,
    board_items,
    report_states,
    step_rows,
)
from models.directive import (
    Directive,
    DirectiveStatus,
    DirectiveStep,
    ItemStatus,
    StepKind,
    TrackedItem,
    items_of,
    items_of_many,
    steps_of,
    steps_of_many,
)
from models.org import (
    District,
    Province,
    districts_in,
    districts_of,
    get_district,
    get_province,
)
from models.report import report_statuses
from models.user import User
from tidtam.app.directives import ensure_visible, find_directive, visible_directive
from tidtam.app.tracking import get_item_for, reopen_waived, visible_district, waive


def visible_province(session: Session, actor: User, province_code: str) -> Province:
    """The province, if it exists (else NotFound) and the actor may see its board (else Forbidden)."""
    province = get_province(session, province_code)
    if province is None:
        raise NotFound(f"no province {province_code}", f"ไม่พบจังหวัดรหัส {province_code}")
    if not can_see_province(actor.role, actor.province_code, province.code):
        raise Forbidden(f"you may not see province {province.code}",
                        f"คุณไม่มีสิทธิ์ดูข้อมูลจังหวัด{province.name_th}")
    return province


def is_overdue(item: TrackedItem, today: date) -> bool:
    """Late, as ``domain.standing`` says (the sweep's district task runs use the same rule)."""
    return is_late(item.status == ItemStatus.OPEN, item.due_on, today)


def evidence_of(item: TrackedItem, step: DirectiveStep) -> Proof | None:
    """The item's evidence from the report, read back; None unless done from the report."""
    if item.status != ItemStatus.DONE or not item.evidence:
        return None
    return Proof.from_evidence(item.evidence, step.code)


@dataclass(frozen=True)
class BoardCell:
    item: TrackedItem
    step: DirectiveStep
    overdue: bool
    report_state: str | None = None  # the report step's cell only: none/draft/submitted/…

    @property
    def from_report(self) -> bool:
        """Done from the district's report (``domain.evidence``), its session the evidence."""
        return self.item.status == ItemStatus.DONE and self.item.evidence is not None

    @property
    def evidence(self) -> Proof | None:
        """The report's session that proves the step, when it was done from the report."""
        return evidence_of(self.item, self.step)

    @property
    def state(self) -> str:
        """done / waived / overdue / open: the board's colours (the templates' ``state`` macro,
        in Python for the board's hundreds of cells)."""
        if self.item.status == ItemStatus.WAIVED:
            return "waived"
        if self.item.status != ItemStatus.OPEN:
            return "done"
        return "overdue" if self.overdue else "open"


@dataclass(frozen=True)
class BoardRow:
    district: District
    cells: list[BoardCell]

    def cell(self, step: DirectiveStep) -> BoardCell | None:
        """The cell in this step's column (None if the district has no such item)."""
        return self._by_step.get(step.id)

    @cached_property
    def _by_step(self) -> dict[int, BoardCell]:
        return {c.step.id: c for c in self.cells}

    @property
    def done_count(self) -> int:
        """Settled steps: done or waived. A waived step needs nothing more from the district, and
        ``domain.rates`` counts it as actual too, so the board and the national rates agree."""
        return sum(c.item.status != ItemStatus.OPEN for c in self.cells)

    @property
    def waived_count(self) -> int:
        """Of ``done_count``, the steps waived as not applicable."""
        return sum(c.item.status == ItemStatus.WAIVED for c in self.cells)

    @property
    def overdue_count(self) -> int:
        return sum(c.overdue for c in self.cells)

    @property
    def report_state(self) -> str:
        """The district's report: none (not started), draft, submitted, returned or accepted."""
        return next((c.report_state for c in self.cells if c.report_state), "none")

    @property
    def proven_steps(self) -> list[str]:
        """The codes of the steps done from the district's report."""
        return [c.step.code for c in self.cells if c.from_report]


class _RowTotals:
    """A board's totals, summed over its rows (``Board`` and ``BoardPage`` alike)."""

    rows: list

    @property
    def overdue_count(self) -> int:
        return sum(r.overdue_count for r in self.rows)

    @property
    def waived_count(self) -> int:
        return sum(r.waived_count for r in self.rows)


@dataclass(frozen=True)
class Board(_RowTotals):
    directive: Directive
    steps: list[DirectiveStep]
    rows: list[BoardRow]
    today: date
    report_step: str | None = None  # the step the report form completes (R1), if it has a form


def board(session: Session, directive: Directive, today: date,
          district_code: str | None = None) -> Board:
    """The district × step board; an open item past its due date is overdue; the report step's
    cells say where each district's report stands."""
    return _assemble(directive, steps_of(session, directive.id),
                     items_of(session, directive.id, district_code),
                     districts_of(session, directive.province_code), today,
                     report_statuses(session, directive.id, district_code))


def boards_of(session: Session, directives: list[Directive], today: date) -> list[Board]:
    """Several directives' boards (every province's, for the sweep's artifacts) in three
    queries: their steps, their items, the districts of their provinces."""
    if not directives:
        return []
    ids = [d.id for d in directives]
    steps: dict[int, list[DirectiveStep]] = {d_id: [] for d_id in ids}
    for step in steps_of_many(session, ids):
        steps[step.directive_id].append(step)
    items: dict[int, list[TrackedItem]] = {d_id: [] for d_id in ids}
    for item in items_of_many(session, ids):
        items[item.directive_id].append(item)
    districts = districts_in(session, sorted({d.province_code for d in directives}))
    return [_assemble(d, steps[d.id], items[d.id], districts, today) for d in directives]


def _assemble(directive: Directive, steps: list[DirectiveStep], items: list[TrackedItem],
              districts: list[District], today: date,
              reports: dict[str, str] | None = None) -> Board:
    """``reports``: each district's report status; None when not read (the sweep's artifacts)."""
    step_by_id = {s.id: s for s in steps}
    by_code = {d.code: d for d in districts}
    report_step = report_step_of(directive) if reports is not None else None
    rows: dict[str, list[BoardCell]] = {}
    for item in items:
        step = step_by_id[item.step_id]
        state = str(reports.get(item.district_code, "none")) if step.code == report_step else None
        rows.setdefault(item.district_code, []).append(
            BoardCell(item, step, is_overdue(item, today), state))
    return Board(directive, steps, [
        BoardRow(by_code[code], sorted(cells, key=lambda c: c.step.order))
        for code, cells in sorted(rows.items())], today, report_step)


# --- The board page: the same board as plain rows, for the page's hundreds of cells ----------

@dataclass(frozen=True, slots=True)
class PageCell:
    """One cell of the board page: what ``BoardCell`` says, worked out once."""

    item: BoardItem
    step: StepRow
    state: str  # done / waived / overdue / open, as ``BoardCell.state``
    report_state: str | None  # the report step's cell only, as ``BoardCell.report_state``
    from_report: bool  # as ``BoardCell.from_report``

    @property
    def kind(self) -> tuple[str, str, str | None, str, bool]:
        """What the cell's markup depends on besides the item's id (the page draws each kind
        of cell once)."""
        return (self.step.code, self.state, self.report_state, str(self.item.status),
                self.from_report)


@dataclass(frozen=True, slots=True)
class DistrictName:
    """A district as the board's row heads show it (``District``'s columns)."""

    code: str
    name_th: str
    name_en: str


@dataclass(frozen=True, slots=True)
class PageRow:
    """A district's row: its cells in step order, and each step's column (None: no item)."""

    district: DistrictName
    cells: list[PageCell]
    columns: list[tuple[StepRow, PageCell | None]]
    done_count: int  # as ``BoardRow``'s
    waived_count: int
    overdue_count: int


@dataclass(frozen=True)
class BoardPage(_RowTotals):
    """``/directives/{slug}``: what ``Board`` holds for the page, read as plain rows (the
    directive too: a row with ``Directive``'s columns)."""

    directive: Directive | Row
    steps: list[StepRow]
    rows: list[PageRow]
    today: date
    report_step: str | None = None


def directive_board_page(session: Session, actor: User, slug: str, today: date) -> BoardPage:
    """``/directives/{slug}``: the board ``directive_board`` reads, in four plain queries (the
    directive, its steps, its items with their districts' names, the reports' states)."""
    directive = board_directive(session, slug)
    ensure_visible(actor, slug, directive)  # visible_directive's rule, on the plain row
    return assemble_page(directive, step_rows(session, directive.id),
                         board_items(session, directive.id), today,
                         report_states(session, directive.id))


def assemble_page(directive: Directive | Row, steps: list[StepRow], items: list[BoardItem],
                  today: date, reports: dict[str, str]) -> BoardPage:
    """The page from its rows, with ``_assemble``'s rules: a row per district with items (by
    code), its cells in step order; the report step's cell says where the report stands."""
    step_by_id = {s.id: s for s in steps}
    report_step = report_step_of(directive)
    by_district: dict[str, list[PageCell]] = {}
    open_, done, waived = ItemStatus.OPEN, ItemStatus.DONE, ItemStatus.WAIVED
    for item in items:
        step = step_by_id[item.step_id]
        status = item.status
        if status == waived:
            state = "waived"
        elif status != open_:
            state = "done"
        else:
            state = "overdue" if is_late(True, item.due_on, today) else "open"
        report_state = (str(reports.get(item.district_code, "none"))
                        if step.code == report_step else None)
        by_district.setdefault(item.district_code, []).append(
            PageCell(item, step, state, report_state, status == done and item.has_evidence))
    rows = []
    for code in sorted(by_district):
        cells = sorted(by_district[code], key=lambda c: c.step.order)
        by_step = {c.step.id: c for c in cells}
        first = cells[0].item
        rows.append(PageRow(
            DistrictName(code, first.district_name_th, first.district_name_en), cells,
            [(step, by_step.get(step.id)) for step in steps],
            done_count=sum(c.item.status != open_ for c in cells),
            waived_count=sum(c.item.status == waived for c in cells),
            overdue_count=sum(c.state == "overdue" for c in cells)))
    return BoardPage(directive, steps, rows, today, report_step)


def report_step_of(directive: Directive | Row) -> str | None:
    """The step the directive's report form completes (``form.report_step``), if it has a form."""
    form = (directive.definition or {}).get("form") or {}
    return form.get("report_step")


# --- The board as a table of words (the sweep's board artifact) -------------------------------

CELL_WORDS = {"done": "เสร็จ {due}", "waived": "ยกเว้น {due}", "overdue": "ช้า · {due}",
              "open": "ภายใน {due}"}
DISTRICT_COLUMN = "อำเภอ"
DONE_COLUMN = "เสร็จ / done"


def cell_text(cell: BoardCell) -> str:
    """`เสร็จ 9 ส.ค. 2567`, `ช้า · 9 ส.ค. 2567`: the cell's state and its step's due day (B.E.)."""
    return CELL_WORDS[cell.state].format(due=thai_date(cell.item.due_on))


def board_table(board: Board) -> list[dict[str, str]]:
    """One row per district (its Thai name and code), one column per step (its code), and the
    settled count: the board as the Prefect table artifact shows it."""
    table = []
    for row in board.rows:
        line = {DISTRICT_COLUMN: f"{row.district.name_th} {row.district.code}"}
        for step in board.steps:
            cell = row.cell(step)
            line[step.code] = cell_text(cell) if cell else "—"
        line[DONE_COLUMN] = f"{row.done_count}/{len(row.cells)}"
        table.append(line)
    return table


def settled_share(board: Board) -> float:
    """Percent of the board's items settled (done, accepted or waived): the progress artifact."""
    cells = [c for row in board.rows for c in row.cells]
    return 100.0 * sum(c.state in ("done", "waived") for c in cells) / len(cells) if cells else 0.0


@dataclass(frozen=True)
class DistrictView:
    district: District
    board: Board
    can_mark: bool

    @property
    def row(self) -> BoardRow | None:
        """The district's items, or None when the directive has none for it."""
        return self.board.rows[0] if self.board.rows else None


def district_view(session: Session, actor: User, district_code: str, today: date, *,
                  directive: Directive) -> DistrictView:
    """One district's items of a directive, and whether the actor may mark them (never on a
    closed directive)."""
    district = visible_district(session, actor, district_code)
    if directive.province_code != district.province_code:
        raise NotFound(f"directive {directive.slug} is not district {district.code}'s",
                       f"หนังสือสั่งการ {directive.slug} ไม่ใช่ของอำเภอรหัส {district.code}")
    return DistrictView(
        district=district,
        board=board(session, directive, today, district.code),
        can_mark=(directive.status == DirectiveStatus.ACTIVE
                  and can_mark_item(actor.role, actor.district_code, district.code)))


def directive_board(session: Session, actor: User, slug: str, today: date) -> Board:
    """``/directives/{slug}``: a directive's whole board, for its province and the Department."""
    return board(session, visible_directive(session, actor, slug), today)


def directive_district(session: Session, actor: User, slug: str, district_code: str,
                       today: date) -> DistrictView:
    """``/directives/{slug}/districts/{code}``: one district's items of that directive."""
    district = visible_district(session, actor, district_code)
    directive = find_directive(session, slug, district.province_code)
    return district_view(session, actor, district.code, today, directive=directive)


def provinces_for(session: Session, actor: User) -> list[Province]:
    """The provinces whose boards the actor may open, by code."""
    from models.org import all_provinces

    return [p for p in all_provinces(session)
            if can_see_province(actor.role, actor.province_code, p.code)]


@dataclass(frozen=True)
class ItemDetail:
    item: TrackedItem
    step: DirectiveStep
    district: District
    completed_by: User | None
    can_mark: bool
    overdue: bool
    history: list[AuditEntry]
    waived_by: User | None = None
    can_waive: bool = False  # the province's coordinator: waive an open step, undo a waiver
    directive: Directive | None = None  # the letter the item belongs to (its pages' URLs)
    evidence: Proof | None = None  # done from the report: the session that proves it


def item_detail(session: Session, actor: User, item_id: int, today: date) -> ItemDetail:
    """One item with its step, district, who completed (or waived) it, and its audit history."""
    item = get_item_for(session, actor, item_id)
    step = session.get(DirectiveStep, item.step_id)
    district = get_district(session, item.district_code)
    completed_by = session.get(User, item.completed_by_id) if item.completed_by_id else None
    directive = session.get(Directive, item.directive_id)
    active = directive.status == DirectiveStatus.ACTIVE  # a closed letter takes no more changes
    return ItemDetail(
        item=item, step=step, district=district,
        completed_by=completed_by,
        can_mark=active and can_mark_item(actor.role, actor.district_code, item.district_code),
        overdue=is_overdue(item, today),
        history=entries_for(session, "tracked_item", item.id),
        waived_by=session.get(User, item.waived_by_id) if item.waived_by_id else None,
        can_waive=(active and can_waive_item(actor.role, actor.province_code, district.province_code)
                   and step.kind != StepKind.REPORT),
        directive=directive, evidence=evidence_of(item, step))


def waive_item(session: Session, actor: User, item_id: int, *, now: datetime, today: date,
               reason: str, expected_version: int) -> ItemDetail:
    """Waive the item (tracking checks and audits it) and read it back for the answer."""
    waive(session, actor, item_id, reason=reason, now=now, expected_version=expected_version)
    return item_detail(session, actor, item_id, today)


def unwaive_item(session: Session, actor: User, item_id: int, *, now: datetime, today: date,
                 reason: str | None, expected_version: int) -> ItemDetail:
    """Undo the item's waiver and read it back for the answer."""
    reopen_waived(session, actor, item_id, now=now, reason=reason,
                  expected_version=expected_version)
    return item_detail(session, actor, item_id, today)
