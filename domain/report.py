"""The district's report form (แบบรายงาน): what is stored as typed, what the guideline requires,
what is derived from the sessions (items 1 and 3 of the form), and the provincial totals.

A draft is kept exactly as the staff typed it (``normalise_raw`` only bounds its shape and size),
so a half-filled form is never lost; ``check_report`` reads it against the directive and says,
field by field in Thai and English, what must be fixed before it can be submitted.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, Field

from domain.directive import DirectiveSpec, FormSpec
from domain.errors import InvalidInput
from domain.thaidate import (
    ENGLISH_MONTHS_SHORT,
    THAI_MONTHS,
    date_parts,
    english_date,
    join_date_parts,
    thai_date,
)

OTHER_KIND = "other"
MAX_TEXT = 300            # a center, a place, a kind's name
MAX_OUTCOME = 2000        # one outcome, item 5
MAX_COUNT = 100_000       # more heads than this in one session is a typing slip
_KEY = re.compile(r"^[A-Za-z0-9_-]{1,36}$")
_THAI_DIGITS = str.maketrans("๐๑๒๓๔๕๖๗๘๙", "0123456789")

Severity = Literal["error", "warning"]


class SessionEntry(BaseModel):
    """One time the activity was held (ครั้ง); values that could not be read are None/blank."""

    key: str
    held_on: date | None = None
    center: str = ""
    place: str = ""
    kind: str = ""
    kind_other: str = ""
    participants: dict[str, int | None] = Field(default_factory=dict)


class ReportContent(BaseModel):
    """The form as far as it could be read: sessions (items 1-4) and outcomes (item 5)."""

    sessions: list[SessionEntry] = Field(default_factory=list)
    outcomes: list[str] = Field(default_factory=list)


@dataclass(frozen=True)
class Finding:
    """One thing to fix (error) or to look at (warning), naming the field as the form does."""

    field: str
    label_th: str
    label_en: str
    message_th: str
    message_en: str
    severity: Severity = "error"

    def th(self) -> str:
        return f"{self.label_th}: {self.message_th}"

    def en(self) -> str:
        return f"{self.label_en}: {self.message_en}"


@dataclass(frozen=True)
class CheckedReport:
    """The stored draft, what could be read from it, and what is wrong or unusual."""

    raw: dict
    content: ReportContent
    errors: tuple[Finding, ...] = ()
    warnings: tuple[Finding, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors


class ReportInvalid(InvalidInput):
    """A report that cannot be submitted yet; ``findings`` lists every error."""

    def __init__(self, findings: Sequence[Finding]):
        self.findings = tuple(findings)
        shown = self.findings[:5]
        more = len(self.findings) - len(shown)
        tail_en = f" (and {more} more)" if more else ""
        tail_th = f" (และอีก {more} รายการ)" if more else ""
        super().__init__("the report cannot be submitted yet: "
                         + "; ".join(f.en() for f in shown) + tail_en,
                         "ยังส่งรายงานไม่ได้: " + "; ".join(f.th() for f in shown) + tail_th)


def new_session_key() -> str:
    """A key that ties photos to their session across saves (chosen by the system)."""
    return uuid.uuid4().hex


def form_of(spec: DirectiveSpec) -> FormSpec:
    """The directive's report form, or a clear error for a directive without one."""
    if spec.form is None:
        raise InvalidInput(f"directive {spec.slug} has no report form",
                           f"หนังสือสั่งการ {spec.slug} ไม่มีแบบรายงาน")
    return spec.form


# --- the draft as stored ---------------------------------------------------------------------

def normalise_raw(raw: Any, spec: DirectiveSpec) -> dict:
    """The draft to store: known fields only, strings trimmed and bounded, values as typed.

    Wrong values (a count of "abc") are kept so the staff see and fix them; only a body that is
    not a form at all, or far too big, is refused.
    """
    form = form_of(spec)
    if not isinstance(raw, Mapping):
        raise InvalidInput("the report must be an object with sessions and outcomes",
                           "ข้อมูลรายงานต้องประกอบด้วย sessions และ outcomes")
    sessions = _list(raw.get("sessions"), "sessions", form.max_sessions,
                     f"at most {form.max_sessions} sessions", f"บันทึกได้ไม่เกิน {form.max_sessions} ครั้ง")
    outcomes = _list(raw.get("outcomes"), "outcomes", form.max_outcomes,
                     f"at most {form.max_outcomes} outcomes", f"ผลที่ได้รับไม่เกิน {form.max_outcomes} ข้อ")
    codes = [c.code for c in spec.participant_categories]
    seen: set[str] = set()
    stored = []
    for entry in sessions:
        if not isinstance(entry, Mapping):
            raise InvalidInput("each session must be an object", "ข้อมูลแต่ละครั้งต้องเป็นชุดข้อมูล")
        key = str(entry.get("key") or "")
        if not _KEY.match(key) or key in seen:
            key = new_session_key()
        seen.add(key)
        counts = entry.get("participants") or {}
        if not isinstance(counts, Mapping):
            counts = {}
        stored.append({
            "key": key,
            "held_on": _held_on_as_typed(entry.get("held_on")),
            "center": _text(entry.get("center"), MAX_TEXT),
            "place": _text(entry.get("place"), MAX_TEXT),
            "kind": _text(entry.get("kind"), 40),
            "kind_other": _text(entry.get("kind_other"), MAX_TEXT),
            "participants": {code: _count_as_typed(counts.get(code)) for code in codes},
        })
    return {"sessions": stored,
            "outcomes": [_text(o, MAX_OUTCOME) for o in outcomes if _text(o, MAX_OUTCOME)]}


def _list(value: Any, name: str, limit: int, too_many_en: str, too_many_th: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise InvalidInput(f"{name} must be a list", f"{name} ต้องเป็นรายการ")
    if len(value) > limit:
        raise InvalidInput(too_many_en, too_many_th)
    return list(value)


def _text(value: Any, limit: int) -> str:
    if value is None:
        return ""
    return " ".join(str(value).split())[:limit]


def _held_on_as_typed(value: Any) -> str:
    """A date as typed; parts "D/M/YYYY" (B.E., from the three selects) that name a real day
    are kept as the ISO date the rest of tidtam reads."""
    text = _text(value, 32)
    return join_date_parts(*date_parts(text)) if "/" in text else text


def _count_as_typed(value: Any) -> int | str:
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, int):
        return value
    return _text(value, 40)


# --- checking against the guideline ----------------------------------------------------------

@dataclass
class _Checker:
    spec: DirectiveSpec
    form: FormSpec
    findings: list[Finding] = field(default_factory=list)

    def error(self, path: str, label: tuple[str, str], th: str, en: str) -> None:
        self.findings.append(Finding(path, label[0], label[1], th, en, "error"))

    def warn(self, path: str, label: tuple[str, str], th: str, en: str) -> None:
        self.findings.append(Finding(path, label[0], label[1], th, en, "warning"))


def check_report(raw: Mapping[str, Any], spec: DirectiveSpec,
                 photo_counts: Mapping[str, int] | None = None) -> CheckedReport:
    """Read a stored draft against the directive: every rule of the guideline, by field.

    ``photo_counts`` maps a session key to the photos attached to it.
    """
    stored = normalise_raw(raw, spec)
    checker = _Checker(spec, form_of(spec))
    photo_counts = photo_counts or {}
    read = [(index, _read_session(checker, index, entry))
            for index, entry in enumerate(stored["sessions"])
            if not is_blank_session(entry, photo_counts.get(entry["key"], 0))]
    content = ReportContent(sessions=[entry for _, entry in read], outcomes=list(stored["outcomes"]))
    _check_whole(checker, content, photo_counts, [index for index, _ in read])
    errors = tuple(f for f in checker.findings if f.severity == "error")
    warnings = tuple(f for f in checker.findings if f.severity == "warning")
    return CheckedReport(stored, content, errors, warnings)


def is_blank_session(entry: Mapping[str, Any], photos: int = 0) -> bool:
    """A card nothing was typed into and no photo attached to: it is left out (not five
    errors), so an extra "add session" never blocks a report. A count of 0 is typed."""
    texts = ("held_on", "center", "place", "kind", "kind_other")
    counts = (entry.get("participants") or {}).values()
    return (not photos and not any(str(entry.get(name) or "").strip() for name in texts)
            and all(c is None or c == "" for c in counts))


def typed_fields(raw: Mapping[str, Any]) -> set[str]:
    """The fields of a stored draft that hold something typed, and each session that does
    (``sessions[0]``, ``sessions[0].participants`` when any count is): the form marks a field
    before a submit only once it was typed in."""
    typed: set[str] = set()
    for index, entry in enumerate(raw.get("sessions") or []):
        path = f"sessions[{index}]"
        names = [n for n in ("held_on", "center", "place", "kind", "kind_other") if entry.get(n)]
        counts = [c for c, v in (entry.get("participants") or {}).items() if v not in ("", None)]
        typed.update(f"{path}.{n}" for n in names)
        typed.update(f"{path}.participants.{c}" for c in counts)
        if counts:
            typed.add(f"{path}.participants")
        if names or counts:
            typed.add(path)
    return typed


def shown_before_submit(finding: Finding, typed: set[str]) -> bool:
    """Before anyone tried to submit, a finding shows only on a field that was typed in (a
    warning also beside its typed neighbours: a blank count among typed ones); the rest wait
    for the attempt to submit."""
    if finding.field in typed:
        return True
    parent = finding.field.rsplit(".", 1)[0]
    return finding.severity == "warning" and parent != finding.field and parent in typed


def _session_label(index: int, th: str, en: str) -> tuple[str, str]:
    return f"ครั้งที่ {index + 1} · {th}", f"Session {index + 1} · {en}"


def _read_session(checker: _Checker, index: int, entry: dict) -> SessionEntry:
    spec, form = checker.spec, checker.form
    path = f"sessions[{index}]"
    held_on = _read_date(checker, index, entry["held_on"])
    for name, th, en in (("center", "ศูนย์ผู้นำจิตอาสาพัฒนาชุมชน", "Center"),
                         ("place", "หมู่บ้าน/ตำบล", "Village / sub-district")):
        if not entry[name]:
            checker.error(f"{path}.{name}", _session_label(index, th, en), "ต้องระบุ", "required")
    kind = entry["kind"]
    kind_label = _session_label(index, "ลักษณะกิจกรรม", "Activity kind")
    known = {k.code for k in form.activity_kinds} | ({OTHER_KIND} if form.allow_other_kind else set())
    if not kind:
        checker.error(f"{path}.kind", kind_label, "ต้องเลือกลักษณะกิจกรรม", "choose the activity kind")
    elif kind not in known:
        checker.error(f"{path}.kind", kind_label, f"ไม่มีลักษณะกิจกรรม {kind!r} ในแบบรายงานนี้",
                      f"{kind!r} is not an activity kind of this form")
        kind = ""
    if kind == OTHER_KIND and not entry["kind_other"]:
        checker.error(f"{path}.kind_other", _session_label(index, "ลักษณะกิจกรรม (อื่น ๆ)",
                                                           "Activity kind (other)"),
                      "ต้องระบุลักษณะกิจกรรม", "name the activity kind")
    counts = {c.code: _read_count(checker, index, c, entry["participants"].get(c.code, ""))
              for c in spec.participant_categories}
    total = sum(v for v in counts.values() if v is not None)
    minimum = spec.conditions.min_participants_per_session
    if all(v is not None for v in counts.values()) and total < minimum:
        checker.error(f"{path}.participants", _session_label(index, "จำนวนผู้เข้าร่วมรวม",
                                                             "Total participants"),
                      f"มีผู้เข้าร่วม {total} คน ต้องไม่น้อยกว่า {minimum} คนต่อครั้ง",
                      f"{total} participants; at least {minimum} are required each time")
    for code in dict.fromkeys(form.warn_if_zero):
        category = next(c for c in spec.participant_categories if c.code == code)
        if counts.get(code) == 0:
            checker.warn(f"{path}.participants.{code}",
                         _session_label(index, f"ผู้เข้าร่วม: {category.title_th}",
                                        f"Participants: {category.title_en}"),
                         "ไม่มีผู้เข้าร่วมกลุ่มนี้ ตรวจสอบว่าถูกต้อง", "nobody from this group; check it is right")
    return SessionEntry(key=entry["key"], held_on=held_on, center=entry["center"],
                        place=entry["place"], kind=kind, kind_other=entry["kind_other"],
                        participants=counts)


def _read_date(checker: _Checker, index: int, typed: str) -> date | None:
    label = _session_label(index, "วันที่จัดกิจกรรม", "Date held")
    path = f"sessions[{index}].held_on"
    if not typed:
        checker.error(path, label, "ต้องระบุวันที่", "required")
        return None
    try:
        held_on = date.fromisoformat(typed)
    except ValueError:
        _date_error(checker, path, label, typed)
        return None
    period = checker.spec.conditions.period
    if period is not None and not period.start <= held_on <= period.end:
        checker.error(path, label,
                      f"ต้องอยู่ระหว่าง {thai_date(period.start)} ถึง {thai_date(period.end)} "
                      f"(กรอก {thai_date(held_on)})",
                      f"must be between {english_date(period.start)} and {english_date(period.end)} "
                      f"(given {english_date(held_on)})")
    return held_on


def _date_error(checker: _Checker, path: str, label: tuple[str, str], typed: str) -> None:
    """Why a typed date is not a date: a part not chosen, a day the month has not, or not a date."""
    day, month, year = date_parts(typed)
    if not (day or month or year):
        checker.error(path, label, "ต้องเป็นวันที่ เช่น 15 กรกฎาคม 2567",
                      "must be a date such as 15 July 2024")
    elif not (day and month and year):
        checker.error(path, label, "เลือกวัน เดือน และปี (พ.ศ.) ให้ครบ",
                      "choose the day, the month and the year")
    elif not 1 <= int(month) <= 12:
        checker.error(path, label, f"ไม่มีเดือนที่ {month}", f"there is no month {month}")
    else:
        name_th = THAI_MONTHS[int(month) - 1]
        name_en = ENGLISH_MONTHS_SHORT[int(month) - 1]
        checker.error(path, label, f"ไม่มีวันที่ {day} {name_th} {year} ในปฏิทิน",
                      f"there is no {day} {name_en} {int(year) - 543} (B.E. {year})")


def _read_count(checker: _Checker, index: int, category: Any, typed: int | str) -> int | None:
    """A head count: blank is 0; Thai digits are read; anything but a whole number ≥ 0 is an error."""
    if isinstance(typed, int):
        value: int | None = typed
    elif typed == "":
        return 0
    else:
        text = typed.translate(_THAI_DIGITS).replace(",", "")
        # isdecimal, not isdigit: "²" is a digit int() cannot read.
        value = int(text) if text.isdecimal() or (text[:1] == "-" and text[1:].isdecimal()) else None
    if value is None or value < 0 or value > MAX_COUNT:
        checker.error(f"sessions[{index}].participants.{category.code}",
                      _session_label(index, f"ผู้เข้าร่วม: {category.title_th}",
                                     f"Participants: {category.title_en}"),
                      f"ต้องเป็นจำนวนเต็มตั้งแต่ 0 ถึง {MAX_COUNT:,} (กรอก {typed!r})",
                      f"must be a whole number from 0 to {MAX_COUNT:,} (given {typed!r})")
        return None
    return value


def _check_whole(checker: _Checker, content: ReportContent, photo_counts: Mapping[str, int],
                 positions: Sequence[int]) -> None:
    """The rules over the whole form: sessions, centers, photos per kind, outcomes.

    ``positions``: each read session's place on the form (blank cards are left out)."""
    spec, form = checker.spec, checker.form
    if not content.sessions:
        checker.error("sessions", ("การจัดกิจกรรม", "Sessions"),
                      "ต้องบันทึกการจัดกิจกรรมอย่างน้อย 1 ครั้ง", "record at least one session")
    centers = _distinct(s.center for s in content.sessions)
    minimum = spec.conditions.min_centers_per_district
    if content.sessions and len(centers) < minimum:
        checker.error("centers", ("๑. ศูนย์ผู้นำจิตอาสาพัฒนาชุมชนที่จัดกิจกรรม", "1. Centers that held the activity"),
                      f"ต้องมีศูนย์ฯ จัดกิจกรรมอย่างน้อย {minimum} แห่ง (มี {len(centers)} แห่ง)",
                      f"at least {minimum} center(s) must hold the activity ({len(centers)} so far)")
    for kind_key, title_th, title_en in _kinds_used(content, form):
        photos = sum(photo_counts.get(s.key, 0) for s in content.sessions if _kind_key(s) == kind_key)
        if photos < form.min_photos_per_kind:
            checker.error(f"photos.{kind_key}", (f"๔. ภาพกิจกรรม: {title_th}", f"4. Photos: {title_en}"),
                          f"ต้องมีภาพอย่างน้อย {form.min_photos_per_kind} ภาพ (มี {photos} ภาพ)",
                          f"at least {form.min_photos_per_kind} photo(s) needed ({photos} so far)")
    if len(content.outcomes) < form.min_outcomes:
        checker.error("outcomes", ("๕. ผลที่ได้รับ", "5. Outcomes"),
                      f"ต้องระบุผลที่ได้รับอย่างน้อย {form.min_outcomes} ข้อ",
                      f"give at least {form.min_outcomes} outcome(s)")
    for index, later in enumerate(content.sessions):
        twin = next((j for j, s in enumerate(content.sessions[:index]) if _same_session(s, later)), None)
        if twin is not None:
            at, first = positions[index], positions[twin] + 1
            checker.warn(f"sessions[{at}]", _session_label(at, "การจัดกิจกรรม", "Session"),
                         f"ซ้ำกับครั้งที่ {first} (วันที่ ศูนย์ฯ และลักษณะกิจกรรมเดียวกัน) ตรวจสอบว่าไม่ได้บันทึกซ้ำ",
                         f"same date, center and kind as session {first}; check it is not entered twice")


def _same_session(a: SessionEntry, b: SessionEntry) -> bool:
    return (a.held_on is not None and a.held_on == b.held_on and bool(a.center.strip())
            and _norm(a.center) == _norm(b.center) and bool(a.kind) and _kind_key(a) == _kind_key(b))


# --- what the form derives (items 1, 2, 3, 5) ------------------------------------------------

@dataclass(frozen=True)
class KindPlaces:
    """Item 3: one kind of activity and the number of places it was held in."""

    code: str
    title_th: str
    title_en: str
    places: int
    sessions: int


@dataclass(frozen=True)
class ReportSummary:
    """Items 1-3 and 5 of the form, derived from the sessions (never typed twice)."""

    centers: int
    sessions: int
    participants: dict[str, int]
    total_participants: int
    kinds: tuple[KindPlaces, ...]
    outcomes: tuple[str, ...]


def _norm(text: str) -> str:
    """Names typed by hand: 'ศูนย์ฯ บ้านหนองบอน ' and 'ศูนย์ฯ  บ้านหนองบอน' are one place."""
    return " ".join(text.split()).casefold()


def _distinct(names: Iterator[str] | Any) -> set[str]:
    return {_norm(n) for n in names if n and n.strip()}


def _kind_key(entry: SessionEntry) -> str:
    """Kinds group by code; 'other' kinds group by the name the district gave."""
    if entry.kind == OTHER_KIND:
        return f"{OTHER_KIND}:{_norm(entry.kind_other)}"
    return entry.kind


def _kinds_used(content: ReportContent, form: FormSpec) -> list[tuple[str, str, str]]:
    """(key, Thai title, English title) of each kind the sessions used, in the form's order."""
    used = {_kind_key(s): s for s in content.sessions if s.kind}
    ordered = [(k.code, k.title_th, k.title_en) for k in form.activity_kinds if k.code in used]
    others = sorted(key for key in used if key.startswith(f"{OTHER_KIND}:"))
    return ordered + [(key, used[key].kind_other or "อื่น ๆ", used[key].kind_other or "Other")
                      for key in others]


def summarise(content: ReportContent, spec: DirectiveSpec) -> ReportSummary:
    """Items 1-3 and 5 from the sessions; unreadable counts are left out."""
    form = form_of(spec)
    participants = {c.code: sum(s.participants.get(c.code) or 0 for s in content.sessions)
                    for c in spec.participant_categories}
    kinds = []
    for key, title_th, title_en in _kinds_used(content, form):
        sessions = [s for s in content.sessions if _kind_key(s) == key]
        places = _distinct(s.place or s.center for s in sessions)
        kinds.append(KindPlaces(key, title_th, title_en, len(places), len(sessions)))
    return ReportSummary(
        centers=len(_distinct(s.center for s in content.sessions)),
        sessions=len(content.sessions), participants=participants,
        total_participants=sum(participants.values()), kinds=tuple(kinds),
        outcomes=tuple(content.outcomes))


# --- the provincial compilation ---------------------------------------------------------------

ACCEPTED = "accepted"
NO_REPORT = "none"


@dataclass(frozen=True)
class DistrictEntry:
    """One district in the compilation; ``summary``/``content`` only when its report is accepted."""

    code: str
    name_th: str
    name_en: str
    status: str
    summary: ReportSummary | None = None
    content: ReportContent | None = None


@dataclass(frozen=True)
class Compilation:
    """The province's totals over accepted reports, per district, and who is missing."""

    totals: ReportSummary
    districts: tuple[DistrictEntry, ...]

    @property
    def accepted(self) -> tuple[DistrictEntry, ...]:
        return tuple(d for d in self.districts if d.summary is not None)

    @property
    def missing(self) -> tuple[DistrictEntry, ...]:
        """Districts with no accepted report (none at all, draft, submitted or returned)."""
        return tuple(d for d in self.districts if d.summary is None)


def compile_province(spec: DirectiveSpec, districts: Sequence[tuple[str, str, str]],
                     reports: Mapping[str, tuple[str, ReportContent]]) -> Compilation:
    """Add up the accepted reports of ``districts`` ((code, name_th, name_en), in order)."""
    entries = []
    for code, name_th, name_en in districts:
        status, content = reports.get(code, (NO_REPORT, None))
        if status == ACCEPTED and content is not None:
            entries.append(DistrictEntry(code, name_th, name_en, status, summarise(content, spec), content))
        else:
            entries.append(DistrictEntry(code, name_th, name_en, str(status)))
    return Compilation(_add_up([e.summary for e in entries if e.summary is not None], spec),
                       tuple(entries))


def _add_up(summaries: list[ReportSummary], spec: DirectiveSpec) -> ReportSummary:
    """Totals across districts: centers, sessions and heads add; kinds add their places."""
    participants = {c.code: sum(s.participants.get(c.code, 0) for s in summaries)
                    for c in spec.participant_categories}
    kinds: dict[str, KindPlaces] = {}
    for summary in summaries:
        for kind in summary.kinds:
            seen = kinds.get(kind.code)
            kinds[kind.code] = kind if seen is None else KindPlaces(
                kind.code, seen.title_th, seen.title_en, seen.places + kind.places,
                seen.sessions + kind.sessions)
    order = {k.code: i for i, k in enumerate(form_of(spec).activity_kinds)}
    return ReportSummary(
        centers=sum(s.centers for s in summaries), sessions=sum(s.sessions for s in summaries),
        participants=participants, total_participants=sum(participants.values()),
        kinds=tuple(sorted(kinds.values(), key=lambda k: (order.get(k.code, len(order)), k.code))),
        outcomes=())
