"""The reporting-rate chart of a directive: the share of its district × step items settled by
each day, against the share due, from the launch to the last due day (or today).

A province's people and the Department see a province's directive whole; district people only
their own district's items; the Department alone the national directive (every province's copy,
against the Department's own due days, as on the national board).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from functools import cached_property

from sqlmodel import Session

from domain.access import DISTRICT_ROLES
from domain.charts import (
    LARGE,
    SMALL,
    ChartGeometry,
    DueMark,
    RatePoint,
    Settlement,
    chart_span,
    due_marks,
    geometry,
    rate_series,
    settled_day,
)
from domain.errors import Forbidden, NotFound
from models.charts import ItemTiming, copies_settled_days, item_timings
from models.directive import Directive, ItemStatus, get_directive_by_slug, steps_of
from models.org import District
from models.user import User
from tidtam.app.boards import Board
from tidtam.app.directives import visible_directive
from tidtam.app.national import require_national
from tidtam.app.tracking import visible_district


@dataclass(frozen=True)
class RateChart:
    """One directive's series (of one district, or of the whole country) and its due days."""

    directive: Directive
    series: list[RatePoint]
    marks: list[DueMark]
    today: date
    district: District | None = None
    national: bool = False

    @property
    def latest(self) -> RatePoint:
        """Today's point (the last day known when the chart ends before today)."""
        known = [p for p in self.series if p.done is not None]
        return known[-1] if known else self.series[0]

    @cached_property
    def small(self) -> ChartGeometry:
        return geometry(self.series, self.marks, self.today, SMALL)

    @cached_property
    def large(self) -> ChartGeometry:
        return geometry(self.series, self.marks, self.today, LARGE)

    @property
    def expected(self) -> int:
        return self.series[0].expected if self.series else 0


def build_chart(directive: Directive, steps: Iterable[tuple[str, date]],
                items: Iterable[tuple[date, bool, datetime | None]], today: date, tz: tzinfo, *,
                district: District | None = None, national: bool = False) -> RateChart:
    """The chart from the steps' (code, due day) and the items' (due day, settled, when)."""
    launched_on = launch_day(directive, tz)
    settlements = [Settlement(due_on, settled_day(done, at, tz, launched_on))
                   for due_on, done, at in items]
    return _chart(directive, steps, settlements, today, tz, district=district, national=national)


def _chart(directive: Directive, steps: Iterable[tuple[str, date]],
           settlements: list[Settlement], today: date, tz: tzinfo, *,
           district: District | None = None, national: bool = False) -> RateChart:
    steps = list(steps)
    launched_on = launch_day(directive, tz)
    until = directive.closed_at.astimezone(tz).date() if directive.closed_at else None
    start, end = chart_span(launched_on, (day for _, day in steps), today, until)
    return RateChart(directive, rate_series(settlements, start, end, today), due_marks(steps),
                     today, district, national)


def launch_day(directive: Directive, tz: tzinfo) -> date:
    """The day the directive was launched (its letter's day when that is not recorded)."""
    return directive.launched_at.astimezone(tz).date() if directive.launched_at else directive.issued_on


def today_of(now: datetime, tz: tzinfo) -> date:
    return now.astimezone(tz).date()


def directive_chart(session: Session, actor: User, slug: str, *, now: datetime, tz: tzinfo,
                    district_code: str | None = None) -> RateChart:
    """``/directives/{slug}/chart``: the whole directive for its province and the Department
    (one district with ``district_code``), the person's own district for district people, the
    whole country for the Department on a national directive."""
    directive = get_directive_by_slug(session, slug)
    if directive is None:
        raise NotFound(f"no directive {slug!r}", f"ไม่พบหนังสือสั่งการ {slug!r}")
    if directive.province_code is None:
        return national_chart(session, actor, directive, now=now, tz=tz)
    if actor.role in DISTRICT_ROLES:
        if actor.province_code != directive.province_code:
            raise Forbidden(f"you may not see directive {slug}",
                            f"คุณไม่มีสิทธิ์ดูหนังสือสั่งการ {slug}")
        district_code = district_code or actor.district_code or ""
    else:
        directive = visible_directive(session, actor, slug)
    district = _district_of(session, actor, directive, district_code) if district_code else None
    steps = [(s.code, s.due_on) for s in steps_of(session, directive.id)]
    rows = item_timings(session, directive.id, district.code if district else None)
    return build_chart(directive, steps, _settlements(rows), today_of(now, tz), tz,
                       district=district)


def _district_of(session: Session, actor: User, directive: Directive, code: str) -> District:
    district = visible_district(session, actor, code)
    if district.province_code != directive.province_code:
        raise NotFound(f"directive {directive.slug} is not district {district.code}'s",
                       f"หนังสือสั่งการ {directive.slug} ไม่ใช่ของอำเภอรหัส {district.code}")
    return district


def national_chart(session: Session, actor: User, directive: Directive, *, now: datetime,
                   tz: tzinfo) -> RateChart:
    """Every province's copy of a national directive, measured against the Department's due
    days (a province that brought a date forward is not late to the Department for that)."""
    require_national(actor)
    steps = [(s.code, s.due_on) for s in steps_of(session, directive.id)]
    due = dict(steps)
    launched_on = launch_day(directive, tz)
    settlements: list[Settlement] = []
    # counted by step and settling day (some 10,000 items, a few hundred counts): each count
    # is that many equal settlements, as build_chart would make them one item at a time
    for (code, settled, day), count in copies_settled_days(session, directive.id, list(due),
                                                           tz).items():
        on = (day or launched_on) if settled else None  # settled_day's rule
        settlements.extend([Settlement(due[code], on)] * count)
    return _chart(directive, steps, settlements, today_of(now, tz), tz, national=True)


def _settlements(rows: list[ItemTiming]) -> list[tuple[date, bool, datetime | None]]:
    return [(r.due_on, r.settled, r.settled_at) for r in rows]


def board_chart(board: Board, tz: tzinfo) -> RateChart:
    """The chart of a board already read (the coordinator's board page): no second query."""
    items = [(c.item.due_on, c.item.status != ItemStatus.OPEN,
              c.item.waived_at if c.item.status == ItemStatus.WAIVED else c.item.completed_at)
             for row in board.rows for c in row.cells]
    steps = [(s.code, s.due_on) for s in board.steps]
    return build_chart(board.directive, steps, items, board.today, tz)
