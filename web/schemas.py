"""What the JSON API returns (``XPublic``) and accepts (``XIn``): never a table row as such."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import Form, Path
from pydantic import BaseModel, Field

from domain.rates import Rate
from domain.report import Compilation, Finding, ReportSummary
from models.directive import Directive, DirectivePublic, DirectiveStep, ItemStatus, StepKind, TrackedItem
from models.outbox import Channel, OutboxMessage, OutboxStatus
from models.report import ProvincialReport, ReportPhoto
from tidtam.app.boards import Board, BoardCell, BoardRow, ItemDetail
from tidtam.app.directive_api import DirectiveLine, ItemRow, ItemsPage
from tidtam.app.directives import DirectiveProgress
from tidtam.app.labels import status_th
from tidtam.app.national import NationalBoard
from tidtam.app.reporting import ReportView

# The database's integers are 64-bit signed: a larger id or version would fail in the driver (a
# 500), so every id in a path and every version in a body is bounded here (else 422).
DB_INT_MAX = 2**63 - 1
RowId = Annotated[int, Path(ge=1, le=DB_INT_MAX, description="a row's id (1 … 2^63−1)")]
Version = Annotated[int, Field(ge=0, le=DB_INT_MAX)]
FormVersion = Annotated[int, Form(ge=0, le=DB_INT_MAX)]


class TokenPublic(BaseModel):
    model_config = {"json_schema_extra": {"examples": [
        {"access_token": "tdt_3q2-…", "token_type": "bearer"}]}}

    access_token: str
    token_type: str = "bearer"


class BilingualText(BaseModel):
    model_config = {"json_schema_extra": {"examples": [{"th": "ไม่พบรายการนี้", "en": "no such item"}]}}

    th: str
    en: str


class ErrorPublic(BaseModel):
    model_config = {"json_schema_extra": {"examples": [
        {"detail": {"th": "มีผู้อื่นบันทึกรายการนี้ไปแล้ว กรุณาโหลดใหม่",
                    "en": "someone else changed this item; read it again"}}]}}

    detail: BilingualText


def errors(*codes: int) -> dict[int | str, dict]:
    """OpenAPI entries for the bilingual errors an endpoint may answer with."""
    return {code: {"model": ErrorPublic} for code in codes}


class DoneIn(BaseModel):
    model_config = {"json_schema_extra": {"examples": [
        {"note": "ศึกษาแนวทางและแจ้งศูนย์ฯ ทุกแห่งแล้ว", "version": 0}]}}

    note: str | None = Field(default=None, description="what was done; at most 2000 characters")
    version: Version = Field(description="the item's version as you read it; a newer one → 409")


class WaiveIn(BaseModel):
    model_config = {"json_schema_extra": {"examples": [{"reason": "อำเภอนี้ไม่มีศูนย์ฯ ที่เข้าเกณฑ์", "version": 0}]}}

    reason: str = Field(description="why the step does not apply to the district; 1–2000 "
                                    "characters once trimmed (kept on the item and in its history)")
    version: Version = Field(description="the item's version as you read it; a newer one → 409")


class UnwaiveIn(BaseModel):
    model_config = {"json_schema_extra": {"examples": [{"reason": "พบศูนย์ฯ ที่เข้าเกณฑ์แล้ว", "version": 1}]}}

    reason: str | None = Field(default=None, description="why the waiver is undone (optional; "
                                                         "at most 2000 characters, kept in the history)")
    version: Version = Field(description="the item's version as you read it; a newer one → 409")


class CloseIn(BaseModel):
    model_config = {"json_schema_extra": {"examples": [{"reason": "ครบปีงบประมาณ ส่งรายงานกรมแล้ว"}]}}

    reason: str = Field(description="why the directive is closed; 1–2000 characters once trimmed")


class StepPublic(BaseModel):
    id: int
    order: int
    code: str
    kind: StepKind
    title_th: str
    title_en: str
    due_on: date

    @classmethod
    def of(cls, step: DirectiveStep) -> StepPublic:
        return cls.model_validate(step, from_attributes=True)


class ItemPublic(BaseModel):
    model_config = {"json_schema_extra": {"examples": [
        {"id": 41, "directive_slug": "fy2567-sakaeo-volunteer-centers", "step_code": "G1",
         "district_code": "2703", "status": "done", "due_on": "2024-07-17", "overdue": False,
         "completed_at": "2024-07-16T03:12:00Z", "completed_by_id": 7,
         "note": "ศึกษาแนวทางและแจ้งศูนย์ฯ ทุกแห่งแล้ว", "waived_at": None, "waived_by_id": None,
         "waiver_reason": None, "version": 1}]}}

    id: int
    directive_slug: str = Field(description="the directive the item belongs to")
    step_code: str
    district_code: str
    status: ItemStatus
    due_on: date
    overdue: bool
    completed_at: datetime | None
    completed_by_id: int | None
    note: str | None
    waived_at: datetime | None = Field(description="when the coordinator marked it not applicable")
    waived_by_id: int | None
    waiver_reason: str | None
    version: int

    @classmethod
    def of(cls, item: TrackedItem, step: DirectiveStep, overdue: bool,
           directive_slug: str) -> ItemPublic:
        return cls(id=item.id, directive_slug=directive_slug, step_code=step.code,
                   district_code=item.district_code,
                   status=item.status, due_on=item.due_on, overdue=overdue,
                   completed_at=item.completed_at, completed_by_id=item.completed_by_id,
                   note=item.note, waived_at=item.waived_at, waived_by_id=item.waived_by_id,
                   waiver_reason=item.waiver_reason, version=item.version)

    @classmethod
    def of_cell(cls, cell: BoardCell, directive_slug: str) -> ItemPublic:
        return cls.of(cell.item, cell.step, cell.overdue, directive_slug)

    @classmethod
    def of_detail(cls, detail: ItemDetail) -> ItemPublic:
        return cls.of(detail.item, detail.step, detail.overdue, detail.directive.slug)

    @classmethod
    def of_row(cls, row: ItemRow) -> ItemPublic:
        return cls.of(row.item, row.step, row.overdue, row.directive.slug)


class ItemsPagePublic(BaseModel):
    """One page of ``/api/v1/items``: ``total`` items match; ``limit`` from ``offset`` are here."""

    total: int
    limit: int
    offset: int
    items: list[ItemPublic]

    @classmethod
    def of(cls, page: ItemsPage) -> ItemsPagePublic:
        return cls(total=page.total, limit=page.limit, offset=page.offset,
                   items=[ItemPublic.of_row(r) for r in page.items])


class DistrictRowPublic(BaseModel):
    code: str
    name_th: str
    name_en: str
    done_count: int = Field(description="settled steps: done or waived (as the reporting rates "
                                        "count them)")
    waived_count: int = Field(description="of done_count, the steps waived as not applicable")
    overdue_count: int
    items: list[ItemPublic]

    @classmethod
    def of(cls, row: BoardRow, directive_slug: str) -> DistrictRowPublic:
        return cls(code=row.district.code, name_th=row.district.name_th,
                   name_en=row.district.name_en, done_count=row.done_count,
                   waived_count=row.waived_count, overdue_count=row.overdue_count,
                   items=[ItemPublic.of_cell(cell, directive_slug) for cell in row.cells])


class ProvincePublic(BaseModel):
    code: str
    name_th: str
    name_en: str


ReportState = Literal["none", "draft", "submitted", "returned", "accepted"]


class BoardPublic(BaseModel):
    directive: DirectivePublic
    today: date
    overdue_count: int
    steps: list[StepPublic]
    districts: list[DistrictRowPublic]
    report_step: str | None = Field(
        None, description="the step the report form completes (R1); none without a form")
    report_states: dict[str, ReportState] = Field(
        default_factory=dict, description="each district's report, by district code: none (not "
        "started), draft, submitted (waiting for review), returned or accepted",
        examples=[{"2701": "accepted", "2702": "submitted", "2703": "returned", "2704": "draft",
                   "2705": "none"}])
    proven_by_report: dict[str, list[str]] = Field(
        default_factory=dict, description="by district code, the steps done from its report "
        "(the directive's form.proves; the item's page links to the session)",
        examples=[{"2706": ["A3"]}])

    @classmethod
    def of(cls, board: Board) -> BoardPublic:
        return cls(directive=DirectivePublic.model_validate(board.directive, from_attributes=True),
                   today=board.today, overdue_count=board.overdue_count,
                   steps=[StepPublic.of(s) for s in board.steps],
                   districts=[DistrictRowPublic.of(r, board.directive.slug) for r in board.rows],
                   report_step=board.report_step,
                   report_states={r.district.code: r.report_state for r in board.rows}
                   if board.report_step else {},
                   proven_by_report={r.district.code: r.proven_steps for r in board.rows
                                     if r.proven_steps})


class NextDuePublic(BaseModel):
    """The next step still open somewhere, and how many districts owe it."""

    step_code: str
    title_th: str
    title_en: str
    due_on: date
    open_districts: int


class ProgressPublic(BaseModel):
    """Where a directive stands across its province's districts."""

    expected: int = Field(description="tracked items (districts × steps)")
    settled: int = Field(description="done or waived")
    percent: int
    overdue: int = Field(description="open past their due date (0 unless the directive is active)")
    reports_expected: int
    reports_submitted: int = Field(description="waiting for the province's review")
    reports_accepted: int
    next_due: NextDuePublic | None

    @classmethod
    def of(cls, p: DirectiveProgress) -> ProgressPublic:
        nd = p.next_due
        return cls(expected=p.expected, settled=p.settled, percent=p.percent, overdue=p.overdue,
                   reports_expected=p.reports_expected, reports_submitted=p.reports_submitted,
                   reports_accepted=p.reports_accepted,
                   next_due=NextDuePublic(step_code=nd.step.code, title_th=nd.step.title_th,
                                          title_en=nd.step.title_en, due_on=nd.step.due_on,
                                          open_districts=nd.open_districts) if nd else None)


class DirectiveProgressPublic(DirectivePublic):
    """A province's directive with where it stands (``progress`` is null for district roles,
    who read their own district's part on the directive's board)."""

    progress: ProgressPublic | None

    @classmethod
    def of(cls, line: DirectiveLine) -> DirectiveProgressPublic:
        return cls(**DirectivePublic.model_validate(line.directive, from_attributes=True).model_dump(),
                   progress=ProgressPublic.of(line.progress) if line.progress else None)


class OutboxMessagePublic(BaseModel):
    model_config = {"json_schema_extra": {"examples": [
        {"id": 118, "key": "line:U4af4980629…:2024-08-12", "channel": "line",
         "recipient": "U4af4980629…", "district_code": "2703", "item_id": 41, "rung": "late",
         "directive_id": 1, "report_id": None,
         "subject": "เลยกำหนด 1 วันทำการ · 1 overdue step",
         "body": "อำเภอตาพระยา: G1 ศึกษาแนวทาง… กำหนด 17 ก.ค. 2567 — เลยกำหนด 1 วันทำการ",
         "status": "sent", "attempts": 1, "last_error": None,
         "next_try_at": "2024-08-12T02:00:00Z", "created_at": "2024-08-12T02:00:00Z",
         "sent_at": "2024-08-12T02:00:03Z"}]}}

    id: int
    key: str
    channel: Channel
    recipient: str
    district_code: str | None
    item_id: int | None
    rung: str | None
    directive_id: int | None = Field(description="the directive it is about, when the row names "
                                                 "it (a review message, a nudge, an event)")
    report_id: int | None = Field(description="the report it is about (review messages)")
    subject: str = Field(description="as rendered when it was queued, Thai first")
    body: str = Field(description="the plain-text message, as rendered when it was queued")
    status: OutboxStatus
    attempts: int
    last_error: str | None
    next_try_at: datetime
    created_at: datetime = Field(description="when it was queued (UTC)")
    sent_at: datetime | None

    @classmethod
    def of(cls, message: OutboxMessage) -> OutboxMessagePublic:
        return cls(key=message.idempotency_key,
                   **message.model_dump(include=set(cls.model_fields) - {"key"}))


class FindingPublic(BaseModel):
    field: str = Field(description='the field it names, e.g. "sessions[0].participants.community"')
    severity: str = Field(description="error (blocks submitting) or warning")
    label_th: str
    label_en: str
    message_th: str
    message_en: str

    @classmethod
    def of(cls, finding: Finding) -> FindingPublic:
        return cls(field=finding.field, severity=finding.severity, label_th=finding.label_th,
                   label_en=finding.label_en, message_th=finding.message_th,
                   message_en=finding.message_en)


class KindPlacesPublic(BaseModel):
    code: str
    title_th: str
    title_en: str
    places: int
    sessions: int


class ReportSummaryPublic(BaseModel):
    """Items 1-3 of the form, derived from the sessions."""

    centers: int
    sessions: int
    participants: dict[str, int]
    total_participants: int
    kinds: list[KindPlacesPublic]

    @classmethod
    def of(cls, summary: ReportSummary) -> ReportSummaryPublic:
        return cls(centers=summary.centers, sessions=summary.sessions,
                   participants=summary.participants,
                   total_participants=summary.total_participants,
                   kinds=[KindPlacesPublic(**vars(k)) for k in summary.kinds])


class ReportPublic(BaseModel):
    district_code: str
    directive_slug: str
    status: str = Field(description="none (nothing saved yet), draft, submitted, returned, accepted")
    version: int = Field(description="send it back with the next write; 0 when nothing is saved")
    report: dict[str, Any] = Field(description="the draft as stored: {sessions, outcomes}")
    errors: list[FindingPublic]
    warnings: list[FindingPublic]
    summary: ReportSummaryPublic
    review_comment: str | None
    submitted_at: datetime | None
    accepted_at: datetime | None

    @classmethod
    def of(cls, view: ReportView) -> ReportPublic:
        report = view.report
        return cls(district_code=view.district.code, directive_slug=view.directive.slug,
                   status=str(report.status) if report else "none", version=view.version,
                   report=view.checked.raw,
                   errors=[FindingPublic.of(f) for f in view.checked.errors],
                   warnings=[FindingPublic.of(f) for f in view.checked.warnings],
                   summary=ReportSummaryPublic.of(view.summary),
                   review_comment=report.review_comment if report else None,
                   submitted_at=report.submitted_at if report else None,
                   accepted_at=report.accepted_at if report else None)


class ReportIn(BaseModel):
    model_config = {"json_schema_extra": {"examples": [
        {"version": 3, "report": {"sessions": [{"key": "s1", "held_on": "2024-07-20",
            "center": "ศูนย์ผู้นำจิตอาสาพัฒนาชุมชนตำบลโคกสูง", "place": "บ้านโคกสูง ต.โคกสูง",
            "kind": "tree-planting", "kind_other": "",
            "participants": {"center-committee": 5, "volunteer-leaders": 10, "community": 8,
                             "partners": 2, "cd-officials": 1}}],
          "outcomes": ["ปลูกต้นไม้ 200 ต้น"]}}]}}

    version: Version = Field(description="the version you read (0 when none was saved); a newer one → 409")
    report: dict[str, Any] = Field(description="{sessions: [{key, held_on, center, place, kind, "
                                               "kind_other, participants: {category: count}}], "
                                               "outcomes: [str]}")


class VersionIn(BaseModel):
    version: Version = Field(description="the report's version as you read it; a newer one → 409")


class RatePublic(BaseModel):
    """DHIS2-style reporting rate: expected, actual (done), on time (done by the due day)."""

    expected: int
    actual: int
    on_time: int
    overdue: int
    percent: int | None
    on_time_percent: int | None

    @classmethod
    def of(cls, rate: Rate) -> RatePublic:
        return cls(expected=rate.expected, actual=rate.actual, on_time=rate.on_time,
                   overdue=rate.overdue, percent=rate.percent, on_time_percent=rate.on_time_percent)


class ProvincialReportPublic(BaseModel):
    province_code: str
    version: int
    first_submitted_at: datetime
    submitted_at: datetime
    districts_expected: int
    districts_accepted: int
    on_time: bool
    totals: dict[str, Any]
    note: str | None

    @classmethod
    def of(cls, report: ProvincialReport, on_time: bool) -> ProvincialReportPublic:
        return cls(province_code=report.province_code, version=report.version,
                   first_submitted_at=report.first_submitted_at, submitted_at=report.submitted_at,
                   districts_expected=report.districts_expected,
                   districts_accepted=report.districts_accepted, on_time=on_time,
                   totals=report.summary.get("totals", {}), note=report.note)


class NationalRowPublic(BaseModel):
    province: ProvincePublic
    copy_slug: str | None = Field(description="the province's copy of the directive: its board is "
                                              "/api/v1/directives/{copy_slug}/board")
    steps: dict[str, RatePublic]
    overall: RatePublic
    report: ProvincialReportPublic | None


class NationalBoardPublic(BaseModel):
    directive: DirectivePublic
    department_due: date | None
    today: date
    steps: list[StepPublic]
    overall: RatePublic
    reports: RatePublic
    provinces: list[NationalRowPublic]

    @classmethod
    def of(cls, board: NationalBoard) -> NationalBoardPublic:
        return cls(
            directive=DirectivePublic.model_validate(board.directive, from_attributes=True),
            department_due=board.directive.department_due, today=board.today,
            steps=[StepPublic.of(s) for s in board.steps], overall=RatePublic.of(board.overall),
            reports=RatePublic.of(board.reports),
            provinces=[NationalRowPublic(
                province=ProvincePublic.model_validate(r.province, from_attributes=True),
                copy_slug=r.copy_slug,
                steps={code: RatePublic.of(rate) for code, rate in r.cells.items()},
                overall=RatePublic.of(r.overall),
                report=ProvincialReportPublic.of(r.report, bool(r.report_rate.on_time))
                if r.report else None) for r in board.rows])


class DepartmentIn(BaseModel):
    note: str | None = Field(None, max_length=2000)


# --- api15: the report's lifecycle in the API (web/api_reports.py) -------------------------------

class PhotoPublic(BaseModel):
    """A photo of one session of a district's report; the JPEG itself: ``GET /api/v1/photos/{id}``."""

    id: int
    session_key: str = Field(description="the session of the report it shows")
    filename: str = Field(description="the name it was uploaded with (sanitised)")
    content_type: str = Field(description="the original's type: image/jpeg, image/png or image/heic")
    size_bytes: int
    width: int
    height: int
    uploaded_at: datetime

    @classmethod
    def of(cls, photo: ReportPhoto) -> PhotoPublic:
        return cls(id=photo.id, session_key=photo.session_key, filename=photo.original_filename,
                   content_type=photo.content_type, size_bytes=photo.size_bytes,
                   width=photo.width, height=photo.height, uploaded_at=photo.uploaded_at)


class ReportStatePublic(ReportPublic):
    """The report after a step of its lifecycle: as ``GET …/report``, with its photos and what
    the caller may do next."""

    photos: list[PhotoPublic]
    can_edit: bool = Field(description="you may change it now (your district, draft or returned)")
    can_review: bool = Field(description="you may review it now: accept or return (submitted), "
                                         "reopen (accepted)")

    @classmethod
    def of(cls, view: ReportView) -> ReportStatePublic:
        return cls(**ReportPublic.of(view).model_dump(),
                   photos=[PhotoPublic.of(p) for p in view.photos],
                   can_edit=view.can_edit, can_review=view.can_review)


class PhotoAddedPublic(BaseModel):
    photo: PhotoPublic
    report_version: int = Field(description="the report's version now: send it with the next write")


class ReturnIn(BaseModel):
    model_config = {"json_schema_extra": {"examples": [
        {"version": 3, "comment": "ครั้งที่ 2 มีผู้เข้าร่วมไม่ถึง 20 คน กรุณาตรวจสอบจำนวน"}]}}

    version: Version = Field(description="the report's version as you read it; a newer one → 409")
    comment: str = Field(description="what the district must correct; 1–2000 characters once "
                                     "trimmed (shown at the top of its form)")


class ReopenIn(BaseModel):
    model_config = {"json_schema_extra": {"examples": [
        {"version": 4, "reason": "อำเภอขอแก้ไขจำนวนผู้เข้าร่วมครั้งที่ 3"}]}}

    version: Version = Field(description="the report's version as you read it; a newer one → 409")
    reason: str = Field(description="why the accepted report is unlocked; 1–2000 characters once "
                                    "trimmed (told to the district, kept in the audit log)")


class AcceptIn(BaseModel):
    model_config = {"json_schema_extra": {"examples": [{"version": 4}]}}

    version: Version = Field(description="the report's version as you read it; a newer one → 409")


class CompiledDistrictPublic(BaseModel):
    code: str
    name_th: str
    name_en: str
    status: str = Field(description="none, draft, submitted, returned or accepted")
    status_th: str
    total_participants: int | None = Field(description="only when its report is accepted")


class CompilationPublic(BaseModel):
    """The province's report: the totals of the accepted reports, district by district."""

    directive_slug: str
    reference_no: str
    totals: ReportSummaryPublic
    districts: list[CompiledDistrictPublic]
    accepted: list[str] = Field(description="the districts whose accepted reports are counted")
    missing: list[str] = Field(description="the districts with no accepted report yet")

    @classmethod
    def of(cls, directive: Directive, compilation: Compilation) -> CompilationPublic:
        return cls(
            directive_slug=directive.slug, reference_no=directive.reference_no,
            totals=ReportSummaryPublic.of(compilation.totals),
            districts=[CompiledDistrictPublic(
                code=d.code, name_th=d.name_th, name_en=d.name_en, status=d.status,
                status_th=status_th(d.status),
                total_participants=d.summary.total_participants if d.summary else None)
                for d in compilation.districts],
            accepted=[d.code for d in compilation.accepted],
            missing=[d.code for d in compilation.missing])
