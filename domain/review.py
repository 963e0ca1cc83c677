"""The review rule: a report submitted to the province is to be reviewed (accepted or returned)
within a number of working days (``review_within_working_days`` in the directive's YAML, 3 by
default); after that the province's coordinators are reminded, once per submission."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from domain.calendar import WorkCalendar

DEFAULT_REVIEW_WITHIN_WORKING_DAYS = 3


def review_due_on(submitted_at: datetime, working_days: int, calendar: WorkCalendar,
                  tz: ZoneInfo):
    """The working day the review is late on: ``working_days`` working days after the local day
    of the submission (a report sent on a Saturday counts from the Monday after)."""
    if submitted_at.tzinfo is None:
        raise ValueError("review_due_on needs a timezone-aware instant")
    return calendar.add_working_days(submitted_at.astimezone(tz).date(), working_days)


def review_nudge_at(submitted_at: datetime, working_days: int, calendar: WorkCalendar,
                    tz: ZoneInfo) -> datetime:
    """When the reminder goes out if the report is still waiting: the office's opening on the
    day the review is late, as aware UTC."""
    day = review_due_on(submitted_at, working_days, calendar, tz)
    return datetime.combine(day, calendar.office_hours.start, tzinfo=tz).astimezone(UTC)
