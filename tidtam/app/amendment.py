"""Use case of an amended letter: apply a new revision of a launched directive's YAML.

The difference comes from ``domain.amendment``; here it meets the recorded work. New steps get
their items, moved dates move the open items (a done or waived one keeps the date it was done
against), changed rules and wording replace the stored definition, and one audit record
describes it all. A step the new revision drops is removed only if nothing was recorded for it
(no item done or waived, no report form started); otherwise the whole amendment is refused,
naming the steps, and nothing changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, update
from sqlmodel import Session, col, select

from domain.amendment import Amendment, diff_directives
from domain.directive import DirectiveSpec
from domain.errors import Conflict
from models import audit
from models.directive import (
    Directive,
    DirectiveStatus,
    DirectiveStep,
    ItemStatus,
    StepKind,
    TrackedItem,
    steps_of,
)
from models.org import Province, districts_of
from models.outbox import OutboxMessage, OutboxStatus
from models.report import Report
from tidtam.app.events import EventName, directive_event, emit


@dataclass(frozen=True)
class AmendmentResult:
    directive: Directive
    amendment: Amendment
    created_items: int = 0
    moved_items: int = 0
    removed_items: int = 0

    @property
    def applied(self) -> bool:
        """Whether a new revision was applied (a re-run of the same one applies nothing)."""
        return self.amendment.to_revision != self.amendment.from_revision


def amend_directive(session: Session, directive: Directive, new_spec: DirectiveSpec, *,
                    now: datetime, actor: str = "system:launch-directive") -> AmendmentResult:
    """Apply ``new_spec`` (a higher revision of the directive's YAML) to the launched directive.

    The same revision with the same content changes nothing; the same revision with different
    content, a lower revision, or a closed directive is refused (Conflict) and changes nothing.
    """
    amendment = check_amendment(session, directive, new_spec)
    if amendment.to_revision == amendment.from_revision:
        return AmendmentResult(directive, amendment)
    old = DirectiveSpec.model_validate(directive.definition)
    steps = {s.code: s for s in steps_of(session, directive.id)}
    removed = sum(_remove_step(session, steps.pop(code)) for code in amendment.removed_steps
                  if code in steps)
    moved = sum(_move_step(session, steps[code], new) for code, (_, new)
                in amendment.moved_steps.items() if code in steps)
    for spec in new_spec.steps:  # wording and place in the list, as the new revision has them
        row = steps.get(spec.code)
        if row is not None and (row.title_th, row.title_en, row.order) != (
                spec.title_th, spec.title_en, spec.order):
            row.title_th, row.title_en, row.order = spec.title_th, spec.title_en, spec.order
            session.add(row)
    created = _add_steps(session, directive, amendment)
    for name, value in Directive.header_of(new_spec).items():
        setattr(directive, name, value)
    directive.definition = new_spec.model_dump(mode="json")
    session.add(directive)
    audit.record(session, at=now, actor=actor, action="directive.amend", entity="directive",
                 entity_id=directive.id, before={"revision": old.revision},
                 after={**amendment.describe(), "created_items": created, "moved_items": moved,
                        "removed_items": removed})
    session.flush()
    change = {k: v for k, v in amendment.describe().items() if k != "revision"}
    # A province's letter says it was amended; the Department's own row has no province, and
    # each province's copy of it, amended in turn, says so for that province.
    if session.get(Province, directive.province_code) is not None:
        emit(session, directive_event(
            session, EventName.DIRECTIVE_AMENDED, directive, actor=actor, now=now,
            from_revision=amendment.from_revision, **change, created_items=created,
            moved_items=moved, removed_items=removed))
    return AmendmentResult(directive, amendment, created, moved, removed)


def check_amendment(session: Session, directive: Directive,
                    new_spec: DirectiveSpec) -> Amendment:
    """The amendment ``new_spec`` would make, or the refusal it would get, changing nothing: so a
    caller amending several directives (the provinces' copies of a national letter) checks them
    all before it changes any."""
    if directive.status == DirectiveStatus.CLOSED:
        raise Conflict(f"{directive.slug} is closed ({directive.close_reason}); it is not amended",
                       f"{directive.slug} ปิดแล้ว ({directive.close_reason}) — แก้ไขไม่ได้")
    old = DirectiveSpec.model_validate(directive.definition)
    amendment = diff_directives(old, new_spec)
    if new_spec.revision != old.revision:
        steps = {s.code: s for s in steps_of(session, directive.id)}
        _refuse_losing_work(session, directive, old, [steps[c] for c in amendment.removed_steps
                                                       if c in steps])
    return amendment


def _refuse_losing_work(session: Session, directive: Directive, old: DirectiveSpec,
                        dropped: list[DirectiveStep]) -> None:
    """Conflict naming every dropped step that has work recorded for it; checked before any
    change, so a refused amendment changes nothing."""
    report_step = old.form.report_step if old.form else None
    reports = session.exec(select(func.count()).select_from(Report)
                           .where(Report.directive_id == directive.id)).one()
    blocked = []
    for step in dropped:
        settled = session.exec(select(func.count()).select_from(TrackedItem).where(
            TrackedItem.step_id == step.id, TrackedItem.status != ItemStatus.OPEN)).one()
        is_report = step.kind == StepKind.REPORT or step.code == report_step
        if settled or (is_report and reports):
            what = f"{settled} done or waived" if settled else f"{reports} report forms"
            blocked.append((step, what))
    if blocked:
        en = "; ".join(f"step {s.code} ({s.title_en}) has {what}" for s, what in blocked)
        th = "; ".join(f"ขั้นตอน {s.code} ({s.title_th})" for s, _ in blocked)
        raise Conflict(f"the amendment removes steps with recorded work — {en}; keep them in the "
                       "YAML (change their dates or wording instead); nothing was changed",
                       f"ฉบับแก้ไขตัดขั้นตอนที่มีการบันทึกผลแล้วออก: {th} — คงขั้นตอนไว้ในไฟล์ "
                       "(แก้วันที่หรือข้อความแทน) ไม่มีการเปลี่ยนแปลงใด ๆ")


def _remove_step(session: Session, step: DirectiveStep) -> int:
    """Drop a step nothing was recorded for, with its (open) items. Queued messages about it
    are cancelled; messages already sent stay in the outbox, no longer linked to the step."""
    items = select(TrackedItem.id).where(TrackedItem.step_id == step.id)
    about = col(OutboxMessage.item_id).in_(items) | (OutboxMessage.step_id == step.id)
    session.execute(update(OutboxMessage)
                    .where(about, OutboxMessage.status == OutboxStatus.QUEUED)
                    .values(status=OutboxStatus.CANCELLED,
                            last_error="step removed by an amended letter before sending")
                    .execution_options(synchronize_session=False))
    session.execute(update(OutboxMessage).where(about).values(item_id=None, step_id=None)
                    .execution_options(synchronize_session=False))
    removed = session.execute(delete(TrackedItem).where(TrackedItem.step_id == step.id)
                              .execution_options(synchronize_session=False)).rowcount
    session.delete(step)
    session.flush()
    return removed


def _move_step(session: Session, step: DirectiveStep, due_on) -> int:
    """Move a step's date and its open items'; queued reminders about them were for the old
    date, so they are cancelled (the next sweep chases the new one)."""
    step.due_on = due_on
    session.add(step)
    open_items = select(TrackedItem.id).where(TrackedItem.step_id == step.id,
                                              TrackedItem.status == ItemStatus.OPEN)
    session.execute(update(OutboxMessage)
                    .where(col(OutboxMessage.item_id).in_(open_items)
                           | (OutboxMessage.step_id == step.id),
                           OutboxMessage.status == OutboxStatus.QUEUED)
                    .values(status=OutboxStatus.CANCELLED,
                            last_error="the step's date moved (amended letter) before sending")
                    .execution_options(synchronize_session=False))
    return session.execute(update(TrackedItem)
                           .where(TrackedItem.step_id == step.id,
                                  TrackedItem.status == ItemStatus.OPEN)
                           .values(due_on=due_on, version=TrackedItem.version + 1)
                           .execution_options(synchronize_session=False)).rowcount


def _add_steps(session: Session, directive: Directive, amendment: Amendment) -> int:
    """The new steps, and one open item per district for each (none for a national directive,
    whose items live in the provinces' copies)."""
    districts = districts_of(session, directive.province_code) if directive.province_code else []
    created = 0
    for spec in amendment.added_steps:
        step = DirectiveStep(directive_id=directive.id, order=spec.order, code=spec.code,
                             kind=StepKind(spec.kind), title_th=spec.title_th,
                             title_en=spec.title_en, due_on=spec.due_on)
        session.add(step)
        session.flush()
        session.add_all([TrackedItem(directive_id=directive.id, step_id=step.id,
                                     district_code=d.code, due_on=step.due_on) for d in districts])
        created += len(districts)
    session.flush()
    return created
