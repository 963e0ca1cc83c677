"""The directive template: a provincial letter as data; errors name the file, line and field."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, time
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from domain.calendar import OfficeHours, WorkCalendar
from domain.errors import InvalidInput, NotFound, TidtamError
from domain.ladder import DEFAULT_LADDER, Ladder

Loc = tuple[str | int, ...]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Code = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$", max_length=32)]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$", max_length=120)]
ProvinceCode = Annotated[str, StringConstraints(pattern=r"^\d{2}$")]
StepKind = Literal["guideline", "activity", "report"]
M = TypeVar("M", bound="Strict")


def _clock_time(value: Any) -> Any:
    """Catch YAML reading an unquoted 16:30 as the base-60 number 990."""
    if isinstance(value, int):
        raise InvalidInput('write the time in quotes, e.g. "16:30" (unquoted, YAML reads a number)',
                           'ใส่เวลาในเครื่องหมายคำพูด เช่น "16:30" (ถ้าไม่ใส่ YAML จะอ่านเป็นตัวเลข)')
    return value


ClockTime = Annotated[time, BeforeValidator(_clock_time)]


def _anno_domini(day: date) -> date:
    """Catch the likeliest slip of a Thai editor: a B.E. year in an A.D. date."""
    if day.year > 2400:
        year = day.year - 543
        raise InvalidInput(f"year {day.year} looks like B.E.; dates here are A.D. ({year})",
                           f"ปี {day.year} เป็น พ.ศ. วันที่ในไฟล์นี้ใช้ ค.ศ. ({year})")
    return day


Day = Annotated[date, AfterValidator(_anno_domini)]  # an ISO A.D. date in the file


class Strict(BaseModel):
    """Unknown keys are errors: a misspelt field must not be ignored silently."""

    model_config = ConfigDict(extra="forbid")


class Category(Strict):
    """A participant category of the report form, counted in heads."""

    code: Code
    title_th: Text
    title_en: Text


class DatePeriod(Strict):
    """A span of days, both ends included."""

    start: Day
    end: Day


class ActivityConditions(Strict):
    """What counts as a valid activity; the report form is checked against these."""

    min_activities_per_center: int = Field(1, ge=1)
    min_participants_per_session: int = Field(20, ge=1)
    min_centers_per_district: int = Field(1, ge=1)
    period: DatePeriod | None = Field(None, description="defaults to the activity dates")


class OfficeHoursSpec(Strict):
    """Office hours as written in YAML ("08:30"), turned into the calendar's OfficeHours."""

    start: ClockTime = time(8, 30)
    end: ClockTime = time(16, 30)

    @model_validator(mode="after")
    def _start_before_end(self) -> OfficeHoursSpec:
        self.to_office_hours()
        return self

    def to_office_hours(self) -> OfficeHours:
        """The calendar's value object."""
        return OfficeHours(self.start, self.end)


class ActivityKind(Strict):
    """A kind of activity (enclosure 3, item 3): groups similar work, counted in places."""

    code: Code
    title_th: Text
    title_en: Text


class ProofRule(Strict):
    """A step the report proves (``form.proves``): its qualifying sessions complete the step.

    A session qualifies when it was held within ``period`` and counted at least
    ``min_participants`` heads; ``min_sessions`` such sessions prove ``step``. The period and the
    head count default to the directive's ``conditions`` (``DirectiveSpec.proof_rules``).
    """

    step: Code = Field(description="the step (guideline or activity) the report proves")
    min_sessions: int = Field(1, ge=1, le=2000)
    min_participants: int | None = Field(None, ge=1,
                                         description="defaults to conditions.min_participants_per_session")
    period: DatePeriod | None = Field(None, description="defaults to conditions.period")


class FormSpec(Strict):
    """The report form (แบบรายงาน) a district files; its rules are checked at entry.

    The participant categories and the activity conditions it is checked against are the
    directive's own ``participant_categories`` and ``conditions``.
    """

    report_step: Code = Field(description="the tracked item that submitting the form completes")
    title_th: Text
    title_en: Text
    heading_th: list[Text] = Field(default_factory=list,
                                   description="the lines above 'อำเภอ … จังหวัด …' on the paper form")
    activity_name_th: Text | None = None
    footnote_th: str | None = None
    activity_kinds: list[ActivityKind] = Field(min_length=1)
    allow_other_kind: bool = True
    min_outcomes: int = Field(1, ge=0)
    min_photos_per_kind: int = Field(1, ge=0)
    warn_if_zero: list[Code] = Field(
        default_factory=list, description="categories whose zero head count is unusual but legal")
    max_sessions: int = Field(200, ge=1, le=2000)
    max_outcomes: int = Field(50, ge=1, le=500)
    photo_max_bytes: int = Field(10_000_000, ge=10_000, le=100_000_000)
    photo_max_pixels: int = Field(40_000_000, ge=10_000, le=200_000_000)
    proves: list[ProofRule] = Field(
        default_factory=list, description="steps a submitted report completes (domain/evidence.py)")


class StepSpec(Strict):
    """One step every district carries out, tracked per district."""

    code: Code
    kind: StepKind
    title_th: Text
    title_en: Text
    due_on: Day
    order: int | None = Field(None, ge=1, description="defaults to the position in the list")


class DirectiveSpec(Strict):
    """A directive (หนังสือสั่งการ) as the province writes it in YAML; dates are A.D."""

    slug: Slug
    scope: Literal["province", "national"] = Field(
        "province", description="national: issued by the Department to every province")
    province_code: ProvinceCode | None = Field(
        None, description="the issuing province; none for a national directive")
    reference_no: Text
    title_th: Text
    title_en: Text
    issuer_th: Text
    issuer_en: Text
    issued_on: Day
    fiscal_year: int = Field(description="Buddhist Era, e.g. 2567")
    revision: int = Field(1, ge=1, le=999, description=(
        "the letter's amendment: raise it to re-launch a changed file (tidtam.app.amendment)"))
    close_after_working_days: int | None = Field(None, ge=0, le=260, description=(
        "close the directive automatically this many working days after department_due "
        "(province_due without one); none: only the coordinator closes it"))
    review_within_working_days: int = Field(3, ge=1, le=60, description=(
        "a submitted report not accepted or returned within this many working days reminds the "
        "province's coordinators (domain.review)"))
    refers_to: str | None = None
    contact_th: str | None = None
    contact_en: str | None = None
    activity_start: Day
    activity_end: Day
    province_due: Day
    department_due: Day | None = None
    due_dates_note_th: str | None = None
    due_dates_note_en: str | None = None
    conditions: ActivityConditions = Field(default_factory=ActivityConditions)
    participant_categories: list[Category] = Field(default_factory=list)
    closures: list[Day] = Field(default_factory=list)
    office_hours: OfficeHoursSpec = Field(default_factory=OfficeHoursSpec)
    ladder: Ladder = DEFAULT_LADDER
    steps: list[StepSpec] = Field(min_length=1)
    form: FormSpec | None = None

    @field_validator("fiscal_year")
    @classmethod
    def _buddhist_era(cls, year: int) -> int:
        if not 2400 <= year <= 2700:
            raise InvalidInput("fiscal_year is a Buddhist Era year such as 2567 (A.D. + 543)",
                               "fiscal_year เป็นปีงบประมาณ พ.ศ. เช่น 2567 (ค.ศ. + 543)")
        return year

    @model_validator(mode="after")
    def _fill_defaults(self) -> DirectiveSpec:
        """Steps without an order take their position; the activity period its dates."""
        for position, step in enumerate(self.steps, start=1):
            step.order = step.order or position
        if self.conditions.period is None:
            self.conditions.period = DatePeriod(start=self.activity_start, end=self.activity_end)
        return self

    def closes_on(self) -> date | None:
        """The day the directive closes itself: ``close_after_working_days`` working days after
        the Department's date (the province's when it has none); None if only a person closes it."""
        if self.close_after_working_days is None:
            return None
        last = self.department_due or self.province_due
        return self.work_calendar().add_working_days(last, self.close_after_working_days)

    def proof_rules(self) -> list[ProofRule]:
        """The report's ``form.proves`` with their defaults filled in from ``conditions`` (the
        file keeps them unwritten, so next year's letter moves only the conditions' dates)."""
        if self.form is None:
            return []
        return [rule.model_copy(update={
            "min_participants": rule.min_participants or self.conditions.min_participants_per_session,
            "period": rule.period or self.conditions.period}) for rule in self.form.proves]

    def work_calendar(self) -> WorkCalendar:
        """The calendar deadlines and send times of this directive follow."""
        return WorkCalendar(self.closures, self.office_hours.to_office_hours())

    @property
    def is_national(self) -> bool:
        return self.scope == "national"

    def for_province(self, province_code: str) -> DirectiveSpec:
        """A national directive as one province carries it out: its own slug and province."""
        return self.model_copy(update={"scope": "province", "province_code": province_code,
                                       "slug": province_slug(self.slug, province_code)},
                               deep=True)


def province_slug(national_slug: str, province_code: str) -> str:
    """The slug of a province's copy of a national directive: ``<national>-p<code>``."""
    return f"{national_slug}-p{province_code}"


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a directive file, where it is, in both languages (line 0: unknown)."""

    source: str
    line: int
    field: str
    message_en: str
    message_th: str

    def en(self) -> str:
        """As compilers print it: ``file:line: field: message``."""
        field = f"{self.field}: " if self.field else ""
        where = f"{self.source}:{self.line}" if self.line else self.source
        return f"{where}: {field}{self.message_en}"

    def th(self) -> str:
        """For Thai readers, with the same file, line and field."""
        field = f"{self.field}: " if self.field else ""
        where = f"{self.source} บรรทัดที่ {self.line}" if self.line else self.source
        return f"{where}: {field}{self.message_th}"


class DirectiveError(InvalidInput):
    """A directive file that cannot be used; ``problems`` lists each with its line."""

    def __init__(self, message_en: str, message_th: str, problems: Sequence[Problem] = ()):
        super().__init__(message_en, message_th)
        self.problems = tuple(problems)

    @classmethod
    def from_problems(cls, problems: Sequence[Problem]) -> DirectiveError:
        """One error listing every problem, one per line."""
        return cls("\n".join(p.en() for p in problems), "\n".join(p.th() for p in problems),
                   problems)


def load_directive(path: Path) -> DirectiveSpec:
    """Read and check a directive YAML file."""
    return parse_directive(read_text(path), str(path))


def parse_directive(text: str, source: str) -> DirectiveSpec:
    """Check a directive's YAML text; ``source`` names the file in error messages."""
    return parse_model(text, source, DirectiveSpec, inconsistencies)


def read_text(path: Path) -> str:
    """A YAML file's text; a missing or non-UTF-8 file is a clear error."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise NotFound(f"directive file not found: {path}",
                       f"ไม่พบไฟล์หนังสือสั่งการ: {path}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[:error.start].count(b"\n") + 1
        raise DirectiveError.from_problems([Problem(
            str(path), line, "", "the file is not UTF-8 text", "ไฟล์ไม่ได้เข้ารหัสแบบ UTF-8")]) from None


def parse_model(text: str, source: str, model: type[M],
                checks: Callable[[M], list[Inconsistency]]) -> M:
    """YAML text → ``model``, then ``checks``; every problem names the file, line and field."""
    root, data = _read_yaml(text, source)
    _raise_if(list(_duplicate_keys(root, source, ())))
    try:
        value = model.model_validate(data)
    except ValidationError as error:
        problems = [_pydantic_problem(source, root, e) for e in error.errors()]
        raise DirectiveError.from_problems(problems) from None
    _raise_if([_problem(source, root, loc, en, th) for loc, en, th in checks(value)])
    return value


def _raise_if(problems: list[Problem]) -> None:
    """Stop at the first kind of check that failed, reporting all of its problems."""
    if problems:
        raise DirectiveError.from_problems(problems)


# --- YAML, with the node tree kept for line numbers -------------------------------------------

class _Loader(yaml.SafeLoader):
    """SafeLoader whose impossible dates (2024-13-01) fail as YAML errors, with their line."""

    def construct_yaml_timestamp(self, node: Node) -> Any:
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError as error:
            raise yaml.constructor.ConstructorError(
                None, None, f"{node.value} is not a date ({error})", node.start_mark) from None


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)


def _read_yaml(text: str, source: str) -> tuple[MappingNode, Any]:
    """The document's node tree (for lines) and its data; the top level must be a mapping."""
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as error:
        raise DirectiveError.from_problems([_yaml_problem(source, text, error)]) from None
    finally:
        loader.dispose()
    if root is None:
        raise DirectiveError.from_problems([
            Problem(source, 1, "", "the file is empty", "ไฟล์ว่างเปล่า")])
    if not isinstance(root, MappingNode):
        raise DirectiveError.from_problems([Problem(
            source, root.start_mark.line + 1, "",
            "the top level must be a mapping of fields (key: value)",
            "ระดับบนสุดต้องเป็นชุดข้อมูลแบบ key: value")])
    return root, data


def _yaml_problem(source: str, text: str, error: yaml.YAMLError) -> Problem:
    """A syntax error at its line, quoting that line so the reader sees the field."""
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    line = mark.line + 1 if mark else 1
    detail = " ".join(filter(None, [_context(error, text, line), getattr(error, "problem", None)]))
    detail = detail or str(error)
    quoted = _quote_line(text, line)
    return Problem(source, line, "", f"YAML syntax: {detail}{quoted}",
                   f"รูปแบบ YAML ไม่ถูกต้อง: {detail}{quoted}")


def _context(error: yaml.YAMLError, text: str, line: int) -> str | None:
    """What PyYAML was reading, and where that began when it is another line."""
    context, mark = getattr(error, "context", None), getattr(error, "context_mark", None)
    if context and mark is not None and mark.line + 1 != line:
        return f"{context} (begun on line {mark.line + 1}{_quote_line(text, mark.line + 1)})"
    return context


def _quote_line(text: str, line: int) -> str:
    lines = text.splitlines()
    return f' in "{lines[line - 1].strip()[:80]}"' if 0 < line <= len(lines) else ""


def _duplicate_keys(node: Node, source: str, loc: Loc) -> Iterator[Problem]:
    """PyYAML keeps the last of two equal keys silently; a hand-edited file needs to know."""
    if isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            yield from _duplicate_keys(item, source, (*loc, index))
    if not isinstance(node, MappingNode):
        return
    seen: set[str] = set()
    for key, value in node.value:
        name = key.value if isinstance(key, ScalarNode) else None
        if name in seen:
            yield Problem(source, key.start_mark.line + 1, _field_path((*loc, name)),
                          "this key appears twice; YAML would keep only the last",
                          "ช่องนี้ซ้ำกันสองครั้ง YAML จะเก็บไว้เฉพาะค่าหลังสุด")
        seen.add(name)
        yield from _duplicate_keys(value, source, (*loc, name))


def _line_of(root: MappingNode, loc: Loc) -> int:
    """The line of the deepest node on ``loc`` that exists (a missing field: its parent's)."""
    node, line = root, root.start_mark.line + 1
    for part in loc:
        found = _child(node, part)
        if found is None:
            break
        line, node = found[0].start_mark.line + 1, found[1]
    return line


def _child(node: Node, part: str | int) -> tuple[Node, Node] | None:
    """(the node marking the line, the child itself), or None when ``part`` is absent."""
    if isinstance(node, MappingNode):
        return next(((k, v) for k, v in node.value if k.value == part), None)
    if isinstance(node, SequenceNode) and isinstance(part, int) and part < len(node.value):
        return node.value[part], node.value[part]
    return None


def _field_path(loc: Loc) -> str:
    """('steps', 3, 'due_on') -> 'steps[3].due_on'."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    return path


def _problem(source: str, root: MappingNode, loc: Loc, en: str, th: str) -> Problem:
    return Problem(source, _line_of(root, loc), _field_path(loc), en, th)


# --- pydantic's errors, in both languages ------------------------------------------------------

_UNKNOWN = ("unknown field; check its spelling", "ไม่รู้จักช่องนี้ ตรวจการสะกด")
_REQUIRED = ("field required", "ต้องระบุช่องนี้")
_THAI_BY_TYPE = {
    "date_type": "ต้องเป็นวันที่ ค.ศ. แบบ ปปปป-ดด-วว เช่น 2024-08-09",
    "date_parsing": "ต้องเป็นวันที่ ค.ศ. แบบ ปปปป-ดด-วว เช่น 2024-08-09",
    "date_from_datetime_parsing": "ต้องเป็นวันที่ ค.ศ. แบบ ปปปป-ดด-วว เช่น 2024-08-09",
    "date_from_datetime_inexact": "ต้องเป็นวันที่ ไม่มีเวลา",
    "int_type": "ต้องเป็นจำนวนเต็ม",
    "int_parsing": "ต้องเป็นจำนวนเต็ม",
    "int_from_float": "ต้องเป็นจำนวนเต็ม",
    "string_type": "ต้องเป็นข้อความ",
    "string_too_short": "ต้องไม่เว้นว่าง",
    "bool_type": "ต้องเป็น true หรือ false",
    "bool_parsing": "ต้องเป็น true หรือ false",
    "time_type": 'ต้องเป็นเวลา เช่น "08:30"',
    "time_parsing": 'ต้องเป็นเวลา เช่น "08:30"',
    "list_type": "ต้องเป็นรายการ (- ...)",
    "too_short": "มีรายการน้อยเกินไป",
    "tuple_type": "ต้องเป็นรายการ (- ...)",
    "model_type": "ต้องเป็นชุดข้อมูลแบบ key: value",
    "dict_type": "ต้องเป็นชุดข้อมูลแบบ key: value",
    "dataclass_type": "ต้องเป็นชุดข้อมูลแบบ key: value",
    "dataclass_arguments_type": "ต้องเป็นชุดข้อมูลแบบ key: value",
}


def _pydantic_problem(source: str, root: MappingNode, error: Any) -> Problem:
    """One pydantic error as a Problem; Thai from our table, or our own error's Thai text."""
    en, th = _messages(error)
    return _problem(source, root, tuple(error["loc"]), en, th)


def _messages(error: Any) -> tuple[str, str]:
    kind, message = error["type"], error["msg"]
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, TidtamError):
        return cause.message_en, cause.message_th
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        return _UNKNOWN
    if kind in ("missing", "missing_argument"):
        return _REQUIRED
    if kind in ("literal_error", "enum"):
        return message, f"ต้องเป็นค่าใดค่าหนึ่งต่อไปนี้: {error['ctx']['expected']}"
    if kind in _THAI_BY_TYPE:
        return message, _THAI_BY_TYPE[kind]
    return message, f"ข้อมูลไม่ถูกต้อง ({message})"


# --- checks across fields ----------------------------------------------------------------------

Inconsistency = tuple[Loc, str, str]


def inconsistencies(spec: DirectiveSpec) -> list[Inconsistency]:
    """Every cross-field rule the schema alone cannot express."""
    return [*_scope(spec), *_date_order(spec), *_repeats(spec), *_step_dates(spec),
            *_period(spec), *_form(spec)]


def _scope(spec: DirectiveSpec) -> Iterator[Inconsistency]:
    """A province issues for itself; the Department issues to every province."""
    if spec.scope == "province" and spec.province_code is None:
        yield (("province_code",), "a provincial directive needs province_code (or scope: national)",
               "หนังสือสั่งการของจังหวัดต้องระบุ province_code (หรือ scope: national สำหรับของกรมฯ)")
    if spec.scope == "national" and spec.province_code is not None:
        yield (("province_code",), "a national directive is issued to every province: "
               "leave province_code out (a province adds its own steps with extends:)",
               "หนังสือสั่งการระดับกรมฯ ส่งถึงทุกจังหวัด ไม่ต้องระบุ province_code "
               "(จังหวัดเพิ่มขั้นตอนของตนเองด้วย extends:)")


def _date_order(spec: DirectiveSpec) -> Iterator[Inconsistency]:
    if spec.activity_end < spec.activity_start:
        yield (("activity_end",), "activity_end is before activity_start",
               "วันสิ้นสุดกิจกรรมอยู่ก่อนวันเริ่มกิจกรรม")
    if spec.province_due < spec.issued_on:
        yield (("province_due",), "province_due is before the letter was issued (issued_on)",
               "กำหนดส่งจังหวัดอยู่ก่อนวันที่ออกหนังสือ")
    if spec.department_due is not None and spec.department_due < spec.province_due:
        yield (("department_due",), "department_due is before province_due",
               "กำหนดส่งกรมอยู่ก่อนกำหนดส่งจังหวัด")


def _repeats(spec: DirectiveSpec) -> Iterator[Inconsistency]:
    """Codes identify steps and categories, orders place steps: each must be unique."""
    yield from _repeated("steps", "code", [s.code for s in spec.steps], "รหัสขั้นตอน")
    yield from _repeated("steps", "order", [s.order for s in spec.steps], "ลำดับขั้นตอน")
    yield from _repeated("participant_categories", "code",
                         [c.code for c in spec.participant_categories], "รหัสกลุ่มผู้เข้าร่วม")
    if spec.form is not None:
        yield from _repeated_in(("form", "activity_kinds"), "code",
                                [k.code for k in spec.form.activity_kinds], "รหัสลักษณะกิจกรรม")


def _repeated(section: str, field: str, values: list[Any],
              label_th: str) -> Iterator[Inconsistency]:
    yield from _repeated_in((section,), field, values, label_th)


def _repeated_in(section: Loc, field: str, values: list[Any],
                 label_th: str) -> Iterator[Inconsistency]:
    name = _field_path(section)
    for index, value in enumerate(values):
        if value in values[:index]:
            first = values.index(value)
            yield ((*section, index, field), f"{field} {value} repeats {name}[{first}]",
                   f"{label_th} {value} ซ้ำกับ {name}[{first}]")


def _step_dates(spec: DirectiveSpec) -> Iterator[Inconsistency]:
    """Districts' steps fall between the letter and the report to the province."""
    for index, step in enumerate(spec.steps):
        loc = ("steps", index, "due_on")
        if step.due_on > spec.province_due:
            yield (loc, f"due after province_due ({spec.province_due})",
                   f"กำหนดเสร็จหลังกำหนดส่งจังหวัด ({spec.province_due})")
        elif step.due_on < spec.issued_on:
            yield (loc, f"due before the letter was issued ({spec.issued_on})",
                   f"กำหนดเสร็จก่อนวันที่ออกหนังสือ ({spec.issued_on})")
        elif step.kind == "activity" and step.due_on > spec.activity_end:
            yield (loc, f"an activity step due after activity_end ({spec.activity_end})",
                   f"ขั้นตอนกิจกรรมกำหนดเสร็จหลังวันสิ้นสุดกิจกรรม ({spec.activity_end})")


def _period(spec: DirectiveSpec) -> Iterator[Inconsistency]:
    period = spec.conditions.period
    if period is None or (period.start, period.end) == (spec.activity_start, spec.activity_end):
        return
    if period.end < period.start:
        yield (("conditions", "period", "end"), "the period ends before it starts",
               "ช่วงเวลาสิ้นสุดก่อนเริ่ม")
    elif period.start < spec.activity_start or period.end > spec.activity_end:
        yield (("conditions", "period"), "the period must lie within the activity dates",
               "ช่วงเวลาต้องอยู่ภายในช่วงวันที่จัดกิจกรรม")


def _form(spec: DirectiveSpec) -> Iterator[Inconsistency]:
    """The form completes a report step and names only categories the directive has."""
    form = spec.form
    if form is None:
        return
    step = next((s for s in spec.steps if s.code == form.report_step), None)
    if step is None or step.kind != "report":
        yield (("form", "report_step"), f"{form.report_step} is not a step of kind report",
               f"{form.report_step} ไม่ใช่ขั้นตอนประเภท report")
    if not spec.participant_categories:
        yield (("participant_categories",), "a directive with a form needs participant_categories",
               "หนังสือสั่งการที่มีแบบรายงานต้องระบุกลุ่มผู้เข้าร่วม (participant_categories)")
    codes = {c.code for c in spec.participant_categories}
    for index, code in enumerate(form.warn_if_zero):
        if code not in codes:
            yield (("form", "warn_if_zero", index), f"{code} is not a participant category",
                   f"{code} ไม่ใช่รหัสกลุ่มผู้เข้าร่วม")
    for index, kind in enumerate(form.activity_kinds):
        if kind.code == "other":
            yield (("form", "activity_kinds", index, "code"),
                   'the code "other" is reserved for allow_other_kind',
                   'รหัส "other" สงวนไว้สำหรับ allow_other_kind')
    yield from _repeated_in(("form", "warn_if_zero"), "code", list(form.warn_if_zero),
                            "รหัสกลุ่มผู้เข้าร่วม")
    yield from _proofs(spec, form)


def _proofs(spec: DirectiveSpec, form: FormSpec) -> Iterator[Inconsistency]:
    """A report proves the directive's own guideline or activity steps, within the activity."""
    kinds = {s.code: s.kind for s in spec.steps}
    for index, rule in enumerate(form.proves):
        loc = ("form", "proves", index)
        if rule.step not in kinds:
            yield ((*loc, "step"), f"{rule.step} is not a step of this directive",
                   f"{rule.step} ไม่ใช่ขั้นตอนของหนังสือสั่งการนี้")
        elif kinds[rule.step] == "report":
            yield ((*loc, "step"), f"{rule.step} is a report step: submitting the form completes "
                   "form.report_step; a report proves guideline or activity steps",
                   f"{rule.step} เป็นขั้นตอนรายงาน การส่งแบบรายงานทำให้ form.report_step เสร็จอยู่แล้ว "
                   "รายงานใช้พิสูจน์ได้เฉพาะขั้นตอนประเภท guideline หรือ activity")
        period = rule.period
        if period is not None and period.end < period.start:
            yield ((*loc, "period", "end"), "the period ends before it starts",
                   "ช่วงเวลาสิ้นสุดก่อนเริ่ม")
        elif period is not None and (period.start < spec.activity_start
                                     or period.end > spec.activity_end):
            yield ((*loc, "period"), "the period must lie within the activity dates",
                   "ช่วงเวลาต้องอยู่ภายในช่วงวันที่จัดกิจกรรม")
    yield from _repeated_in(("form", "proves"), "step", [r.step for r in form.proves],
                            "ขั้นตอนที่รายงานพิสูจน์")
