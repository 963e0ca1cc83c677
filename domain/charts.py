"""The reporting-rate chart as numbers: the share of a directive's items settled by each day,
against the share due by then, and where each point, tick and line sits on the picture.

Pure functions over plain values: ``tidtam.app.charts`` feeds them the items' due days and
settling days (in the office's time zone); a template draws the SVG from ``ChartGeometry``.
An item is *settled* when done or waived, as on the board and in ``domain.rates``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import NamedTuple

from domain.thaidate import ENGLISH_MONTHS_SHORT, THAI_MONTHS_SHORT, buddhist_year


class Settlement(NamedTuple):
    """One tracked item on the timeline: its due day, and the local day it was settled (None:
    still open). A tuple: a national chart has some 10,000 of them."""

    due_on: date
    settled_on: date | None


def settled_day(done: bool, at: datetime | None, tz: tzinfo, known_from: date) -> date | None:
    """The office's day an item was settled: done or waived at ``at``; a settled item with no
    time known counts from ``known_from`` (the launch), an open one never."""
    if not done:
        return None
    return at.astimezone(tz).date() if at is not None else known_from


@dataclass(frozen=True)
class RatePoint:
    """One day's end: of ``expected`` items, ``done`` settled (None after today: not yet
    known) and ``due`` with their due day on or before it."""

    day: date
    expected: int
    done: int | None
    due: int

    @property
    def share(self) -> float | None:
        if self.done is None:
            return None
        return self.done / self.expected if self.expected else 0.0

    @property
    def due_share(self) -> float:
        return self.due / self.expected if self.expected else 0.0

    @property
    def percent(self) -> int | None:
        """The settled share as a whole percent, rounded down (as ``domain.rates`` does)."""
        return None if self.done is None else (self.done * 100 // self.expected if self.expected else 0)

    @property
    def due_percent(self) -> int:
        return self.due * 100 // self.expected if self.expected else 0


def chart_span(launched_on: date, due_days: Iterable[date], today: date,
               until: date | None = None) -> tuple[date, date]:
    """From the launch to the last due day, or to today (or ``until``, the day a closed letter
    stopped) when that is later."""
    days = list(due_days)
    start = min([launched_on, *days])
    end = max([start, *days, min(today, until) if until else today])
    return start, end


def rate_series(items: Iterable[Settlement], start: date, end: date,
                today: date) -> list[RatePoint]:
    """One point per day from ``start`` to ``end``: items settled and due by that day's end.
    Days after ``today`` carry no settled count; an item settled before ``start`` counts from
    ``start``, one settled after ``today`` (a later record than the chart's day) not at all."""
    items = list(items)
    days = (end - start).days + 1
    settled = [0] * days
    due = [0] * days
    # counted by day first: items share a few dozen days
    for day, count in Counter(item.settled_on for item in items
                              if item.settled_on is not None and item.settled_on <= today).items():
        settled[_index(day, start, days)] += count
    for day, count in Counter(item.due_on for item in items).items():
        due[_index(day, start, days)] += count
    points, done_sum, due_sum = [], 0, 0
    for i in range(days):
        day = start + timedelta(days=i)
        done_sum += settled[i]
        due_sum += due[i]
        points.append(RatePoint(day, len(items), done_sum if day <= today else None, due_sum))
    return points


def _index(day: date, start: date, days: int) -> int:
    """Which of the chart's days a day counts on: before the start, the first; after the end,
    the last."""
    return min(max((day - start).days, 0), days - 1)


@dataclass(frozen=True)
class DueMark:
    """A due day on the chart and the steps due on it."""

    day: date
    codes: tuple[str, ...]


def due_marks(steps: Iterable[tuple[str, date]]) -> list[DueMark]:
    """The steps' due days, each once, in order, with the codes due that day."""
    by_day: dict[date, list[str]] = {}
    for code, day in steps:
        by_day.setdefault(day, []).append(code)
    return [DueMark(day, tuple(codes)) for day, codes in sorted(by_day.items())]


# --- geometry ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Frame:
    """The picture's size and the margins around the plot (SVG user units)."""

    width: int = 720
    height: int = 320
    left: int = 58
    right: int = 16
    top: int = 34
    bottom: int = 66

    @property
    def x0(self) -> int:
        return self.left

    @property
    def x1(self) -> int:
        return self.width - self.right

    @property
    def y_top(self) -> int:
        return self.top

    @property
    def y_bottom(self) -> int:
        return self.height - self.bottom


SMALL = Frame()
LARGE = Frame(width=1040, height=600, left=74, right=24, top=40, bottom=76)

Y_TICKS = (0, 25, 50, 75, 100)
DAY_STEPS = (1, 2, 7, 14)  # tick every n days; beyond two weeks, the first of each month


@dataclass(frozen=True)
class Scale:
    """Days across, shares (0–1) up."""

    start: date
    end: date
    frame: Frame

    def x(self, day: date) -> float:
        span = (self.end - self.start).days
        if span == 0:
            return round((self.frame.x0 + self.frame.x1) / 2.0, 1)
        return round(self.frame.x0 + (day - self.start).days * (self.frame.x1 - self.frame.x0) / span, 1)

    def y(self, share: float) -> float:
        return round(float(self.frame.y_bottom - share * (self.frame.y_bottom - self.frame.y_top)), 1)

    def share_at(self, y: float) -> float:
        """The share a height stands for (the inverse of ``y``: tests read the picture back)."""
        return (self.frame.y_bottom - y) / (self.frame.y_bottom - self.frame.y_top)


def x_ticks(start: date, end: date, most: int = 8) -> list[date]:
    """Days to label: every 1, 2, 7 or 14 days from the start, whichever keeps to ``most``
    labels; for longer spans the first day of each month (or of every other, …)."""
    span = (end - start).days
    for step in DAY_STEPS:
        if span // step + 1 <= most:
            return [start + timedelta(days=n) for n in range(0, span + 1, step)]
    firsts = []
    month = date(start.year, start.month, 1)
    while month <= end:
        if month >= start:
            firsts.append(month)
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    every = -(-len(firsts) // most)  # ceiling division
    return firsts[::every]


def tick_label(day: date, lang: str, with_year: bool = False) -> str:
    """"17 ก.ค." (with the B.E. year "17 ก.ค. 67" when the chart spans years) or "17 Jul"."""
    if lang == "th":
        text = f"{day.day} {THAI_MONTHS_SHORT[day.month - 1]}"
        return f"{text} {buddhist_year(day) % 100:02d}" if with_year else text
    text = f"{day.day} {ENGLISH_MONTHS_SHORT[day.month - 1]}"
    return f"{text} {day.year}" if with_year else text


def line_path(points: Sequence[tuple[float, float]]) -> str:
    """An SVG path through the points: "M x,y L x,y …" (empty for none)."""
    if not points:
        return ""
    head, *rest = points
    return " ".join([f"M{head[0]},{head[1]}", *(f"L{x},{y}" for x, y in rest)])


def step_path(points: Sequence[tuple[float, float]]) -> str:
    """A staircase through the points: level until the next point's x, then up or down to it
    (the share due jumps on each due day)."""
    if not points:
        return ""
    parts = [f"M{points[0][0]},{points[0][1]}"]
    for (_, y_before), (x, y) in zip(points, points[1:], strict=False):
        parts.append(f"L{x},{y_before}")
        if y != y_before:
            parts.append(f"L{x},{y}")
    return " ".join(parts)


@dataclass(frozen=True)
class Tick:
    at: float
    day: date | None = None
    percent: int | None = None


@dataclass(frozen=True)
class Marker:
    x: float
    y: float
    point: RatePoint


@dataclass(frozen=True)
class DueLine:
    x: float
    mark: DueMark


@dataclass(frozen=True)
class ChartGeometry:
    frame: Frame
    scale: Scale
    done_path: str
    due_path: str
    done_points: list[tuple[float, float]]
    done_markers: list[Marker]
    due_markers: list[Marker]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    due_lines: list[DueLine]
    today_x: float | None
    spans_years: bool


def geometry(series: Sequence[RatePoint], marks: Sequence[DueMark], today: date,
             frame: Frame = SMALL) -> ChartGeometry:
    """Where everything sits: the settled line (with a marker on each due day and today), the
    due staircase (a marker on each jump), the ticks, the due days' lines and today's."""
    start, end = series[0].day, series[-1].day
    scale = Scale(start, end, frame)
    known = [p for p in series if p.share is not None]
    done_points = [(scale.x(p.day), scale.y(p.share)) for p in known]
    due_points = [(scale.x(p.day), scale.y(p.due_share)) for p in series]
    mark_days = {m.day for m in marks}
    by_day = {p.day: p for p in series}
    return ChartGeometry(
        frame=frame, scale=scale,
        done_path=line_path(done_points), due_path=step_path(due_points),
        done_points=done_points,
        done_markers=[Marker(scale.x(p.day), scale.y(p.share), p) for p in known
                      if p.day in mark_days or p.day == today],
        due_markers=[Marker(scale.x(m.day), scale.y(by_day[m.day].due_share), by_day[m.day])
                     for m in marks if m.day in by_day],
        x_ticks=[Tick(scale.x(d), day=d) for d in x_ticks(start, end)],
        y_ticks=[Tick(scale.y(pct / 100), percent=pct) for pct in Y_TICKS],
        due_lines=[DueLine(scale.x(m.day), m) for m in marks if start <= m.day <= end],
        today_x=scale.x(today) if start <= today <= end else None,
        spans_years=start.year != end.year)
