"""The report form's pages: the district fills it (autosaved), the province reviews and compiles it.

Every page, printout and download lives under its directive (``/directives/{slug}/districts/
{code}/report…``, ``/directives/{slug}/reports…``) and its file names carry the slug; a link from
before, which named no directive, answers 303 (``web.links.legacy_path``), and a form posted to
such an address changes nothing (404). Routes parse, call one use case of
``tidtam.app.reporting`` and render or redirect. The form works
without JavaScript (a normal POST saves it); ``static/report.js`` adds autosave, which posts the
whole form as JSON to ``…/report/draft`` and gets back the version, the findings and the derived
items. Photos are checked by ``tidtam.infra.photos``; this module only bounds what it reads.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError
from sqlmodel import Session
from starlette.datastructures import FormData, UploadFile
from starlette.responses import FileResponse, HTMLResponse, Response

from domain.access import can_edit_report, can_review_report
from domain.errors import InvalidInput, NotFound, TidtamError
from domain.report import (
    Finding,
    ReportInvalid,
    form_of,
    new_session_key,
    normalise_raw,
    shown_before_submit,
    typed_fields,
)
from domain.thaidate import ENGLISH_MONTHS, THAI_MONTHS, date_parts, in_digits, join_date_parts
from models.directive import Directive
from models.report import Report, get_provincial_report
from models.user import User
from tidtam.app import reporting
from tidtam.app.reporting import ReportView
from tidtam.app.tracking import visible_district
from tidtam.documents.exports import compilation_csv, compilation_xlsx
from tidtam.documents.pdf import html_to_pdf
from tidtam.documents.printing import printable_district, printable_province
from tidtam.infra.photos import PhotoStore
from web.auth import redirect
from web.deps import CurrentUser, NowDep, SessionDep, SettingsDep
from web.errors import status_of, wants_json
from web.feeds import LangParam, export_lang
from web.i18n import Translator, digits_of, language_of
from web.links import directive_path, legacy_path
from web.rendering import flash, render
from web.schemas import DB_INT_MAX, RowId, Version

router = APIRouter(include_in_schema=False)

MAX_FILES = 20                 # photos in one upload request
MAX_FORM_FIELDS = 5000         # 200 sessions × ~12 fields, plus outcomes
MAX_REQUEST_BYTES = 150_000_000  # one request, all files: bounds what is spooled to disk
MAX_DRAFT_BYTES = 4_000_000    # the autosave's JSON: 200 sessions and 50 outcomes fit well within
MAX_FLASHED_REFUSALS = 3       # the session cookie holds flashes: keep it well under 4 kB
CSV_TABLES = ("totals", "districts", "sessions")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SESSION_FIELD = re.compile(
    r"sessions-(\d{1,4})-(key|held_on|center|place|kind|kind_other|p-([A-Za-z0-9_-]{1,40})"
    r"|held_on-([dmy]))")


# --- what routes declare ------------------------------------------------------------------------

def photo_store(request: Request) -> PhotoStore:
    return request.app.state.photos


StoreDep = Annotated[PhotoStore, Depends(photo_store)]


async def posted_form(request: Request) -> FormData:
    """The whole posted form; an upload far over every photo limit is refused before it is read."""
    length = request.headers.get("content-length") or "0"
    if not length.isdigit() or int(length) > MAX_REQUEST_BYTES:
        mb = f"{MAX_REQUEST_BYTES / 1e6:g}"
        raise InvalidInput(f"the upload is too large (at most {mb} MB in one go)",
                           f"ไฟล์ที่ส่งมีขนาดรวมเกินกำหนด (ส่งได้ครั้งละไม่เกิน {mb} MB)")
    return await request.form(max_files=MAX_FILES, max_fields=MAX_FORM_FIELDS)


FormDep = Annotated[FormData, Depends(posted_form)]


class DraftIn(BaseModel):
    version: Version = Field(description="the report's version as the page knows it (0: none yet)")
    report: dict[str, Any] = Field(description="{sessions: [...], outcomes: [...]} as typed")
    attempted: bool = Field(False, description="a submit was tried: the answer lists every error")


async def posted_draft(request: Request) -> DraftIn:
    """The autosave's JSON, read only when its declared size is sensible."""
    length = request.headers.get("content-length") or ""
    if not length.isdigit() or int(length) > MAX_DRAFT_BYTES:
        raise InvalidInput("the form is too large to save", "ข้อมูลแบบรายงานมีขนาดใหญ่เกินกว่าจะบันทึกได้")
    try:
        return DraftIn.model_validate_json(await request.body())
    except ValidationError:
        raise InvalidInput("the autosave sent something that is not a report form",
                           "ข้อมูลที่บันทึกอัตโนมัติไม่ใช่แบบรายงาน กรุณาโหลดหน้าใหม่") from None


DraftDep = Annotated[DraftIn, Depends(posted_draft)]


def report_url(directive: Directive | str, code: str) -> str:
    return directive_path(directive, f"/districts/{code}/report")


def reports_url(directive: Directive | str) -> str:
    return directive_path(directive, "/reports")


def named(session: Session, user: User, slug: str) -> Directive:
    """The directive the address names (NotFound, Forbidden)."""
    return reporting.directive_named(session, user, slug)


REPORT = "/directives/{slug}/districts/{code}/report"
REPORTS = "/directives/{slug}/reports"


# --- the district's form ------------------------------------------------------------------------

@router.get(REPORT)
def report_page(request: Request, slug: str, code: str, user: CurrentUser,
                session: SessionDep) -> Response:
    directive = named(session, user, slug)
    return render_report(request, reporting.report_view(session, user, code, directive=directive))


@router.post(REPORT)
def report_post(request: Request, slug: str, code: str, user: CurrentUser, session: SessionDep,
                now: NowDep, store: StoreDep, form: FormDep) -> Response:
    """The form without JavaScript: save what was typed (or add/remove a row), then back."""
    directive = named(session, user, slug)
    op = str(form.get("op") or "save")
    save_typed(session, user, directive, code, raw_from_form(form, op), version_of(form), now,
               store)
    flash(request, "flash.report_saved")
    return redirect(report_url(directive, code) + anchor_for(op))


@router.post(REPORT + "/draft")
def report_draft(request: Request, slug: str, code: str, user: CurrentUser, session: SessionDep,
                 now: NowDep, store: StoreDep, body: DraftDep) -> Response:
    """Autosave: the whole form as JSON; answers the new version, findings and derived items."""
    try:
        directive = named(session, user, slug)
        view = save_typed(session, user, directive, code, body.report, body.version, now, store)
    except TidtamError as exc:
        return json_error(exc)
    return JSONResponse(page_state(request, view, attempted=body.attempted))


@router.post(REPORT + "/submit")
def report_submit(request: Request, slug: str, code: str, user: CurrentUser, session: SessionDep,
                  now: NowDep, store: StoreDep, form: FormDep) -> Response:
    """Send it to the province; posted from the form itself, what was typed is saved first."""
    directive = named(session, user, slug)
    version = version_of(form)
    if "sessions-form" in form:
        version = save_typed(session, user, directive, code, raw_from_form(form, "save"),
                             version, now, store).version
    try:
        reporting.submit_report(session, user, code, directive=directive,
                                expected_version=version, now=now)
    except ReportInvalid as exc:
        view = reporting.report_view(session, user, code, directive=directive)
        return render_report(request, view, refused=exc, status_code=422)
    flash(request, "flash.report_submitted")
    return redirect(report_url(directive, code))


# --- photos -------------------------------------------------------------------------------------

@router.post(REPORT + "/photos")
def report_photos(request: Request, slug: str, code: str, user: CurrentUser, session: SessionDep,
                  now: NowDep, store: StoreDep, form: FormDep) -> Response:
    """One or more photos for one session; each refused file says why, the others are kept."""
    key = str(form.get("session_key") or "")
    files = [(key, f) for f in form.getlist("files") if isinstance(f, UploadFile)]
    try:
        directive = named(session, user, slug)
        view = reporting.report_view(session, user, code, directive=directive)
        refused = attach_uploads(session, user, code, files, now, store, view)
    except TidtamError as exc:
        if wants_json(request):
            return json_error(exc)
        raise
    if wants_json(request):
        state = page_state(request, reporting.report_view(session, user, code,
                                                          directive=directive),
                           attempted=form.get("attempted") == "1")
        return JSONResponse({**state, "refused": [refusal_json(request, e) for e in refused]})
    flash_refusals(request, refused)
    if len(refused) < len(files):
        flash(request, "flash.photos_added", count=len(files) - len(refused))
    return redirect(f"{report_url(directive, code)}#session-{key}")


@router.get("/photos/{photo_id}/thumb")
def photo_thumb(photo_id: RowId, user: CurrentUser, session: SessionDep,
                store: StoreDep) -> Response:
    return photo_file(store, reporting.get_photo_for(session, user, photo_id).thumb_name)


@router.get("/photos/{photo_id}")
def photo_display(photo_id: RowId, user: CurrentUser, session: SessionDep,
                  store: StoreDep) -> Response:
    return photo_file(store, reporting.get_photo_for(session, user, photo_id).display_name)


def photo_file(store: PhotoStore, name: str) -> Response:
    """A JPEG the signed-in person may see; never kept by a shared cache."""
    return FileResponse(store.existing(name), media_type="image/jpeg",
                        headers={"Cache-Control": "private"})


@router.post("/photos/{photo_id}/delete")
def photo_delete(request: Request, photo_id: RowId, user: CurrentUser, session: SessionDep,
                 now: NowDep, store: StoreDep) -> Response:
    photo = reporting.get_photo_for(session, user, photo_id)
    report = session.get(Report, photo.report_id)
    code, directive = report.district_code, session.get(Directive, report.directive_id)
    try:
        reporting.remove_photo(session, user, photo_id, store=store, now=now)
    except TidtamError as exc:
        if wants_json(request):
            return json_error(exc)
        raise
    if wants_json(request):
        return JSONResponse(page_state(request, reporting.report_view(session, user, code,
                                                                      directive=directive)))
    flash(request, "flash.photo_removed")
    return redirect(f"{report_url(directive, code)}#session-{photo.session_key}")


# --- the coordinator's review -------------------------------------------------------------------

@router.post(REPORT + "/return")
def report_return(request: Request, slug: str, code: str, user: CurrentUser, session: SessionDep,
                  now: NowDep, form: FormDep) -> Response:
    directive = named(session, user, slug)
    reporting.return_report(session, user, code, directive=directive,
                            comment=str(form.get("comment") or ""),
                            expected_version=version_of(form), now=now)
    flash(request, "flash.report_returned")
    return redirect(report_url(directive, code))


@router.post(REPORT + "/accept")
def report_accept(request: Request, slug: str, code: str, user: CurrentUser, session: SessionDep,
                  now: NowDep, form: FormDep) -> Response:
    directive = named(session, user, slug)
    reporting.accept_report(session, user, code, directive=directive,
                            expected_version=version_of(form), now=now)
    flash(request, "flash.report_accepted")
    return redirect(report_url(directive, code))


@router.post(REPORT + "/reopen")
def report_reopen(request: Request, slug: str, code: str, user: CurrentUser, session: SessionDep,
                  now: NowDep, form: FormDep) -> Response:
    directive = named(session, user, slug)
    reporting.reopen_report(session, user, code, directive=directive,
                            reason=str(form.get("reason") or ""),
                            expected_version=version_of(form), now=now)
    flash(request, "flash.report_reopened")
    return redirect(report_url(directive, code))


# --- the province: every district, the totals, the printable form and downloads -----------------

@router.get(REPORTS)
def reports_page(request: Request, slug: str, user: CurrentUser, session: SessionDep) -> Response:
    directive = named(session, user, slug)
    compilation = reporting.compile_for(session, user, directive=directive)
    return render(request, "reports.html", {"directive": directive, "compilation": compilation,
                                            "spec": reporting.spec_of(directive),
                                            "csv_tables": CSV_TABLES,
                                            "department_report": get_provincial_report(
                                                session, directive.id)})


@router.get(REPORT + "/print")
def district_print(slug: str, code: str, user: CurrentUser, session: SessionDep, store: StoreDep,
                   settings: SettingsDep, thai_digits: bool = False) -> Response:
    """The official form (enclosure 3) to print from the browser, A4."""
    directive = named(session, user, slug)
    return HTMLResponse(printable_district(session, user, code, directive=directive, store=store,
                                           thai_digits=thai_digits, tz=settings.tz),
                        headers={"Cache-Control": "private"})


@router.get("/directives/{slug}/districts/{code}/report.pdf")
def district_pdf(slug: str, code: str, user: CurrentUser, session: SessionDep, store: StoreDep,
                 settings: SettingsDep, thai_digits: bool = False) -> Response:
    directive = named(session, user, slug)
    html = printable_district(session, user, code, directive=directive, store=store,
                              thai_digits=thai_digits, tz=settings.tz)
    return download(html_to_pdf(html), "application/pdf", f"report-{directive.slug}-{code}.pdf")


@router.get(REPORTS + "/print")
def province_print(slug: str, user: CurrentUser, session: SessionDep, store: StoreDep,
                   settings: SettingsDep, now: NowDep, thai_digits: bool = False) -> Response:
    directive = named(session, user, slug)
    return HTMLResponse(printable_province(session, user, directive=directive, store=store,
                                           thai_digits=thai_digits, as_of=now, tz=settings.tz),
                        headers={"Cache-Control": "private"})


@router.get(REPORTS + "/compiled.pdf")
def province_pdf(slug: str, user: CurrentUser, session: SessionDep, store: StoreDep,
                 settings: SettingsDep, now: NowDep, thai_digits: bool = False) -> Response:
    directive = named(session, user, slug)
    html = printable_province(session, user, directive=directive, store=store,
                              thai_digits=thai_digits, as_of=now, tz=settings.tz)
    return download(html_to_pdf(html), "application/pdf", f"report-{directive.slug}.pdf")


@router.get(REPORTS + "/compiled.xlsx")
def province_xlsx(request: Request, slug: str, user: CurrentUser, session: SessionDep,
                  lang: LangParam = None) -> Response:
    """Headers in the UI's language (Thai by default), or as ``?lang=`` asks."""
    directive = named(session, user, slug)
    data = compilation_xlsx(reporting.compile_for(session, user, directive=directive),
                            reporting.spec_of(directive), export_lang(request, lang))
    return download(data, XLSX, f"report-{directive.slug}.xlsx")


@router.get(REPORTS + "/compiled-{table}.csv")
def province_csv(request: Request, slug: str, table: str, user: CurrentUser, session: SessionDep,
                 lang: LangParam = None) -> Response:
    if table not in CSV_TABLES:
        raise NotFound(f"no table {table!r}; use one of {', '.join(CSV_TABLES)}",
                       f"ไม่มีตาราง {table!r} (มี {', '.join(CSV_TABLES)})")
    directive = named(session, user, slug)
    text = compilation_csv(reporting.compile_for(session, user, directive=directive),
                           reporting.spec_of(directive), table, export_lang(request, lang))
    return download(text.encode("utf-8"), "text/csv; charset=utf-8",  # the text starts with a BOM
                    f"report-{directive.slug}-{table}.csv")


# --- links from before a province followed several directives -----------------------------------

def _legacy(request: Request, session: Session, user: User, suffix: str,
            province_code: str | None = None) -> Response:
    """303 to the same page of the province's one active directive, or to the list to choose
    from; the query (``?thai_digits=true``) goes along."""
    target = legacy_path(session, user, suffix, province_code)
    if request.url.query and target.startswith("/directives/"):
        target += "?" + request.url.query
    return redirect(target)


@router.get("/districts/{code}/report")
@router.get("/districts/{code}/report/print")
@router.get("/districts/{code}/report.pdf")
def legacy_district_report(request: Request, code: str, user: CurrentUser,
                           session: SessionDep) -> Response:
    district = visible_district(session, user, code)
    suffix = request.url.path.removeprefix(f"/districts/{code}")
    return _legacy(request, session, user, f"/districts/{district.code}{suffix}",
                   district.province_code)


@router.get("/reports")
@router.get("/reports/print")
@router.get("/reports/compiled.pdf")
@router.get("/reports/compiled.xlsx")
@router.get("/reports/compiled-{table}.csv")
def legacy_reports(request: Request, user: CurrentUser, session: SessionDep) -> Response:
    return _legacy(request, session, user, request.url.path)


@router.post("/districts/{code}/report")
@router.post("/districts/{code}/report/{action}")
@router.post("/reports/department")
def legacy_post(request: Request, user: CurrentUser) -> Response:
    """A form from a page loaded before: the address names no directive, so nothing is changed
    (404, never a redirect: a POST is not repeated on another directive's report)."""
    raise NotFound("this form's address has moved (it now names its directive); reload the page "
               "and send it again", "ที่อยู่ของแบบฟอร์มนี้เปลี่ยนไปแล้ว (ระบุหนังสือสั่งการ) "
               "กรุณาโหลดหน้าใหม่แล้วส่งอีกครั้ง")


def download(data: bytes, media_type: str, filename: str) -> Response:
    """A file to save (ASCII name: every browser and mail client keeps it)."""
    return Response(data, media_type=media_type, headers={
        "Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "private"})


# --- reading the posted form --------------------------------------------------------------------

def version_of(form: FormData) -> int:
    """The version the page was showing; every write refuses a stale one."""
    text = str(form.get("version") or "")
    if not (text.isascii() and text.isdigit() and int(text) <= DB_INT_MAX):
        raise InvalidInput("version: missing or not a number; reload the page",
                           "ไม่พบเลขฉบับของรายงาน กรุณาโหลดหน้าใหม่")
    return int(text)


def raw_from_form(form: FormData, op: str) -> dict[str, Any]:
    """The form's fields (``sessions-0-center``, ``sessions-0-p-community``, ``outcomes``) as a draft.

    ``op`` is the button pressed without JavaScript: add or remove a session or an outcome.
    """
    sessions: dict[int, dict[str, Any]] = {}
    for name, value in form.multi_items():
        match = SESSION_FIELD.fullmatch(name)
        if match is None or not isinstance(value, str):
            continue
        entry = sessions.setdefault(int(match[1]), {"participants": {}})
        if match[3]:
            entry["participants"][match[3]] = value
        elif match[4]:
            entry.setdefault("held_on_parts", {})[match[4]] = value
        else:
            entry[match[2]] = value
    for entry in sessions.values():
        # The three selects (day, Thai month, B.E. year) win over the hidden ISO field, which
        # only the script keeps up to date; a post without them (the API, a script) is read as is.
        if parts := entry.pop("held_on_parts", None):
            entry["held_on"] = join_date_parts(parts.get("d", ""), parts.get("m", ""),
                                               parts.get("y", ""))
    ordered = [sessions[i] for i in sorted(sessions)]
    outcomes = [v for v in form.getlist("outcomes") if isinstance(v, str)]
    return apply_op({"sessions": ordered, "outcomes": outcomes}, op)


def apply_op(raw: dict[str, Any], op: str) -> dict[str, Any]:
    if op == "add-session":
        raw["sessions"].append({})
    elif match := re.fullmatch(r"remove-session-(\d+)", op):
        raw["sessions"] = [s for i, s in enumerate(raw["sessions"]) if i != int(match[1])]
    elif match := re.fullmatch(r"remove-outcome-(\d+)", op):
        raw["outcomes"] = [o for i, o in enumerate(raw["outcomes"]) if i != int(match[1])]
    return raw


def anchor_for(op: str) -> str:
    if op == "add-session":
        return "#sessions-end"
    if op.startswith("remove-outcome") or op == "add-outcome":
        return "#outcomes"
    return ""


# --- saving -------------------------------------------------------------------------------------

def save_typed(session: Session, user: User, directive: Directive, code: str, raw: Any,
               version: int, now, store: PhotoStore) -> ReportView:
    """Save the draft unless nothing changed; photos of a session that was removed go with it."""
    view = reporting.report_view(session, user, code, directive=directive)
    if view.report is not None and version == view.version and view.can_edit and \
            normalise_raw(raw, view.spec) == view.report.content:
        return view  # an autosave after a blur with no change: no new version, no audit noise
    return reporting.save_draft(session, user, code, raw, directive=directive,
                                expected_version=version, now=now, store=store)


def attach_uploads(session: Session, user: User, code: str,
                   files: Iterable[tuple[str, UploadFile]], now, store: PhotoStore,
                   view: ReportView) -> list[TidtamError]:
    """Add each photo; a refused one is reported and the rest carry on (each in a savepoint)."""
    limit = form_of(view.spec).photo_max_bytes
    refused: list[TidtamError] = []
    for key, upload in files:
        name = upload.filename or "photo"
        data = upload.file.read(limit + 1)  # never more than the limit + 1 byte in memory
        try:
            if len(data) > limit:
                raise InvalidInput(f"{name}: larger than {limit / 1e6:g} MB",
                                   f"{name}: ไฟล์ใหญ่เกิน {limit / 1e6:g} MB")
            with session.begin_nested():
                reporting.add_photo(session, user, code, key, data, name,
                                    directive=view.directive, store=store, now=now)
        except InvalidInput as exc:
            refused.append(exc)
    return refused


# --- answers ------------------------------------------------------------------------------------

def json_error(exc: TidtamError) -> JSONResponse:
    """What the page's script shows: the same Thai+English text as the error pages."""
    return JSONResponse({"detail": {"th": exc.message_th, "en": exc.message_en}},
                        status_code=status_of(exc))


def flash_refusals(request: Request, refused: list[TidtamError]) -> None:
    for exc in refused[:MAX_FLASHED_REFUSALS]:
        flash(request, "flash.photo_refused", "error", th=exc.message_th, en=exc.message_en)
    if len(refused) > MAX_FLASHED_REFUSALS:
        flash(request, "flash.photos_refused_more", "error",
              count=len(refused) - MAX_FLASHED_REFUSALS)


def refusal_json(request: Request, exc: TidtamError) -> dict[str, str]:
    t = Translator(language_of(request))
    return {"th": exc.message_th, "en": exc.message_en,
            "text": t("flash.photo_refused", th=exc.message_th, en=exc.message_en)}


def finding_json(finding: Finding, lang: str, digits: str = "arabic") -> dict[str, str]:
    return {"field": finding.field, "severity": finding.severity,
            "text": in_digits(finding.th() if lang == "th" else finding.en(), digits),
            "message": in_digits(finding.message_th if lang == "th" else finding.message_en, digits)}


def findings_by_field(findings: Iterable[Finding]) -> dict[str, list[Finding]]:
    """Findings keyed by the field they name, for the marks beside each input."""
    marks: dict[str, list[Finding]] = {}
    for finding in findings:
        marks.setdefault(finding.field, []).append(finding)
    return marks


def shown_findings(view: ReportView, attempted: bool) -> tuple[tuple[Finding, ...], tuple[Finding, ...]]:
    """(errors, warnings) the page shows: to the district every one once it tried to submit,
    before that only those on fields it typed in (an untouched form scolds no one); to the
    province the warnings (what a reviewer looks at), never a draft's errors."""
    errors, warnings = view.checked.errors, view.checked.warnings
    if not view.can_edit:
        return (), warnings
    if attempted:
        return errors, warnings
    typed = typed_fields(view.checked.raw)
    return (tuple(f for f in errors if shown_before_submit(f, typed)),
            tuple(f for f in warnings if shown_before_submit(f, typed)))


def audience_of(user: User, view: ReportView) -> str:
    """Whose words the page speaks: the district's own ("district"), the reviewer's ("reviewer"),
    or someone who only reads it ("reader")."""
    if can_edit_report(user.role, user.district_code, view.district.code):
        return "district"
    return "reviewer" if can_review_report(user.role) and not view.closed else "reader"


def year_choices(view: ReportView) -> list[int]:
    """The B.E. years the date's year select offers: the activity period's, one either side."""
    period = view.spec.conditions.period
    first, last = (period.start, period.end) if period else (view.spec.province_due,) * 2
    return list(range(first.year + 542, last.year + 545))


def report_context(request: Request, view: ReportView, attempted: bool = False) -> dict[str, Any]:
    """What the page and its fragments are drawn from."""
    photos: dict[str, list] = {}
    for photo in view.photos:
        photos.setdefault(photo.session_key, []).append(photo)
    errors, warnings = shown_findings(view, attempted)
    lang = language_of(request)
    return {"view": view, "form": form_of(view.spec), "marks": findings_by_field((*errors, *warnings)),
            "shown_errors": errors, "shown_warnings": warnings, "attempted": attempted,
            "photos_by_key": photos, "status": view.report.status if view.report else "none",
            "audience": audience_of(request.state.user, view), "date_parts": date_parts,
            "years_be": year_choices(view),
            "month_names": THAI_MONTHS if lang == "th" else ENGLISH_MONTHS}


def render_report(request: Request, view: ReportView, *, refused: ReportInvalid | None = None,
                  status_code: int = 200) -> Response:
    context = report_context(request, view, attempted=refused is not None)
    sessions = list(view.checked.raw["sessions"])
    if not sessions and view.can_edit:  # an empty form starts with one session to fill
        sessions = [{"key": new_session_key(), "held_on": "", "center": "", "place": "",
                     "kind": "", "kind_other": "", "participants": {}}]
    return render(request, "report.html", {
        **context, "sessions": sessions, "refused": refused, "history": history_of(view),
        "saved_keys": {entry["key"] for entry in view.checked.raw["sessions"]} if view.report else set(),
    }, status_code=status_code)


def history_of(view: ReportView) -> list[tuple[Any, int]]:
    """The audit log with runs of autosaves by one person folded into one line (entry, count)."""
    folded: list[tuple[Any, int]] = []
    for entry in view.history:
        if folded and entry.action == "report.save" == folded[-1][0].action \
                and entry.actor == folded[-1][0].actor:
            folded[-1] = (entry, folded[-1][1] + 1)
        else:
            folded.append((entry, 1))
    return folded


def saved_at_text(request: Request, view: ReportView) -> str:
    """"Saved at 10:32" in local time, for the one save status (empty before the first save)."""
    if view.report is None:
        return ""
    t = Translator(language_of(request))
    local = view.report.updated_at.astimezone(request.app.state.settings.tz)
    return in_digits(t("report.js.saved_at", time=f"{local:%H:%M}"), digits_of(request))


def page_state(request: Request, view: ReportView, attempted: bool = False) -> dict[str, Any]:
    """The autosave's answer: version, findings, derived items, and fresh HTML for the page.

    Every error comes with ``shown``: whether the page marks it before the person touches its
    field (the script marks the others once the field is touched, all after a submit)."""
    context = report_context(request, view, attempted)
    lang, digits = language_of(request), digits_of(request)
    parts = request.app.state.templates.env.get_template("_report_parts.html").make_module(
        vars={**context, "t": Translator(lang), "lang": lang, "digits": digits})
    summary = view.summary
    shown = {id(f) for f in (*context["shown_errors"], *context["shown_warnings"])}
    t = Translator(lang)
    return {
        "version": view.version, "status": str(context["status"]), "editable": view.can_edit,
        "status_text": t(f"report.status.{context['status']}"),
        "saved_text": saved_at_text(request, view),
        "errors": [{**finding_json(f, lang, digits), "shown": id(f) in shown}
                   for f in view.checked.errors if view.can_edit],
        "warnings": [{**finding_json(f, lang, digits), "shown": id(f) in shown}
                     for f in view.checked.warnings],
        "summary": {"centers": summary.centers, "sessions": summary.sessions,
                    "participants": summary.participants,
                    "total_participants": summary.total_participants,
                    "kinds": [{"code": k.code, "title_th": k.title_th, "title_en": k.title_en,
                               "places": k.places, "sessions": k.sessions} for k in summary.kinds]},
        "html": {"findings": str(parts.findings()), "summary": str(parts.summary()),
                 "photos": {key: str(parts.photo_list(key)) for key in
                            {e["key"] for e in view.checked.raw["sessions"]}}},
    }
