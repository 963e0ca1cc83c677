"""The report's lifecycle in the JSON API (/api/v1, bearer tokens only): photos, review, the
province's compilation and every download — what the report pages (``web.reports``) do, for an
integrator (a LINE LIFF app, a provincial dashboard, a script).

Each route calls the same use case of ``tidtam.app.reporting`` as its page, so the permissions,
the version check, the audit entry and the messages are the page's; a refusal is the app's one
bilingual shape ``{"detail": {"th", "en"}}``. A report is named as in ``web.api``: the district
in the path, the directive in ``?directive=`` (needed while the province follows several).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, HTTPException, Query, Request, UploadFile
from sqlmodel import Session
from starlette.responses import FileResponse, Response

from domain.report import form_of
from models.directive import Directive
from models.report import Report
from models.user import User
from tidtam.app import reporting
from tidtam.documents.exports import compilation_csv, compilation_xlsx, report_csv, report_xlsx
from tidtam.documents.pdf import html_to_pdf
from tidtam.documents.printing import printable_district, printable_province
from tidtam.infra.photos import PhotoStore
from web.deps import ApiUser, NowDep, SessionDep, SettingsDep
from web.reports import XLSX, download
from web.schemas import (
    AcceptIn,
    CompilationPublic,
    ErrorPublic,
    PhotoAddedPublic,
    PhotoPublic,
    ReopenIn,
    ReportStatePublic,
    ReturnIn,
    RowId,
    errors,
)

router = APIRouter(prefix="/api/v1", tags=["reports"], responses=errors(401))

REPORT = "/districts/{code}/report"
CSV = "text/csv; charset=utf-8"
Table = Literal["totals", "districts", "sessions"]

DirectiveQuery = Annotated[str | None, Query(
    alias="directive", description="the directive's slug; may be left out while the province "
    "follows one active directive (409 listing the active ones otherwise)")]
TableQuery = Annotated[Table, Query(
    description="which table: totals (the figures, with Thai and English titles), districts "
    "(one row a district), sessions (one row a session)")]
ThaiDigits = Annotated[bool, Query(description="numbers and dates in Thai digits (๒๕๖๗)")]


# --- what OpenAPI says about answers --------------------------------------------------------------

def refusals(**examples: tuple[str, str]) -> dict[int | str, dict]:
    """The bilingual errors an endpoint may answer, each with an example: ``_409=(th, en)``."""
    return {int(code.lstrip("_")): {
        "model": ErrorPublic,
        "content": {"application/json": {"example": {"detail": {"th": th, "en": en}}}}}
        for code, (th, en) in examples.items()}


def binary(media_type: str, what: str) -> dict[int | str, dict]:
    """A download's 200: its media type, a file (``Content-Disposition: attachment``)."""
    return {200: {"description": what, "content": {
        media_type: {"schema": {"type": "string", "format": "binary"}}}}}


OTHER_DISTRICT = ("คุณไม่มีสิทธิ์ดูข้อมูลอำเภอเมืองสระแก้ว", "you may not see district 2701")
NOT_REVIEWER = ("เฉพาะผู้ประสานงานของจังหวัดเท่านั้นที่ตรวจรายงานได้",
                "only the provincial coordinator reviews reports")
NO_DISTRICT = ("ไม่พบอำเภอรหัส 9999", "no district 9999")
STALE = ("มีผู้อื่นบันทึกรายงานนี้ไปแล้ว กรุณาโหลดหน้าใหม่แล้วลองอีกครั้ง",
         "someone else saved this report; reload and try again")
NOT_SUBMITTED = ("รับหรือส่งกลับได้เฉพาะรายงานที่ส่งมาแล้วและรอตรวจ",
                 "only a submitted report can be accepted or returned")
NOT_PROVINCE = ("เฉพาะเจ้าหน้าที่ระดับจังหวัดเท่านั้นที่รวบรวมรายงานของอำเภอได้",
                "only the province compiles the districts' reports")
NO_DIRECTIVE = ("ไม่พบหนังสือสั่งการ 'fy2567-x'", "no directive 'fy2567-x'")
SEVERAL = ("จังหวัดรหัส 27 ติดตามหนังสือสั่งการหลายฉบับ ระบุฉบับด้วย ?directive= (…)",
           "province 27 follows several directives: name one with ?directive= (…)")
NO_CHROMIUM = ("สร้างไฟล์ PDF ไม่ได้ เนื่องจากเครื่องแม่ข่ายไม่มีโปรแกรม Chromium",
               "cannot make a PDF: Chromium is not installed")


# --- photos ---------------------------------------------------------------------------------------

@router.post(REPORT + "/photos", status_code=201, response_model=PhotoAddedPublic,
             responses=refusals(
                 _403=OTHER_DISTRICT, _404=NO_DISTRICT,
                 _409=("ส่งรายงานแล้ว อยู่ระหว่างรอจังหวัดตรวจ",
                       "the report is submitted, waiting for the province's review"),
                 _413=("ต้นไม้.jpg: ไฟล์ใหญ่เกิน 10 MB", "ต้นไม้.jpg: larger than 10 MB"),
                 _422=("script.jpg: ไฟล์นี้ไม่ใช่รูปภาพ JPEG, PNG หรือ HEIC",
                       "script.jpg: not a photo: the file's content is not JPEG, PNG or HEIC")))
def add_photo(request: Request, code: str, user: ApiUser, session: SessionDep, now: NowDep,
              session_key: Annotated[str, Form(
                  min_length=1, max_length=36, description="the saved session the photo shows "
                  "(its ``key`` in the report)", examples=["a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"])],
              file: Annotated[UploadFile, File(
                  description="one photo, JPEG, PNG or HEIC, up to the form's limit (10 MB in "
                  "the Sa Kaeo letter); checked by its content, never by its name")],
              directive: DirectiveQuery = None) -> PhotoAddedPublic:
    """Attach one photo to a saved session of the district's draft (or returned) report.

    The district's staff only. The file is checked by its content as on the form's page: not a
    photo, or too many pixels, 422; over the size limit 413; the report submitted or accepted
    409. The report's version goes up by one.
    """
    named = reporting.directive_for_report(session, user, code, directive)
    limit = form_of(reporting.spec_of(named)).photo_max_bytes
    data = file.file.read(limit + 1)  # never more than the limit + 1 byte in memory
    name = file.filename or "photo"
    if len(data) > limit and reporting.report_view(session, user, code, directive=named).can_edit:
        mb = f"{limit / 1e6:g}"  # the page's words; one who may not add photos hears why below
        raise HTTPException(413, detail={"th": f"{name}: ไฟล์ใหญ่เกิน {mb} MB",
                                         "en": f"{name}: larger than {mb} MB"})
    photo = reporting.add_photo(session, user, code, session_key, data, name, directive=named,
                                store=request.app.state.photos, now=now)
    report = session.get(Report, photo.report_id)
    return PhotoAddedPublic(photo=PhotoPublic.of(photo), report_version=report.version)


@router.get(REPORT + "/photos", response_model=list[PhotoPublic],
            responses=refusals(_403=OTHER_DISTRICT, _404=NO_DISTRICT, _409=SEVERAL))
def list_photos(code: str, user: ApiUser, session: SessionDep,
                directive: DirectiveQuery = None) -> list[PhotoPublic]:
    """The report's photos, session by session (whoever may read the report)."""
    named = reporting.directive_for_report(session, user, code, directive)
    return [PhotoPublic.of(p)
            for p in reporting.report_view(session, user, code, directive=named).photos]


@router.get("/photos/{photo_id}", response_class=Response,
            responses={**binary("image/jpeg", "The photo as a JPEG (display size, or the "
                                              "thumbnail)"),
                       **refusals(_403=OTHER_DISTRICT, _404=("ไม่พบรูปภาพเลขที่ 7",
                                                            "no photo 7"))})
def get_photo(request: Request, photo_id: RowId, user: ApiUser, session: SessionDep,
              size: Annotated[Literal["display", "thumb"], Query(
                  description="display (at most 1600 px) or thumb (320 px)")] = "display"
              ) -> Response:
    """A photo of a report the caller may read, as JPEG (never kept by a shared cache)."""
    photo = reporting.get_photo_for(session, user, photo_id)
    store: PhotoStore = request.app.state.photos
    name = photo.thumb_name if size == "thumb" else photo.display_name
    return FileResponse(store.existing(name), media_type="image/jpeg",
                        headers={"Cache-Control": "private"})


@router.delete("/photos/{photo_id}", response_model=ReportStatePublic,
               responses=refusals(
                   _403=OTHER_DISTRICT, _404=("ไม่พบรูปภาพเลขที่ 7", "no photo 7"),
                   _409=("จังหวัดรับรายงานแล้ว รายงานถูกล็อกไว้ แก้ไขไม่ได้",
                         "the report is accepted and locked")))
def delete_photo(request: Request, photo_id: RowId, user: ApiUser, session: SessionDep,
                 now: NowDep) -> ReportStatePublic:
    """Remove a photo from a draft or returned report (its district's staff); answers the
    report as it now is. Its files are deleted once the change is committed."""
    photo = reporting.get_photo_for(session, user, photo_id)
    report = session.get(Report, photo.report_id)
    code, directive = report.district_code, session.get(Directive, report.directive_id)
    reporting.remove_photo(session, user, photo_id, store=request.app.state.photos, now=now)
    return ReportStatePublic.of(reporting.report_view(session, user, code, directive=directive))


# --- the coordinator's review ---------------------------------------------------------------------

@router.post(REPORT + "/return", response_model=ReportStatePublic,
             responses=refusals(
                 _403=NOT_REVIEWER, _404=NO_DISTRICT, _409=NOT_SUBMITTED,
                 _422=("ความเห็น: ต้องระบุสิ่งที่ต้องแก้ไข (1–2000 ตัวอักษร)",
                       "comment: write what to correct (1–2000 characters)")))
def return_report(code: str, body: ReturnIn, user: ApiUser, session: SessionDep, now: NowDep,
                  directive: DirectiveQuery = None) -> ReportStatePublic:
    """Send a submitted report back to the district with what to correct (the coordinator).

    The report step is open on the board again, and the district's staff and head are told,
    with the comment. 409 when the report is not submitted or ``version`` is stale.
    """
    named = reporting.directive_for_report(session, user, code, directive)
    return ReportStatePublic.of(reporting.return_report(
        session, user, code, directive=named, comment=body.comment,
        expected_version=body.version, now=now))


@router.post(REPORT + "/accept", response_model=ReportStatePublic,
             responses=refusals(_403=NOT_REVIEWER, _404=NO_DISTRICT, _409=NOT_SUBMITTED))
def accept_report(code: str, body: AcceptIn, user: ApiUser, session: SessionDep, now: NowDep,
                  directive: DirectiveQuery = None) -> ReportStatePublic:
    """Accept a submitted report (the coordinator): it is locked and counts in the province's
    compilation; the district is told. 409 when it is not submitted (a draft, returned, already
    accepted) or ``version`` is stale."""
    named = reporting.directive_for_report(session, user, code, directive)
    return ReportStatePublic.of(reporting.accept_report(
        session, user, code, directive=named, expected_version=body.version, now=now))


@router.post(REPORT + "/reopen", response_model=ReportStatePublic,
             responses=refusals(
                 _403=NOT_REVIEWER, _404=NO_DISTRICT,
                 _409=("เปิดให้แก้ไขได้เฉพาะรายงานที่จังหวัดรับแล้ว",
                       "only an accepted report can be reopened"),
                 _422=("เหตุผล: ต้องระบุเหตุผลที่เปิดให้แก้ไข (1–2000 ตัวอักษร)",
                       "reason: say why the report is reopened (1–2000 characters)")))
def reopen_report(code: str, body: ReopenIn, user: ApiUser, session: SessionDep, now: NowDep,
                  directive: DirectiveQuery = None) -> ReportStatePublic:
    """Unlock an accepted report for correction, with a reason (the coordinator): it is returned
    to the district, the report step open again. 409 when it is not accepted."""
    named = reporting.directive_for_report(session, user, code, directive)
    return ReportStatePublic.of(reporting.reopen_report(
        session, user, code, directive=named, reason=body.reason,
        expected_version=body.version, now=now))


# --- one district's report as files ---------------------------------------------------------------

def _view(session: Session, user: User, code: str, directive: str | None) -> reporting.ReportView:
    named = reporting.directive_for_report(session, user, code, directive)
    return reporting.report_view(session, user, code, directive=named)


@router.get("/districts/{code}/report.xlsx", response_class=Response,
            responses={**binary(XLSX, "The report as a workbook: sheets totals, districts, "
                                      "sessions"),
                       **refusals(_403=OTHER_DISTRICT, _404=NO_DISTRICT, _409=SEVERAL)})
def district_xlsx(code: str, user: ApiUser, session: SessionDep,
                  directive: DirectiveQuery = None) -> Response:
    """The district's report as filed (whatever its status), as XLSX."""
    view = _view(session, user, code, directive)
    return download(report_xlsx(view), XLSX, f"report-{view.directive.slug}-{code}.xlsx")


@router.get("/districts/{code}/report.csv", response_class=Response,
            responses={**binary(CSV, "One table of the report, UTF-8 with a BOM (Excel reads "
                                     "the Thai)"),
                       **refusals(_403=OTHER_DISTRICT, _404=NO_DISTRICT, _409=SEVERAL)})
def district_csv(code: str, user: ApiUser, session: SessionDep, table: TableQuery = "sessions",
                 directive: DirectiveQuery = None) -> Response:
    """One table of the district's report as filed, as CSV."""
    view = _view(session, user, code, directive)
    return download(report_csv(view, table).encode("utf-8"), CSV,
                    f"report-{view.directive.slug}-{code}-{table}.csv")


@router.get("/districts/{code}/report.pdf", response_class=Response,
            responses={**binary("application/pdf", "The official form (enclosure 3), A4"),
                       **refusals(_403=OTHER_DISTRICT, _404=NO_DISTRICT, _409=SEVERAL,
                                  _503=NO_CHROMIUM)})
def district_pdf(request: Request, code: str, user: ApiUser, session: SessionDep,
                 settings: SettingsDep, thai_digits: ThaiDigits = False,
                 directive: DirectiveQuery = None) -> Response:
    """The district's official form with its photos as PDF (printed by headless Chromium: a few
    seconds)."""
    named = reporting.directive_for_report(session, user, code, directive)
    html = printable_district(session, user, code, directive=named,
                              store=request.app.state.photos, thai_digits=thai_digits,
                              tz=settings.tz)
    return download(html_to_pdf(html), "application/pdf", f"report-{named.slug}-{code}.pdf")


# --- the province's report ------------------------------------------------------------------------

@router.get("/reports/compiled", response_model=CompilationPublic,
            responses=refusals(_403=NOT_PROVINCE, _404=NO_DIRECTIVE, _409=SEVERAL))
def compiled(user: ApiUser, session: SessionDep,
             directive: DirectiveQuery = None) -> CompilationPublic:
    """Compile the province's report now: the totals of the accepted reports, and each
    district's status (the coordinator and the provincial head; a closed directive's too)."""
    named = reporting.directive_for_province(session, user, directive)
    return CompilationPublic.of(named, reporting.compile_for(session, user, directive=named))


@router.get("/reports/compiled.xlsx", response_class=Response,
            responses={**binary(XLSX, "The compilation: sheets totals, districts, sessions"),
                       **refusals(_403=NOT_PROVINCE, _404=NO_DIRECTIVE, _409=SEVERAL)})
def compiled_xlsx(user: ApiUser, session: SessionDep,
                  directive: DirectiveQuery = None) -> Response:
    """The province's compilation as XLSX (only accepted reports count)."""
    named = reporting.directive_for_province(session, user, directive)
    data = compilation_xlsx(reporting.compile_for(session, user, directive=named),
                            reporting.spec_of(named))
    return download(data, XLSX, f"report-{named.slug}.xlsx")


@router.get("/reports/compiled.csv", response_class=Response,
            responses={**binary(CSV, "One table of the compilation, UTF-8 with a BOM"),
                       **refusals(_403=NOT_PROVINCE, _404=NO_DIRECTIVE, _409=SEVERAL)})
def compiled_csv(user: ApiUser, session: SessionDep, table: TableQuery = "districts",
                 directive: DirectiveQuery = None) -> Response:
    """One table of the province's compilation as CSV."""
    named = reporting.directive_for_province(session, user, directive)
    text = compilation_csv(reporting.compile_for(session, user, directive=named),
                           reporting.spec_of(named), table)
    return download(text.encode("utf-8"), CSV, f"report-{named.slug}-{table}.csv")


@router.get("/reports/compiled.pdf", response_class=Response,
            responses={**binary("application/pdf", "The province's report form, A4, with its "
                                                   "annex of districts"),
                       **refusals(_403=NOT_PROVINCE, _404=NO_DIRECTIVE, _409=SEVERAL,
                                  _503=NO_CHROMIUM)})
def compiled_pdf(request: Request, user: ApiUser, session: SessionDep, settings: SettingsDep,
                 now: NowDep, thai_digits: ThaiDigits = False,
                 directive: DirectiveQuery = None) -> Response:
    """The province's compiled report as PDF (headless Chromium: a few seconds)."""
    named = reporting.directive_for_province(session, user, directive)
    html = printable_province(session, user, directive=named, store=request.app.state.photos,
                              thai_digits=thai_digits, as_of=now, tz=settings.tz)
    return download(html_to_pdf(html), "application/pdf", f"report-{named.slug}.pdf")
