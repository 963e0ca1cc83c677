"""Use cases of tracking: launch a directive, mark an item done or waive it, read the board.

Routes, flows and the CLI call these; rules come from ``domain``, queries from ``models``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session

from domain.access import can_mark_item, can_see_district, can_waive_item
from domain.amendment import Amendment
from domain.directive import DirectiveSpec
from domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from models import audit
from models.directive import (
    Directive,
    DirectiveStatus,
    DirectiveStep,
    ItemFacts,
    ItemStatus,
    StepKind,
    TrackedItem,
    current_status,
    get_directive_by_slug,
    item_facts,
    item_version_after,
    items_of,
    steps_of,
    update_item,
)
from models.marking import write_done
from models.org import District, districts_of, get_district
from models.outbox import cancel_pending_for_item
from models.user import User, UserPublic
from tidtam.app.amendment import amend_directive
from tidtam.app.events import EventName, directive_event, emit, item_event, item_event_of


@dataclass(frozen=True)
class LaunchResult:
    directive: Directive
    created_directive: bool
    created_items: int
    amendment: Amendment | None = None  # a higher revision of the YAML, applied


def launch_directive(session: Session, spec: DirectiveSpec, *, now: datetime,
                     actor: str = "system:launch-directive",
                     parent_id: int | None = None) -> LaunchResult:
    """Create the directive, its steps and one tracked item per district × step; re-runs add none.

    ``parent_id``: the national directive this is a province's copy of (``tidtam.app.national``).
    Launching a higher ``revision:`` of a launched directive's YAML applies the amended letter
    (``tidtam.app.amendment``); the same revision with a different content is refused.
    """
    if spec.province_code is None:
        raise InvalidInput(f"{spec.slug} is national: launch it with tidtam launch (all provinces)",
                           f"{spec.slug} เป็นหนังสือสั่งการระดับกรมฯ: ใช้ tidtam launch (ทุกจังหวัด)")
    districts = districts_of(session, spec.province_code)
    if not districts:
        raise InvalidInput(f"province {spec.province_code} has no districts loaded; run tidtam init",
                           f"ยังไม่มีข้อมูลอำเภอของจังหวัดรหัส {spec.province_code} — เรียก tidtam init ก่อน")
    directive = get_directive_by_slug(session, spec.slug)
    created_directive = directive is None
    starts = created_directive or directive.status == DirectiveStatus.LOADED
    amended = None
    if directive is None:
        directive = create_directive(session, spec, now, parent_id)
    elif directive.status == DirectiveStatus.CLOSED:
        raise Conflict(f"{spec.slug} is closed ({directive.close_reason}); it is not launched again",
                       f"{spec.slug} ปิดแล้ว ({directive.close_reason}) — นำเข้าซ้ำไม่ได้")
    else:
        amended = amend_directive(session, directive, spec, now=now, actor=actor)
        if directive.status == DirectiveStatus.LOADED:
            directive.status = DirectiveStatus.ACTIVE
            directive.launched_at = now
            session.add(directive)
    steps = ensure_steps(session, directive, spec)
    existing = {(i.step_id, i.district_code) for i in items_of(session, directive.id)}
    new_items = [TrackedItem(directive_id=directive.id, step_id=step.id, district_code=d.code,
                             due_on=step.due_on)
                 for step in steps for d in districts if (step.id, d.code) not in existing]
    session.add_all(new_items)
    if created_directive or new_items:
        audit.record(session, at=now, actor=actor, action="directive.launch", entity="directive",
                     entity_id=directive.id, after={"slug": spec.slug, "items": len(new_items)})
    session.flush()
    if starts:  # one event for the launch, however many items it made
        emit(session, directive_event(session, EventName.DIRECTIVE_LAUNCHED, directive,
                                      actor=actor, now=now, items=len(new_items),
                                      districts=len(districts)))
    if amended is not None and amended.applied:
        return LaunchResult(directive, False, amended.created_items + len(new_items),
                            amended.amendment)
    return LaunchResult(directive, created_directive, len(new_items))


def create_directive(session: Session, spec: DirectiveSpec, now: datetime,
                     parent_id: int | None = None,
                     status: DirectiveStatus = DirectiveStatus.ACTIVE) -> Directive:
    directive = Directive(**Directive.header_of(spec), parent_id=parent_id,
                          definition=spec.model_dump(mode="json"), status=status,
                          launched_at=now if status == DirectiveStatus.ACTIVE else None)
    session.add(directive)
    session.flush()
    return directive


def load_directive(session: Session, spec: DirectiveSpec, *, now: datetime,
                   actor: str = "system:load-directive") -> Directive:
    """Store a province's directive without tracking anything yet (``loaded``): it shows on the
    directives page, and ``launch`` makes it active. Loading it again changes nothing."""
    if spec.province_code is None:
        raise InvalidInput(f"{spec.slug} is national: launch it with tidtam launch (all provinces)",
                           f"{spec.slug} เป็นหนังสือสั่งการระดับกรมฯ: ใช้ tidtam launch (ทุกจังหวัด)")
    directive = get_directive_by_slug(session, spec.slug)
    if directive is not None:
        return directive
    directive = create_directive(session, spec, now, status=DirectiveStatus.LOADED)
    audit.record(session, at=now, actor=actor, action="directive.load", entity="directive",
                 entity_id=directive.id, after={"slug": spec.slug, "revision": spec.revision})
    session.flush()
    return directive


def ensure_steps(session: Session, directive: Directive,
                  spec: DirectiveSpec) -> list[DirectiveStep]:
    """The directive's steps, adding those the YAML has and the database lacks."""
    by_code = {s.code: s for s in steps_of(session, directive.id)}
    for order, step in enumerate(spec.steps, start=1):
        if step.code not in by_code:
            row = DirectiveStep(directive_id=directive.id, order=order, code=step.code,
                                kind=StepKind(step.kind), title_th=step.title_th,
                                title_en=step.title_en, due_on=step.due_on)
            session.add(row)
            by_code[step.code] = row
    session.flush()
    return sorted(by_code.values(), key=lambda s: s.order)


def ensure_active(session: Session, directive_id: int) -> Directive:
    """The directive of an item being changed, if it is active: a closed directive takes no more
    changes (it stays readable), a loaded one has nothing to change yet."""
    directive = session.get(Directive, directive_id)
    _ensure_active(directive.status, directive.reference_no)
    return directive


def _ensure_active(status: DirectiveStatus, reference_no: str) -> None:
    if status == DirectiveStatus.CLOSED:
        raise Conflict(f"directive {reference_no} is closed: it takes no more changes",
                       f"หนังสือสั่งการ {reference_no} ปิดแล้ว แก้ไขไม่ได้อีก")
    if status == DirectiveStatus.LOADED:
        raise Conflict(f"directive {reference_no} has not been launched yet",
                       f"หนังสือสั่งการ {reference_no} ยังไม่ได้เริ่มติดตาม")


def visible_district(session: Session, actor: User, district_code: str) -> District:
    """The district, if it exists (else NotFound) and the actor may see it (else Forbidden)."""
    district = get_district(session, district_code)
    if district is None:
        raise NotFound(f"no district {district_code}", f"ไม่พบอำเภอรหัส {district_code}")
    ensure_district_visible(actor, district.code, district.province_code, district.name_th)
    return district


def ensure_district_visible(actor: User, code: str, province_code: str, name_th: str) -> None:
    """Forbidden unless the actor may see the district (``visible_district``'s rule, on facts
    already read)."""
    if not can_see_district(actor.role, actor.province_code, actor.district_code,
                            code, province_code):
        raise Forbidden(f"you may not see district {code}",
                        f"คุณไม่มีสิทธิ์ดูข้อมูลอำเภอ{name_th}")


def get_item_for(session: Session, actor: User, item_id: int) -> TrackedItem:
    """The item, if it exists and the actor may see its district (else NotFound/Forbidden)."""
    item = session.get(TrackedItem, item_id)
    if item is None:
        raise NotFound(f"no tracked item {item_id}", f"ไม่พบรายการติดตามเลขที่ {item_id}")
    visible_district(session, actor, item.district_code)
    return item


def mark_done(session: Session, actor: User, item_id: int, *, now: datetime,
              note: str | None = None, expected_version: int | None = None) -> TrackedItem:
    """Mark an item done (``complete``) and return the session's copy of it, as written."""
    marked = complete(session, actor, item_id, now=now, note=note,
                      expected_version=expected_version)
    item = session.get(TrackedItem, marked.id)  # no query when the caller has it loaded
    for name in ("status", "completed_by_id", "completed_at", "note", "version"):
        set_committed_value(item, name, getattr(marked, name))
    return item


@dataclass(frozen=True)
class Marked:
    """An item just marked done, as written, with its step's code and its directive's slug
    (what a route answers with, without reading the item again)."""

    facts: ItemFacts  # as read before the change
    status: ItemStatus
    version: int
    note: str | None
    completed_by_id: int
    completed_at: datetime
    cancelled_messages: int

    @property
    def id(self) -> int:
        return self.facts.id


def complete(session: Session, actor: User | UserPublic, item_id: int, *, now: datetime,
             note: str | None = None, expected_version: int | None = None) -> Marked:
    """Mark an item done: checks the district, refuses stale or repeated writes, audits it.

    The write is one conditional UPDATE (this version, still open): of any number of concurrent
    marks holding the same version, the database lets exactly one through; the others get a
    Conflict and write nothing, not even an audit entry.

    The hot path of a click (bench P2), in prepared Core statements and no ORM object: one
    query reads the item with its step, directive, district and their names (the checks below
    are the domain's rules, in the order they always ran), the conditional UPDATE, the outbox
    cancel, the audit row and the event's outbox row; nothing is read twice or flushed.
    """
    return complete_facts(session, actor, item_facts(session, item_id), item_id, now=now,
                          note=note, expected_version=expected_version)


def complete_facts(session: Session, actor: User | UserPublic, facts: ItemFacts | None,
                   item_id: int, *, now: datetime, note: str | None = None,
                   expected_version: int | None = None) -> Marked:
    """``complete`` on the item's facts read already (``item_facts``, or with the sign-in check:
    ``tidtam.app.accounts.live_user_and_item``); None: there is no such item.

    On PostgreSQL the write is one statement (``models.marking.write_done``: the UPDATE, the
    outbox cancel, the audit row and the event, each conditional on the UPDATE): a unit of work
    that read the facts before may run it on an autocommit connection. On SQLite, which has no
    data-modifying CTEs, the same writes one statement each (in the write batch's SAVEPOINT).
    """
    if facts is None:
        raise NotFound(f"no tracked item {item_id}", f"ไม่พบรายการติดตามเลขที่ {item_id}")
    ensure_district_visible(actor, facts.district_code, facts.district_province_code,
                            facts.district_name_th)
    if not can_mark_item(actor.role, actor.district_code, facts.district_code):
        raise Forbidden(f"you may not change district {facts.district_code}",
                        f"คุณไม่มีสิทธิ์แก้ไขรายการของอำเภออื่น ({facts.district_code})")
    _ensure_active(facts.directive_status, facts.directive_reference_no)
    if facts.step_kind == StepKind.REPORT:
        # The report form's submission completes this step (tidtam.app.reporting), never a click.
        raise Conflict("submit the report form to complete this step",
                       "ส่งแบบรายงานเพื่อทำขั้นตอนนี้ให้เสร็จ")
    if expected_version is not None and expected_version != facts.version:
        raise _stale()
    if facts.status != ItemStatus.OPEN:
        raise _status_conflict(facts.id, facts.status)
    note = (note or "").strip() or None
    if note and len(note) > 2000:
        raise InvalidInput("note: at most 2000 characters", "หมายเหตุ: ไม่เกิน 2000 ตัวอักษร")
    before = _state(facts.status, facts.note, facts.version, facts.completed_by_id,
                    facts.completed_at)
    if session.get_bind().dialect.name == "postgresql":
        version = facts.version + 1  # the conditional UPDATE's, if it wins
        event = item_event_of(EventName.ITEM_COMPLETED, facts, version, actor=actor.username,
                              now=now, note=note)
        written = write_done(
            session, item_id=item_id, version=facts.version, step_id=facts.step_id,
            actor_id=actor.id, actor=actor.username, now=now, note=note, before=before,
            after=_state(ItemStatus.DONE, note, version, actor.id, now), event_key=event.key,
            event_subject=str(event.name),
            event_body=json.dumps(event.body(), ensure_ascii=False),
            district_code=facts.district_code, directive_id=facts.directive_id)
        if written is None:
            raise _lost(session, item_id)
        version, cancelled = written
        return Marked(facts, ItemStatus.DONE, version, note, actor.id, now, cancelled)
    version = item_version_after(session, item_id, expected_version=facts.version,
                                 expected_status=ItemStatus.OPEN, status=ItemStatus.DONE,
                                 completed_by_id=actor.id, completed_at=now, note=note)
    if version is None:
        raise _lost(session, item_id)
    cancelled = cancel_pending_for_item(session, item_id, facts.step_id)
    audit.insert(session, at=now, actor=actor.username, actor_id=actor.id, action="item.done",
                 entity="tracked_item", entity_id=item_id, before=before,
                 after={**_state(ItemStatus.DONE, note, version, actor.id, now),
                        "cancelled_messages": cancelled})
    emit(session, item_event_of(EventName.ITEM_COMPLETED, facts, version, actor=actor.username,
                                now=now, note=note), directive_id=facts.directive_id)
    return Marked(facts, ItemStatus.DONE, version, note, actor.id, now, cancelled)


def _lost(session: Session, item_id: int) -> Conflict:
    """The conditional UPDATE matched nothing: another writer changed the item since it was
    read (nothing was written)."""
    status = current_status(session, item_id)
    return _status_conflict(item_id, status) if status != ItemStatus.OPEN else _stale()


def _lost_race(session: Session, item: TrackedItem) -> Conflict:
    """The conditional UPDATE matched nothing: say what the other writer did, if it is clear."""
    session.refresh(item)
    return _not_open(item) if item.status != ItemStatus.OPEN else _stale()


MAX_REASON = 2000


def waive(session: Session, actor: User, item_id: int, *, reason: str, now: datetime,
          expected_version: int | None = None) -> TrackedItem:
    """The coordinator marks a district's step not applicable (ยกเว้น), saying why.

    Only the coordinator of the item's province, only an open item, never the report step (the
    report form completes it). The item is settled like a done one: the sweep and the digest,
    which read open items only, stop chasing it, and what is queued about it is cancelled now.
    """
    item = _for_waiver(session, actor, item_id)
    if expected_version is not None and expected_version != item.version:
        raise _stale()
    if item.status != ItemStatus.OPEN:
        raise _not_open(item)
    reason = _reason(reason, required=True)
    before = _waiver_state(item)
    if update_item(session, item.id, expected_version=item.version,
                   expected_status=ItemStatus.OPEN, status=ItemStatus.WAIVED,
                   waived_by_id=actor.id, waived_at=now, waiver_reason=reason) is None:
        raise _lost_race(session, item)  # changed by someone else since it was read
    cancelled = cancel_pending_for_item(session, item.id, item.step_id)
    audit.record(session, at=now, actor=actor.username, actor_id=actor.id, action="item.waive",
                 entity="tracked_item", entity_id=item.id, before=before,
                 after={**_waiver_state(item), "reason": reason, "cancelled_messages": cancelled})
    emit(session, item_event(session, EventName.ITEM_WAIVED, item, actor=actor.username, now=now,
                             reason=reason))
    session.flush()
    return item


def reopen_waived(session: Session, actor: User, item_id: int, *, now: datetime,
                  reason: str | None = None, expected_version: int | None = None) -> TrackedItem:
    """Undo a waiver (made by mistake): the item is open again and chased like any other.

    The same people as ``waive``; the reason is optional. Who waived it and why stay in the
    audit log (``item.waive``); the item itself forgets them.
    """
    item = _for_waiver(session, actor, item_id)
    if expected_version is not None and expected_version != item.version:
        raise _stale()
    if item.status != ItemStatus.WAIVED:
        raise Conflict(f"item {item.id} is {item.status}, not waived: there is no waiver to undo",
                       "รายการนี้ไม่ได้ถูกยกเว้น จึงไม่มีการยกเว้นให้ยกเลิก")
    reason = _reason(reason, required=False)
    before = _waiver_state(item)
    if update_item(session, item.id, expected_version=item.version,
                   expected_status=ItemStatus.WAIVED, status=ItemStatus.OPEN,
                   waived_by_id=None, waived_at=None, waiver_reason=None) is None:
        raise _stale()
    audit.record(session, at=now, actor=actor.username, actor_id=actor.id, action="item.unwaive",
                 entity="tracked_item", entity_id=item.id, before=before,
                 after={**_waiver_state(item), "reason": reason})
    emit(session, item_event(session, EventName.ITEM_REOPENED, item, actor=actor.username,
                             now=now, reason=reason))
    session.flush()
    return item


def _for_waiver(session: Session, actor: User, item_id: int) -> TrackedItem:
    """The item, if the actor is its province's coordinator and its step may be waived."""
    item = session.get(TrackedItem, item_id)
    if item is None:
        raise NotFound(f"no tracked item {item_id}", f"ไม่พบรายการติดตามเลขที่ {item_id}")
    district = visible_district(session, actor, item.district_code)
    if not can_waive_item(actor.role, actor.province_code, district.province_code):
        raise Forbidden("only the provincial coordinator may mark a step not applicable",
                        "เฉพาะผู้ประสานงานของจังหวัดเท่านั้นที่ยกเว้นขั้นตอนได้")
    ensure_active(session, item.directive_id)
    if session.get(DirectiveStep, item.step_id).kind == StepKind.REPORT:
        raise Conflict("the report step cannot be waived: it is completed by submitting the "
                       "district's report form",
                       "ยกเว้นขั้นตอนรายงานไม่ได้ ขั้นตอนนี้เสร็จเมื่ออำเภอส่งแบบรายงาน")
    return item


def _reason(text: str | None, *, required: bool) -> str | None:
    """The reason trimmed: 1–2000 characters, or None when it may be left out."""
    text = (text or "").strip()
    if not text:
        if required:
            raise InvalidInput("reason: say why this step does not apply to the district",
                               "เหตุผล: ต้องระบุเหตุผลที่ขั้นตอนนี้ไม่ต้องดำเนินการ")
        return None
    if len(text) > MAX_REASON:
        raise InvalidInput(f"reason: at most {MAX_REASON} characters",
                           f"เหตุผล: ไม่เกิน {MAX_REASON} ตัวอักษร")
    return text


def _stale() -> Conflict:
    return Conflict("someone else changed this item; reload and try again",
                    "มีผู้อื่นแก้ไขรายการนี้แล้ว กรุณาโหลดหน้าใหม่แล้วลองอีกครั้ง")


def _not_open(item: TrackedItem) -> Conflict:
    return _status_conflict(item.id, item.status)


def _status_conflict(item_id: int, status: ItemStatus) -> Conflict:
    if status == ItemStatus.WAIVED:
        return Conflict(f"item {item_id} is already waived (not applicable)",
                        "รายการนี้ได้รับการยกเว้นแล้ว (ไม่ต้องดำเนินการ)")
    return Conflict(f"item {item_id} is already {status}", "รายการนี้ทำเสร็จแล้ว")


def _waiver_state(item: TrackedItem) -> dict:
    return {"status": str(item.status), "version": item.version,
            "waived_by_id": item.waived_by_id,
            "waived_at": item.waived_at.isoformat() if item.waived_at else None}


def _item_state(item: TrackedItem) -> dict:
    return _state(item.status, item.note, item.version, item.completed_by_id, item.completed_at)


def _state(status: ItemStatus, note: str | None, version: int, completed_by_id: int | None,
           completed_at: datetime | None) -> dict:
    return {"status": str(status), "note": note, "version": version,
            "completed_by_id": completed_by_id,
            "completed_at": completed_at.isoformat() if completed_at else None}


def mark_done_by_codes(session: Session, username: str, district_code: str, step_code: str, *,
                       now: datetime, note: str | None = None,
                       directive_slug: str | None = None) -> TrackedItem:
    """The CLI's mark-done: unknown user, district, directive or step code each get a clear error.

    Without ``directive_slug``: the one active directive of the district's province that has the
    step (several: the error lists them, and the command must name one).
    """
    from models.directive import active_directives, find_item
    from models.user import get_by_username

    actor = get_by_username(session, username)
    if actor is None:
        raise NotFound(f"no user {username!r}", f"ไม่พบผู้ใช้ {username!r}")
    district = get_district(session, district_code)
    if district is None:
        raise NotFound(f"no district with code {district_code!r}",
                       f"ไม่พบอำเภอรหัส {district_code!r}")
    active = active_directives(session, district.province_code)
    names = ", ".join(d.slug for d in active) or "-"
    if directive_slug is not None:
        directive = get_directive_by_slug(session, directive_slug)
        if directive is None or directive.province_code != district.province_code:
            raise NotFound(f"no directive {directive_slug!r} in province {district.province_code};"
                           f" active: {names}",
                           f"ไม่พบหนังสือสั่งการ {directive_slug!r} ของจังหวัดนี้ — ที่ติดตามอยู่: {names}")
        candidates = [directive]
    else:
        candidates = [d for d in active if find_item(session, d.id, district_code, step_code)]
        if not candidates:
            raise NotFound(f"no active directive has step {step_code!r}; active: {names}",
                           f"ไม่มีหนังสือสั่งการที่ติดตามอยู่ที่มีขั้นตอนรหัส {step_code!r} — มี: {names}")
        if len(candidates) > 1:
            several = ", ".join(d.slug for d in candidates)
            raise InvalidInput(f"step {step_code!r} is in several active directives ({several}): "
                               "name one with --directive",
                               f"ขั้นตอน {step_code!r} มีในหนังสือสั่งการหลายฉบับ ({several}) — "
                               "ระบุด้วย --directive")
    directive = candidates[0]
    item = find_item(session, directive.id, district_code, step_code)
    if item is None:
        codes = ", ".join(s.code for s in steps_of(session, directive.id))
        raise NotFound(f"no step {step_code!r} in {directive.slug} (steps: {codes})",
                       f"ไม่พบขั้นตอนรหัส {step_code!r} (มี: {codes})")
    return mark_done(session, actor, item.id, now=now, note=note)
