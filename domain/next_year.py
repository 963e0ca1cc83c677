"""Next year's letter from last year's: every date moved to the new fiscal year, marked for review.

An office follows much the same letter every year. ``next_year`` takes a directive's YAML as a
dict (``DirectiveSpec`` fields; dates as ``date`` or ISO strings) and gives the dict for fiscal
year ``fiscal_year``: each date moved by as many years as the fiscal years differ (29 Feb goes to
28 Feb in a common year), B.E. and A.D. years in its texts moved alike, the slug, fiscal year and
reference number updated, the revision back to 1. Every value it changed is listed in
``review`` with a note, so ``to_yaml`` can write a file with a ``# ตรวจสอบ/review:`` comment on
each line a person must check before launching it.

B.E. fiscal year N runs from 1 October of B.E. year N-1 to 30 September of N (A.D. = B.E. - 543).
Pure: no clock, no database, no files.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, time
from typing import Any

import yaml

from domain.calendar import WorkCalendar
from domain.errors import InvalidInput

BE_OFFSET = 543
REVIEW = "ตรวจสอบ/review"
Path_ = tuple[str | int, ...]

# Where a directive's YAML has dates (DirectiveSpec); "*" is every element of a list.
DATE_FIELDS: tuple[Path_, ...] = (
    ("issued_on",), ("activity_start",), ("activity_end",), ("province_due",),
    ("department_due",), ("conditions", "period", "start"), ("conditions", "period", "end"),
    ("closures", "*"), ("steps", "*", "due_on"),
    ("form", "proves", "*", "period", "start"), ("form", "proves", "*", "period", "end"),
)
# Free texts whose years (B.E. or A.D., Arabic or Thai digits) move with the dates.
TEXT_FIELDS: tuple[Path_, ...] = (
    ("title_th",), ("title_en",), ("due_dates_note_th",), ("due_dates_note_en",),
    ("steps", "*", "title_th"), ("steps", "*", "title_en"),
    ("form", "title_th"), ("form", "title_en"), ("form", "heading_th", "*"),
    ("form", "activity_name_th"), ("form", "footnote_th"),
)
THAI_DIGITS = str.maketrans("0123456789", "๐๑๒๓๔๕๖๗๘๙")
ARABIC_DIGITS = str.maketrans("๐๑๒๓๔๕๖๗๘๙", "0123456789")


def fiscal_year_span(fiscal_year: int) -> tuple[date, date]:
    """The A.D. days B.E. fiscal year ``fiscal_year`` runs: 1 Oct of the year before – 30 Sep."""
    year = fiscal_year - BE_OFFSET
    return date(year - 1, 10, 1), date(year, 9, 30)


def move_date(day: date, years: int) -> date:
    """The same day ``years`` years later; 29 February becomes 28 February in a common year."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 Feb → a year without one
        return day.replace(year=day.year + years, day=28)


@dataclass
class NextYear:
    """The new letter's dict, and what a person must check: path → note (Thai / English)."""

    spec: dict[str, Any]
    review: dict[Path_, str] = field(default_factory=dict)


def next_year(spec: dict[str, Any], fiscal_year: int) -> NextYear:
    """Last year's letter ``spec`` as a draft for ``fiscal_year`` (B.E.); see the module."""
    old_year = spec.get("fiscal_year")
    if not isinstance(old_year, int):
        raise InvalidInput("the directive has no fiscal_year", "หนังสือสั่งการไม่มี fiscal_year")
    years = fiscal_year - old_year
    if years < 1:
        raise InvalidInput(f"--fiscal-year {fiscal_year} must come after {old_year}",
                           f"--fiscal-year {fiscal_year} ต้องเป็นปีหลังจาก {old_year}")
    new = copy.deepcopy(spec)
    result = NextYear(new)
    span = fiscal_year_span(fiscal_year)
    closures = [_as_date(d) for d in spec.get("closures") or []]
    calendar = WorkCalendar([move_date(d, years) for d in closures])
    for path in _expand(new, DATE_FIELDS):
        old = _as_date(_get(new, path))
        moved = move_date(old, years)
        _set(new, path, moved)
        result.review[path] = _date_note(old, moved, years, span, calendar,
                                         is_closure=path[0] == "closures")
    for path in _expand(new, TEXT_FIELDS):
        text = _get(new, path)
        moved_text = move_years(text, old_year, years) if isinstance(text, str) else text
        if moved_text != text:
            _set(new, path, moved_text)
            result.review[path] = (f"ปีในข้อความเลื่อนไป {years} ปี / years in the text moved "
                                   f"by {years}")
    _header(new, result, spec, old_year, fiscal_year, years)
    return result


def _header(new: dict[str, Any], result: NextYear, spec: dict[str, Any], old_year: int,
            fiscal_year: int, years: int) -> None:
    new["fiscal_year"] = fiscal_year
    result.review[("fiscal_year",)] = f"จาก {old_year} / from {old_year}"
    new["slug"] = next_slug(spec["slug"], old_year, fiscal_year)
    result.review[("slug",)] = f"จาก {spec['slug']} / from {spec['slug']}"
    new["reference_no"] = f"ร่าง ปีงบประมาณ {fiscal_year} (แทนที่ {spec['reference_no']})"
    result.review[("reference_no",)] = ("ใส่เลขที่หนังสือฉบับใหม่ / the new letter's number "
                                        f"(last year: {spec['reference_no']})")
    if new.get("refers_to"):
        result.review[("refers_to",)] = "หนังสือที่อ้างถึงของปีนี้ / this year's letter referred to"
    new["revision"] = 1
    if "close_after_working_days" in new and new["close_after_working_days"] is not None:
        result.review[("close_after_working_days",)] = "ยังใช้ได้ไหม / still right?"


def next_slug(slug: str, old_year: int, fiscal_year: int) -> str:
    """``fy2567-…`` → ``fy2568-…``: the old year replaced, else the new one appended."""
    if str(old_year) in slug:
        return slug.replace(str(old_year), str(fiscal_year))
    return f"{slug}-fy{fiscal_year}"


_YEAR = re.compile(r"(?<![0-9๐-๙])([0-9๐-๙]{4})(?![0-9๐-๙])")


def move_years(text: str, fiscal_year: int, years: int) -> str:
    """The B.E. years of fiscal year ``fiscal_year`` (N-1 and N) and their A.D. years in ``text``,
    in Arabic or Thai digits, moved by ``years``; other numbers stay."""
    be = {fiscal_year - 1, fiscal_year}
    ad = {y - BE_OFFSET for y in be}

    def moved(match: re.Match[str]) -> str:
        digits = match.group(1)
        value = int(digits.translate(ARABIC_DIGITS))
        if value not in be | ad:
            return digits
        out = str(value + years)
        return out.translate(THAI_DIGITS) if digits[0] in "๐๑๒๓๔๕๖๗๘๙" else out

    return _YEAR.sub(moved, text)


def _date_note(old: date, moved: date, years: int, span: tuple[date, date],
               calendar: WorkCalendar, *, is_closure: bool) -> str:
    notes = [f"{old.isoformat()} + {years} ปี/year"]
    if (old.month, old.day) == (2, 29) and moved.day == 28:
        notes.append("29 ก.พ. → 28 ก.พ. / 29 Feb → 28 Feb")
    if not is_closure and not calendar.is_working_day(moved):
        notes.append("ไม่ใช่วันทำการ / not a working day")
    if not span[0] <= moved <= span[1]:
        notes.append(f"นอกปีงบประมาณ / outside the fiscal year ({span[0]} – {span[1]})")
    return "; ".join(notes)


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _expand(data: Any, patterns: tuple[Path_, ...]) -> Iterator[Path_]:
    """The concrete paths of ``patterns`` present (not None) in ``data``."""
    for pattern in patterns:
        yield from _walk(data, pattern, ())


def _walk(node: Any, rest: Path_, at: Path_) -> Iterator[Path_]:
    if not rest:
        if node is not None:
            yield at
        return
    head, tail = rest[0], rest[1:]
    if head == "*":
        for index, child in enumerate(node if isinstance(node, list) else []):
            yield from _walk(child, tail, (*at, index))
    elif isinstance(node, dict) and head in node:
        yield from _walk(node[head], tail, (*at, head))


def _get(data: Any, path: Path_) -> Any:
    for part in path:
        data = data[part]
    return data


def _set(data: Any, path: Path_, value: Any) -> None:
    _get(data, path[:-1])[path[-1]] = value


# --- Writing it: YAML with a comment on every line to review ------------------------------------

def to_yaml(draft: NextYear, *, source: str) -> str:
    """The draft as a directive YAML file; ``source`` (last year's slug) named in the header."""
    year = draft.spec["fiscal_year"]
    lines = [f"# ร่างหนังสือสั่งการ ปีงบประมาณ พ.ศ. {year} จาก {source} (tidtam directive new).",
             f"# Draft for fiscal year {year} from {source}: every date was moved and is marked",
             f"# \"{REVIEW}\"; check each marked line (and the letter's number) before launching.",
             ""]
    _write_mapping(draft.spec, (), 0, draft.review, lines)
    return "\n".join(lines) + "\n"


def _write_mapping(data: dict[str, Any], at: Path_, indent: int, review: dict[Path_, str],
                   lines: list[str], first_prefix: str | None = None) -> None:
    pad = " " * indent
    for number, (key, value) in enumerate(data.items()):
        prefix = first_prefix if (first_prefix is not None and number == 0) else pad
        path = (*at, key)
        if isinstance(value, dict) and value:
            lines.append(f"{prefix}{key}:{_comment(review, path)}")
            _write_mapping(value, path, indent + 2, review, lines)
        elif isinstance(value, list) and value:
            lines.append(f"{prefix}{key}:{_comment(review, path)}")
            _write_sequence(value, path, indent + 2, review, lines)
        else:
            lines.append(f"{prefix}{key}: {_scalar(value)}{_comment(review, path)}")


def _write_sequence(data: list[Any], at: Path_, indent: int, review: dict[Path_, str],
                    lines: list[str]) -> None:
    pad = " " * indent
    for index, value in enumerate(data):
        path = (*at, index)
        if isinstance(value, dict) and value:
            _write_mapping(value, path, indent + 2, review, lines, first_prefix=f"{pad}- ")
        elif isinstance(value, list) and value:
            lines.append(f"{pad}-{_comment(review, path)}")
            _write_sequence(value, path, indent + 2, review, lines)
        else:
            lines.append(f"{pad}- {_scalar(value)}{_comment(review, path)}")


def _comment(review: dict[Path_, str], path: Path_) -> str:
    note = review.get(path)
    return f"  # {REVIEW}: {note}" if note else ""


_CLOCK = re.compile(r"^\d{2}:\d{2}(:00)?$")


def _scalar(value: Any) -> str:
    """One YAML scalar on one line, as PyYAML would write it (strings quoted when needed)."""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return f'"{value.strftime("%H:%M")}"'
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    if isinstance(value, str) and _CLOCK.match(value):
        return f'"{value[:5]}"'  # office hours, quoted: unquoted, YAML may read a number
    if isinstance(value, str) and "\n" in value:
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a YAML "…" scalar
    text = yaml.safe_dump(value, allow_unicode=True, width=1_000_000, default_flow_style=True)
    text = text.strip()
    if text.endswith("\n..."):
        text = text[: -len("\n...")]
    elif text.endswith("..."):
        text = text[: -len("...")].rstrip()
    return text
