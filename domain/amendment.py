"""An amended letter: what changed between the launched revision of a directive and a new one.

An office amends a letter by editing the same YAML and raising ``revision:``. Launching it again
applies the difference (``tidtam.app.amendment``): new steps are tracked, moved dates move the
open items, changed rules (form, conditions, ladder, closures, header) replace the stored
definition. ``diff_directives`` works that difference out and checks the revision; whether a
removed step had work recorded for it is the use case's question (the database knows).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from domain.directive import DirectiveSpec, StepSpec
from domain.errors import Conflict, InvalidInput

# The letter's fields outside its steps, by the name an audit record and a message give them.
RULE_FIELDS = ("form", "conditions", "ladder", "participant_categories", "closures",
               "office_hours", "close_after_working_days")
STEP_TEXT = ("title_th", "title_en")  # a step's wording; its order follows the list


@dataclass(frozen=True)
class Amendment:
    """The difference between two revisions of one directive, by step code and field name."""

    slug: str
    from_revision: int
    to_revision: int
    added_steps: tuple[StepSpec, ...] = ()
    removed_steps: tuple[str, ...] = ()
    moved_steps: dict[str, tuple[date, date]] = field(default_factory=dict)
    renamed_steps: tuple[str, ...] = ()
    changed_rules: tuple[str, ...] = ()
    changed_header: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        """Nothing but (perhaps) the revision number changed."""
        return not (self.added_steps or self.removed_steps or self.moved_steps
                    or self.renamed_steps or self.changed_rules or self.changed_header)

    def describe(self) -> dict[str, Any]:
        """The amendment as an audit record's ``after`` (plain JSON)."""
        return {"revision": [self.from_revision, self.to_revision],
                "added_steps": [s.code for s in self.added_steps],
                "removed_steps": list(self.removed_steps),
                "moved_steps": {code: [str(old), str(new)]
                                for code, (old, new) in self.moved_steps.items()},
                "renamed_steps": list(self.renamed_steps),
                "changed_rules": list(self.changed_rules),
                "changed_header": list(self.changed_header)}

    def summary_en(self) -> str:
        """One line for a command's output: what the amendment does."""
        parts = [f"revision {self.from_revision} → {self.to_revision}"]
        if self.added_steps:
            parts.append("steps added " + ", ".join(s.code for s in self.added_steps))
        if self.moved_steps:
            parts.append("dates moved " + ", ".join(
                f"{code} {old}→{new}" for code, (old, new) in self.moved_steps.items()))
        if self.removed_steps:
            parts.append("steps removed " + ", ".join(self.removed_steps))
        if self.renamed_steps:
            parts.append("steps reworded " + ", ".join(self.renamed_steps))
        if self.changed_rules:
            parts.append("rules changed " + ", ".join(self.changed_rules))
        if self.changed_header:
            parts.append("letter changed " + ", ".join(self.changed_header))
        return "; ".join(parts)


def diff_directives(old: DirectiveSpec, new: DirectiveSpec) -> Amendment:
    """What ``new`` changes in the launched ``old``; refuses what no amendment may do.

    - the same directive only (slug, province, scope);
    - the same revision: only the same content (a re-run); different content must raise the
      revision ("bump revision:"), so an edit is never applied by accident;
    - a lower revision than the launched one is refused;
    - a step keeps its kind (a guideline does not become the report): give it a new code.
    """
    for name in ("slug", "province_code", "scope"):
        if getattr(old, name) != getattr(new, name):
            raise InvalidInput(
                f"{name}: {getattr(new, name)!r} is not the launched directive's "
                f"{getattr(old, name)!r}; an amendment keeps the same {name}",
                f"{name}: {getattr(new, name)!r} ไม่ตรงกับหนังสือสั่งการที่ติดตามอยู่ "
                f"({getattr(old, name)!r}) ฉบับแก้ไขต้องใช้ {name} เดิม")
    amendment = _difference(old, new)
    if new.revision < old.revision:
        raise Conflict(f"{new.slug}: revision {new.revision} is older than the launched "
                       f"revision {old.revision}; nothing was changed",
                       f"{new.slug}: ฉบับแก้ไขที่ {new.revision} เก่ากว่าฉบับที่ติดตามอยู่ "
                       f"(ฉบับที่ {old.revision}) ไม่มีการเปลี่ยนแปลงใด ๆ")
    if new.revision == old.revision and not amendment.is_empty:
        what = amendment.summary_en().split("; ", 1)[1]
        raise Conflict(f"bump revision: {new.slug} differs from its launched revision "
                       f"{old.revision} ({what}); raise revision: to {old.revision + 1} to amend it",
                       f"ต้องเพิ่มเลข revision: {new.slug} ต่างจากฉบับที่ติดตามอยู่ (ฉบับที่ "
                       f"{old.revision}) ให้แก้ revision: เป็น {old.revision + 1} เพื่อนำเข้าฉบับแก้ไข")
    return amendment


def _difference(old: DirectiveSpec, new: DirectiveSpec) -> Amendment:
    before = {s.code: s for s in old.steps}
    after = {s.code: s for s in new.steps}
    for code in before.keys() & after.keys():
        if before[code].kind != after[code].kind:
            raise InvalidInput(
                f"step {code}: its kind cannot change ({before[code].kind} → {after[code].kind}); "
                "give the new step a new code",
                f"ขั้นตอน {code}: เปลี่ยนประเภทไม่ได้ ({before[code].kind} → {after[code].kind}) "
                "ตั้งรหัสใหม่ให้ขั้นตอนใหม่")
    kept = [code for code in after if code in before]
    return Amendment(
        slug=new.slug, from_revision=old.revision, to_revision=new.revision,
        added_steps=tuple(s for s in new.steps if s.code not in before),
        removed_steps=tuple(code for code in before if code not in after),
        moved_steps={code: (before[code].due_on, after[code].due_on) for code in kept
                     if before[code].due_on != after[code].due_on},
        renamed_steps=tuple(code for code in kept if any(
            getattr(before[code], f) != getattr(after[code], f) for f in STEP_TEXT)),
        changed_rules=tuple(f for f in RULE_FIELDS if _dumped(old, f) != _dumped(new, f)),
        changed_header=tuple(f for f in _header_fields() if _dumped(old, f) != _dumped(new, f)))


def _header_fields() -> tuple[str, ...]:
    skip = {"slug", "province_code", "scope", "revision", "steps", *RULE_FIELDS}
    return tuple(f for f in DirectiveSpec.model_fields if f not in skip)


def _dumped(spec: DirectiveSpec, name: str) -> Any:
    return spec.model_dump(mode="json", include={name}).get(name)


def amend_copy(old_national: DirectiveSpec, new_national: DirectiveSpec,
               copy: DirectiveSpec) -> DirectiveSpec:
    """A province's copy of an amended national directive: the Department's new revision, with
    what the province added kept (its own steps; dates it brought forward, where the Department
    did not move that date; its own covering letter, issuer and earlier ``province_due``)."""
    base = new_national.for_province(copy.province_code or "")
    theirs_before = {s.code: s for s in old_national.steps}
    theirs_now = {s.code for s in new_national.steps}
    own_dates = {s.code: s.due_on for s in copy.steps
                 if s.code in theirs_before and s.due_on < theirs_before[s.code].due_on}
    steps = [s.model_copy(update={"due_on": own_dates[s.code]})
             if s.code in own_dates and theirs_before[s.code].due_on == s.due_on else s
             for s in base.steps]
    last = max(s.order or 0 for s in steps)
    steps += [s.model_copy(update={"order": last + n}) for n, s in enumerate(
        (s for s in copy.steps if s.code not in theirs_before and s.code not in theirs_now),
        start=1)]
    update: dict[str, Any] = {}
    for name in ("reference_no", "issuer_th", "issuer_en"):
        if getattr(copy, name) != getattr(old_national, name):
            update[name] = getattr(copy, name)
    if copy.province_due < old_national.province_due:
        update["province_due"] = min(copy.province_due, base.province_due)
    data = {**base.model_dump(), **update, "steps": [s.model_dump() for s in steps]}
    return DirectiveSpec.model_validate(data)
