"""The columns the reporting-rate chart reads: each tracked item's step, due day and when it was
settled, in one query (no ORM objects: a national directive has about 10,000 items)."""

from __future__ import annotations

from datetime import date, datetime
from typing import NamedTuple

from sqlmodel import Session, col, select

from models.directive import Directive, DirectiveStep, ItemStatus, TrackedItem


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


def copies_item_timings(session: Session, national_id: int,
                        step_codes: list[str]) -> list[ItemTiming]:
    """The items of every province's copy of a national directive, for the Department's steps
    only (a province's added steps are its own business)."""
    copies = select(Directive.id).where(Directive.parent_id == national_id)
    query = _timings().where(col(TrackedItem.directive_id).in_(copies),
                             col(DirectiveStep.code).in_(step_codes))
    return [ItemTiming._make(row) for row in session.exec(query).all()]


def _timings():
    return (select(DirectiveStep.code, TrackedItem.due_on, TrackedItem.status,
                   TrackedItem.completed_at, TrackedItem.waived_at)
            .join(DirectiveStep, DirectiveStep.id == TrackedItem.step_id))
