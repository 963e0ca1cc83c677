"""The columns a directive's board page reads, as plain rows (no ORM objects: a province's board
has hundreds of cells, and the page reads each of them several times).

``tidtam.app.boards.directive_board_page`` builds the page from these; ``items_of`` and ``steps_of`` in
``models.directive`` stay for the pages and the API that need whole items (notes, versions,
evidence).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import NamedTuple

from sqlalchemy import Row, String, and_, bindparam, case, cast, select
from sqlmodel import Session

from models.directive import Directive, DirectiveStep, ItemStatus, StepKind, TrackedItem
from models.org import District
from models.report import Report

_item = TrackedItem.__table__.c
_step = DirectiveStep.__table__.c
_district = District.__table__.c
_report = Report.__table__.c


class StepRow(NamedTuple):
    """A step as the board's column heads and key show it."""

    id: int
    order: int
    code: str
    kind: StepKind
    title_th: str
    title_en: str
    due_on: date


class BoardItem(NamedTuple):
    """A tracked item as the board's cell shows it, with its district's names beside it.

    ``has_evidence``: the item keeps a report's evidence (``TrackedItem.evidence`` is not None),
    told by the database without reading the JSON.
    """

    id: int
    step_id: int
    district_code: str
    status: ItemStatus
    due_on: date
    completed_at: datetime | None
    waived_at: datetime | None
    has_evidence: bool
    district_name_th: str
    district_name_en: str


# Built once: executing the same statement object skips building it and its cache key.
_STEPS = (select(_step.id, _step.order, _step.code, _step.kind, _step.title_th, _step.title_en,
                 _step.due_on)
          .where(_step.directive_id == bindparam("directive_id")).order_by(_step.order))

# A JSON column keeps Python's None as SQL NULL (``none_as_null``); a JSON 'null' text, which
# the app never writes, reads back as None too, so it does not count as evidence either. The
# CASE is typed Boolean, so SQLite's 0/1 come back as False/True.
_HAS_EVIDENCE = case((and_(_item.evidence.is_not(None), cast(_item.evidence, String) != "null"),
                      True), else_=False)

# No ORDER BY: the board sorts its rows by district and its cells by step itself.
_ITEMS = (select(_item.id, _item.step_id, _item.district_code, _item.status, _item.due_on,
                 _item.completed_at, _item.waived_at, _HAS_EVIDENCE,
                 _district.name_th, _district.name_en)
          .join(District.__table__, _district.code == _item.district_code)
          .where(_item.directive_id == bindparam("directive_id")))


def step_rows(session: Session, directive_id: int) -> list[StepRow]:
    """The directive's steps in order (``steps_of``'s rows, as plain tuples)."""
    rows = session.connection().execute(_STEPS, {"directive_id": directive_id}).all()
    return list(map(StepRow._make, rows))


def board_items(session: Session, directive_id: int) -> list[BoardItem]:
    """The directive's items with their districts' names, in one query (in no order)."""
    rows = session.connection().execute(_ITEMS, {"directive_id": directive_id}).all()
    return list(map(BoardItem._make, rows))


# Every column of the directive, as a row whose attributes have ``Directive``'s names.
_DIRECTIVE = select(Directive.__table__).where(Directive.__table__.c.slug == bindparam("slug"))

_REPORT_STATES = (select(_report.district_code, _report.status)
                  .where(_report.directive_id == bindparam("directive_id")))


def board_directive(session: Session, slug: str) -> Row | None:
    """The directive with this slug as a plain row (``get_directive_by_slug``'s columns, read
    without building a model), or None."""
    return session.connection().execute(_DIRECTIVE, {"slug": slug}).first()


def report_states(session: Session, directive_id: int) -> dict[str, str]:
    """Each district's report status for the directive (``report_statuses``, as plain rows)."""
    rows = session.connection().execute(_REPORT_STATES, {"directive_id": directive_id}).all()
    return {code: str(status) for code, status in rows}
