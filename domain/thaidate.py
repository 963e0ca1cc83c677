"""Dates as Thai officials write them: Buddhist Era years, Thai month names, Thai digits."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal
from zoneinfo import ZoneInfo

THAI_MONTHS = (
    "มกราคม", "กุมภาพันธ์", "มีนาคม", "เมษายน", "พฤษภาคม", "มิถุนายน",
    "กรกฎาคม", "สิงหาคม", "กันยายน", "ตุลาคม", "พฤศจิกายน", "ธันวาคม",
)
THAI_MONTHS_SHORT = (
    "ม.ค.", "ก.พ.", "มี.ค.", "เม.ย.", "พ.ค.", "มิ.ย.",
    "ก.ค.", "ส.ค.", "ก.ย.", "ต.ค.", "พ.ย.", "ธ.ค.",
)
ENGLISH_MONTHS_SHORT = (
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
)
BUDDHIST_ERA_OFFSET = 543

_THAI_DIGITS = str.maketrans("0123456789", "๐๑๒๓๔๕๖๗๘๙")


def to_thai_digits(text: str) -> str:
    """Write Arabic digits as Thai digits, as official letters do."""
    return text.translate(_THAI_DIGITS)


def buddhist_year(d: date) -> int:
    """The B.E. year Thai documents use (A.D. + 543)."""
    return d.year + BUDDHIST_ERA_OFFSET


def thai_date(d: date | datetime, style: Literal["long", "short"] = "short",
              thai_digits: bool = False) -> str:
    """A date for Thai readers: "9 ส.ค. 2567" (short) or "9 สิงหาคม 2567" (long)."""
    months = THAI_MONTHS if style == "long" else THAI_MONTHS_SHORT
    text = f"{d.day} {months[d.month - 1]} {buddhist_year(d)}"
    return to_thai_digits(text) if thai_digits else text


def thai_datetime(dt: datetime, tz: ZoneInfo, style: Literal["long", "short"] = "short",
                  thai_digits: bool = False) -> str:
    """An instant as local Thai time: "9 ส.ค. 2567 08:30 น."."""
    if dt.tzinfo is None:
        raise ValueError("thai_datetime needs a timezone-aware datetime")
    local = dt.astimezone(tz)
    text = f"{thai_date(local, style)} {local:%H:%M} น."
    return to_thai_digits(text) if thai_digits else text


def english_date(d: date | datetime) -> str:
    """A date for the English UI, independent of the process locale: "9 Aug 2024"."""
    return f"{d.day} {ENGLISH_MONTHS_SHORT[d.month - 1]} {d.year}"
