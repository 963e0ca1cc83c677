"""Reporting rates in DHIS2's sense: of what was expected, how much arrived, and how much on time.

A tracked item is *expected* once; it is *actual* when done (or waived); it is *on time* when it
was completed on or before its due day, counted in the office's time zone. A waived item (the
step does not apply to the district) has no completion time and counts as on time: nothing was
due from the district. An open item past its due day is *overdue*. Pure functions over plain
values: the board's queries feed them rows.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo


@dataclass(frozen=True)
class Rate:
    expected: int = 0
    actual: int = 0
    on_time: int = 0
    overdue: int = 0

    def __add__(self, other: Rate) -> Rate:
        return Rate(self.expected + other.expected, self.actual + other.actual,
                    self.on_time + other.on_time, self.overdue + other.overdue)

    @property
    def percent(self) -> int | None:
        """Actual over expected, rounded down to a whole percent (None when nothing is expected)."""
        return None if not self.expected else self.actual * 100 // self.expected

    @property
    def on_time_percent(self) -> int | None:
        return None if not self.expected else self.on_time * 100 // self.expected


@dataclass(frozen=True)
class Completion:
    """One expected thing: when it was due, and when (if ever) it was completed."""

    key: Hashable
    due_on: date
    done: bool  # done or waived
    completed_at: datetime | None  # None when done with no time known, or waived: on time


def on_time_cutoff(due_on: date, tz: tzinfo) -> datetime:
    """The first instant (UTC) that is late for ``due_on``: the next day's midnight in ``tz``."""
    return datetime.combine(due_on + timedelta(days=1), time(0), tz).astimezone(UTC)


def rates_by_key(completions: Iterable[Completion], today: date, tz: tzinfo) -> dict[Hashable, Rate]:
    """Rates added up per key, e.g. (province, step)."""
    totals: dict[Hashable, list[int]] = {}
    for c in completions:
        counts = totals.setdefault(c.key, [0, 0, 0, 0])
        counts[0] += 1
        if c.done:
            counts[1] += 1
            if c.completed_at is None or c.completed_at < on_time_cutoff(c.due_on, tz):
                counts[2] += 1
        elif c.due_on < today:
            counts[3] += 1
    return {key: Rate(*counts) for key, counts in totals.items()}


def total(rates: Iterable[Rate]) -> Rate:
    return sum(rates, Rate())
