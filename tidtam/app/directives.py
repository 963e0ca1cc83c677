"""Use cases of a province's many directives: which ones it follows, where each stands, which
one a page or a command is about, closing one, and a district's work across all of them.

A province follows many letters at once (its own, the Department's copies, follow-ups); every
page, command and message names the directive it is about. A directive's life is
``loaded`` → ``active`` (launched: tracked and chased) → ``closed`` (by its coordinator with a
reason, or by itself ``close_after_working_days`` after the Department's date): a closed
directive is never chased, takes no more changes, and stays readable with its printouts and
exports.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import case, func
from sqlmodel import Session, col, select

from domain.access import NATIONAL_ROLES, can_close_directive, can_see_province
from domain.directive import DirectiveSpec
from domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from models import audit
from models.directive import (
    Directive,
    DirectiveStatus,
    DirectiveStep,
    ItemStatus,
    StepKind,
    TrackedItem,
    active_directives,
    directives_of,
    get_directive_by_slug,
)
from models.org import District, Province, get_province
from models.outbox import cancel_pending_for_directive
from models.report import Report, ReportStatus
from models.user import User
from tidtam.app.events import EventName, directive_event, emit

MAX_REASON = 2000


def _active_list(directives: list[Directive]) -> str:
    return ", ".join(d.slug for d in directives) or "-"


def find_directive(session: Session, slug: str, province_code: str | None = None) -> Directive:
    """The directive a command names, or NotFound that lists the active ones (of the province).

    ``province_code``: the slug must be that province's (a coordinator's command, say).
    """
    directive = get_directive_by_slug(session, slug)
    if directive is None or (province_code is not None and directive.province_code != province_code):
        active = _active_list(active_directives(session, province_code))
        raise NotFound(f"no directive {slug!r}; active: {active}",
                       f"ไม่พบหนังสือสั่งการ {slug!r} — ที่ติดตามอยู่: {active}")
    return directive


def visible_directive(session: Session, actor: User, slug: str) -> Directive:
    """A province's directive the actor may read (NotFound, Forbidden otherwise).

    The Department's own rows (national) are read through their provinces' copies and the
    national board, never as a province's page.
    """
    directive = get_directive_by_slug(session, slug)
    ensure_visible(actor, slug, directive)
    return directive


def ensure_visible(actor: User, slug: str, directive) -> None:
    """The rule of ``visible_directive`` on a directive already read (an ORM row or a plain
    row with ``province_code``; None when there is none): NotFound or Forbidden, else nothing."""
    if directive is None or directive.province_code is None:
        raise NotFound(f"no directive {slug!r}", f"ไม่พบหนังสือสั่งการ {slug!r}")
    if not can_see_province(actor.role, actor.province_code, directive.province_code):
        raise Forbidden(f"you may not see directive {slug}",
                        f"คุณไม่มีสิทธิ์ดูหนังสือสั่งการ {slug}")


def province_for_listing(session: Session, actor: User, province_code: str | None) -> Province:
    """The province whose directives the actor lists: their own by default."""
    code = province_code or actor.province_code
    if code is None:
        if actor.role in NATIONAL_ROLES:
            raise NotFound("the Department chooses a province: /provinces/{code}/directives",
                           "กรมฯ เลือกจังหวัดก่อน: /provinces/{รหัสจังหวัด}/directives")
        raise Forbidden("your account belongs to no province", "บัญชีของคุณไม่ได้สังกัดจังหวัดใด")
    province = get_province(session, code)
    if province is None:
        raise NotFound(f"no province {code}", f"ไม่พบจังหวัดรหัส {code}")
    if not can_see_province(actor.role, actor.province_code, province.code):
        raise Forbidden(f"you may not see province {province.code}",
                        f"คุณไม่มีสิทธิ์ดูข้อมูลจังหวัด{province.name_th}")
    return province


@dataclass(frozen=True)
class NextDue:
    """The next step of a directive still open somewhere: its date and how many districts owe it."""

    step: DirectiveStep
    open_districts: int


@dataclass(frozen=True)
class DirectiveProgress:
    """One directive's line on the directives page: what is done, late and due next."""

    directive: Directive
    expected: int = 0
    settled: int = 0  # done or waived
    overdue: int = 0
    reports_expected: int = 0
    reports_accepted: int = 0
    reports_submitted: int = 0  # waiting for review
    next_due: NextDue | None = None

    @property
    def percent(self) -> int:
        return round(100 * self.settled / self.expected) if self.expected else 0

    @property
    def can_close(self) -> bool:
        return self.directive.status == DirectiveStatus.ACTIVE


@dataclass(frozen=True)
class ProvinceDirectives:
    province: Province
    active: list[DirectiveProgress]
    loaded: list[DirectiveProgress]
    closed: list[DirectiveProgress]
    can_close: bool = False

    @property
    def all(self) -> list[DirectiveProgress]:
        return self.active + self.loaded + self.closed


def progress_of(session: Session, directives: list[Directive], today: date) -> list[DirectiveProgress]:
    """Each directive's counts, in a few grouped queries for all of them."""
    if not directives:
        return []
    ids = [d.id for d in directives]
    counts: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    overdue = (TrackedItem.status == ItemStatus.OPEN) & (TrackedItem.due_on < today)
    for directive_id, expected, settled, late in session.exec(
            select(TrackedItem.directive_id, func.count(),
                   func.sum(case((TrackedItem.status != ItemStatus.OPEN, 1), else_=0)),
                   func.sum(case((overdue, 1), else_=0)))
            .where(col(TrackedItem.directive_id).in_(ids))
            .group_by(TrackedItem.directive_id)).all():
        counts[directive_id].update(expected=expected, settled=settled or 0, overdue=late or 0)
    for directive_id, status, n in session.exec(
            select(Report.directive_id, Report.status, func.count())
            .where(col(Report.directive_id).in_(ids))
            .group_by(Report.directive_id, Report.status)).all():
        counts[directive_id][f"report_{status}"] += n
    report_steps: dict[int, int] = dict(session.exec(
        select(TrackedItem.directive_id, func.count())
        .join(DirectiveStep, DirectiveStep.id == TrackedItem.step_id)
        .where(col(TrackedItem.directive_id).in_(ids), DirectiveStep.kind == StepKind.REPORT)
        .group_by(TrackedItem.directive_id)).all())
    next_due: dict[int, NextDue] = {}
    for step, open_districts in session.exec(
            select(DirectiveStep, func.count())
            .join(TrackedItem, TrackedItem.step_id == DirectiveStep.id)
            .where(col(DirectiveStep.directive_id).in_(ids), TrackedItem.status == ItemStatus.OPEN,
                   TrackedItem.due_on >= today)
            .group_by(DirectiveStep.id)
            .order_by(DirectiveStep.due_on, DirectiveStep.order)).all():
        next_due.setdefault(step.directive_id, NextDue(step, open_districts))
    return [DirectiveProgress(
        directive=d,
        expected=counts[d.id]["expected"], settled=counts[d.id]["settled"],
        overdue=counts[d.id]["overdue"] if d.status == DirectiveStatus.ACTIVE else 0,
        reports_expected=report_steps.get(d.id, 0),
        reports_accepted=counts[d.id][f"report_{ReportStatus.ACCEPTED}"],
        reports_submitted=counts[d.id][f"report_{ReportStatus.SUBMITTED}"],
        next_due=next_due.get(d.id) if d.status == DirectiveStatus.ACTIVE else None)
        for d in directives]


def province_directives(session: Session, actor: User, province_code: str | None,
                        today: date) -> ProvinceDirectives:
    """The directives page of a province: active ones, then loaded, then closed below."""
    province = province_for_listing(session, actor, province_code)
    progress = progress_of(session, directives_of(session, province.code), today)
    by_status: dict[DirectiveStatus, list[DirectiveProgress]] = defaultdict(list)
    for line in progress:
        by_status[line.directive.status].append(line)
    return ProvinceDirectives(
        province, by_status[DirectiveStatus.ACTIVE], by_status[DirectiveStatus.LOADED],
        by_status[DirectiveStatus.CLOSED],
        can_close=can_close_directive(actor.role, actor.province_code, province.code))


def only_active(session: Session, province_code: str) -> Directive | None:
    """The province's one active directive, if it has exactly one (where an old link that named
    no directive goes); None when it has none or several (the link goes to the list)."""
    active = active_directives(session, province_code)
    return active[0] if len(active) == 1 else None


def directive_in(session: Session, province_code: str, slug: str | None) -> Directive:
    """The directive a request about a province is for (the caller has checked the actor may see
    the province or district): the one ``?directive=`` names, which must be that province's
    (unknown → NotFound listing its active ones), else the province's one active directive.

    Never "the newest": several active and none named → Conflict listing their slugs; none
    active → NotFound listing every directive of the province, to name one.
    """
    if slug:
        return find_directive(session, slug, province_code)
    active = active_directives(session, province_code)
    if len(active) == 1:
        return active[0]
    if active:
        raise Conflict(f"province {province_code} follows several directives: name one with "
                       f"?directive= ({_active_list(active)})",
                       f"จังหวัดรหัส {province_code} ติดตามหนังสือสั่งการหลายฉบับ "
                       f"ระบุฉบับด้วย ?directive= ({_active_list(active)})")
    every = directives_of(session, province_code)
    raise NotFound(f"province {province_code} follows no active directive; name one with "
                   f"?directive= ({_active_list(every)})",
                   f"จังหวัดรหัส {province_code} ไม่มีหนังสือสั่งการที่ติดตามอยู่ "
                   f"ระบุฉบับด้วย ?directive= ({_active_list(every)})")


def close_directive(session: Session, actor: User, slug: str, *, reason: str,
                    now: datetime) -> Directive:
    """The coordinator closes a directive, with a reason: never chased again, still readable.

    The messages still queued about its items are cancelled in the same transaction.
    """
    directive = visible_directive(session, actor, slug)
    if not can_close_directive(actor.role, actor.province_code, directive.province_code):
        raise Forbidden("only the province's coordinator closes a directive",
                        "เฉพาะผู้ประสานงานของจังหวัดเท่านั้นที่ปิดหนังสือสั่งการได้")
    reason = _closing_reason(directive, reason)
    return _close(session, directive, now=now, actor=actor.username, actor_id=actor.id,
                  reason=reason)


OPERATOR = "system:cli"


def close_by_operator(session: Session, slug: str, *, reason: str, now: datetime,
                      actor: str = OPERATOR) -> Directive:
    """`tidtam close`: the operator (no account) closes a province's directive, with a reason,
    as a coordinator would; an unknown slug gets NotFound listing the active ones."""
    directive = find_directive(session, slug)
    if directive.province_code is None:
        raise InvalidInput(f"{slug} is the Department's: close each province's copy",
                           f"{slug} เป็นหนังสือของกรมฯ — ปิดฉบับของแต่ละจังหวัดแทน")
    reason = _closing_reason(directive, reason)
    return _close(session, directive, now=now, actor=actor, actor_id=None, reason=reason)


def _closing_reason(directive: Directive, reason: str | None) -> str:
    """The reason, checked; a closed directive is not closed again."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("reason: say why the directive is closed",
                           "เหตุผล: ระบุเหตุผลที่ปิดหนังสือสั่งการ")
    if len(reason) > MAX_REASON:
        raise InvalidInput(f"reason: at most {MAX_REASON} characters",
                           f"เหตุผล: ไม่เกิน {MAX_REASON} ตัวอักษร")
    if directive.status == DirectiveStatus.CLOSED:
        raise Conflict(f"directive {directive.reference_no} is already closed",
                       f"หนังสือสั่งการ {directive.reference_no} ปิดไปแล้ว")
    return reason


def _close(session: Session, directive: Directive, *, now: datetime, actor: str,
           actor_id: int | None, reason: str) -> Directive:
    before = {"status": str(directive.status)}
    directive.status = DirectiveStatus.CLOSED
    directive.closed_at = now
    directive.closed_by = actor
    directive.close_reason = reason
    session.add(directive)
    cancelled = cancel_pending_for_directive(session, directive.id)
    audit.record(session, at=now, actor=actor, actor_id=actor_id, action="directive.close",
                 entity="directive", entity_id=directive.id, before=before,
                 after={"status": "closed", "reason": reason, "cancelled_messages": cancelled})
    emit(session, directive_event(session, EventName.DIRECTIVE_CLOSED, directive, actor=actor,
                                  now=now, reason=reason))
    session.flush()
    return directive


AUTO_CLOSE_ACTOR = "system:auto-close"


def close_due_directives(session: Session, now: datetime, today: date, *,
                         active: list[Directive] | None = None,
                         spec_of: Callable[[Directive], DirectiveSpec] | None = None,
                         ) -> list[Directive]:
    """Close every active directive whose YAML's closing day has come (the sweep and the digest
    call this first, so a directive is never chased on or after that day). ``active``: the
    active directives when the caller has read them; ``spec_of``: each one's validated
    definition when the caller has it (the sweep validates each once)."""
    closed = []
    for directive in active_directives(session) if active is None else active:
        spec = (DirectiveSpec.model_validate(directive.definition) if spec_of is None
                else spec_of(directive))
        closes_on = spec.closes_on()
        if closes_on is not None and closes_on <= today:
            reason = f"closed automatically on {closes_on.isoformat()} (close_after_working_days)"
            closed.append(_close(session, directive, now=now, actor=AUTO_CLOSE_ACTOR,
                                 actor_id=None, reason=reason))
    return closed


@dataclass(frozen=True)
class WorkItem:
    """One open item on a district's "my work" page."""

    item: TrackedItem
    step: DirectiveStep
    directive: Directive
    overdue: bool

    @property
    def is_report(self) -> bool:
        return self.step.kind == StepKind.REPORT


@dataclass(frozen=True)
class OwedReport:
    """A report form the district owes for an active directive, with where it stands."""

    directive: Directive
    step: DirectiveStep
    status: ReportStatus | None  # None: not started
    overdue: bool


@dataclass(frozen=True)
class DistrictWork:
    """งานของฉัน: every open item of a district across its province's active directives."""

    district: District
    items: list[WorkItem]
    reports: list[OwedReport]
    directives: list[Directive] = field(default_factory=list)
    can_mark: bool = False

    @property
    def overdue_count(self) -> int:
        return sum(w.overdue for w in self.items)


def district_work(session: Session, actor: User, district_code: str | None,
                  today: date) -> DistrictWork:
    """The district's open items of every active directive: overdue first, then by due date;
    with the report forms it owes and their status. District people see their own district."""
    from domain.access import can_mark_item
    from tidtam.app.tracking import visible_district

    code = district_code or actor.district_code
    if code is None:
        raise NotFound("your account belongs to no district: open a district's work from the board",
                       "บัญชีของคุณไม่ได้สังกัดอำเภอ — เปิดงานของอำเภอจากกระดานติดตาม")
    district = visible_district(session, actor, code)
    directives = active_directives(session, district.province_code)
    by_id = {d.id: d for d in directives}
    rows = session.exec(
        select(TrackedItem, DirectiveStep)
        .join(DirectiveStep, DirectiveStep.id == TrackedItem.step_id)
        .where(TrackedItem.district_code == district.code,
               TrackedItem.status == ItemStatus.OPEN,
               col(TrackedItem.directive_id).in_(list(by_id)))).all() if by_id else []
    items = sorted((WorkItem(item, step, by_id[item.directive_id], item.due_on < today)
                    for item, step in rows),
                   key=lambda w: (not w.overdue, w.item.due_on, w.directive.id, w.step.order))
    reports = _owed_reports(session, district.code, directives, today)
    return DistrictWork(district, items, reports, directives,
                        can_mark=can_mark_item(actor.role, actor.district_code, district.code))


def _owed_reports(session: Session, district_code: str, directives: list[Directive],
                  today: date) -> list[OwedReport]:
    """The report step of each active directive with a form, not yet accepted."""
    if not directives:
        return []
    ids = [d.id for d in directives]
    by_id = {d.id: d for d in directives}
    statuses = dict(session.exec(select(Report.directive_id, Report.status).where(
        col(Report.directive_id).in_(ids), Report.district_code == district_code)).all())
    owed = []
    for item, step in session.exec(
            select(TrackedItem, DirectiveStep)
            .join(DirectiveStep, DirectiveStep.id == TrackedItem.step_id)
            .where(col(TrackedItem.directive_id).in_(ids),
                   TrackedItem.district_code == district_code,
                   DirectiveStep.kind == StepKind.REPORT)).all():
        status = statuses.get(item.directive_id)
        if status == ReportStatus.ACCEPTED or item.status == ItemStatus.WAIVED:
            continue
        owed.append(OwedReport(by_id[item.directive_id], step, status,
                               item.status == ItemStatus.OPEN and item.due_on < today))
    return sorted(owed, key=lambda r: (r.step.due_on, r.directive.id))

