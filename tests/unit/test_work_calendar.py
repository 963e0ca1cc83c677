"""Working days of a Sa Kaeo district office, and when messages may go out."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest

from domain.calendar import OfficeHours, WorkCalendar, thai_government_holidays
from domain.errors import InvalidInput

BKK = ZoneInfo("Asia/Bangkok")
CAL = WorkCalendar()


def test_the_library_knows_mothers_day_2024_and_names_substitution_days_in_lieu():
    days = holidays.Thailand(years=2024, language="en_US")
    assert "Mother's Day" in days[date(2024, 8, 12)]
    assert days[date(2024, 7, 29)].endswith("(in lieu)")


@pytest.mark.parametrize(("day", "working", "why"), [
    (date(2024, 8, 9), True, "Friday, the report's due date"),
    (date(2024, 8, 10), False, "Saturday"),
    (date(2024, 8, 11), False, "Sunday"),
    (date(2024, 8, 12), False, "Mother's Day"),
    (date(2024, 8, 13), True, "Tuesday"),
    (date(2024, 7, 22), False, "Asarnha Bucha, in lieu of Saturday"),
    (date(2024, 7, 29), False, "the King's birthday, in lieu of Sunday"),
    (date(2024, 4, 16), False, "Songkran, in lieu"),
    (date(2024, 12, 31), False, "New Year's Eve"),
    (date(2024, 5, 10), False, "Royal Ploughing Ceremony: a government holiday"),
    (date(2024, 5, 1), True, "Labour Day: government offices stay open"),
    (date(2024, 8, 19), True, "Monday after the 18 Aug observance (not a day off)"),
])
def test_working_days_2024(day, working, why):
    assert CAL.is_working_day(day) is working, why


def test_the_provinces_own_closures_are_not_working_days():
    calendar = WorkCalendar(extra_closures=[date(2024, 8, 13)])
    assert not calendar.is_working_day(date(2024, 8, 13))
    assert calendar.add_working_days(date(2024, 8, 9), 1) == date(2024, 8, 14)


@pytest.mark.parametrize(("start", "n", "expected"), [
    (date(2024, 8, 9), 2, date(2024, 8, 14)),      # over the weekend and Mother's Day
    (date(2024, 8, 9), 5, date(2024, 8, 19)),
    (date(2024, 8, 9), 0, date(2024, 8, 9)),
    (date(2024, 8, 10), 0, date(2024, 8, 10)),     # 0 keeps a non-working day as it is
    (date(2024, 8, 12), 1, date(2024, 8, 13)),
    (date(2024, 8, 10), 1, date(2024, 8, 13)),
    (date(2024, 8, 9), -3, date(2024, 8, 6)),
    (date(2024, 8, 14), -2, date(2024, 8, 9)),
    (date(2024, 8, 12), -1, date(2024, 8, 9)),
    (date(2024, 8, 10), -1, date(2024, 8, 9)),
    (date(2024, 7, 19), 1, date(2024, 7, 23)),     # 20-22 Jul: Asarnha Bucha, Lent, in lieu
    (date(2024, 7, 26), 1, date(2024, 7, 30)),     # 29 Jul: the King's birthday in lieu
    (date(2024, 12, 27), 1, date(2025, 1, 2)),     # 30 Dec, 31 Dec, 1 Jan closed
    (date(2025, 1, 2), -1, date(2024, 12, 27)),
])
def test_add_working_days(start, n, expected):
    assert CAL.add_working_days(start, n) == expected


@pytest.mark.parametrize(("due_on", "late", "expected", "why"), [
    (date(2024, 8, 9), 1, date(2024, 8, 13), "Fri 9 Aug: the weekend and Mother's Day (Mon 12) skipped"),
    (date(2024, 8, 9), 2, date(2024, 8, 14), "the issue's example: Wednesday 14 Aug"),
    (date(2024, 8, 9), 5, date(2024, 8, 19), "the provincial head's rung"),
    (date(2024, 8, 2), 2, date(2024, 8, 6), "Fri 2 Aug, an ordinary weekend"),
    (date(2024, 7, 19), 2, date(2024, 7, 24), "20-22 Jul closed: Asarnha Bucha, Lent, in lieu"),
    (date(2024, 7, 26), 2, date(2024, 7, 31), "29 Jul: the King's birthday in lieu"),
])
def test_n_working_days_late(due_on, late, expected, why):
    assert CAL.add_working_days(due_on, late) == expected, why
    assert CAL.working_days_between(due_on, expected) == late, why


@pytest.mark.parametrize(("start", "end", "expected"), [
    (date(2024, 8, 9), date(2024, 8, 14), 2),
    (date(2024, 8, 14), date(2024, 8, 9), -2),
    (date(2024, 8, 9), date(2024, 8, 9), 0),
    (date(2024, 8, 9), date(2024, 8, 19), 5),
    (date(2024, 8, 10), date(2024, 8, 12), 0),
    (date(2024, 8, 12), date(2024, 8, 13), 1),
    (date(2024, 7, 12), date(2024, 8, 9), 18),
])
def test_working_days_between_counts_start_exclusive_end_inclusive(start, end, expected):
    assert CAL.working_days_between(start, end) == expected


@pytest.mark.parametrize("n", [-15, -3, -1, 0, 1, 2, 5, 20])
def test_counting_undoes_adding_from_a_working_day(n):
    start = date(2024, 8, 9)
    assert CAL.working_days_between(start, CAL.add_working_days(start, n)) == n


def _bkk(*args: int) -> datetime:
    return datetime(*args, tzinfo=BKK)


@pytest.mark.parametrize(("at", "expected", "why"), [
    (_bkk(2024, 8, 10, 10, 0), _bkk(2024, 8, 13, 8, 30), "Saturday, then Mother's Day"),
    (_bkk(2024, 8, 3, 8, 30), _bkk(2024, 8, 5, 8, 30), "Saturday: Monday as the office opens"),
    (_bkk(2024, 8, 4, 23, 59), _bkk(2024, 8, 5, 8, 30), "Sunday night"),
    (_bkk(2024, 8, 5, 0, 0), _bkk(2024, 8, 5, 8, 30), "Monday midnight"),
    (_bkk(2024, 8, 5, 8, 29, 59), _bkk(2024, 8, 5, 8, 30), "a second before opening"),
    (_bkk(2024, 8, 12, 9, 0), _bkk(2024, 8, 13, 8, 30), "holiday"),
    (_bkk(2024, 8, 9, 7, 0), _bkk(2024, 8, 9, 8, 30), "before the office opens"),
    (_bkk(2024, 8, 9, 8, 30), _bkk(2024, 8, 9, 8, 30), "as it opens"),
    (_bkk(2024, 8, 9, 10, 15, 7), _bkk(2024, 8, 9, 10, 15, 7), "during office hours"),
    (_bkk(2024, 8, 9, 16, 29), _bkk(2024, 8, 9, 16, 29), "just before closing"),
    (_bkk(2024, 8, 9, 16, 30), _bkk(2024, 8, 13, 8, 30), "at closing time"),
    (_bkk(2024, 8, 9, 17, 0), _bkk(2024, 8, 13, 8, 30), "after hours, Friday"),
    (_bkk(2024, 8, 8, 17, 0), _bkk(2024, 8, 9, 8, 30), "after hours, Thursday"),
    (datetime(2024, 8, 9, 1, 0, tzinfo=UTC), _bkk(2024, 8, 9, 8, 30), "01:00 UTC is 08:00 here"),
    (datetime(2024, 8, 8, 18, 0, tzinfo=UTC), _bkk(2024, 8, 9, 8, 30), "Thu UTC, Fri 01:00 here"),
])
def test_next_send_slot(at, expected, why):
    slot = CAL.next_send_slot(at, BKK)
    assert slot == expected, why
    assert slot.tzinfo is UTC


def test_no_slot_is_ever_outside_office_hours_or_on_a_closed_day():
    """Every 7 minutes from 1 Jul to 31 Aug 2567: the slot is in [08:30, 16:30) on a working day,
    never earlier than asked, and exactly the instant asked for when that is already allowed."""
    at = _bkk(2024, 7, 1, 0, 3)
    while at < _bkk(2024, 9, 1):
        slot = CAL.next_send_slot(at, BKK).astimezone(BKK)
        assert CAL.is_working_day(slot.date()) and time(8, 30) <= slot.time() < time(16, 30), at
        assert slot >= at
        open_now = CAL.is_working_day(at.date()) and time(8, 30) <= at.time() < time(16, 30)
        assert (slot == at) is open_now, at
        at += timedelta(minutes=7)


def test_next_send_slot_follows_the_directives_office_hours_and_closures():
    calendar = WorkCalendar([date(2024, 8, 13)], OfficeHours(time(9, 0), time(12, 0)))
    assert calendar.next_send_slot(_bkk(2024, 8, 9, 12, 0), BKK) == _bkk(2024, 8, 14, 9, 0)


def test_next_send_slot_refuses_a_naive_datetime():
    with pytest.raises(ValueError, match="timezone-aware"):
        CAL.next_send_slot(datetime(2024, 8, 9, 10, 0), BKK)


def test_a_datetime_is_refused_where_a_local_date_is_meant():
    with pytest.raises(TypeError, match="local date"):
        CAL.is_working_day(datetime(2024, 8, 9, 20, 0, tzinfo=UTC))


def test_office_hours_must_start_before_they_end():
    with pytest.raises(InvalidInput):
        OfficeHours(time(16, 30), time(8, 30))


def test_holiday_years_are_computed_once():
    assert thai_government_holidays(2024) is thai_government_holidays(2024)


def test_commands_take_an_iso_instant_with_its_offset():
    from domain.calendar import parse_instant
    from domain.errors import InvalidInput

    assert parse_instant("2024-08-12T09:00:00+07:00").utcoffset().total_seconds() == 7 * 3600
    with pytest.raises(InvalidInput, match="--as-of '12/8/2567' is not ISO-8601") as bad:
        parse_instant("12/8/2567", "--as-of")
    assert "รูปแบบวันเวลาไม่ถูกต้อง" in bad.value.message_th
    with pytest.raises(InvalidInput, match="needs a timezone offset") as naive:
        parse_instant("2024-08-12T09:00:00")
    assert "ต้องระบุเขตเวลา" in naive.value.message_th
