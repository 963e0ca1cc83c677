"""Use cases of the report form: save a draft, attach photos, submit, review, compile.

A report is addressed by (a directive, a district code): every use case takes the directive it
acts on as the keyword ``directive`` (never "the newest"), so a province following several
letters at once keeps each letter's reports apart. A closed directive's reports stay readable,
printable and exportable, and take no more changes (Conflict). Every change bumps
the report's version in one conditional UPDATE — of two writers holding the same version, one
gets a Conflict instead of silently overwriting the other — and writes one audit entry in the
same transaction. Submitting completes the directive's report step on the board, so the
escalation sweep stops chasing it; returning or reopening puts it back. Submitting also completes
the steps the directive says its report proves (``form.proves``), "from the report", with the
session as evidence; those stay done through a return or a reopening, and the next submit opens
again one its report no longer proves (``domain.evidence``: a step done by hand is never touched).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import event
from sqlmodel import Session

from domain.access import DISTRICT_ROLES, PROVINCE_ROLES, can_edit_report, can_review_report
from domain.directive import DirectiveSpec
from domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from domain.evidence import Proof, proofs, step_change
from domain.report import (
    CheckedReport,
    Compilation,
    ReportInvalid,
    ReportSummary,
    check_report,
    compile_province,
    form_of,
    normalise_raw,
    summarise,
)
from models import audit
from models.audit import AuditEntry, entries_for
from models.directive import (
    Directive,
    DirectiveStatus,
    ItemStatus,
    TrackedItem,
    find_item,
    get_directive_by_slug,
    update_item,
)
from models.org import District, districts_of
from models.outbox import cancel_pending_for_item
from models.report import (
    EDITABLE,
    Report,
    ReportPhoto,
    ReportStatus,
    delete_photo,
    get_report,
    insert_report,
    photo_counts,
    photos_of,
    reports_of,
    update_report,
)
from models.user import User
from tidtam.app import review
from tidtam.app.directives import directive_in, visible_directive
from tidtam.app.events import EventName, emit, report_event
from tidtam.app.labels import status_th
from tidtam.app.tracking import ensure_active, visible_district
from tidtam.infra.photos import PhotoLimits, PhotoStore, StoredPhoto, sanitise_filename

MAX_COMMENT = 2000
REVIEWABLE = (ReportStatus.SUBMITTED, ReportStatus.ACCEPTED)


def spec_of(directive: Directive) -> DirectiveSpec:
    """The directive as launched (its stored YAML, validated again): the form and its rules."""
    return DirectiveSpec.model_validate(directive.definition)


def directive_named(session: Session, actor: User, slug: str) -> Directive:
    """The directive a page's address names, if the actor may see it (NotFound, Forbidden
    otherwise): the province's and the Department's people as its board, and a district's
    people too — their own district's report is checked when it is read."""
    directive = get_directive_by_slug(session, slug)
    if directive is not None and directive.province_code is not None and \
            actor.role in DISTRICT_ROLES and actor.province_code == directive.province_code:
        return directive
    return visible_directive(session, actor, slug)


def directive_for_report(session: Session, actor: User, district_code: str,
                         slug: str | None) -> Directive:
    """The directive an API call about a district's report means: the one it names, or else the
    district's province's only active directive; with several active and none named, a
    Conflict that lists them."""
    if slug:
        return directive_named(session, actor, slug)
    return directive_in(session, visible_district(session, actor, district_code).province_code, None)


def directive_for_province(session: Session, actor: User, slug: str | None) -> Directive:
    """The directive an API call of the province (its compilation, its report to the
    Department) means: the one it names, or else the actor's province's only active one."""
    if slug:
        return directive_named(session, actor, slug)
    if actor.province_code is None:
        raise Forbidden("only a province compiles its districts' reports",
                        "เฉพาะเจ้าหน้าที่ระดับจังหวัดเท่านั้นที่รวบรวมรายงานของอำเภอได้")
    return directive_in(session, actor.province_code, None)


@dataclass(frozen=True)
class ReportView:
    """One district's report as a page shows it: what was typed, what is wrong, what is derived.

    ``can_edit``: the actor may change it now (their district, draft or returned, the
    directive active). ``can_review``: the actor is the coordinator and it is submitted
    (accept/return) or accepted (reopen), the directive active. ``closed``: the directive is
    closed, the report read-only.
    """

    directive: Directive
    spec: DirectiveSpec
    district: District
    report: Report | None
    checked: CheckedReport
    summary: ReportSummary
    photos: list[ReportPhoto]
    can_edit: bool
    can_review: bool
    history: list[AuditEntry]

    @property
    def version(self) -> int:
        """What the next write sends as ``expected_version`` (0: nothing saved yet)."""
        return self.report.version if self.report else 0

    @property
    def closed(self) -> bool:
        return self.directive.status == DirectiveStatus.CLOSED


@dataclass(frozen=True)
class _Handle:
    directive: Directive
    spec: DirectiveSpec
    district: District


def _handle(session: Session, actor: User, district_code: str, directive: Directive,
            *, changing: bool = False) -> _Handle:
    """The district (NotFound/Forbidden as the board's), in the directive's province, and the
    form's spec. ``changing``: the directive must be active (a closed one is read-only)."""
    district = visible_district(session, actor, district_code)
    if district.province_code != directive.province_code:
        raise NotFound(f"district {district.code} is not in directive {directive.slug}",
                       f"อำเภอ{district.name_th}ไม่อยู่ในหนังสือสั่งการ {directive.reference_no}")
    if changing:
        ensure_active(session, directive.id)
    spec = spec_of(directive)
    form_of(spec)  # a directive without a form has no report to work on
    return _Handle(directive, spec, district)


# --- reading ----------------------------------------------------------------------------------

def report_view(session: Session, actor: User, district_code: str, *,
                directive: Directive) -> ReportView:
    """The district's report for the directive; an empty form if none was saved yet."""
    handle = _handle(session, actor, district_code, directive)
    return _view(session, actor, handle, get_report(session, handle.directive.id,
                                                      handle.district.code))


def _view(session: Session, actor: User, handle: _Handle, report: Report | None) -> ReportView:
    photos = photos_of(session, report.id) if report else []
    checked = check_report(report.content if report else {}, handle.spec,
                           Counter(p.session_key for p in photos))
    status = report.status if report else ReportStatus.DRAFT
    active = handle.directive.status == DirectiveStatus.ACTIVE
    return ReportView(
        directive=handle.directive, spec=handle.spec, district=handle.district, report=report,
        checked=checked, summary=summarise(checked.content, handle.spec), photos=photos,
        can_edit=can_edit_report(actor.role, actor.district_code, handle.district.code)
        and status in EDITABLE and active,
        can_review=can_review_report(actor.role) and status in REVIEWABLE and active,
        history=entries_for(session, "report", report.id) if report else [])


def get_photo_for(session: Session, actor: User, photo_id: int) -> ReportPhoto:
    """A photo, if it exists and the actor may see its district (else NotFound/Forbidden)."""
    return _photo_context(session, actor, photo_id)[0]


def _photo_context(session: Session, actor: User, photo_id: int,
                   changing: bool = False) -> tuple[ReportPhoto, Report, _Handle]:
    photo = session.get(ReportPhoto, photo_id)
    if photo is None:
        raise NotFound(f"no photo {photo_id}", f"ไม่พบรูปภาพเลขที่ {photo_id}")
    report = session.get(Report, photo.report_id)
    handle = _handle(session, actor, report.district_code,
                     session.get(Directive, report.directive_id), changing=changing)
    return photo, report, handle


# --- the district writes ----------------------------------------------------------------------

def save_draft(session: Session, actor: User, district_code: str, raw: Any, *,
               directive: Directive, expected_version: int, now: datetime,
               store: PhotoStore | None = None) -> ReportView:
    """Store the form as typed (errors and all: nothing is lost); expected_version 0 creates it.

    With ``store``, the photos of sessions the new draft no longer has are removed with them.
    """
    handle = _handle(session, actor, district_code, directive, changing=True)
    _require_editor(actor, handle.district)
    content = normalise_raw(raw, handle.spec)
    report = get_report(session, handle.directive.id, handle.district.code)
    before = None
    if report is None:
        report = _create(session, actor, handle, content, expected_version, now)
    else:
        _require_editable(report)
        before = _state(report)
        _change(session, report, expected_version, EDITABLE, content=content, updated_at=now,
                updated_by_id=actor.id)
    _audit(session, actor, now, "report.save", report, before,
           sessions=len(content["sessions"]), outcomes=len(content["outcomes"]))
    if store is not None:
        keys = _session_keys(report)
        for photo in photos_of(session, report.id):
            if photo.session_key not in keys:
                remove_photo(session, actor, photo.id, store=store, now=now)
    return _view(session, actor, handle, report)


def _create(session: Session, actor: User, handle: _Handle, content: dict,
            expected_version: int, now: datetime) -> Report:
    """The first save; a second first save racing it finds the unique key taken: Conflict."""
    if expected_version != 0:
        raise _stale()
    report = insert_report(session, Report(
        directive_id=handle.directive.id, district_code=handle.district.code, content=content,
        created_at=now, updated_at=now, updated_by_id=actor.id))
    if report is None:
        raise _stale()
    return report


def add_photo(session: Session, actor: User, district_code: str, session_key: str,
              data: bytes, filename: str, *, directive: Directive, store: PhotoStore,
              now: datetime) -> ReportPhoto:
    """Attach a photo to a saved session of the draft; its files go if the row does not stay."""
    handle = _handle(session, actor, district_code, directive, changing=True)
    _require_editor(actor, handle.district)
    report = get_report(session, handle.directive.id, handle.district.code)
    if report is not None:
        _require_editable(report)
    if report is None or session_key not in _session_keys(report):
        raise InvalidInput("save the session first, then add its photos (unknown session)",
                           "บันทึกข้อมูลการจัดกิจกรรมครั้งนี้ก่อน แล้วจึงเพิ่มรูปภาพ")
    form = form_of(handle.spec)
    stored = store.save(data, filename, PhotoLimits(max_bytes=form.photo_max_bytes,
                                                    max_pixels=form.photo_max_pixels))
    try:
        photo = _attach(session, actor, report, session_key, stored, filename, now)
    except BaseException:
        store.delete(stored)
        raise
    _after_transaction(session, rolled_back=lambda: store.delete(stored))
    return photo


def _session_keys(report: Report) -> set[str]:
    return {entry.get("key") for entry in report.content.get("sessions", [])}


def _attach(session: Session, actor: User, report: Report, session_key: str,
            stored: StoredPhoto, filename: str, now: datetime) -> ReportPhoto:
    before = _bump_editable(session, report, actor, now)
    photo = ReportPhoto(
        report_id=report.id, session_key=session_key, stored_name=stored.stored_name,
        display_name=stored.display_name, thumb_name=stored.thumb_name,
        original_filename=sanitise_filename(filename), content_type=stored.content_type,
        size_bytes=stored.size_bytes, width=stored.width, height=stored.height,
        sha256=stored.sha256, uploaded_at=now, uploaded_by_id=actor.id)
    session.add(photo)
    session.flush()
    _audit(session, actor, now, "report.photo.add", report, before, photo_id=photo.id,
           session_key=session_key, file=photo.original_filename)
    return photo


def remove_photo(session: Session, actor: User, photo_id: int, *, store: PhotoStore,
                 now: datetime) -> None:
    """Detach a photo; its files are deleted once the change is committed (kept on rollback)."""
    photo, report, handle = _photo_context(session, actor, photo_id, changing=True)
    _require_editor(actor, handle.district)
    _require_editable(report)
    before = _bump_editable(session, report, actor, now)
    files = _Files(photo.stored_name, photo.display_name, photo.thumb_name)
    if not delete_photo(session, photo.id):
        raise Conflict("this photo was already removed; reload the page",
                       "รูปภาพนี้ถูกลบไปแล้ว กรุณาโหลดหน้าใหม่")
    session.expunge(photo)
    _audit(session, actor, now, "report.photo.remove", report, before, photo_id=photo_id,
           session_key=photo.session_key, file=photo.original_filename)
    _after_transaction(session, committed=lambda: store.delete(files))


@dataclass(frozen=True)
class _Files:
    stored_name: str
    display_name: str
    thumb_name: str


def _bump_editable(session: Session, report: Report, actor: User, now: datetime) -> dict:
    """A photo change is a change of the report: new version, refused once it left draft.

    Photos of one draft may be added at once by several people (no version is asked for: each
    photo is its own row), so the state before is the one the UPDATE replaced, not as read.
    """
    if update_report(session, report.id, statuses=EDITABLE, updated_at=now,
                     updated_by_id=actor.id) is None:
        session.refresh(report)
        _require_editable(report)
        raise _stale()
    return {**_state(report), "version": report.version - 1}


def submit_report(session: Session, actor: User, district_code: str, *, directive: Directive,
                  expected_version: int, now: datetime) -> ReportView:
    """Send the report to the province: only without errors; completes the report step."""
    handle = _handle(session, actor, district_code, directive, changing=True)
    _require_editor(actor, handle.district)
    report = _existing(session, handle)
    _require_editable(report)
    if report.version != expected_version:
        raise _stale()
    checked = check_report(report.content, handle.spec, photo_counts(session, report.id))
    if checked.errors:
        raise ReportInvalid(checked.errors)
    before = _state(report)
    _change(session, report, expected_version, EDITABLE, status=ReportStatus.SUBMITTED,
            submitted_at=now, submitted_by_id=actor.id)
    _audit(session, actor, now, "report.submit", report, before)
    _set_item(session, actor, handle, now, done=True, via="report.submit")
    _prove_steps(session, actor, handle, report, checked, now)
    _emit(session, EventName.REPORT_SUBMITTED, report, actor, now)
    review.enqueue_nudge(session, report, handle.directive, now)
    if before["status"] == ReportStatus.RETURNED:
        review.notify_resubmitted(session, report, handle.directive, now, submitter=actor)
    return _view(session, actor, handle, report)


# --- the province reviews ---------------------------------------------------------------------

def return_report(session: Session, actor: User, district_code: str, *, directive: Directive,
                  comment: str, expected_version: int, now: datetime) -> ReportView:
    """Send a submitted report back with what to correct; the report step is open again."""
    handle, report = _for_review(session, actor, district_code, directive)
    _require_status(report, ReportStatus.SUBMITTED)
    comment = _required_text(comment, ("comment: write what to correct",
                                       "ความเห็น: ต้องระบุสิ่งที่ต้องแก้ไข"))
    before = _state(report)
    _change(session, report, expected_version, (ReportStatus.SUBMITTED,),
            status=ReportStatus.RETURNED, review_comment=comment, reviewed_at=now,
            reviewed_by_id=actor.id)
    _audit(session, actor, now, "report.return", report, before, comment=comment)
    _set_item(session, actor, handle, now, done=False, via="report.return")
    _emit(session, EventName.REPORT_RETURNED, report, actor, now, comment=comment)
    review.cancel(session, report)
    review.notify_district(session, report, handle.directive, review.RETURNED, now,
                           reviewer=actor, comment=comment)
    return _view(session, actor, handle, report)


def accept_report(session: Session, actor: User, district_code: str, *, directive: Directive,
                  expected_version: int, now: datetime) -> ReportView:
    """Accept a submitted report: it is locked, and counts in the provincial compilation."""
    handle, report = _for_review(session, actor, district_code, directive)
    _require_status(report, ReportStatus.SUBMITTED)
    before = _state(report)
    _change(session, report, expected_version, (ReportStatus.SUBMITTED,),
            status=ReportStatus.ACCEPTED, accepted_at=now, reviewed_at=now,
            reviewed_by_id=actor.id)
    _audit(session, actor, now, "report.accept", report, before)
    _set_item(session, actor, handle, now, done=True, via="report.accept")
    _emit(session, EventName.REPORT_ACCEPTED, report, actor, now)
    review.cancel(session, report)
    review.notify_district(session, report, handle.directive, review.ACCEPTED, now,
                           reviewer=actor)
    return _view(session, actor, handle, report)


def reopen_report(session: Session, actor: User, district_code: str, *, directive: Directive,
                  reason: str, expected_version: int, now: datetime) -> ReportView:
    """Unlock an accepted report for correction; the reason goes to the district and the log."""
    handle, report = _for_review(session, actor, district_code, directive)
    if report.status != ReportStatus.ACCEPTED:
        raise Conflict("only an accepted report can be reopened",
                       "เปิดให้แก้ไขได้เฉพาะรายงานที่จังหวัดรับแล้ว")
    reason = _required_text(reason, ("reason: say why the report is reopened",
                                     "เหตุผล: ต้องระบุเหตุผลที่เปิดให้แก้ไข"))
    before = _state(report)
    _change(session, report, expected_version, (ReportStatus.ACCEPTED,),
            status=ReportStatus.RETURNED, review_comment=reason, reviewed_at=now,
            reviewed_by_id=actor.id, accepted_at=None)
    _audit(session, actor, now, "report.reopen", report, before, reason=reason)
    _set_item(session, actor, handle, now, done=False, via="report.reopen")
    _emit(session, EventName.REPORT_REOPENED, report, actor, now, reason=reason)
    review.notify_district(session, report, handle.directive, review.REOPENED, now,
                           reviewer=actor, comment=reason)
    return _view(session, actor, handle, report)


def _for_review(session: Session, actor: User, district_code: str,
                directive: Directive) -> tuple[_Handle, Report]:
    handle = _handle(session, actor, district_code, directive, changing=True)
    if not can_review_report(actor.role):
        raise Forbidden("only the provincial coordinator reviews reports",
                        "เฉพาะผู้ประสานงานของจังหวัดเท่านั้นที่ตรวจรายงานได้")
    return handle, _existing(session, handle)


# --- the provincial compilation ---------------------------------------------------------------

def compile_for(session: Session, actor: User, *, directive: Directive) -> Compilation:
    """The province's totals over the directive's accepted reports; for the coordinator and the
    provincial head (a closed directive's too: its compilation stays readable)."""
    if actor.role not in PROVINCE_ROLES:
        raise Forbidden("only the province compiles the districts' reports",
                        "เฉพาะเจ้าหน้าที่ระดับจังหวัดเท่านั้นที่รวบรวมรายงานของอำเภอได้")
    if directive.province_code != actor.province_code:
        raise Forbidden(f"directive {directive.slug} belongs to another province",
                        "หนังสือสั่งการนี้เป็นของจังหวัดอื่น")
    return compile_directive(session, directive)


def compile_directive(session: Session, directive: Directive) -> Compilation:
    """The compilation with no access check, for flows and the CLI (which run as the system)."""
    spec = spec_of(directive)
    districts = [(d.code, d.name_th, d.name_en)
                 for d in districts_of(session, directive.province_code)]
    reports = {r.district_code: (str(r.status), check_report(r.content, spec).content)
               for r in reports_of(session, directive.id)}
    return compile_province(spec, districts, reports)


# --- rules and helpers ------------------------------------------------------------------------

def _require_editor(actor: User, district: District) -> None:
    if not can_edit_report(actor.role, actor.district_code, district.code):
        raise Forbidden(f"only the staff of district {district.code} may edit its report",
                        f"เฉพาะเจ้าหน้าที่ของอำเภอ{district.name_th}เท่านั้นที่แก้ไขรายงานนี้ได้")


def _require_editable(report: Report) -> None:
    if report.status == ReportStatus.SUBMITTED:
        raise Conflict("the report is submitted, waiting for the province's review",
                       "ส่งรายงานแล้ว อยู่ระหว่างรอจังหวัดตรวจ")
    if report.status == ReportStatus.ACCEPTED:
        raise Conflict("the report is accepted and locked",
                       "จังหวัดรับรายงานแล้ว รายงานถูกล็อกไว้ แก้ไขไม่ได้")


def _require_status(report: Report, wanted: ReportStatus) -> None:
    if report.status != wanted:
        raise Conflict("only a submitted report can be accepted or returned",
                       "รับหรือส่งกลับได้เฉพาะรายงานที่ส่งมาแล้วและรอตรวจ")


def _existing(session: Session, handle: _Handle) -> Report:
    report = get_report(session, handle.directive.id, handle.district.code)
    if report is None:
        raise NotFound(f"district {handle.district.code} has not saved a report yet",
                       f"อำเภอ{handle.district.name_th}ยังไม่ได้บันทึกรายงาน")
    return report


def _required_text(text: str | None, label: tuple[str, str]) -> str:
    text = (text or "").strip()
    if not 1 <= len(text) <= MAX_COMMENT:
        raise InvalidInput(f"{label[0]} (1–{MAX_COMMENT} characters)",
                           f"{label[1]} (1–{MAX_COMMENT} ตัวอักษร)")
    return text


def _stale() -> Conflict:
    return Conflict("someone else saved this report; reload and try again",
                    "มีผู้อื่นบันทึกรายงานนี้ไปแล้ว กรุณาโหลดหน้าใหม่แล้วลองอีกครั้ง")


def _change(session: Session, report: Report, expected_version: int,
            statuses: tuple[ReportStatus, ...], **values: Any) -> None:
    """Write ``values`` only if the report is still at ``expected_version`` and in one of
    ``statuses`` — checked by the database in the UPDATE itself, so of concurrent writers
    holding the same version exactly one succeeds."""
    if report.version != expected_version or update_report(
            session, report.id, expected_version=expected_version, statuses=statuses,
            **values) is None:
        raise _stale()


def _state(report: Report) -> dict:
    return {"status": str(report.status), "version": report.version}


def _audit(session: Session, actor: User, now: datetime, action: str, report: Report,
           before: dict | None, **extra: Any) -> None:
    audit.record(session, at=now, actor=actor.username, actor_id=actor.id, action=action,
                 entity="report", entity_id=report.id, before=before,
                 after={**_state(report), "district_code": report.district_code, **extra})


def _set_item(session: Session, actor: User, handle: _Handle, now: datetime, *, done: bool,
              via: str) -> None:
    """Complete (or reopen) the report step on the board; a waived step is left alone.

    One conditional UPDATE (the version read, the status expected). The report's own
    conditional write already let only one of concurrent report writers through; a change of
    the item itself in between (a province's addition moving its due date bumps the version)
    is read again and the step follows the report all the same.
    """
    wanted, current = (ItemStatus.DONE, ItemStatus.OPEN) if done else (ItemStatus.OPEN,
                                                                        ItemStatus.DONE)
    item = find_item(session, handle.directive.id, handle.district.code,
                     form_of(handle.spec).report_step)
    for _attempt in range(3):
        if item is None or item.status != current:
            return
        before = _item_state(item)
        completed = (actor.id, now) if done else (None, None)
        if update_item(session, item.id, expected_version=item.version, expected_status=current,
                       status=wanted, completed_by_id=completed[0],
                       completed_at=completed[1]) is not None:
            break
        session.refresh(item)
    else:
        raise Conflict("the board's report step kept changing; try again",
                       "ขั้นตอนรายงานบนกระดานติดตามถูกแก้ไขพร้อมกัน กรุณาลองอีกครั้ง")
    after = {**_item_state(item), "via": via}
    if done:
        after["cancelled_messages"] = cancel_pending_for_item(session, item.id, item.step_id)
    audit.record(session, at=now, actor=actor.username, actor_id=actor.id,
                 action="item.done" if done else "item.reopen", entity="tracked_item",
                 entity_id=item.id, before=before, after=after)


def _prove_steps(session: Session, actor: User, handle: _Handle, report: Report,
                 checked: CheckedReport, now: datetime) -> None:
    """The steps the directive says its report proves (``form.proves``): complete those the
    sessions prove, open again those done only by an earlier report that this one no longer
    proves (``domain.evidence.step_change``); each change audited with its evidence."""
    for step, proof in proofs(handle.spec.proof_rules(), checked.content.sessions).items():
        item = find_item(session, handle.directive.id, handle.district.code, step)
        if item is not None:
            _apply_proof(session, actor, item, report, proof, now)


def _apply_proof(session: Session, actor: User, item: TrackedItem, report: Report,
                 proof: Proof | None, now: datetime) -> None:
    change = step_change(str(item.status), item.evidence is not None, proof is not None)
    if change == "keep" or (change == "refresh" and item.evidence == proof.as_evidence(report.id)):
        return
    before = {**_item_state(item), "evidence": item.evidence}
    if change == "reopen":
        values: dict[str, Any] = {"status": ItemStatus.OPEN, "completed_by_id": None,
                                  "completed_at": None, "evidence": None}
    else:
        values = {"status": ItemStatus.DONE, "evidence": proof.as_evidence(report.id)}
        if change == "complete":
            values.update(completed_by_id=actor.id, completed_at=now)
    if update_item(session, item.id, expected_version=item.version,
                   expected_status=item.status, **values) is None:
        raise Conflict("a step the report proves changed at the same time; try again",
                       "ขั้นตอนที่รายงานยืนยันถูกแก้ไขพร้อมกัน กรุณาลองอีกครั้ง")
    after = {**_item_state(item), "via": "report.proves", "evidence": item.evidence}
    if change == "complete":
        after["cancelled_messages"] = cancel_pending_for_item(session, item.id, item.step_id)
    action = {"complete": "item.done", "refresh": "item.evidence", "reopen": "item.reopen"}[change]
    audit.record(session, at=now, actor=actor.username, actor_id=actor.id, action=action,
                 entity="tracked_item", entity_id=item.id, before=before, after=after)


def _emit(session: Session, name: EventName, report: Report, actor: User, now: datetime,
          **payload: Any) -> None:
    emit(session, report_event(session, name, report, actor=actor.username, now=now, **payload),
         report_id=report.id)


def _item_state(item: TrackedItem) -> dict:
    return {"status": str(item.status), "version": item.version,
            "completed_by_id": item.completed_by_id,
            "completed_at": item.completed_at.isoformat() if item.completed_at else None}


def _after_transaction(session: Session, *, committed: Callable[[], None] | None = None,
                       rolled_back: Callable[[], None] | None = None) -> None:
    """Keep files in step with rows: act once the caller's transaction commits or rolls back."""
    fired = False

    def handler(action: Callable[[], None] | None) -> Callable[..., None]:
        def run(ended: Session, previous=None) -> None:
            nonlocal fired
            inner = (previous.parent is not None if previous is not None
                     else ended.in_nested_transaction())
            if fired or inner:
                return  # already done, or only a savepoint (or a flush) inside it ended
            fired = True
            if action is not None:
                action()
        return run

    event.listen(session, "after_commit", handler(committed))
    event.listen(session, "after_soft_rollback", handler(rolled_back))


def compilation_summary(directive: Directive, compilation: Compilation, spec: DirectiveSpec,
                        files: list[str] = ()) -> dict:
    """What the CLI prints and `--json` shows: plain data, Thai titles included."""
    totals = compilation.totals
    return {
        "directive": {"slug": directive.slug, "reference_no": directive.reference_no,
                      "title_th": directive.title_th},
        "totals": {
            "centers": totals.centers, "sessions": totals.sessions,
            "participants": [{"code": c.code, "title_th": c.title_th, "title_en": c.title_en,
                              "count": totals.participants.get(c.code, 0)}
                             for c in spec.participant_categories],
            "total_participants": totals.total_participants,
            "kinds": [{"code": k.code, "title_th": k.title_th, "title_en": k.title_en,
                       "places": k.places, "sessions": k.sessions} for k in totals.kinds]},
        "districts": [{"code": d.code, "name_th": d.name_th, "status": d.status,
                       "status_th": status_th(d.status),
                       "total_participants": d.summary.total_participants if d.summary else None}
                      for d in compilation.districts],
        "accepted": [d.code for d in compilation.accepted],
        "missing": [{"code": d.code, "name_th": d.name_th, "status": d.status,
                     "status_th": status_th(d.status)} for d in compilation.missing],
        "files": list(files),
    }
