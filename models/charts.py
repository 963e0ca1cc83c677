"""The columns the reporting-rate chart reads: each tracked item's step, due day and when it was
settled, in one query (no ORM objects: a national directive has about 10,000 items)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, tzinfo
from typing import NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import Date, Integer, Select, bindparam, case, cast, func, type_coerce
from sqlalchemy import select as core_select
from sqlmodel import Session, select

from domain.charts import settled_day
from models.directive import Directive, DirectiveStep, ItemStatus, TrackedItem
from models.types import UTCDateTime


class ItemTiming(NamedTuple):
    step_code: str
    due_on: date
    status: ItemStatus
    completed_at: datetime | None
    waived_at: datetime | None

    @property
    def settled(self) -> bool:
        return self.status != ItemStatus.OPEN

    @property
    def settled_at(self) -> datetime | None:
        """When it stopped being open: done, or waived (None when settled with no time kept)."""
        return self.waived_at if self.status == ItemStatus.WAIVED else self.completed_at


def item_timings(session: Session, directive_id: int, district_code: str | None = None,
                 ) -> list[ItemTiming]:
    """A directive's items (one district's with ``district_code``)."""
    query = _timings().where(TrackedItem.directive_id == directive_id)
    if district_code is not None:
        query = query.where(TrackedItem.district_code == district_code)
    return [ItemTiming._make(row) for row in session.exec(query).all()]


_item = TrackedItem.__table__.c
_step = DirectiveStep.__table__.c
_directive = Directive.__table__.c

# Built once, Core only (no ORM result machinery for some 10,000 rows): each item of every
# province's copy as (its step's code, settled, when): settled is "not open"; when is the
# waiving's time for a waived item, else the completion's (None when none was kept).
_COPIES_SETTLEMENTS = (
    core_select(_step.code,
                case((_item.status != ItemStatus.OPEN, True), else_=False),
                type_coerce(case((_item.status == ItemStatus.WAIVED, _item.waived_at),
                                 else_=_item.completed_at), UTCDateTime()))
    .join_from(TrackedItem.__table__, DirectiveStep.__table__, _step.id == _item.step_id)
    .where(_item.directive_id.in_(core_select(_directive.id)
                                  .where(_directive.parent_id == bindparam("national_id"))),
           _step.code.in_(bindparam("codes", expanding=True))))


def copies_settlements(session: Session, national_id: int,
                       step_codes: list[str]) -> list[tuple[str, bool, datetime | None]]:
    """The items of every province's copy of a national directive, for the Department's steps
    only (a province's added steps are its own business), as plain (step code, settled, settled
    at) tuples: ``ItemTiming``'s ``step_code``, ``settled`` and ``settled_at``."""
    if not step_codes:
        return []
    return session.connection().execute(
        _COPIES_SETTLEMENTS, {"national_id": national_id, "codes": step_codes}).all()


# The same items counted by step, settled and when they were settled, so that a few hundred or
# thousand counts come back instead of 10,000 rows. PostgreSQL turns the instant into the zone's
# local day itself (``timezone``). SQLite knows no zones: it counts by the quarter of an hour
# (UTC) the instant falls in, and Python gives each quarter its local day. Every zone's offset
# is a whole number of quarters of an hour, so a local day starts on a quarter: all of a quarter
# falls on one local day, and the day is exactly the one of each instant in it.
QUARTER = 900  # seconds
_settled = case((_item.status != ItemStatus.OPEN, True), else_=False).label("settled")
_settled_at = case((_item.status == ItemStatus.WAIVED, _item.waived_at), else_=_item.completed_at)


def _counted(when) -> Select:
    """The copies' items as (step code, settled, ``when``), counted."""
    rows = (core_select(_step.code.label("code"), _settled, when.label("at"))
            .join_from(TrackedItem.__table__, DirectiveStep.__table__, _step.id == _item.step_id)
            .where(_item.directive_id.in_(core_select(_directive.id)
                                          .where(_directive.parent_id == bindparam("national_id"))),
                   _step.code.in_(bindparam("codes", expanding=True)))
            .subquery())
    return (core_select(rows.c.code, rows.c.settled, rows.c.at, func.count())
            .group_by(rows.c.code, rows.c.settled, rows.c.at))


_COPIES_SETTLED_DAYS = _counted(cast(func.timezone(bindparam("tz"), _settled_at), Date))
_COPIES_SETTLED_QUARTERS = _counted(cast(func.strftime("%s", _settled_at), Integer) // QUARTER)


def copies_settled_days(session: Session, national_id: int, step_codes: list[str],
                        tz: tzinfo) -> dict[tuple[str, bool, date | None], int]:
    """``copies_settlements`` counted by (step code, settled, the day in ``tz`` it was settled:
    None when open or when no time was kept), counted by the database."""
    if not step_codes:
        return {}
    connection = session.connection()
    params = {"national_id": national_id, "codes": step_codes}
    counts: Counter[tuple[str, bool, date | None]] = Counter()
    if connection.dialect.name == "postgresql" and isinstance(tz, ZoneInfo):
        for code, settled, day, n in connection.execute(_COPIES_SETTLED_DAYS,
                                                        params | {"tz": tz.key}):
            counts[(code, settled, day if settled else None)] += n
        return dict(counts)
    if connection.dialect.name == "sqlite":
        days: dict[int, date] = {}
        for code, settled, quarter, n in connection.execute(_COPIES_SETTLED_QUARTERS, params):
            day = None
            if settled and quarter is not None:
                day = days.get(quarter)
                if day is None:
                    day = days[quarter] = settled_day(
                        True, datetime.fromtimestamp(quarter * QUARTER, UTC), tz, None)
            counts[(code, settled, day)] += n
        return dict(counts)
    return dict(Counter((code, settled, settled_day(settled, at, tz, None))
                        for code, settled, at in copies_settlements(session, national_id,
                                                                    step_codes)))


def _timings():
    return (select(DirectiveStep.code, TrackedItem.due_on, TrackedItem.status,
                   TrackedItem.completed_at, TrackedItem.waived_at)
            .join(DirectiveStep, DirectiveStep.id == TrackedItem.step_id))
