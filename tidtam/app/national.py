"""The Department's level: national directives, provinces' additions, the provincial report to
the Department, and the national board of reporting rates.

A national directive (``scope: national``) is stored once, with its steps but no tracked items;
each province with districts loaded gets its own copy (``parent_id`` → the national one), whose
tracked items, ladder, board and reports work exactly like a province's own directive. A province's
addition (``extends:``) changes only its copy: more steps, earlier dates (``domain.national``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from functools import cached_property

from sqlalchemy import case, func, or_
from sqlmodel import Session, col, select, update

from domain.access import NATIONAL_ROLES, PROVINCE_ROLES
from domain.amendment import Amendment, amend_copy
from domain.directive import DirectiveSpec, province_slug
from domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from domain.national import ProvincialAddition, merge_addition
from domain.rates import Completion, Rate, on_time_cutoff, rates_by_key, total
from models import audit
from models.directive import (
    Directive,
    DirectiveStatus,
    DirectiveStep,
    ItemStatus,
    TrackedItem,
    get_directive_by_slug,
    national_directives,
    province_copies,
    provinces_own_active,
    steps_of,
)
from models.org import District, Province, all_provinces
from models.report import (
    ProvincialReport,
    get_provincial_report,
    insert_provincial_report,
    provincial_reports_of,
    update_provincial_report,
)
from models.user import User
from tidtam.app.amendment import amend_directive, check_amendment
from tidtam.app.directives import DirectiveProgress, progress_of
from tidtam.app.reporting import compilation_summary, compile_directive, spec_of
from tidtam.app.tracking import LaunchResult, create_directive, ensure_steps, launch_directive


@dataclass(frozen=True)
class NationalLaunch:
    directive: Directive
    created_directive: bool
    provinces: int
    created_items: int
    amendment: Amendment | None = None  # a higher revision of the Department's letter, applied


def launch_national(session: Session, spec: DirectiveSpec, *, now: datetime,
                    actor: str = "system:launch-directive") -> NationalLaunch:
    """Store the Department's directive and launch a copy in every province with districts.

    Re-running adds copies for provinces loaded since and items for new districts; it never
    undoes a province's addition (its copy is re-launched from its own stored definition).
    A higher ``revision:`` amends the Department's row and every province's copy, keeping what
    each province added (``domain.amendment.amend_copy``).
    """
    if not spec.is_national:
        raise InvalidInput(f"{spec.slug} is not a national directive (scope: national)",
                           f"{spec.slug} ไม่ใช่หนังสือสั่งการระดับกรมฯ (scope: national)")
    directive = get_directive_by_slug(session, spec.slug)
    created = directive is None
    before: DirectiveSpec | None = None
    amendment = None
    if directive is None:
        directive = create_directive(session, spec, now)
    else:
        before = spec_of(directive)
        if spec.revision != before.revision:  # every copy first: a refusal changes nothing
            for copy in province_copies(session, directive.id):
                if copy.status != DirectiveStatus.CLOSED:
                    check_amendment(session, copy, amend_copy(before, spec, spec_of(copy)))
        amended = amend_directive(session, directive, spec, now=now, actor=actor)
        amendment = amended.amendment if amended.applied else None
    ensure_steps(session, directive, spec)
    codes = _provinces_with_districts(session)
    if not codes:
        raise InvalidInput("no districts loaded; run tidtam init --provinces all",
                           "ยังไม่มีข้อมูลอำเภอ — เรียก tidtam init --provinces all ก่อน")
    copies = {d.province_code: d for d in province_copies(session, directive.id)}
    new_items = 0
    for code in codes:
        copy = copies.get(code)
        if copy is not None and copy.status == DirectiveStatus.CLOSED:
            continue  # the province closed its copy: it stays as it was, readable
        if copy is None:
            province_spec = spec.for_province(code)
        elif amendment is not None and before is not None:
            province_spec = amend_copy(before, spec, spec_of(copy))
        else:
            province_spec = spec_of(copy)
        result: LaunchResult = launch_directive(session, province_spec, now=now, actor=actor,
                                                parent_id=directive.id)
        new_items += result.created_items
    if created or new_items:
        audit.record(session, at=now, actor=actor, action="directive.launch_national",
                     entity="directive", entity_id=directive.id,
                     after={"slug": spec.slug, "provinces": len(codes), "items": new_items})
    session.flush()
    return NationalLaunch(directive, created, len(codes), new_items, amendment)


def _provinces_with_districts(session: Session) -> list[str]:
    return list(session.exec(select(District.province_code).distinct()
                             .order_by(District.province_code)))


@dataclass(frozen=True)
class AdditionResult:
    directive: Directive
    added_steps: list[str]
    moved_steps: dict[str, tuple[date, date]]
    created_items: int


def apply_addition(session: Session, addition: ProvincialAddition, *, now: datetime,
                   source: str = "addition", actor: str = "system:launch-directive") -> AdditionResult:
    """Merge a province's addition into its copy: new steps get items, earlier dates move the
    steps and their open items. Re-applying the same file changes nothing."""
    national = get_directive_by_slug(session, addition.extends)
    if national is None or national.province_code is not None:
        raise NotFound(f"no national directive {addition.extends!r}; launch the Department's first",
                       f"ไม่พบหนังสือสั่งการของกรมฯ {addition.extends!r} — นำเข้าของกรมฯ ก่อน")
    copy = get_directive_by_slug(session, province_slug(national.slug, addition.province_code))
    if copy is None:
        raise NotFound(f"province {addition.province_code} has no copy of {national.slug}; "
                       "load its districts and launch the national directive again",
                       f"จังหวัดรหัส {addition.province_code} ยังไม่มีหนังสือสั่งการนี้ — "
                       "โหลดข้อมูลอำเภอแล้วนำเข้าหนังสือของกรมฯ อีกครั้ง")
    merged = merge_addition(spec_of(national), addition, source)
    before = {s.code: s.due_on for s in steps_of(session, copy.id)}
    moved = {s.code: (before[s.code], s.due_on) for s in merged.steps
             if s.code in before and s.due_on != before[s.code]}
    for code, (_, new_due) in moved.items():
        step = next(s for s in steps_of(session, copy.id) if s.code == code)
        step.due_on = new_due
        session.add(step)
        session.exec(update(TrackedItem)
                     .where(TrackedItem.step_id == step.id, TrackedItem.status == ItemStatus.OPEN)
                     .values(due_on=new_due, version=TrackedItem.version + 1))
    copy.definition = merged.model_dump(mode="json")
    copy.province_due = merged.province_due
    copy.reference_no, copy.issuer_th, copy.issuer_en = \
        merged.reference_no, merged.issuer_th, merged.issuer_en
    session.add(copy)
    session.flush()
    result = launch_directive(session, merged, now=now, actor=actor, parent_id=national.id)
    added = [s.code for s in merged.steps if s.code not in before]
    if added or moved:
        audit.record(session, at=now, actor=actor, action="directive.addition", entity="directive",
                     entity_id=copy.id,
                     before={code: str(old) for code, (old, _) in moved.items()},
                     after={"added_steps": added, "items": result.created_items,
                            "moved": {code: str(new) for code, (_, new) in moved.items()}})
    session.flush()
    return AdditionResult(copy, added, moved, result.created_items)


# --- the province's report to the Department --------------------------------------------------

def submit_provincial_report(session: Session, actor: User, *, directive: Directive,
                             now: datetime, note: str | None = None) -> ProvincialReport:
    """The coordinator or provincial head sends the directive's compiled accepted reports to
    the Department.

    The snapshot is what the Department reads; a later submission replaces it (the first
    submission's time still decides "on time"). Districts without an accepted report are listed
    in it, so the Department sees who is missing.

    A closed directive's report may still be sent (and sent again): the Department's report is
    due after the districts' work is over, and closing a directive stops the chasing, not the
    province's reporting of what was done.
    """
    if actor.role not in PROVINCE_ROLES or actor.province_code is None:
        raise Forbidden("only the province submits its report to the Department",
                        "เฉพาะเจ้าหน้าที่ระดับจังหวัดเท่านั้นที่ส่งรายงานถึงกรมฯ ได้")
    if directive.province_code != actor.province_code:
        raise Forbidden(f"directive {directive.slug} belongs to another province",
                        "หนังสือสั่งการนี้เป็นของจังหวัดอื่น")
    compilation = compile_directive(session, directive)
    if not compilation.accepted:
        raise InvalidInput("no district report has been accepted yet: nothing to send",
                           "ยังไม่มีรายงานของอำเภอที่ตรวจรับแล้ว จึงยังไม่มีข้อมูลส่งกรมฯ")
    note = (note or "").strip() or None
    if note and len(note) > 2000:
        raise InvalidInput("note: at most 2000 characters", "หมายเหตุ: ไม่เกิน 2000 ตัวอักษร")
    summary = compilation_summary(directive, compilation, spec_of(directive))
    counts = {"districts_expected": len(compilation.districts),
              "districts_accepted": len(compilation.accepted)}
    report = get_provincial_report(session, directive.id)
    before = None
    if report is None:
        report = insert_provincial_report(session, ProvincialReport(
            directive_id=directive.id, province_code=directive.province_code, summary=summary,
            first_submitted_at=now, submitted_at=now, submitted_by_id=actor.id, note=note,
            **counts))
        if report is None:  # another submission of the same province's first report won
            raise _submitted_meanwhile()
    else:
        # One conditional UPDATE: of concurrent resubmissions that read this version, one wins.
        before = {"version": report.version, "districts_accepted": report.districts_accepted}
        if update_provincial_report(session, report.id, expected_version=report.version,
                                    summary=summary, submitted_at=now, submitted_by_id=actor.id,
                                    note=note, **counts) is None:
            raise _submitted_meanwhile()
    audit.record(session, at=now, actor=actor.username, actor_id=actor.id,
                 action="provincial_report.submit", entity="provincial_report",
                 entity_id=report.id, before=before,
                 after={"version": report.version, "districts_accepted": report.districts_accepted,
                        "districts_expected": report.districts_expected,
                        "total_participants": summary["totals"]["total_participants"]})
    session.flush()
    return report


def _submitted_meanwhile() -> Conflict:
    return Conflict("someone else submitted the province's report at the same time; reload and "
                    "check it before sending again",
                    "มีผู้อื่นส่งรายงานของจังหวัดถึงกรมฯ ในเวลาเดียวกัน "
                    "กรุณาโหลดหน้าใหม่และตรวจสอบก่อนส่งอีกครั้ง")


# --- the Department's board --------------------------------------------------------------------

@dataclass(frozen=True)
class NationalRow:
    province: Province
    copy_id: int
    cells: dict[str, Rate]
    report: ProvincialReport | None
    report_rate: Rate
    copy_slug: str | None = None  # the province's copy: its board is /directives/{copy_slug}

    @cached_property
    def overall(self) -> Rate:
        """All the row's steps (worked out once: the page and the board's total both read it)."""
        return total(self.cells.values())


@dataclass(frozen=True)
class NationalBoard:
    """Provinces × the Department's steps: expected / actual / on time, and each province's
    report to the Department (expected 1, due on the directive's ``department_due``)."""

    directive: Directive
    steps: list[DirectiveStep]
    rows: list[NationalRow]
    today: date

    def column(self, code: str) -> Rate:
        return total(r.cells.get(code, Rate()) for r in self.rows)

    @property
    def overall(self) -> Rate:
        return total(r.overall for r in self.rows)

    @property
    def reports(self) -> Rate:
        return total(r.report_rate for r in self.rows)


def require_national(actor: User) -> None:
    if actor.role not in NATIONAL_ROLES:
        raise Forbidden("only the Department sees the national board",
                        "เฉพาะกรมการพัฒนาชุมชนเท่านั้นที่ดูกระดานติดตามระดับประเทศได้")


def national_list(session: Session, actor: User) -> list[Directive]:
    require_national(actor)
    return national_directives(session)


def national_board(session: Session, actor: User, slug: str | None, today: date,
                   tz: tzinfo) -> NationalBoard:
    """The national board of one national directive (the newest without ``slug``)."""
    require_national(actor)
    directive = get_directive_by_slug(session, slug) if slug else next(
        iter(national_directives(session)), None)
    if directive is None or directive.province_code is not None:
        raise NotFound(f"no national directive {slug!r}" if slug else "no national directive yet",
                       f"ไม่พบหนังสือสั่งการของกรมฯ {slug!r}" if slug else
                       "ยังไม่มีหนังสือสั่งการของกรมฯ")
    return build_national_board(session, directive, today, tz)


def build_national_board(session: Session, directive: Directive, today: date,
                         tz: tzinfo) -> NationalBoard:
    """One grouped query over the provinces' copies: per province and step, how many items,
    how many done, how many done in time (76 × 12 rows for the whole country).

    "On time" and "overdue" are measured against the Department's due dates: a province that
    brought a date forward for its districts is not counted late by the Department for that.
    """
    steps = steps_of(session, directive.id)
    codes = [s.code for s in steps]
    due_by_code = {s.code: s.due_on for s in steps}
    done = TrackedItem.status != ItemStatus.OPEN
    in_time = or_(*[(DirectiveStep.code == s.code)
                    & (TrackedItem.completed_at < on_time_cutoff(s.due_on, tz)) for s in steps])
    counts = session.exec(
        select(Directive.province_code, DirectiveStep.code, func.count(),
               func.sum(case((done, 1), else_=0)),
               func.sum(case((done & (col(TrackedItem.completed_at).is_(None) | in_time), 1),
                             else_=0)))
        .join(DirectiveStep, DirectiveStep.id == TrackedItem.step_id)
        .join(Directive, Directive.id == TrackedItem.directive_id)
        .where(Directive.parent_id == directive.id, col(DirectiveStep.code).in_(codes))
        .group_by(Directive.province_code, DirectiveStep.code)).all()
    rates = {(province, code): Rate(expected, actual, on_time,
                                    expected - actual if due_by_code[code] < today else 0)
             for province, code, expected, actual, on_time in counts}
    copy_rows = session.exec(select(Directive.province_code, Directive.id, Directive.slug)
                             .where(Directive.parent_id == directive.id)).all()
    copies = {code: copy_id for code, copy_id, _ in copy_rows}
    slugs = {code: slug for code, _, slug in copy_rows}
    reports = {r.province_code: r for r in provincial_reports_of(session, copies.values())}
    due = department_due(directive)
    board_rows = []
    for province in all_provinces(session):
        copy = copies.get(province.code)
        if copy is None:
            continue
        report = reports.get(province.code)
        board_rows.append(NationalRow(
            province, copy, {c: rates.get((province.code, c), Rate()) for c in codes}, report,
            report_rate(report, due, today, tz), slugs[province.code]))
    return NationalBoard(directive, steps, board_rows, today)


@dataclass(frozen=True)
class ProvinceLetter:
    """A province's own active directive (not a copy of the Department's) where it stands."""

    province: Province
    progress: DirectiveProgress


def provinces_letters(session: Session, actor: User, today: date) -> list[ProvinceLetter]:
    """Every province's own active directives with their progress, by province, newest first:
    the national board lists them below the Department's own directives' rates."""
    require_national(actor)
    own = provinces_own_active(session)
    provinces = {p.code: p for p in all_provinces(session)}
    lines = sorted(progress_of(session, own, today), key=lambda p: p.directive.province_code)
    return [ProvinceLetter(provinces[p.directive.province_code], p) for p in lines]


def department_due(directive: Directive) -> date:
    """When the province's report is due at the Department (the province's due date if unset)."""
    return directive.department_due or directive.province_due


def report_rate(report: ProvincialReport | None, due: date, today: date, tz: tzinfo) -> Rate:
    """One province's report to the Department as a rate: expected 1; actual, on time, overdue."""
    done = report is not None
    return rates_by_key([Completion(0, due, done, report.first_submitted_at if done else None)],
                        today, tz)[0]
