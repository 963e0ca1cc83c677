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
ENGLISH_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
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


# --- digits by the reader's choice, and dates typed in parts ------------------------------------

DIGITS = ("arabic", "thai")   # the reader's choice; Arabic is the default, as most Thai web forms
_ARABIC_DIGITS = str.maketrans("๐๑๒๓๔๕๖๗๘๙", "0123456789")


def to_arabic_digits(text: str) -> str:
    """Write Thai digits as Arabic digits (the reverse of ``to_thai_digits``)."""
    return text.translate(_ARABIC_DIGITS)


def in_digits(text: str, digits: str) -> str:
    """``text`` with every digit written the way the reader chose ("thai" or "arabic")."""
    return to_thai_digits(text) if digits == "thai" else to_arabic_digits(text)


def date_parts(text: str) -> tuple[str, str, str]:
    """(day, month, B.E. year) as strings, for the three selects: from an ISO date or from
    parts already typed as "D/M/YYYY" (B.E.); ("", "", "") for anything else."""
    try:
        d = date.fromisoformat(text)
    except ValueError:
        pass
    else:
        return str(d.day), str(d.month), str(buddhist_year(d))
    pieces = to_arabic_digits(text).split("/")
    if len(pieces) == 3 and all(p == "" or p.isdecimal() for p in pieces):
        return tuple(str(int(p)) if p else "" for p in pieces)  # type: ignore[return-value]
    return "", "", ""


def join_date_parts(day: str, month: str, be_year: str) -> str:
    """What the three selects mean, as the draft keeps it: an ISO date when they name a real
    day, "" when none is chosen, else the parts as "D/M/YYYY" (B.E.) for the check to name."""
    parts = [to_arabic_digits(str(p or "")).strip() for p in (day, month, be_year)]
    if not any(parts):
        return ""
    try:
        return thai_parts_to_date(*parts).isoformat()
    except ValueError:
        return "/".join(parts)


def thai_parts_to_date(day: str, month: str, be_year: str) -> date:
    """The date of day, month (1-12) and B.E. year; ValueError when any is missing or the day
    does not exist (31 February)."""
    if not all(p.isascii() and p.isdecimal() for p in (day, month, be_year)):
        raise ValueError("day, month and year are needed")
    return date(int(be_year) - BUDDHIST_ERA_OFFSET, int(month), int(day))
