"""A province's additions to a national directive: its own steps and earlier deadlines.

The Department (กรมการพัฒนาชุมชน) issues a directive to every province (``scope: national``);
each province carries out its own copy (``DirectiveSpec.for_province``). A province may add steps
of its own and bring the Department's deadlines forward, never push them back: the Department's
dates still bind the province. ``merge_addition`` checks that and returns the province's directive.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

from pydantic import Field

from domain.directive import (
    Code,
    Day,
    DirectiveError,
    DirectiveSpec,
    Inconsistency,
    Problem,
    ProvinceCode,
    Slug,
    StepSpec,
    Strict,
    Text,
    inconsistencies,
    parse_model,
    read_text,
)


class ProvincialAddition(Strict):
    """What a province writes to add to the Department's directive (``extends:`` its slug)."""

    extends: Slug = Field(description="the national directive's slug")
    province_code: ProvinceCode
    reference_no: Text | None = Field(None, description="the province's own covering letter")
    issuer_th: Text | None = None
    issuer_en: Text | None = None
    province_due: Day | None = Field(
        None, description="an earlier day for districts to report to the province")
    due_dates: dict[Code, Day] = Field(
        default_factory=dict, description="earlier due dates for the Department's steps, by code")
    steps: list[StepSpec] = Field(default_factory=list, description="the province's own steps")


def load_addition(path: Path) -> ProvincialAddition:
    return parse_addition(read_text(path), str(path))


def parse_addition(text: str, source: str) -> ProvincialAddition:
    return parse_model(text, source, ProvincialAddition, _addition_checks)


def is_addition(text: str) -> bool:
    """Whether a YAML text is a province's addition (it extends a national directive)."""
    return any(line.startswith("extends:") for line in text.splitlines())


def _addition_checks(addition: ProvincialAddition) -> list[Inconsistency]:
    codes = [s.code for s in addition.steps]
    return [((("steps", i, "code")), f"code {c} repeats steps[{codes.index(c)}]",
             f"รหัสขั้นตอน {c} ซ้ำกับ steps[{codes.index(c)}]")
            for i, c in enumerate(codes) if c in codes[:i]]


def merge_addition(national: DirectiveSpec, addition: ProvincialAddition,
                   source: str = "addition") -> DirectiveSpec:
    """The province's directive: the Department's, with the addition's steps and earlier dates.

    Raises ``DirectiveError`` listing every problem: an unknown step, a later deadline than the
    Department's, a step code the Department already uses, or a merged directive that breaks a
    directive rule (e.g. a step due after the report to the province).
    """
    if not national.is_national:
        raise DirectiveError(f"{addition.extends} is not a national directive (scope: national)",
                             f"{addition.extends} ไม่ใช่หนังสือสั่งการระดับกรมฯ (scope: national)")
    problems = [Problem(source, 0, field, en, th)
                for field, en, th in _against_national(national, addition)]
    if problems:
        raise DirectiveError.from_problems(problems)
    base = national.for_province(addition.province_code)
    due = addition.due_dates
    steps = [s.model_copy(update={"due_on": due.get(s.code, s.due_on)}) for s in base.steps]
    last_order = max(s.order or 0 for s in steps)
    steps += [s.model_copy(update={"order": last_order + i})
              for i, s in enumerate(addition.steps, start=1)]
    update = {"steps": steps, "province_due": addition.province_due or base.province_due}
    for field in ("reference_no", "issuer_th", "issuer_en"):
        if getattr(addition, field):
            update[field] = getattr(addition, field)
    merged = DirectiveSpec.model_validate({**base.model_dump(), **{
        k: v for k, v in update.items() if k != "steps"},
        "steps": [s.model_dump() for s in steps]})
    found = [Problem(source, 0, _merged_field(merged, loc), en, th)
             for loc, en, th in inconsistencies(merged)]
    if found:
        raise DirectiveError.from_problems(found)
    return merged


def _merged_field(merged: DirectiveSpec, loc: tuple) -> str:
    """A merged directive's field by step code (``steps[G8].due_on``): indexes mean nothing here."""
    if len(loc) > 1 and loc[0] == "steps" and isinstance(loc[1], int):
        loc = (f"steps[{merged.steps[loc[1]].code}]", *loc[2:])
    return ".".join(map(str, loc))


def _against_national(national: DirectiveSpec,
                      addition: ProvincialAddition) -> Iterator[tuple[str, str, str]]:
    """Dates may only come earlier; added steps must not reuse the Department's codes."""
    theirs = {s.code: s for s in national.steps}
    for code, day in addition.due_dates.items():
        step = theirs.get(code)
        if step is None:
            yield (f"due_dates.{code}", f"the Department's directive has no step {code}",
                   f"หนังสือสั่งการของกรมฯ ไม่มีขั้นตอนรหัส {code}")
        elif day > step.due_on:
            yield (f"due_dates.{code}", _later_en(day, step.due_on), _later_th(day, step.due_on))
    if addition.province_due and addition.province_due > national.province_due:
        yield ("province_due", _later_en(addition.province_due, national.province_due),
               _later_th(addition.province_due, national.province_due))
    for index, step in enumerate(addition.steps):
        if step.code in theirs:
            yield (f"steps[{index}].code",
                   f"step {step.code} is the Department's; give the province's own step a new code",
                   f"รหัสขั้นตอน {step.code} เป็นของกรมฯ แล้ว ตั้งรหัสใหม่ให้ขั้นตอนของจังหวัด")


def _later_en(day: date, theirs: date) -> str:
    return f"{day} is later than the Department's {theirs}; a province may only bring dates forward"


def _later_th(day: date, theirs: date) -> str:
    return f"{day} ช้ากว่ากำหนดของกรมฯ ({theirs}) จังหวัดกำหนดได้เร็วขึ้นเท่านั้น ไม่ให้เลื่อนออกไป"
