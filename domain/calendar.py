"""Working days and office hours of a Thai government office, for deadlines and send times."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays
from holidays import GOVERNMENT, PUBLIC

from domain.errors import InvalidInput

# 1 May (and its in-lieu day) is in the library's PUBLIC category, but it is only a day off for
# the private and financial sectors: government offices, district CD offices included, stay open.
_OPEN_FOR_GOVERNMENT = ("National Labor Day",)


@lru_cache(maxsize=64)
def thai_government_holidays(year: int) -> frozenset[date]:
    """Days government offices close in ``year``, substitution (in-lieu) days included.

    holidays.Thailand's default category is PUBLIC only (no ``categories=`` needed for it); we add
    GOVERNMENT for the Royal Ploughing Ceremony, a day off for civil servants. Substitution days
    are already in PUBLIC, named "<holiday> (in lieu)" in en_US ("ชดเชย<holiday>" in Thai), e.g.
    29 Jul 2024. Cached per year: the library recomputes the lunar dates on every call.
    """
    days = holidays.Thailand(years=year, categories=(PUBLIC, GOVERNMENT), language="en_US")
    return frozenset(d for d in days if not _open_for_government(days.get_list(d)))


def _open_for_government(names: list[str]) -> bool:
    """True when every holiday on a date is one government offices work through."""
    return all(name.startswith(_OPEN_FOR_GOVERNMENT) for name in names)


@dataclass(frozen=True)
class OfficeHours:
    """When messages may go out, local time; ``end`` itself is already outside."""

    start: time = time(8, 30)
    end: time = time(16, 30)

    def __post_init__(self) -> None:
        if self.start >= self.end:
            raise InvalidInput("office hours must start before they end",
                               "เวลาเริ่มงานต้องก่อนเวลาเลิกงาน")


DEFAULT_OFFICE_HOURS = OfficeHours()


class WorkCalendar:
    """Which days a district office works, and when inside them a message may be sent.

    Working days: Mon–Fri minus Thai public holidays as government offices keep them
    (holidays.Thailand, substitution days included; see ``thai_government_holidays``) minus the
    province's own closure days.
    """

    def __init__(self, extra_closures: Iterable[date] = (),
                 office_hours: OfficeHours = DEFAULT_OFFICE_HOURS):
        self.closures = frozenset(_as_date(d) for d in extra_closures)
        self.office_hours = office_hours

    def is_working_day(self, d: date) -> bool:
        """Whether the district office is open on ``d``."""
        d = _as_date(d)
        return (d.weekday() < 5 and d not in self.closures
                and d not in thai_government_holidays(d.year))

    def add_working_days(self, d: date, n: int) -> date:
        """The date ``n`` working days after ``d`` (before it if ``n`` < 0); ``d`` itself if 0."""
        d, step = _as_date(d), (1 if n > 0 else -1)
        for _ in range(abs(n)):
            d += timedelta(days=step)
            while not self.is_working_day(d):
                d += timedelta(days=step)
        return d

    def working_days_between(self, start: date, end: date) -> int:
        """How many working days lie in (start, end]; negative when ``end`` is before ``start``."""
        start, end = _as_date(start), _as_date(end)
        if end < start:
            return -self.working_days_between(end, start)
        return sum(self.is_working_day(start + timedelta(days=i))
                   for i in range(1, (end - start).days + 1))

    def next_send_slot(self, at: datetime, tz: ZoneInfo) -> datetime:
        """The earliest instant >= ``at`` within office hours on a working day, as aware UTC."""
        if at.tzinfo is None:
            raise ValueError("next_send_slot needs a timezone-aware datetime")
        local = at.astimezone(tz)
        day, hours = local.date(), self.office_hours
        if self.is_working_day(day) and local.time() < hours.end:
            opens = datetime.combine(day, hours.start, tzinfo=tz)
            return max(local, opens).astimezone(UTC)
        next_day = self.add_working_days(day, 1)
        return datetime.combine(next_day, hours.start, tzinfo=tz).astimezone(UTC)


def _as_date(d: date) -> date:
    """Refuse datetimes: the caller must pick the local date, or a UTC date slips in."""
    if isinstance(d, datetime):
        raise TypeError("pass a local date, e.g. moment.astimezone(tz).date(), not a datetime")
    return d


def parse_instant(value: str, option: str = "--now") -> datetime:
    """An ISO-8601 instant with its offset, as the commands take one (``--now``, ``--as-of``)."""
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{option} {value!r} is not ISO-8601, e.g. 2024-08-12T09:00:00+07:00",
                           f"{option}: รูปแบบวันเวลาไม่ถูกต้อง เช่น 2024-08-12T09:00:00+07:00") from None
    if instant.tzinfo is None:
        raise InvalidInput(f"{option} needs a timezone offset, e.g. +07:00",
                           f"{option}: ต้องระบุเขตเวลา เช่น +07:00")
    return instant
