"""An amended letter's difference (domain.amendment), table-driven over edits of the FY 2567 YAML."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from domain.amendment import amend_copy, diff_directives
from domain.directive import DirectiveSpec, load_directive
from domain.errors import Conflict, InvalidInput
from tidtam.infra.paths import DIRECTIVES

SA_KAEO = load_directive(DIRECTIVES / "fy2567-sakaeo-volunteer-centers.yaml")
NATIONAL = load_directive(DIRECTIVES / "fy2567-national-volunteer-centers.yaml")


def edited(spec: DirectiveSpec, change: Callable[[dict[str, Any]], None],
           revision: int | None = None) -> DirectiveSpec:
    """The spec with ``change`` applied to its data, at ``revision`` (default: one more)."""
    data = spec.model_dump(mode="json")
    for entry in data["steps"]:  # as written in the YAML: a step's order is its place in the list
        entry.pop("order")
    change(data)
    data["revision"] = spec.revision + 1 if revision is None else revision
    return DirectiveSpec.model_validate(data)


def step(data: dict, code: str) -> dict:
    return next(s for s in data["steps"] if s["code"] == code)


def move(code: str, day: str) -> Callable[[dict], None]:
    return lambda data: step(data, code).update(due_on=day)


def add_step(data: dict) -> None:
    data["steps"].insert(3, {"code": "G9", "kind": "guideline", "title_th": "ประชุมติดตามผลครั้งที่ ๒",
                             "title_en": "Second follow-up meeting", "due_on": "2024-08-05"})


def drop(code: str) -> Callable[[dict], None]:
    return lambda data: data["steps"].remove(step(data, code))


def set_field(path: str, value: Any) -> Callable[[dict], None]:
    def change(data: dict) -> None:
        *parents, last = path.split(".")
        target = data
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[last] = value
    return change


# (what the edit is, the edit, the expected difference)
CASES = [
    ("a moved date", move("G5", "2024-08-05"),
     {"moved_steps": {"G5": (date(2024, 8, 2), date(2024, 8, 5))}}),
    ("an added step", add_step, {"added_steps": ["G9"]}),
    ("a removed step", drop("G7"), {"removed_steps": ["G7"]}),
    ("a changed form rule", set_field("form.min_photos_per_kind", 2), {"changed_rules": ["form"]}),
    ("a changed condition", set_field("conditions.min_participants_per_session", 15),
     {"changed_rules": ["conditions"]}),
    ("a changed ladder", set_field("ladder.renotify_every", 3), {"changed_rules": ["ladder"]}),
    ("closing after some working days", set_field("close_after_working_days", 10),
     {"changed_rules": ["close_after_working_days"]}),
    ("a reworded step", set_field("steps.0.title_en", "Read the Department's guideline"),
     {"renamed_steps": ["G1"]}),
    ("a later report date", set_field("province_due", "2024-08-16"),
     {"changed_header": ["province_due"]}),
    ("nothing but the revision", lambda data: None, {}),
]


@pytest.mark.parametrize(("edit", "expected"), [(c[1], c[2]) for c in CASES],
                         ids=[c[0] for c in CASES])
def test_the_difference_names_exactly_what_changed(edit, expected):
    amendment = diff_directives(SA_KAEO, edited(SA_KAEO, edit))
    found = {"added_steps": [s.code for s in amendment.added_steps],
             "removed_steps": list(amendment.removed_steps), "moved_steps": amendment.moved_steps,
             "renamed_steps": list(amendment.renamed_steps),
             "changed_rules": list(amendment.changed_rules),
             "changed_header": list(amendment.changed_header)}
    assert {k: v for k, v in found.items() if v} == expected
    assert (amendment.from_revision, amendment.to_revision) == (1, 2)
    assert amendment.is_empty == (expected == {})


def test_the_same_revision_and_content_is_a_rerun_with_nothing_to_apply():
    amendment = diff_directives(SA_KAEO, edited(SA_KAEO, lambda data: None, revision=1))
    assert amendment.is_empty and amendment.to_revision == amendment.from_revision == 1


@pytest.mark.parametrize(("edit", "message"), [
    (move("G5", "2024-08-05"), "bump revision: .*dates moved G5.*revision: to 2"),
    (add_step, "bump revision: .*steps added G9"),
    (set_field("form.min_photos_per_kind", 2), "bump revision: .*rules changed form"),
], ids=["moved date", "added step", "form rule"])
def test_a_change_under_the_same_revision_is_refused(edit, message):
    with pytest.raises(Conflict, match=message) as error:
        diff_directives(SA_KAEO, edited(SA_KAEO, edit, revision=1))
    assert "revision" in error.value.message_th


def test_a_step_keeps_its_kind():
    new = edited(SA_KAEO, set_field("steps.0.kind", "activity"))
    with pytest.raises(InvalidInput, match="step G1: its kind cannot change") as error:
        diff_directives(SA_KAEO, new)
    assert "ตั้งรหัสใหม่" in error.value.message_th


def test_an_older_revision_is_refused():
    launched = edited(SA_KAEO, lambda data: None, revision=3)
    with pytest.raises(Conflict, match="revision 2 is older than the launched revision 3"):
        diff_directives(launched, edited(SA_KAEO, lambda data: None, revision=2))


def test_another_directive_is_not_an_amendment():
    other = edited(SA_KAEO, set_field("slug", "fy2567-sakaeo-other"))
    with pytest.raises(InvalidInput, match="slug"):
        diff_directives(SA_KAEO, other)


def test_the_audit_description_is_plain_json():
    amendment = diff_directives(SA_KAEO, edited(SA_KAEO, lambda d: (move("G5", "2024-08-05")(d),
                                                                    add_step(d))))
    described = amendment.describe()
    assert described["revision"] == [1, 2]
    assert described["added_steps"] == ["G9"]
    assert described["moved_steps"] == {"G5": ["2024-08-02", "2024-08-05"]}
    assert "steps added G9" in amendment.summary_en()


def test_a_province_copy_keeps_its_own_steps_and_earlier_dates_through_a_national_amendment():
    from domain.national import ProvincialAddition, merge_addition

    first = NATIONAL.steps[0]
    moved = NATIONAL.steps[1]
    addition = ProvincialAddition(
        extends=NATIONAL.slug, province_code="50", reference_no="ชม ๐๐๑๙/ว ๑",
        due_dates={first.code: date(2024, 7, 15), moved.code: date(2024, 7, 16)},
        steps=[{"code": "P1", "kind": "guideline", "title_th": "ประชุมจังหวัด",
                "title_en": "Province meeting", "due_on": "2024-07-25"}])
    copy = merge_addition(NATIONAL, addition)
    new_national = edited(NATIONAL, move(moved.code, "2024-07-26"))
    amended = amend_copy(NATIONAL, new_national, copy)
    due = {s.code: s.due_on for s in amended.steps}
    assert due[first.code] == date(2024, 7, 15)        # the province's earlier date stays
    assert due[moved.code] == date(2024, 7, 26)        # the Department moved it: its new date
    assert "P1" in due and amended.reference_no == "ชม ๐๐๑๙/ว ๑"
    assert (amended.revision, amended.slug, amended.province_code) == (2, copy.slug, "50")
    assert diff_directives(copy, amended).moved_steps == {
        moved.code: (date(2024, 7, 16), date(2024, 7, 26))}
