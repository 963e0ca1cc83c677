"""Dates as the letter writes them: B.E. years, Thai months, Thai digits."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from domain.thaidate import (
    THAI_MONTHS,
    THAI_MONTHS_SHORT,
    english_date,
    thai_date,
    thai_datetime,
    to_thai_digits,
)

BKK = ZoneInfo("Asia/Bangkok")


def test_month_names():
    assert len(THAI_MONTHS) == len(THAI_MONTHS_SHORT) == 12
    assert (THAI_MONTHS[0], THAI_MONTHS[6], THAI_MONTHS[7], THAI_MONTHS[11]) == (
        "มกราคม", "กรกฎาคม", "สิงหาคม", "ธันวาคม")
    assert (THAI_MONTHS_SHORT[0], THAI_MONTHS_SHORT[7], THAI_MONTHS_SHORT[11]) == (
        "ม.ค.", "ส.ค.", "ธ.ค.")


@pytest.mark.parametrize(("text", "expected"), [
    ("0123456789", "๐๑๒๓๔๕๖๗๘๙"),
    ("สก 0019/ว 252", "สก ๐๐๑๙/ว ๒๕๒"),
    ("no digits", "no digits"),
])
def test_to_thai_digits(text, expected):
    assert to_thai_digits(text) == expected


@pytest.mark.parametrize(("d", "style", "thai_digits", "expected"), [
    (date(2024, 8, 9), "short", False, "9 ส.ค. 2567"),
    (date(2024, 8, 9), "long", False, "9 สิงหาคม 2567"),
    (date(2024, 8, 9), "long", True, "๙ สิงหาคม ๒๕๖๗"),
    (date(2024, 7, 12), "long", True, "๑๒ กรกฎาคม ๒๕๖๗"),
    (date(2023, 11, 23), "long", True, "๒๓ พฤศจิกายน ๒๕๖๖"),
    (date(2024, 1, 1), "short", False, "1 ม.ค. 2567"),
    (date(2024, 12, 31), "short", False, "31 ธ.ค. 2567"),
    (datetime(2024, 8, 15, 23, 0), "short", False, "15 ส.ค. 2567"),
])
def test_thai_date(d, style, thai_digits, expected):
    assert thai_date(d, style, thai_digits=thai_digits) == expected


def test_thai_date_defaults_to_short_arabic_digits():
    assert thai_date(date(2024, 8, 9)) == "9 ส.ค. 2567"


@pytest.mark.parametrize(("dt", "kwargs", "expected"), [
    (datetime(2024, 8, 9, 1, 30, tzinfo=UTC), {}, "9 ส.ค. 2567 08:30 น."),
    (datetime(2024, 8, 9, 8, 30, tzinfo=BKK), {}, "9 ส.ค. 2567 08:30 น."),
    (datetime(2024, 12, 31, 18, 5, tzinfo=UTC), {}, "1 ม.ค. 2568 01:05 น."),  # next B.E. year
    (datetime(2024, 8, 9, 9, 0, tzinfo=UTC), {"style": "long", "thai_digits": True},
     "๙ สิงหาคม ๒๕๖๗ ๑๖:๐๐ น."),
])
def test_thai_datetime_shows_local_time(dt, kwargs, expected):
    assert thai_datetime(dt, BKK, **kwargs) == expected


def test_thai_datetime_refuses_a_naive_datetime():
    with pytest.raises(ValueError, match="timezone-aware"):
        thai_datetime(datetime(2024, 8, 9, 8, 30), BKK)


@pytest.mark.parametrize(("d", "expected"), [
    (date(2024, 8, 9), "9 Aug 2024"),
    (date(2024, 7, 31), "31 Jul 2024"),
    (datetime(2024, 1, 2, 10, 0), "2 Jan 2024"),
])
def test_english_date(d, expected):
    assert english_date(d) == expected
