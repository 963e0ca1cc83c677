"""Directives (หนังสือสั่งการ), their steps, and the tracked item per district × step."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any, NamedTuple

from sqlalchemy import JSON, Index, String, UniqueConstraint, bindparam, case, func, type_coerce
from sqlalchemy import select as sa_select
from sqlalchemy.orm import defer
from sqlmodel import Column, Field, Session, SQLModel, col, select

from models.org import District, Province
from models.types import UTCDateTime, enum_column
from models.versioned import versioned_update, versioned_write


class DirectiveBase(SQLModel):
    """The letter's header: what is stored, shown and given out by the API.

    Its YAML (``domain.directive.DirectiveSpec``) has each of these fields under the same name,
    and more (steps, ladder, form), which the table keeps whole in ``definition``.
    """

    slug: str = Field(unique=True, index=True, max_length=120)
    province_code: str | None = Field(default=None, foreign_key="province.code", max_length=2,
                                      index=True, description="none: the Department's, national")
    reference_no: str
    title_th: str
    title_en: str
    issuer_th: str
    issuer_en: str
    issued_on: date
    fiscal_year: int = Field(description="Buddhist-era fiscal year, e.g. 2567")
    revision: int = Field(default=1, sa_column_kwargs={"server_default": "1"},
                          description="the letter's amendment the province follows")
    activity_start: date | None = None
    activity_end: date | None = None
    province_due: date = Field(description="districts report to the province by this day")
    department_due: date | None = Field(default=None,
                                        description="the province reports to the Department")


class DirectiveStatus(StrEnum):
    """A directive's life: stored (loaded) → tracked and chased (active) → closed, still readable."""

    LOADED = "loaded"
    ACTIVE = "active"
    CLOSED = "closed"


class DirectiveState(SQLModel):
    """Where a directive is in its life (stored, and given out by the API)."""

    status: DirectiveStatus = Field(default=DirectiveStatus.ACTIVE,
                                    sa_column=enum_column(DirectiveStatus, server_default="active"))
    closed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    closed_by: str | None = Field(default=None, max_length=120,
                                  description="who closed it: a username, or system:auto-close")
    close_reason: str | None = None


class Directive(DirectiveBase, DirectiveState, table=True):
    id: int | None = Field(default=None, primary_key=True)
    parent_id: int | None = Field(default=None, foreign_key="directive.id", index=True,
                                  description="the national directive a province's copy carries out")
    definition: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False),
                                       description="the validated YAML, for ladder and form")
    launched_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))

    @classmethod
    def header_of(cls, spec: Any) -> dict[str, Any]:
        """The header fields of a directive's YAML (a ``DirectiveSpec``), by their shared names."""
        return spec.model_dump(include=set(DirectiveBase.model_fields))


class DirectivePublic(DirectiveBase):
    """A directive in the JSON API."""

    id: int
    parent_id: int | None = None
    status: DirectiveStatus
    closed_at: datetime | None = None
    close_reason: str | None = None


class StepKind(StrEnum):
    GUIDELINE = "guideline"
    ACTIVITY = "activity"
    REPORT = "report"


class DirectiveStep(SQLModel, table=True):
    __tablename__ = "directive_step"
    __table_args__ = (UniqueConstraint("directive_id", "code"),)

    id: int | None = Field(default=None, primary_key=True)
    directive_id: int = Field(foreign_key="directive.id", index=True)
    order: int
    code: str = Field(max_length=32)
    kind: StepKind = Field(sa_column=enum_column(StepKind))
    title_th: str
    title_en: str
    due_on: date


class ItemStatus(StrEnum):
    OPEN = "open"
    DONE = "done"
    WAIVED = "waived"


class TrackedItem(SQLModel, table=True):
    __tablename__ = "tracked_item"
    __table_args__ = (
        UniqueConstraint("step_id", "district_code"),
        Index("ix_tracked_item_open_due", "status", "due_on"),
    )

    id: int | None = Field(default=None, primary_key=True)
    directive_id: int = Field(foreign_key="directive.id", index=True)
    step_id: int = Field(foreign_key="directive_step.id")
    district_code: str = Field(foreign_key="district.code", max_length=4, index=True)
    status: ItemStatus = Field(default=ItemStatus.OPEN, sa_column=enum_column(ItemStatus))
    due_on: date
    completed_by_id: int | None = Field(default=None, foreign_key="user.id")
    completed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    note: str | None = None
    # A waived step (ยกเว้น) does not apply to the district: the coordinator says so, and why.
    # Kept apart from completed_*: nothing was done, and a waiver is never "late".
    waived_by_id: int | None = Field(default=None, foreign_key="user.id")
    waived_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    waiver_reason: str | None = None
    # Done from the report (domain/evidence.py): the report's session that proves the step
    # (report_id, session_key, session_number, held_on, participants); None when done by hand.
    evidence: dict[str, Any] | None = Field(default=None,
                                            sa_column=Column(JSON(none_as_null=True), nullable=True))
    version: int = Field(default=1, description="bumped on every change; stale writes refused")


def get_directive_by_slug(session: Session, slug: str) -> Directive | None:
    return session.exec(select(Directive).where(Directive.slug == slug)).first()


def directives_of(session: Session, province_code: str | None = None,
                  statuses: tuple[DirectiveStatus, ...] | None = None, *,
                  definitions: bool = True) -> list[Directive]:
    """A province's directives (every province's without ``province_code``; never the national
    rows, whose work is tracked in the provinces' copies): newest letter first.
    ``definitions=False``: each one's ``definition`` is left unread until it is used (decoding
    76 of them is most of the query's time; the sweep keeps them validated)."""
    query = select(Directive).order_by(col(Directive.issued_on).desc(), col(Directive.id).desc())
    if not definitions:
        query = query.options(defer(Directive.definition))
    if province_code:
        query = query.where(Directive.province_code == province_code)
    else:
        query = query.where(col(Directive.province_code).is_not(None))
    if statuses:
        query = query.where(col(Directive.status).in_(statuses))
    return list(session.exec(query))


def active_directives(session: Session, province_code: str | None = None, *,
                      definitions: bool = True) -> list[Directive]:
    """The directives tracked and chased now (of one province, or of all)."""
    return directives_of(session, province_code, (DirectiveStatus.ACTIVE,),
                         definitions=definitions)


def provinces_own_active(session: Session) -> list[Directive]:
    """Every province's own active directives (not the copies of the Department's), newest letter
    first, as ``active_directives`` orders them; their YAML (``definition``) is not read unless
    asked for (the national board's list of the provinces' letters)."""
    return list(session.exec(
        select(Directive).options(defer(Directive.definition))
        .where(col(Directive.province_code).is_not(None), col(Directive.parent_id).is_(None),
               Directive.status == DirectiveStatus.ACTIVE)
        .order_by(col(Directive.issued_on).desc(), col(Directive.id).desc())))


def national_directives(session: Session) -> list[Directive]:
    """The Department's directives, newest first."""
    return list(session.exec(select(Directive).where(col(Directive.province_code).is_(None))
                             .order_by(col(Directive.issued_on).desc(), col(Directive.id).desc())))


def province_copies(session: Session, national_id: int) -> list[Directive]:
    """The provinces' copies of a national directive, by province code."""
    return list(session.exec(select(Directive).where(Directive.parent_id == national_id)
                             .order_by(Directive.province_code)))


def steps_of(session: Session, directive_id: int) -> list[DirectiveStep]:
    return list(session.exec(select(DirectiveStep).where(
        DirectiveStep.directive_id == directive_id).order_by(DirectiveStep.order)))


def items_of(session: Session, directive_id: int,
             district_code: str | None = None) -> list[TrackedItem]:
    query = select(TrackedItem).where(TrackedItem.directive_id == directive_id)
    if district_code is not None:
        query = query.where(TrackedItem.district_code == district_code)
    return list(session.exec(query.order_by(TrackedItem.district_code, TrackedItem.step_id)))


class OpenItem(NamedTuple):
    """The columns of an open tracked item that the sweep and the digest read."""

    id: int
    directive_id: int
    step_id: int
    district_code: str
    due_on: date


def open_items_due_by(session: Session, last_due: date, directive_ids: list[int] | None = None,
                      ) -> list[tuple[OpenItem, DirectiveStep]]:
    """Open items of active directives whose due date is on or before ``last_due`` (one indexed
    query), with their steps. A loaded or closed directive's items are never chased.
    ``directive_ids``: only those directives' items (one province's sweep).

    Items come as plain column tuples (no ORM objects: there can be 10,000 of them); their
    steps, a few per directive, are loaded as models by a second query.
    """
    active = select(Directive.id).where(Directive.status == DirectiveStatus.ACTIVE)
    if directive_ids is not None:
        active = active.where(col(Directive.id).in_(directive_ids))
    due = ((TrackedItem.status == ItemStatus.OPEN) & (TrackedItem.due_on <= last_due)
           & col(TrackedItem.directive_id).in_(active))
    rows = session.exec(
        select(TrackedItem.id, TrackedItem.directive_id, TrackedItem.step_id,
               TrackedItem.district_code, TrackedItem.due_on)
        .join(DirectiveStep, DirectiveStep.id == TrackedItem.step_id)
        .where(due)
        .order_by(TrackedItem.due_on, TrackedItem.district_code, DirectiveStep.order)).all()
    if not rows:
        return []
    steps = {step.id: step for step in session.exec(select(DirectiveStep).where(
        col(DirectiveStep.id).in_(select(TrackedItem.step_id).where(due))))}
    return [(item, steps[item.step_id]) for item in map(OpenItem._make, rows)]


class StepRow(NamedTuple):
    """A directive step's columns as a plain row (what a message about it names)."""

    id: int
    directive_id: int
    order: int
    code: str
    kind: str
    title_th: str
    title_en: str
    due_on: date


def open_item_rows(session: Session, last_due: date, directive_ids: list[int],
                   ) -> tuple[list[OpenItem], dict[int, StepRow]]:
    """What ``open_items_due_by`` reads, as plain rows in two queries and no ORM objects: the
    open items of these active directives due on or before ``last_due``, in the same order
    (due date, district, step), and the steps of these directives by id."""
    if not directive_ids:
        return [], {}
    active = select(Directive.id).where(Directive.status == DirectiveStatus.ACTIVE,
                                        col(Directive.id).in_(directive_ids))
    connection = session.connection()  # Core: rows as they come, no ORM loading per row
    # due_on as the driver gives it (SQLite: text), made a date once per distinct day here
    # rather than once per row by the column's type: a national sweep reads 10,536 rows of a
    # dozen due days.
    rows = connection.execute(
        select(TrackedItem.id, TrackedItem.directive_id, TrackedItem.step_id,
               TrackedItem.district_code, type_coerce(TrackedItem.due_on, String))
        .join(DirectiveStep, DirectiveStep.id == TrackedItem.step_id)
        .where(TrackedItem.status == ItemStatus.OPEN, TrackedItem.due_on <= last_due,
               col(TrackedItem.directive_id).in_(active))
        .order_by(TrackedItem.due_on, TrackedItem.district_code, DirectiveStep.order)).all()
    if not rows:
        return [], {}
    days: dict[Any, date] = {}
    items = []
    make = tuple.__new__
    for item_id, directive_id, step_id, district_code, due in rows:
        day = days.get(due)
        if day is None:
            day = days[due] = date.fromisoformat(due) if isinstance(due, str) else due
        items.append(make(OpenItem, (item_id, directive_id, step_id, district_code, day)))
    steps = connection.execute(
        select(DirectiveStep.id, DirectiveStep.directive_id, DirectiveStep.order,
               DirectiveStep.code, DirectiveStep.kind, DirectiveStep.title_th,
               DirectiveStep.title_en, DirectiveStep.due_on)
        .where(col(DirectiveStep.directive_id).in_(directive_ids))).all()
    return items, {row[0]: StepRow._make(row) for row in steps}


def item_counts_by_district(session: Session, directive_ids: list[int], today: date,
                            ) -> dict[str, tuple[int, int, int]]:
    """District code → (items, settled, late) over these directives, in one grouped query:
    settled = no longer open; late = open with a due day before ``today``."""
    if not directive_ids:
        return {}
    is_open = TrackedItem.status == ItemStatus.OPEN
    rows = session.exec(
        select(TrackedItem.district_code, func.count(),
               func.sum(case((is_open, 0), else_=1)),
               func.sum(case((is_open & (TrackedItem.due_on < today), 1), else_=0)))
        .where(col(TrackedItem.directive_id).in_(directive_ids))
        .group_by(TrackedItem.district_code)).all()
    return {code: (int(n), int(settled or 0), int(late or 0)) for code, n, settled, late in rows}


def directives_by_id(session: Session, directive_ids: list[int]) -> list[Directive]:
    """These directives, in the order of ``directive_ids``, in one query."""
    found = {d.id: d for d in session.exec(select(Directive).where(col(Directive.id).in_(directive_ids)))}
    return [found[d_id] for d_id in directive_ids if d_id in found]


def steps_of_many(session: Session, directive_ids: list[int]) -> list[DirectiveStep]:
    """The steps of several directives at once, each directive's in order."""
    return list(session.exec(select(DirectiveStep).where(
        col(DirectiveStep.directive_id).in_(directive_ids))
        .order_by(DirectiveStep.directive_id, DirectiveStep.order)))


def items_of_many(session: Session, directive_ids: list[int]) -> list[TrackedItem]:
    """The items of several directives at once (for their boards, in one query)."""
    return list(session.exec(select(TrackedItem).where(
        col(TrackedItem.directive_id).in_(directive_ids))
        .order_by(TrackedItem.directive_id, TrackedItem.district_code, TrackedItem.step_id)))


def update_item(session: Session, item_id: int, *, expected_version: int,
                expected_status: ItemStatus, **values: Any) -> TrackedItem | None:
    """Change an item and bump its version in one conditional UPDATE (this version, this
    status; ``models.versioned``); the session's copy of the item, updated, or None if it
    matched no row (another writer changed it first)."""
    return versioned_update(session, TrackedItem, item_id, expected_version=expected_version,
                            statuses=(expected_status,), **values)


class ItemFacts(NamedTuple):
    """An item as marking it needs: its columns, its step's, its directive's and the names its
    event carries, read in one query (``item_facts``)."""

    id: int
    version: int
    status: ItemStatus
    note: str | None
    completed_by_id: int | None
    completed_at: datetime | None
    waived_at: datetime | None
    waived_by_id: int | None
    waiver_reason: str | None
    directive_id: int
    step_id: int
    district_code: str
    due_on: date
    step_kind: StepKind
    step_code: str
    step_title_th: str
    directive_status: DirectiveStatus
    directive_slug: str
    directive_reference_no: str
    directive_title_th: str
    directive_province_code: str | None
    district_province_code: str
    district_name_th: str
    province_name_th: str | None


def item_facts(session: Session, item_id: int) -> ItemFacts | None:
    """The item, its step, directive, district and the directive's province in one prepared
    query (the access check and the event of ``tidtam.app.tracking.complete``); None if there
    is no such item."""
    row = session.execute(_ITEM_FACTS, {"item_id": item_id}).first()
    return ItemFacts(*row) if row is not None else None


def _item_facts_query():
    item, step, directive = TrackedItem.__table__, DirectiveStep.__table__, Directive.__table__
    district, province = District.__table__, Province.__table__
    return (sa_select(item.c.id, item.c.version, item.c.status, item.c.note,
                      item.c.completed_by_id, item.c.completed_at, item.c.waived_at,
                      item.c.waived_by_id, item.c.waiver_reason, item.c.directive_id,
                      item.c.step_id, item.c.district_code, item.c.due_on, step.c.kind,
                      step.c.code, step.c.title_th, directive.c.status, directive.c.slug,
                      directive.c.reference_no, directive.c.title_th, directive.c.province_code,
                      district.c.province_code, district.c.name_th, province.c.name_th)
            .select_from(item.join(step, step.c.id == item.c.step_id)
                         .join(directive, directive.c.id == item.c.directive_id)
                         .join(district, district.c.code == item.c.district_code)
                         .outerjoin(province, province.c.code == directive.c.province_code))
            .where(item.c.id == bindparam("item_id")))


_ITEM_FACTS = _item_facts_query()


def item_version_after(session: Session, item_id: int, *, expected_version: int,
                       expected_status: ItemStatus, **values: Any) -> int | None:
    """``update_item``'s conditional UPDATE, leaving the session's copy alone: the item's new
    version, or None if it matched no row."""
    return versioned_write(session, TrackedItem, item_id, expected_version=expected_version,
                           statuses=(expected_status,), **values)


def current_status(session: Session, item_id: int) -> ItemStatus | None:
    """The item's status as the database has it now (after a conditional write lost)."""
    return session.execute(sa_select(TrackedItem.__table__.c.status)
                           .where(TrackedItem.__table__.c.id == item_id)).scalar()


def find_item(session: Session, directive_id: int, district_code: str,
              step_code: str) -> TrackedItem | None:
    query = (select(TrackedItem).join(DirectiveStep, DirectiveStep.id == TrackedItem.step_id)
             .where(TrackedItem.directive_id == directive_id,
                    TrackedItem.district_code == district_code, DirectiveStep.code == step_code))
    return session.exec(query).first()
